"""Live memory by stack in speedscope's JSON file format
(https://www.speedscope.app/file-format-schema.json), for https://www.speedscope.app.

One ``sampled`` profile in ``bytes``: one sample per interned stack with live
memory, its frames outermost first (speedscope's order, the reverse of
memhound's), weighted by the stack's estimated live bytes rounded to an
integer. Frames are shared between samples in ``shared.frames``, one per
(function, file, line). ``startValue`` is 0 and ``endValue`` the sum of the
weights, so the flame graph's width is the live memory of all stacks.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Tuple

from .. import __version__
from ..snapshot import Snapshot
from ._live import live_stacks

__all__ = ["SCHEMA", "build", "write"]

SCHEMA = "https://www.speedscope.app/file-format-schema.json"

DEFAULT_NAME = "memhound: live memory by stack"


def build(snapshot: Snapshot, *, name: str = DEFAULT_NAME) -> Dict[str, Any]:
    """The speedscope file as a dict, ready for ``json.dump``."""
    frames: List[Dict[str, Any]] = []
    index: Dict[Tuple[str, int, str], int] = {}
    samples: List[List[int]] = []
    weights: List[int] = []
    for live in live_stacks(snapshot):
        if live.bytes == 0:
            continue
        stack = []
        for frame in reversed(live.frames):
            i = index.get(frame)
            if i is None:
                filename, lineno, function = frame
                i = index[frame] = len(frames)
                entry: Dict[str, Any] = {"name": function, "file": filename}
                if lineno > 0:
                    entry["line"] = lineno
                frames.append(entry)
            stack.append(i)
        samples.append(stack)
        weights.append(live.bytes)
    return {
        "$schema": SCHEMA,
        "exporter": f"memhound@{__version__}",
        "name": name,
        "activeProfileIndex": 0,
        "shared": {"frames": frames},
        "profiles": [{
            "type": "sampled",
            "name": name,
            "unit": "bytes",
            "startValue": 0,
            "endValue": sum(weights),
            "samples": samples,
            "weights": weights,
        }],
    }


def write(path: str, snapshot: Snapshot, *, name: str = DEFAULT_NAME) -> None:
    """Write the file to ``path`` atomically (a temporary file renamed into place)."""
    doc = build(snapshot, name=name)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
