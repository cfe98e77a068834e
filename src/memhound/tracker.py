"""memhound's tracking API: start, stop, epochs and snapshots."""
from __future__ import annotations

import atexit
import _thread
# typing is imported for type checkers only (it pulls in re, enum, collections).
TYPE_CHECKING = False

from . import _core
from .snapshot import Snapshot

if TYPE_CHECKING:  # pragma: no cover
    from typing import Optional

__all__ = [
    "DEFAULT_SAMPLE_BYTES",
    "DEFAULT_MAX_FRAMES",
    "start",
    "stop",
    "is_tracking",
    "next_epoch",
    "epoch",
    "snapshot",
    "Tracker",
]

#: Mean number of bytes between two samples in the default mode. Chosen from
#: measurement: see docs/sampling.md and BENCHMARKS.md.
DEFAULT_SAMPLE_BYTES = 65536
#: Largest accepted sample_bytes (1 TiB: beyond it nothing would ever be sampled).
MAX_SAMPLE_BYTES = 1 << 40
#: Default stack depth kept per sample.
DEFAULT_MAX_FRAMES = 128
MAX_FRAMES_CAP = _core.MAX_FRAMES_CAP

_lock = _thread.allocate_lock()
_atexit_registered = False
_epoch_closed_by_exit = False


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


def start(
    sample_bytes: "Optional[int]" = None,
    max_frames: int = DEFAULT_MAX_FRAMES,
    *,
    seed: "Optional[int]" = None,
) -> None:
    """Start tracking the memory this process allocates through Python's allocators.

    ``sample_bytes`` is the mean gap R between samples, in bytes: an allocation of
    ``size`` bytes is sampled with probability ``1 - exp(-size/R)`` and stands for
    ``1/p`` allocations. ``None`` picks :data:`DEFAULT_SAMPLE_BYTES`; ``1`` is
    exact mode, every allocation. ``max_frames`` (1 to 512) is the deepest stack
    kept; deeper stacks keep their innermost frames and are marked truncated.
    ``seed`` makes the sampler's choices repeatable.

    Raises RuntimeError if memhound is already tracking.
    """
    global _atexit_registered, _epoch_closed_by_exit
    if sample_bytes is None:
        sample_bytes = DEFAULT_SAMPLE_BYTES
    _check_int("sample_bytes", sample_bytes)
    _check_int("max_frames", max_frames)
    if not 1 <= sample_bytes <= MAX_SAMPLE_BYTES:
        raise ValueError(
            f"sample_bytes must be between 1 (exact mode) and {MAX_SAMPLE_BYTES}, got {sample_bytes}")
    if not 1 <= max_frames <= MAX_FRAMES_CAP:
        raise ValueError(f"max_frames must be between 1 and {MAX_FRAMES_CAP}, got {max_frames}")
    if seed is not None:
        _check_int("seed", seed)
    seed_value = (seed or 0) & 0xFFFFFFFFFFFFFFFF
    if seed is not None and seed_value == 0:
        seed_value = 0x5EED
    with _lock:
        _core.start(sample_bytes, max_frames, seed_value)
        _epoch_closed_by_exit = False
        if not _atexit_registered:
            atexit.register(_stop_at_exit)
            _atexit_registered = True


def stop() -> None:
    """Stop tracking and put the previous allocators back.

    If another tool replaced Python's allocators after :func:`start`, memhound
    leaves them alone (its hooks stay in the chain, passing calls through), and
    says so with a RuntimeWarning. Raises RuntimeError if not tracking.
    """
    with _lock:
        clean = _core.stop()
    if not clean:
        import warnings

        warnings.warn(
            "memhound: another tool replaced Python's allocators after memhound started; "
            "they were left in place and memhound's hooks now pass every call through",
            RuntimeWarning,
            stacklevel=2,
        )


def _stop_at_exit() -> None:
    if _core.is_tracking():
        try:
            with _lock:
                _core.stop()
        except Exception:
            pass


def is_tracking() -> bool:
    """True between :func:`start` and :func:`stop`."""
    return bool(_core.is_tracking())


def next_epoch() -> int:
    """Close the current epoch and open the next; returns the new epoch's number.

    Epochs are the unit of the leak verdict: one pass of a loop, one request,
    one test repetition. Raises RuntimeError if not tracking.
    """
    global _epoch_closed_by_exit
    _epoch_closed_by_exit = False
    return int(_core.next_epoch())


class epoch:
    """Run the body as one epoch: ``for x in items: with memhound.epoch(): work(x)``.

    Entering opens a new epoch (unless the previous ``with epoch()`` just closed
    one, so back-to-back blocks leave no empty epochs between them); leaving
    closes it. ``as`` gives the epoch's number.
    """

    def __enter__(self) -> int:
        global _epoch_closed_by_exit
        if _epoch_closed_by_exit:
            return int(_core.totals()["epoch"])
        return int(_core.next_epoch())

    def __exit__(self, *exc: object) -> None:
        global _epoch_closed_by_exit
        if _core.is_tracking():
            _core.next_epoch()
            _epoch_closed_by_exit = True


def snapshot() -> Snapshot:
    """Take a :class:`Snapshot` of the tracked memory. Raises RuntimeError if not
    tracking."""
    return Snapshot(_core.snapshot())


class Tracker:
    """``with memhound.Tracker() as t: ...``: track the block; ``t.snapshot`` is
    the snapshot taken as it ends."""

    def __init__(self, sample_bytes: "Optional[int]" = None, max_frames: int = DEFAULT_MAX_FRAMES,
                 *, seed: "Optional[int]" = None):
        self.sample_bytes = sample_bytes
        self.max_frames = max_frames
        self.seed = seed
        self.snapshot: "Optional[Snapshot]" = None

    def __enter__(self) -> "Tracker":
        start(self.sample_bytes, self.max_frames, seed=self.seed)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.snapshot = snapshot()
        finally:
            stop()
