"""Snapshots of memhound's tables, and tracemalloc-style statistics over them.

A :class:`Snapshot` holds what the C core had at one moment: every interned
stack, the live sampled allocations aggregated by (stack, epoch) and the
per-(stack, epoch) allocation and free totals. All sizes and counts are
estimates (exact in exact mode): each sample stands for 1/p(size) allocations.
"""
from __future__ import annotations

# Imports are kept to the few small modules the interpreter nearly always has:
# memhound is meant to be left on, and every module imported costs the program
# memory (dataclasses, typing and re alone cost several MB of RSS).
import math
# typing is imported for type checkers only (it pulls in re, enum, collections).
TYPE_CHECKING = False

if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

__all__ = [
    "Frame",
    "Traceback",
    "Statistic",
    "StatisticDiff",
    "SiteEpoch",
    "Snapshot",
    "KEY_TYPES",
]

KEY_TYPES = ("lineno", "filename", "function", "traceback")


from ._frames import UNKNOWN, Frame, Traceback  # noqa: E402  (re-exported)


class _Record:
    """A small value class: fields from __slots__, equality and repr by field."""

    __slots__: "Tuple[str, ...]" = ()

    def __init__(self, *args: "Any", **kwargs: "Any") -> None:
        for name, value in zip(self.__slots__, args):
            object.__setattr__(self, name, value)
        for name, value in kwargs.items():
            object.__setattr__(self, name, value)

    def _fields(self) -> "Tuple[Any, ...]":
        return tuple(getattr(self, n) for n in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._fields() == other._fields()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({inner})"


class Statistic(_Record):
    """Estimated live memory grouped by a key (a one-frame or whole traceback)."""

    __slots__ = ("traceback", "size", "count")
    traceback: Traceback
    size: int
    count: int

    def __str__(self) -> str:
        top = self.traceback[0] if self.traceback else UNKNOWN
        return f"{top}: size={_fmt(self.size)}, count={self.count}"


class StatisticDiff(_Record):
    """Difference of a :class:`Statistic` between two snapshots (new minus old)."""

    __slots__ = ("traceback", "size", "size_diff", "count", "count_diff")
    traceback: Traceback
    size: int
    size_diff: int
    count: int
    count_diff: int

    def __str__(self) -> str:
        top = self.traceback[0] if self.traceback else UNKNOWN
        return (
            f"{top}: size={_fmt(self.size)} ({_fmt(self.size_diff, sign=True)}), "
            f"count={self.count} ({self.count_diff:+d})"
        )


class SiteEpoch(_Record):
    """One stack in one epoch: what it allocated and freed during the epoch, and
    how much of what it allocated during the epoch is still alive (the cohort).
    ``live_bytes_var`` is the sampling variance of ``live_bytes`` (0 in exact
    mode); ``samples`` the number of samples behind ``alloc_bytes``."""

    __slots__ = ("epoch", "alloc_bytes", "alloc_count", "freed_bytes", "freed_count",
                 "live_bytes", "live_count", "live_bytes_var", "samples", "live_samples")
    epoch: int
    alloc_bytes: float
    alloc_count: float
    freed_bytes: float
    freed_count: float
    live_bytes: float
    live_count: float
    live_bytes_var: float
    samples: int
    live_samples: int

    def __init__(self, epoch: int, *args: "Any", **kwargs: "Any") -> None:
        for name in self.__slots__[1:]:
            object.__setattr__(self, name, 0 if name.endswith("samples") else 0.0)
        super().__init__(epoch, *args, **kwargs)

    def __setattr__(self, name: str, value: "Any") -> None:
        object.__setattr__(self, name, value)


def _fmt(n: float, sign: bool = False) -> str:
    s = "+" if sign and n > 0 else ("-" if n < 0 else "")
    n = abs(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{s}{n:.0f} {unit}" if unit == "B" else f"{s}{n:.1f} {unit}"
        n /= 1024
    return f"{s}{n}"  # pragma: no cover


#: Layout of a packed site row, as the core writes it (see mh_sites.h).
_ROW_FORMAT = "<QddddII"


def _pack_rows(rows: "Sequence[Tuple[int, int, float, float, float, float, int, int]]") -> bytes:
    """Rows given as tuples (stack, epoch, a, b, c, d, n, m), packed as the core does."""
    import struct

    row = struct.Struct(_ROW_FORMAT)
    return b"".join(row.pack(((st << 32) | ep) + 1, a, b, c, d, n, m)
                    for st, ep, a, b, c, d, n, m in rows)


def _iter_rows(buf: bytes) -> "Iterator[Tuple[int, int, float, float, float, float, int, int]]":
    import struct

    for key, a, b, c, d, n, m in struct.iter_unpack(_ROW_FORMAT, buf):
        key -= 1
        yield key >> 32, key & 0xFFFFFFFF, a, b, c, d, n, m


class Snapshot:
    """Estimated live memory by stack, and per-epoch site data, at one moment."""

    def __init__(self, raw: Tuple[Dict[str, Any], Any, Any, list, list]):
        totals, sites, cohorts, stacks, epochs = raw
        self.sample_bytes: int = totals["sample_bytes"]
        self.max_frames: int = totals["max_frames"]
        self.epoch: int = totals["epoch"]
        #: Start of each epoch, in seconds since start().
        self.epoch_starts: List[float] = epochs
        #: Seconds since start().
        self.elapsed: float = totals["elapsed"]
        #: Estimated bytes of tracked memory alive now, and the highest seen.
        self.tracked_bytes: int = int(round(totals["live_bytes"]))
        self.tracked_count: int = int(round(totals["live_count"]))
        self.peak_bytes: int = int(round(totals["peak_bytes"]))
        self.samples: int = totals["samples"]
        self.dropped: int = totals["dropped"]
        self.totals: Dict[str, Any] = totals
        self._raw_stacks = stacks
        self._stacks: Dict[int, Traceback] = {}
        # Packed rows: (stack, epoch) -> allocated and freed during the epoch ...
        self._sites_buf: bytes = sites if isinstance(sites, (bytes, bytearray)) else _pack_rows(sites)
        # ... and the cohorts: (stack, epoch) -> still alive, variance, samples.
        self._cohorts_buf: bytes = (cohorts if isinstance(cohorts, (bytes, bytearray))
                                    else _pack_rows(cohorts))
        self._live: Optional[Dict[int, List[float]]] = None

    def _live_table(self) -> Dict[int, List[float]]:
        if self._live is None:
            live: Dict[int, List[float]] = {}
            for stack, _epoch, b, n, vb, _vn, k, _ in _iter_rows(self._cohorts_buf):
                acc = live.setdefault(stack, [0.0, 0.0, 0.0, 0])
                acc[0] += b
                acc[1] += n
                acc[2] += vb
                acc[3] += k
            self._live = live
        return self._live

    # -- stacks ---------------------------------------------------------------
    def traceback(self, stack_id: int) -> Traceback:
        """The stack with this id (ids are stable within one tracking run)."""
        tb = self._stacks.get(stack_id)
        if tb is None:
            raw = self._raw_stacks[stack_id] if 0 < stack_id < len(self._raw_stacks) else None
            tb = Traceback((UNKNOWN,)) if raw is None else Traceback((Frame(*f) for f in raw[0]), raw[1])
            self._stacks[stack_id] = tb
        return tb

    def raw_frames(self, stack_id: int) -> Tuple[Tuple[str, int, str], ...]:
        """The frames of a stack as plain (file, line, function) tuples."""
        raw = self._raw_stacks[stack_id] if 0 < stack_id < len(self._raw_stacks) else None
        return tuple(raw[0]) if raw is not None else ()

    @property
    def stack_ids(self) -> range:
        return range(1, len(self._raw_stacks))

    def live_by_stack(self) -> Dict[int, Tuple[float, float, float, int]]:
        """stack id -> (estimated live bytes, count, variance of bytes, samples)."""
        return {k: (v[0], v[1], v[2], int(v[3])) for k, v in self._live_table().items()}

    def site_epochs(self) -> Dict[int, List[SiteEpoch]]:
        """stack id -> its :class:`SiteEpoch` rows, one per epoch it touched,
        in epoch order."""
        rows: Dict[Tuple[int, int], SiteEpoch] = {}
        for stack, epoch, ab, an, fb, fn, asamp, _fs in _iter_rows(self._sites_buf):
            r = rows.setdefault((stack, epoch), SiteEpoch(epoch))
            r.alloc_bytes, r.alloc_count = ab, an
            r.freed_bytes, r.freed_count = fb, fn
            r.samples = asamp
        for stack, epoch, b, n, vb, _vn, k, _ in _iter_rows(self._cohorts_buf):
            r = rows.setdefault((stack, epoch), SiteEpoch(epoch))
            r.live_bytes, r.live_count, r.live_bytes_var, r.live_samples = b, n, vb, k
        out: Dict[int, List[SiteEpoch]] = {}
        for (stack, _epoch), r in sorted(rows.items()):
            out.setdefault(stack, []).append(r)
        return out

    def rollup(self, groups: Sequence[int], n_groups: int, n_epochs: int) -> Tuple[List[float], ...]:
        """Sum the site and cohort rows into per-(group, epoch) series, with
        ``groups[stack_id]`` the group of each stack (-1: skip). Returns five flat
        lists of n_groups x n_epochs values, group-major: allocated, freed, cohort
        live bytes, cohort variance, cohort samples."""
        from array import array

        from . import _core

        gmap = array("I", (g if g >= 0 else 0xFFFFFFFF for g in groups))
        out = _core.rollup(self._sites_buf, self._cohorts_buf, gmap.tobytes(), n_groups, n_epochs)
        res = []
        for buf in out:
            a = array("d")
            a.frombytes(buf)
            res.append(a)
        return tuple(res)

    # -- tracemalloc-style statistics ----------------------------------------
    def _key(self, tb: Traceback, key_type: str) -> Traceback:
        top = tb[0] if tb else UNKNOWN
        if key_type == "lineno":
            return Traceback((top,))
        if key_type == "filename":
            return Traceback((Frame(top.filename, 0, ""),))
        if key_type == "function":
            return Traceback((Frame(top.filename, 0, top.function),))
        return tb if tb else Traceback((UNKNOWN,))

    def _cumulative_keys(self, tb: Traceback, key_type: str) -> Iterator[Traceback]:
        seen = set()
        for f in tb or (UNKNOWN,):
            k = self._key(Traceback((f,)), key_type)
            if k not in seen:
                seen.add(k)
                yield k

    def _grouped(self, key_type: str, cumulative: bool) -> Dict[Traceback, List[float]]:
        if key_type not in KEY_TYPES:
            raise ValueError(f"unknown key_type {key_type!r}: expected one of {', '.join(KEY_TYPES)}")
        if cumulative and key_type == "traceback":
            raise ValueError("cumulative=True is not supported with key_type 'traceback'")
        groups: Dict[Traceback, List[float]] = {}
        for stack, (b, n, _v, _k) in self._live_table().items():
            tb = self.traceback(stack)
            keys = self._cumulative_keys(tb, key_type) if cumulative else (self._key(tb, key_type),)
            for key in keys:
                acc = groups.setdefault(key, [0.0, 0.0])
                acc[0] += b
                acc[1] += n
        return groups

    def statistics(self, key_type: str = "lineno", cumulative: bool = False) -> List[Statistic]:
        """Estimated live memory grouped by ``key_type`` ("lineno", "filename",
        "function" or "traceback"), biggest first. With ``cumulative``, memory
        counts for every frame of its stack, not only the innermost."""
        stats = [
            Statistic(k, int(round(b)), int(round(n)))
            for k, (b, n) in self._grouped(key_type, cumulative).items()
        ]
        stats.sort(key=lambda s: (-s.size, -s.count, s.traceback))
        return stats

    def compare_to(
        self, old_snapshot: "Snapshot", key_type: str = "lineno", cumulative: bool = False
    ) -> List[StatisticDiff]:
        """Differences from ``old_snapshot`` grouped by ``key_type``, sorted by
        the absolute size difference, biggest first."""
        new = self._grouped(key_type, cumulative)
        old = old_snapshot._grouped(key_type, cumulative)
        diffs = []
        for key in new.keys() | old.keys():
            nb, nn = new.get(key, (0.0, 0.0))
            ob, on = old.get(key, (0.0, 0.0))
            diffs.append(
                StatisticDiff(
                    key,
                    int(round(nb)),
                    int(round(nb)) - int(round(ob)),
                    int(round(nn)),
                    int(round(nn)) - int(round(on)),
                )
            )
        diffs.sort(key=lambda d: (-abs(d.size_diff), -d.size, d.traceback))
        return diffs

    def filter_files(self, patterns: Sequence[str], include: bool = True) -> Dict[int, Tuple[float, float, float, int]]:
        """Live memory by stack, keeping stacks whose innermost frame's file
        matches any of the fnmatch ``patterns`` (or, with include=False, none)."""
        import fnmatch

        out = {}
        for stack, v in self.live_by_stack().items():
            fn = self.traceback(stack)[0].filename
            hit = any(fnmatch.fnmatch(fn, p) for p in patterns)
            if hit == include:
                out[stack] = v
        return out

    def standard_error(self, stack_id: int) -> float:
        """Standard error of the live-bytes estimate of one stack."""
        v = self._live_table().get(stack_id)
        return math.sqrt(v[2]) if v else 0.0

    def __repr__(self) -> str:
        return (
            f"<memhound.Snapshot tracked={_fmt(self.tracked_bytes)} peak={_fmt(self.peak_bytes)} "
            f"stacks={len(self._raw_stacks) - 1} epoch={self.epoch} sample_bytes={self.sample_bytes}>"
        )

    # -- retention (see analysis/retention.py) -------------------------------
    #: The live sampled allocations when the snapshot was taken, packed as
    #: ``_core.live_samples`` gives them; set by ``memhound run`` before it stops
    #: tracking. None: read the core's live table when retention() is called.
    live_samples: "Optional[bytes]" = None
    #: The folders of the interpreter that took the snapshot, when it was read
    #: from a capture (see analysis/frames.py); None: this interpreter's.
    prefixes: "Optional[Dict[str, List[str]]]" = None

    def site_stack_ids(self, site: "Any") -> "List[int]":
        """Ids of the stacks reported under ``site`` (a :class:`Frame`, a
        ``(filename, lineno)`` pair, or anything with a ``site`` Frame)."""
        from .analysis.frames import rule_for

        site_of = rule_for(self).site_of
        site = getattr(site, "site", site)
        want = (site[0], site[1])
        return [s for s in self.stack_ids
                if tuple(site_of(self.traceback(s))[:2]) == want
                or tuple(self.traceback(s)[0][:2]) == want]

    def retention(self, site: "Any", *, program_globals: "Optional[dict]" = None,
                  max_objects: "Optional[int]" = None) -> "Any":
        """Who holds the memory allocated at ``site`` (a Frame, a
        ``(filename, lineno)`` pair or a SiteVerdict) that is still alive: a
        :class:`memhound.analysis.retention.SiteRetention` with the shortest
        reference chain from a root, the retained size of each holder, and the
        type of the objects. Runs while the objects are alive: in the program,
        before they are released. Never calls gc.collect()."""
        from . import _core
        from .analysis import retention as rt

        ids = getattr(site, "stack_ids", None) or self.site_stack_ids(site)
        samples = self.live_samples
        if samples is None:
            from array import array

            samples = _core.live_samples(array("I", ids).tobytes())
        res = rt.analyze_retention([(getattr(site, "site", site), ids)], samples,
                                   program_globals=program_globals,
                                   max_objects=max_objects or rt.DEFAULT_MAX_OBJECTS)
        return res.sites[0]
