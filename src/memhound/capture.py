"""Reading a capture file: the SQLite database that ``memhound run`` writes while
the program runs (schema in docs/capture.md). A capture holds everything the
reports need, so ``memhound report`` rebuilds them from the file alone, even
when the process was killed before it could finish.

Every problem with the file (missing, not SQLite, not a capture, a newer schema,
corrupt or garbled) raises :class:`CaptureError` with a one-line message."""
from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote

from .result import SessionResult
from .snapshot import Snapshot, _pack_rows

#: The newest capture schema this version reads.
SCHEMA = 1

#: Timeline points kept for the reports (the file may hold many more).
MAX_TIMELINE = 4096

_SQLITE_MAGIC = b"SQLite format 3\x00"
#: Above these, an id in the file is garbage, not data.
_MAX_STACKS = 1 << 24
_MAX_EPOCHS = 1 << 20


class CaptureError(Exception):
    """The capture cannot be read; the message is one line for the user."""

    def __init__(self, message: str):
        message = " ".join(message.split())
        super().__init__(message if len(message) <= 400 else message[:397] + "...")


@dataclass
class Process:
    """One process's run as the capture recorded it."""

    pid: int
    ppid: int
    started: float  # Unix time
    meta: Dict[str, Any]
    updated: float  # seconds since start at the last flush
    flushes: int
    status: Optional[str]  # None: the process never recorded its end
    exit_code: Optional[int]
    ended: Optional[float]
    result: Dict[str, Any]
    row: Dict[str, Any] = field(repr=False)

    #: The signal that ended the process, if the launcher saw one.
    signal: Optional[int] = None

    @property
    def finished(self) -> bool:
        return self.status is not None

    @property
    def alive(self) -> bool:
        """The process is running now and flushed recently (a live capture)."""
        if self.finished:
            return False
        return (process_alive(self.pid)
                and time.time() - (self.started + self.updated) < 30.0)

    @property
    def state(self) -> str:
        """How the process ended: "exited" (with ``exit_code``; -1 or None when
        unknown), "raised", "interrupted", "signal" (killed by ``signal``),
        "os._exit", "exec", "completed" or "stopped" (API runs), "running" (still
        being written) or "killed" (ended without recording its end)."""
        if self.signal is not None:
            return "signal"
        if self.status is not None:
            return self.status
        return "running" if self.alive else "killed"

    @property
    def complete(self) -> bool:
        """The run ended normally with status 0: the report covers all of it."""
        return self.state == "completed" or (self.state == "exited" and self.exit_code == 0)

    def ended_how(self) -> str:
        """How the process ended, in words."""
        state, code = self.state, self.exit_code
        known = code is not None and code >= 0
        if state == "completed":
            return "exited with code 0"
        if state == "exited":
            return f"exited with code {code}" if known else "exited"
        if state == "signal":
            if self.status == "interrupted":
                return f"interrupted by {_signal_name(self.signal or 0)} (KeyboardInterrupt)"
            return f"killed by {_signal_name(self.signal or 0)}"
        if state == "raised":
            return "raised an exception" + (f" (exit code {code})" if known else "")
        if state == "interrupted":
            return "interrupted (KeyboardInterrupt)"
        if state == "os._exit":
            return f"os._exit({code})" if code is not None else "os._exit"
        if state == "exec":
            return "replaced itself by exec"
        if state == "running":
            return "still running"
        if state == "killed":
            return "ended without closing the capture (killed, or out of memory)"
        return state


