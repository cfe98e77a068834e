"""Frames and stacks as memhound reports them: plain tuples, importing nothing,
so that every module (the program side included) can use them."""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Iterable, List, Optional

__all__ = ["Frame", "Traceback", "UNKNOWN"]


class Frame(tuple):
    """One frame of a stack: file, line and function (qualified name on 3.11+).
    A tuple ``(filename, lineno, function)``: hashable, ordered, unpackable."""

    __slots__ = ()

    def __new__(cls, filename: str, lineno: int, function: str) -> "Frame":
        return tuple.__new__(cls, (filename, lineno, function))

    @property
    def filename(self) -> str:
        return self[0]

    @property
    def lineno(self) -> int:
        return self[1]

    @property
    def function(self) -> str:
        return self[2]

    def __repr__(self) -> str:
        return f"Frame(filename={self[0]!r}, lineno={self[1]!r}, function={self[2]!r})"

    def __str__(self) -> str:
        return f"{self[0]}:{self[1]} in {self[2]}"


UNKNOWN = Frame("<unknown>", 0, "<unknown>")


class Traceback(tuple):
    """A stack of :class:`Frame`, innermost (most recent call) first.

    ``truncated`` is True when the walk stopped at ``max_frames``.
    """

    truncated: bool

    def __new__(cls, frames: "Iterable[Frame]", truncated: bool = False) -> "Traceback":
        self = super().__new__(cls, tuple(frames))
        self.truncated = truncated
        return self

    def __repr__(self) -> str:
        more = ", truncated" if self.truncated else ""
        return f"<Traceback {tuple(self)!r}{more}>"

    def format(self, limit: "Optional[int]" = None, most_recent_first: bool = True) -> "List[str]":
        frames = list(self if most_recent_first else reversed(self))
        if limit is not None:
            frames = frames[:limit]
        lines = [f'  File "{f.filename}", line {f.lineno}, in {f.function}' for f in frames]
        if self.truncated:
            lines.append("  ... (stack truncated at max_frames)")
        return lines
