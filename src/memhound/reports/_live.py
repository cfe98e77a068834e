"""Live memory by stack, as the exporters write it: one entry per interned stack
with live memory, its frames innermost first, and its estimates rounded to
whole bytes and objects."""
from __future__ import annotations

from typing import List, NamedTuple, Tuple

from ..analysis.frames import rule_for
from ..snapshot import UNKNOWN, Frame, Snapshot

class LiveStack(NamedTuple):
    stack_id: int
    #: Innermost (the allocating frame) first; never empty.
    frames: Tuple[Frame, ...]
    #: Estimated live bytes and objects, rounded to the nearest integer.
    bytes: int
    objects: int


def live_stacks(snapshot: Snapshot) -> List[LiveStack]:
    """Stacks with live memory, in stack id order. Stacks whose rounded bytes
    and count are both 0 are left out. Frames are the program's (without the
    runner's that started it: analysis/frames.py); a stack with no Python frame at all (an allocation in a thread that has
    none) gets one ``<unknown>`` frame."""
    out: List[LiveStack] = []
    program_frames = rule_for(snapshot).program_frames
    for stack_id, (b, n, _var, _samples) in sorted(snapshot.live_by_stack().items()):
        nbytes, objects = int(round(max(b, 0.0))), int(round(max(n, 0.0)))
        if nbytes == 0 and objects == 0:
            continue
        frames = tuple(program_frames(snapshot.traceback(stack_id))) or (UNKNOWN,)
        out.append(LiveStack(stack_id, frames, nbytes, objects))
    return out
