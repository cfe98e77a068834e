"""Whose frame is this: the user's own code, or the interpreter's (the standard
library, site-packages, memhound itself, frozen and synthetic code)? The one
place that answers, for every report.

The answer depends on the interpreter that ran the program, not on the one
reading the report: a capture records its interpreter's folders
(``prefixes`` in the process's meta, written by the program side), and
:func:`rule_for` builds the rule from them. A snapshot taken in this process
uses this interpreter's folders."""
from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Optional, Tuple

from .._frames import Frame, Traceback


def interpreter_prefixes() -> Dict[str, List[str]]:
    """This interpreter's folders, as the program side records them."""
    import site
    import sysconfig

    paths = sysconfig.get_paths()
    sites = [paths["purelib"], paths["platlib"]]
    sites += list(getattr(site, "getsitepackages", lambda: [])())
    user = getattr(site, "USER_SITE", None)
    if user:
        sites.append(user)
    return {"stdlib": [paths["stdlib"], paths["platstdlib"], os.path.dirname(os.__file__)],
            "site": sites, "memhound": [_package_dir()]}


def _package_dir() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _folders(dirs: Iterable[str]) -> Tuple[str, ...]:
    out = []
    for d in dirs:
        if isinstance(d, str) and d:
            d = os.path.normcase(os.path.abspath(d)).rstrip(os.sep) + os.sep
            if d not in out:
                out.append(d)
    return tuple(out)


class FrameRule:
    """The rule for one interpreter's folders."""

    def __init__(self, prefixes: Dict[str, Any]):
        self.prefixes = prefixes
        self._lib = _folders(list(prefixes.get("stdlib", [])) + list(prefixes.get("site", []))
                             + list(prefixes.get("memhound", [])))
        self._memhound = _folders(prefixes.get("memhound", []))
        self._cache: Dict[str, bool] = {}

    def is_user_file(self, filename: str) -> bool:
        """True for files of the user's own code: not the standard library,
        site-packages, memhound itself, or frozen/synthetic code (``<...>``)."""
        hit = self._cache.get(filename)
        if hit is None:
            if not filename or filename.startswith("<"):
                hit = False
            else:
                hit = not os.path.normcase(os.path.abspath(filename)).startswith(self._lib)
            if len(self._cache) < 65536:
                self._cache[filename] = hit
        return hit

    def is_user_frame(self, frame: Frame) -> bool:
        return self.is_user_file(frame.filename)

    def user_site(self, tb: Iterable[Frame]) -> Optional[Frame]:
        """The innermost frame of the user's own code in a stack, or None."""
        for f in tb:
            if self.is_user_file(f.filename):
                return f
        return None

    def site_of(self, tb: Traceback) -> Frame:
        """The frame a stack is reported under: the innermost user frame, else
        the innermost frame."""
        return self.user_site(tb) or (tb[0] if tb else Frame("<unknown>", 0, "<unknown>"))

    def display(self, filename: str) -> str:
        """A file as a report shows it: ``<stdlib>/…`` and ``<site-packages>/…``
        for the interpreter's own, relative to the working folder when inside
        it, else as it is."""
        if not filename or filename.startswith("<"):
            return filename
        fn = os.path.normcase(os.path.abspath(filename))
        for key, label in (("site", "<site-packages>"), ("stdlib", "<stdlib>")):
            for d in _folders(self.prefixes.get(key, [])):
                if fn.startswith(d):
                    return label + "/" + fn[len(d):]
        cwd = os.path.normcase(os.getcwd()) + os.sep
        return fn[len(cwd):] if fn.startswith(cwd) else filename

    def is_runner_file(self, filename: str) -> bool:
        """Frames of what started the program (runpy for ``-m``, memhound's
        command line in a run that was not launched), the same for every site."""
        if filename == "<frozen runpy>" or filename.endswith(os.sep + "runpy.py"):
            return True
        if filename.startswith("<"):
            return False
        fn = os.path.normcase(os.path.abspath(filename))
        return any(fn.startswith(m + "cli" + os.sep) or fn == m + "__main__.py"
                   for m in self._memhound)

    def program_frames(self, tb: Traceback) -> Traceback:
        """The stack without the frames of the runner that started the program
        (the same under every stack). What the runner allocated itself (its
        innermost frame is the runner's) keeps its whole stack."""
        frames = []
        for f in tb:
            if self.is_runner_file(f.filename):
                if not frames:
                    return tb
                break
            frames.append(f)
        return Traceback(frames, tb.truncated)


_here: Optional[FrameRule] = None


def here() -> FrameRule:
    """The rule for this interpreter."""
    global _here
    if _here is None:
        _here = FrameRule(interpreter_prefixes())
    return _here


def rule_for(snapshot: Any = None) -> FrameRule:
    """The rule for the interpreter that took ``snapshot`` (its ``prefixes``,
    set when it was read from a capture), or for this one."""
    prefixes = getattr(snapshot, "prefixes", None)
    if not prefixes:
        return here()
    rule = getattr(snapshot, "_frame_rule", None)
    if rule is None:
        rule = FrameRule(prefixes)
        try:
            snapshot._frame_rule = rule
        except AttributeError:  # pragma: no cover - a snapshot without a __dict__
            pass
    return rule


# This interpreter's rule, as functions (snapshots taken in this process).
def is_user_file(filename: str) -> bool:
    return here().is_user_file(filename)


def is_user_frame(frame: Frame) -> bool:
    return here().is_user_file(frame.filename)


def user_site(tb: Traceback) -> Optional[Frame]:
    return here().user_site(tb)


def site_of(tb: Traceback) -> Frame:
    return here().site_of(tb)


def program_frames(tb: Traceback) -> Traceback:
    return here().program_frames(tb)


__all__ = ["FrameRule", "rule_for", "here", "interpreter_prefixes", "is_user_file",
           "is_user_frame", "user_site", "site_of", "program_frames"]