def process_alive(pid: int) -> bool:
    """The process exists and is not a zombie (dead, not yet reaped)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[:1] not in ([b"Z"], [b"X"])
    except OSError:
        return True


def _signal_name(signum: int) -> str:
    import signal as _signal

    try:
        return _signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


@dataclass
class Run:
    """A process's run rebuilt from a capture: what ``memhound run`` had in
    memory at its last flush."""

    path: str
    process: Process
    result: SessionResult
    argv: List[str]
    duration: float
    python: str
    version: str

    #: Results the run added at its end (key -> JSON value): "retention", "census".
    notes: Dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.process.complete

    def partial_note(self) -> Optional[str]:
        """Why this report covers less than a whole run, or None."""
        p = self.process
        state = p.state
        if p.flushes < 1 and state not in ("running",):
            return f"the process {p.pid} {p.ended_how()} before memhound recorded anything"
        if state == "running":
            return f"the process {p.pid} is still running; the report covers its first {p.updated:.1f} s"
        if state == "killed":
            return (f"the process {p.pid} ended without closing the capture (killed, or out of memory);"
                    f" the report covers its first {p.updated:.1f} s, up to its last flush")
        if p.complete or state in ("completed", "stopped"):
            return None
        if state == "exited" and (p.exit_code is None or p.exit_code < 0):
            return None
        if state == "signal" and p.status is not None:
            return f"the program was {p.ended_how()}; partial run"  # it flushed as it ended
        if state == "signal":
            return (f"the program was {p.ended_how()}; the report covers its first"
                    f" {p.updated:.1f} s, up to its last flush")
        if state in ("os._exit", "exec"):
            return None  # flushed as it went: the report covers all of it
        return f"the program {p.ended_how()}; partial run"


def _connect(path: str) -> sqlite3.Connection:
    uri = "file:" + quote(os.path.abspath(path))
    try:
        # Read-write, so that SQLite can recover the write-ahead log of a
        # process killed in the middle of a flush; nothing else is written.
        return sqlite3.connect(uri + "?mode=rw", uri=True, timeout=10.0)
    except sqlite3.Error:
        try:
            return sqlite3.connect(uri + "?mode=ro", uri=True, timeout=10.0)
        except sqlite3.Error as e:
            raise CaptureError(f"cannot open the capture {path}: {e}") from None


def _finite(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise CaptureError(f"garbled value in the capture ({what})")
    return float(v)


def _int(v: Any, what: str, lo: int = 0, hi: int = 1 << 62) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise CaptureError(f"garbled value in the capture ({what})")
    return v


def _json(text: Any, what: str) -> Dict[str, Any]:
    if text is None:
        return {}
    try:
        v = json.loads(text)
    except (TypeError, ValueError):
        raise CaptureError(f"garbled value in the capture ({what})") from None
    if not isinstance(v, dict):
        raise CaptureError(f"garbled value in the capture ({what})")
    return v


class Capture:
    """An open capture file. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str):
        self.path = path
        if not os.path.exists(path):
            raise CaptureError(f"no such capture: {path}")
        if os.path.isdir(path):
            raise CaptureError(f"{path} is a directory, not a capture")
        try:
            with open(path, "rb") as f:
                head = f.read(100)
        except OSError as e:
            raise CaptureError(f"cannot read {path}: {e.strerror or e}") from None
        if len(head) < 100 or not head.startswith(_SQLITE_MAGIC):
            raise CaptureError(f"{path} is not a memhound capture (not an SQLite database)")
        self._db = _connect(path)
        # Text the file holds as invalid UTF-8 (a garbled capture) reads as
        # replacement characters rather than failing deep inside a query.
        self._db.text_factory = lambda b: b.decode("utf-8", "replace")
        try:
            self._check()
        except (sqlite3.Error, ValueError) as e:  # ValueError: undecodable text in a damaged file
            self.close()
            raise CaptureError(f"{path} is corrupt or truncated ({e})") from None
        except CaptureError:
            self.close()
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self) -> None:
        ok = self._db.execute("PRAGMA quick_check").fetchone()
        if not ok or ok[0] != "ok":
            raise CaptureError(f"{self.path} is corrupt or truncated ({ok[0] if ok else 'no answer'})")
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            raise CaptureError(f"{self.path} is an SQLite database but not a memhound capture")
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("created_by") != "memhound" or "schema" not in meta:
            raise CaptureError(f"{self.path} is an SQLite database but not a memhound capture")
        try:
            schema = int(meta["schema"])
        except (TypeError, ValueError):
            raise CaptureError(f"garbled value in the capture (schema {meta['schema']!r})") from None
        if schema > SCHEMA:
            raise CaptureError(f"{self.path} was written by a newer memhound (capture schema {schema};"
                               f" this memhound reads schema {SCHEMA} and older): upgrade memhound")
        missing = {"process", "frame", "stack", "stack_frame", "epoch", "site", "cohort", "timeline"} - tables
        if missing:
            raise CaptureError(f"{self.path} is not a complete memhound capture"
                               f" (no {', '.join(sorted(missing))} table)")

    # -- processes -------------------------------------------------------------
    def processes(self) -> List[Process]:
        """Every process that wrote to the capture, the first one first."""
        try:
            cur = self._db.execute("SELECT * FROM process ORDER BY started, pid")
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r)) for r in cur.fetchall()]
        except (sqlite3.Error, ValueError) as e:
            raise CaptureError(f"{self.path} is corrupt or truncated ({e})") from None
        exits = self._exit_notes()
        out = []
        for r in rows:
            out.append(Process(
                pid=_int(r["pid"], "pid", -(1 << 40), 1 << 31), ppid=_int(r["ppid"], "ppid", 0, 1 << 31),
                started=_finite(r["started"], "started"), meta=_json(r["meta"], "meta"),
                updated=_finite(r["updated"], "updated") if r["updated"] is not None else 0.0,
                flushes=_int(r["flushes"] or 0, "flushes"),
                status=r["status"] if isinstance(r["status"], str) else None,
                # -1: the process could not know its exit code (see docs/capture.md).
                exit_code=(r["exit_code"] if isinstance(r["exit_code"], int) and r["exit_code"] >= 0
                           else None),
                ended=_finite(r["ended"], "ended") if r["ended"] is not None else None,
                result=_json(r["result"], "result"), row=r))
            _apply_exit(out[-1], exits.get(out[-1].pid))
        return out

    def _exit_notes(self) -> Dict[int, Dict[str, Any]]:
        """What the launcher saw of how the processes it started ended (note
        "exit"): {"exit_code": N} or {"signal": N}."""
        if not self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'"
                                " AND name = 'note'").fetchone():
            return {}
        out: Dict[int, Dict[str, Any]] = {}
        for pid, value in self._db.execute("SELECT pid, value FROM note WHERE key = 'exit'"):
            try:
                doc = json.loads(value)
            except (TypeError, ValueError):
                raise CaptureError("garbled value in the capture (note 'exit')") from None
            if isinstance(pid, int) and isinstance(doc, dict):
                out[pid] = doc
        return out

    def process(self, pid: Optional[int] = None) -> Process:
        procs = self.processes()
        if not procs:
            raise CaptureError(f"{self.path} holds no process yet (the run had not started writing)")
        if pid is None:
            return roots(procs)[0]
        for p in procs:
            if p.pid == pid:
                return p
        raise CaptureError(f"{self.path} holds no process {pid} (it holds "
                           f"{', '.join(str(p.pid) for p in procs)})")

    # -- one process's run -----------------------------------------------------
    def load(self, pid: Optional[int] = None) -> Run:
        """Rebuild a process's snapshot, timeline and run facts."""
        try:
            return self._load(self.process(pid))
        except sqlite3.Error as e:
            raise CaptureError(f"{self.path} is corrupt or truncated ({e})") from None
        except (ValueError, TypeError, OverflowError) as e:
            raise CaptureError(f"garbled value in the capture ({e})") from None

    def _load(self, proc: Process) -> Run:
        db = self._db
        pid = proc.pid
        r = proc.row
        n_stacks = _int(r["stacks"] or 0, "stacks", 0, _MAX_STACKS)
        epoch = _int(r["epoch"] or 0, "epoch", 0, _MAX_EPOCHS)
        meta = proc.meta
        sample_bytes = _int(meta.get("sample_bytes", 1), "sample_bytes", 1, 1 << 50)
        totals: Dict[str, Any] = {
            "sample_bytes": sample_bytes,
            "max_frames": _int(meta.get("max_frames", 128), "max_frames", 1, 4096),
            "epoch": epoch,
            "elapsed": proc.updated,
            "live_bytes": _finite(r["live_bytes"] or 0.0, "live_bytes"),
            "live_count": _finite(r["live_count"] or 0.0, "live_count"),
            "peak_bytes": _finite(r["peak_bytes"] or 0.0, "peak_bytes"),
            "samples": _int(r["samples"] or 0, "samples"),
            "frees": _int(r["frees"] or 0, "frees"),
            "dropped": _int(r["dropped"] or 0, "dropped"),
            "unpinned": _int(r["unpinned"] or 0, "unpinned"),
            "stacks": n_stacks,
            "merges": _int(r["merges"] or 0, "merges", 0, 64),
            "stride": _int(r["stride"] or 1, "stride", 1, 1 << 62),
            "live_entries": 0,
        }
        # Frames and stacks.
        frames: Dict[int, Tuple[str, int, str]] = {}
        for fid, file, func, line in db.execute(
                "SELECT id, file, function, line FROM frame WHERE id IN"
                " (SELECT frame FROM stack_frame WHERE pid = ?)", (pid,)):
            if not isinstance(file, str) or not isinstance(func, str):
                raise CaptureError("garbled value in the capture (frame)")
            frames[_int(fid, "frame id", 1)] = (file, _int(line, "line", -1, 1 << 31), func)
        stacks: List[Any] = [None] * (n_stacks + 1)
        truncated: Dict[int, bool] = {}
        for sid, depth, trunc in db.execute("SELECT id, depth, truncated FROM stack WHERE pid = ?", (pid,)):
            sid = _int(sid, "stack id", 1, n_stacks)
            _int(depth, "stack depth", 0, 4096)
            truncated[sid] = bool(trunc)
            stacks[sid] = ([], truncated[sid])
        for sid, pos, fid in db.execute(
                "SELECT stack, pos, frame FROM stack_frame WHERE pid = ? ORDER BY stack, pos", (pid,)):
            sid = _int(sid, "stack id", 1, n_stacks)
            f = frames.get(fid)
            if stacks[sid] is None or f is None:
                raise CaptureError("garbled value in the capture (stack frame)")
            stacks[sid][0].append(f)
        # Site and cohort rows.
        sites: List[Any] = []
        for row in db.execute("SELECT stack, epoch, alloc_bytes, alloc_count, freed_bytes, freed_count,"
                              " alloc_samples, freed_samples FROM site WHERE pid = ?", (pid,)):
            sites.append((_int(row[0], "site stack", 0, n_stacks), _int(row[1], "site epoch", 0, _MAX_EPOCHS),
                          *(_finite(v, "site") for v in row[2:6]),
                          _int(row[6], "site samples", 0, 0xFFFFFFFF), _int(row[7], "site samples", 0, 0xFFFFFFFF)))
        cohorts: List[Any] = []
        for row in db.execute("SELECT stack, epoch, live_bytes, live_count, live_bytes_var, live_count_var,"
                              " live_samples FROM cohort WHERE pid = ?", (pid,)):
            cohorts.append((_int(row[0], "cohort stack", 0, n_stacks), _int(row[1], "cohort epoch", 0, _MAX_EPOCHS),
                            *(_finite(v, "cohort") for v in row[2:6]),
                            _int(row[6], "cohort samples", 0, 0xFFFFFFFF), 0))
        epochs = [0.0] * (epoch + 1)
        for e, start in db.execute("SELECT epoch, start FROM epoch WHERE pid = ?", (pid,)):
            e = _int(e, "epoch", 0, _MAX_EPOCHS)
            if e <= epoch:
                epochs[e] = _finite(start, "epoch start")
        snap = Snapshot((totals, _pack_rows(sites), _pack_rows(cohorts), stacks, epochs))
        prefixes = meta.get("prefixes")
        if isinstance(prefixes, dict) and all(
                isinstance(v, list) and all(isinstance(d, str) for d in v) for v in prefixes.values()):
            snap.prefixes = prefixes  # the frame rule of the interpreter that ran it
        # Timeline, thinned to what a report shows.
        # Captures written before memhound measured its own memory have no
        # timeline.own: their points say None.
        has_own = any(c[1] == "own" for c in db.execute("PRAGMA table_info(timeline)"))
        points = []
        for t, rss, tracked, heap, own in db.execute(
                f"SELECT t, rss, tracked, heap, {'own' if has_own else 'NULL'} FROM timeline"
                " WHERE pid = ? ORDER BY t", (pid,)):
            points.append((_finite(t, "timeline"), _int(rss, "timeline rss"), _finite(tracked, "timeline"),
                           None if heap is None else _int(heap, "timeline heap"),
                           None if own is None else _int(own, "timeline own")))
        if len(points) > MAX_TIMELINE:
            step = math.ceil(len(points) / MAX_TIMELINE)
            points = points[::step] + ([points[-1]] if (len(points) - 1) % step else [])
        res = proc.result
        kind = meta.get("epoch_kind", "time")
        if kind not in ("time", "function", "manual"):
            raise CaptureError("garbled value in the capture (epoch kind)")
        stride = float(totals["stride"])
        window = _finite(meta.get("window", 0.01), "window")
        result = SessionResult(
            snapshot=snap, timeline=points, epoch_kind=kind,
            units_per_epoch=stride if kind != "time" else 1.0,
            epoch_seconds=window * stride,
            function_epochs=_int(res.get("function_epochs", 0), "function epochs"),
            peak_rss=_int(r["peak_rss"] or 0, "peak_rss"),
            final_rss=points[-1][1] if points else _int(r["rss"] or 0, "rss"),
            capture=os.path.abspath(self.path), epoch_clock=str(meta.get("epoch_clock", "time")))
        argv = meta.get("argv") or []
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise CaptureError("garbled value in the capture (argv)")
        duration = res.get("duration", proc.ended if proc.ended is not None else proc.updated)
        notes: Dict[str, Any] = {}
        if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'note'").fetchone():
            for key, value in db.execute("SELECT key, value FROM note WHERE pid = ?", (pid,)):
                try:
                    notes[str(key)] = json.loads(value)
                except (TypeError, ValueError):
                    raise CaptureError(f"garbled value in the capture (note {key!r})") from None
        return Run(path=self.path, process=proc, result=result, argv=argv,
                   duration=_finite(duration, "duration"), python=str(meta.get("python", "")),
                   version=str(meta.get("memhound", "")), notes=notes)


