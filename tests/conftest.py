"""Shared fixtures for memhound's tests.

Test modules keep their own small helpers rather than importing this file:
``from conftest import ...`` breaks as soon as another folder gets a conftest.py.
"""
from __future__ import annotations

import tracemalloc

import pytest

import memhound


@pytest.fixture(autouse=True)
def _memhound_isolation():
    """Every test starts with neither memhound nor tracemalloc tracking (the two
    must never run together), and a test that fails half-way does not leave
    memhound's hooks behind for the next one."""
    if tracemalloc.is_tracing():
        tracemalloc.stop()
    if memhound.is_tracking():
        memhound.stop()
    yield
    if memhound.is_tracking():
        memhound.stop()
