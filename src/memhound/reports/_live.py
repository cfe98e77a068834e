"""Live memory by stack, as the exporters write it: one entry per interned stack
with live memory, its frames innermost first, and its estimates rounded to
whole bytes and objects."""
from __future__ import annotations

import os
from typing import List, NamedTuple, Sequence, Tuple

from ..snapshot import UNKNOWN, Frame, Snapshot

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: memhound's command line: ``memhound run`` and ``python -m memhound``.
_CLI_DIR = os.path.normcase(os.path.join(_PACKAGE, "cli")) + os.sep
_MAIN = os.path.normcase(os.path.join(_PACKAGE, "__main__.py"))


class LiveStack(NamedTuple):
    stack_id: int
    #: Innermost (the allocating frame) first; never empty.
    frames: Tuple[Frame, ...]
    #: Estimated live bytes and objects, rounded to the nearest integer.
    bytes: int
    objects: int


def live_stacks(snapshot: Snapshot) -> List[LiveStack]:
    """Stacks with live memory, in stack id order. Stacks whose rounded bytes
    and count are both 0 are left out. Frames are those of :func:`program_stack`;
    a stack with no Python frame at all (an allocation in a thread that has
    none) gets one ``<unknown>`` frame."""
    out: List[LiveStack] = []
    for stack_id, (b, n, _var, _samples) in sorted(snapshot.live_by_stack().items()):
        nbytes, objects = int(round(max(b, 0.0))), int(round(max(n, 0.0)))
        if nbytes == 0 and objects == 0:
            continue
        frames = program_stack(snapshot.traceback(stack_id)) or (UNKNOWN,)
        out.append(LiveStack(stack_id, frames, nbytes, objects))
    return out


def _is_cli(filename: str) -> bool:
    if filename.startswith("<"):
        return False
    fn = os.path.normcase(os.path.abspath(filename))
    return fn.startswith(_CLI_DIR) or fn == _MAIN


def _is_runpy(filename: str) -> bool:
    return filename == "<frozen runpy>" or filename.endswith(os.sep + "runpy.py")


def program_stack(frames: Sequence[Frame]) -> Tuple[Frame, ...]:
    """A stack (innermost first) without the frames of memhound's command line
    that started the program, which are the same under every stack: the first
    frame of ``memhound run`` and everything outside it go, then the runpy
    frames that called the program's module code. What memhound's runner
    allocated itself (runpy compiling the script) keeps its runpy frames.
    Stacks of programs that memhound's command line did not start are kept
    whole."""
    for i, f in enumerate(frames):
        if _is_cli(f.filename):
            if i == 0:
                return tuple(frames)  # memhound's own allocation: keep it whole
            kept = list(frames[:i])
            while len(kept) > 1 and _is_runpy(kept[-1].filename):
                kept.pop()
            return tuple(kept)
    return tuple(frames)
