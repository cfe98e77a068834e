"""Live memory by stack, as the exporters write it: one entry per interned stack
with live memory, its frames innermost first, and its estimates rounded to
whole bytes and objects."""
from __future__ import annotations

from typing import List, NamedTuple, Tuple

from ..analysis.sites import program_frames
from ..snapshot import UNKNOWN, Frame, Snapshot


class LiveStack(NamedTuple):
    stack_id: int
    #: Innermost (the allocating frame) first; never empty.
    frames: Tuple[Frame, ...]
    #: Estimated live bytes and objects, rounded to the nearest integer.
    bytes: int
    count: int


def live_stacks(snapshot: Snapshot) -> List[LiveStack]:
    """Stacks with live memory, in stack id order. Stacks whose rounded bytes
    and count are both 0 are left out. The frames of the runner that started
    the program (memhound's command line, runpy), the same under every stack,
    are dropped unless nothing else is left; a stack with no Python frame at
    all (an allocation in a thread that has none) gets one ``<unknown>`` frame."""
    out: List[LiveStack] = []
    for stack_id, (b, n, _var, _samples) in sorted(snapshot.live_by_stack().items()):
        nbytes, count = int(round(max(b, 0.0))), int(round(max(n, 0.0)))
        if nbytes == 0 and count == 0:
            continue
        tb = snapshot.traceback(stack_id)
        frames = tuple(program_frames(tb)) or tuple(tb) or (UNKNOWN,)
        out.append(LiveStack(stack_id, frames, nbytes, count))
    return out
