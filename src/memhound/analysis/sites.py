"""Which frames are the user's own code, and rolling stacks up to them."""
from __future__ import annotations

import functools
import os
import sysconfig
from typing import Optional, Tuple

from ..snapshot import Frame, Traceback


def _lib_dirs() -> Tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths["stdlib"], paths["platstdlib"], paths["purelib"], paths["platlib"],
            os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    return tuple(os.path.normcase(os.path.abspath(d)) + os.sep for d in dirs)


_LIB_DIRS = _lib_dirs()


@functools.lru_cache(maxsize=65536)
def is_user_file(filename: str) -> bool:
    """True for files of the user's own code: not the standard library,
    site-packages, memhound itself, or frozen/synthetic code (``<...>``)."""
    if not filename or filename.startswith("<"):
        return False
    return not os.path.normcase(os.path.abspath(filename)).startswith(_LIB_DIRS)


def is_user_frame(frame: Frame) -> bool:
    """True for frames in the user's own code (see :func:`is_user_file`)."""
    return is_user_file(frame.filename)


def user_site(tb: Traceback) -> Optional[Frame]:
    """The innermost frame of the user's own code in a stack, or None."""
    for f in tb:
        if is_user_frame(f):
            return f
    return None


def site_of(tb: Traceback) -> Frame:
    """The frame a stack is reported under: the innermost user frame, else the
    innermost frame."""
    return user_site(tb) or (tb[0] if tb else Frame("<unknown>", 0, "<unknown>"))


_RUNNER_FILES = (os.path.normcase(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cli")),)


def program_frames(tb: Traceback) -> Traceback:
    """The stack without the frames of the runner that started the program
    (memhound's command line and runpy), which are the same for every site."""
    frames = []
    for f in tb:
        fn = f.filename
        if fn == "<frozen runpy>" or fn.endswith(os.sep + "runpy.py") or (
                not fn.startswith("<") and os.path.normcase(os.path.abspath(fn)).startswith(_RUNNER_FILES)):
            break
        frames.append(f)
    return Traceback(frames, tb.truncated)
