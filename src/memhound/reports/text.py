"""Plain-text report of live memory by site."""
from __future__ import annotations

import os
import sysconfig
from typing import IO, Optional

from ..snapshot import Frame, Snapshot, Traceback, _fmt

_LIB_DIRS = tuple(
    os.path.normcase(os.path.abspath(p))
    for p in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"],
              sysconfig.get_paths()["platlib"], os.path.dirname(os.path.dirname(__file__))}
)


def is_user_frame(frame: Frame) -> bool:
    """True for frames in the user's own code: not the standard library,
    site-packages, memhound itself, or frozen/synthetic code."""
    fn = frame.filename
    if not fn or fn.startswith("<"):
        return False
    fn = os.path.normcase(os.path.abspath(fn))
    return not fn.startswith(_LIB_DIRS)


def user_site(tb: Traceback) -> Optional[Frame]:
    """The innermost frame of the user's own code, or None."""
    for f in tb:
        if is_user_frame(f):
            return f
    return None


def render_top_sites(snap: Snapshot, out: IO[str], top: int = 10,
                     program: Optional[str] = None) -> None:
    """Write the sites holding the most live memory, rolled up to the innermost
    frame of the user's own code."""
    by_site = {}
    for stack, (b, n, var, _k) in snap.live_by_stack().items():
        tb = snap.traceback(stack)
        site = user_site(tb) or (tb[0] if tb else None)
        if site is None:
            continue
        acc = by_site.setdefault(site, [0.0, 0.0, 0.0, tb])
        acc[0] += b
        acc[1] += n
        acc[2] += var
    rows = sorted(by_site.items(), key=lambda kv: -kv[1][0])[:top]
    mode = "exact" if snap.sample_bytes <= 1 else f"sampled every {_fmt(snap.sample_bytes)} on average"
    out.write(f"\nmemhound: {_fmt(snap.tracked_bytes)} live at exit, peak {_fmt(snap.peak_bytes)} "
              f"({mode}, {snap.elapsed:.1f} s{', ' + program if program else ''})\n")
    if not rows:
        out.write("memhound: no tracked memory alive at exit\n")
        return
    out.write("memhound: top sites by live memory\n")
    for i, (site, (b, n, var, tb)) in enumerate(rows, 1):
        err = f" ± {_fmt(2 * var ** 0.5)}" if var > 0 else ""
        out.write(f"  {i:>2}. {_fmt(b):>10}{err}  {int(round(n)):>9} blocks  "
                  f"{site.filename}:{site.lineno} in {site.function}\n")