from .config import PID_SPAN  # noqa: E402


def real_pid(pid: int) -> int:
    """The operating system's pid of a process row (images set aside by exec
    have keys of their own)."""
    return pid if pid > 0 else (-pid) % PID_SPAN


def roots(procs: List[Process]) -> List[Process]:
    """The processes whose parent did not write to the capture (the program
    that memhound run started comes first; an image that exec'd comes after
    the one it became), or all if there is none."""
    pids = {p.pid for p in procs}
    found = [p for p in procs if p.ppid not in pids] or procs
    return [p for p in found if p.pid > 0] + [p for p in found if p.pid <= 0]


def _apply_exit(proc: Process, doc: Optional[Dict[str, Any]]) -> None:
    """Merge the launcher's view of how the process ended into its row."""
    if not doc:
        return
    sig = doc.get("signal")
    code = doc.get("exit_code")
    if isinstance(sig, int) and not isinstance(sig, bool) and 0 < sig < 128:
        proc.signal = sig
        if proc.status is None:
            proc.status = "signal"
    elif isinstance(code, int) and not isinstance(code, bool):
        proc.exit_code = code
        if proc.status in (None, "completed", "exited"):
            # A process whose end was not recorded, but whose status is known,
            # ended by a way memhound could not see (a C exit()): "exited".
            proc.status = "completed" if code == 0 and proc.status is not None else "exited"


def write_notes(path: str, pid: int, notes: Dict[str, Any]) -> Optional[str]:
    """Add results computed at the end of a run (the retention analysis, the
    census) to its capture, as JSON under their keys. Returns an error message,
    or None. The background thread has stopped by then: nothing else writes.
    A capture that is gone is never created again."""
    try:
        db = sqlite3.connect("file:" + quote(os.path.abspath(path)) + "?mode=rw", uri=True,
                             timeout=10.0)
        try:
            with db:
                for key, value in notes.items():
                    if value is not None:
                        db.execute("INSERT OR REPLACE INTO note VALUES (?, ?, ?)",
                                   (pid, key, json.dumps(value)))
        finally:
            db.close()
    except (sqlite3.Error, TypeError, ValueError) as e:
        return str(e)
    return None


def load(path: str, pid: Optional[int] = None) -> Run:
    """Open a capture and rebuild one process's run (the first process by default)."""
    with Capture(path) as cap:
        return cap.load(pid)
