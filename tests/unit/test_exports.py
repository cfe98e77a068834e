"""The pprof and speedscope exports over snapshots built by hand, so every
number is known. The pprof file is read back with a small protobuf decoder
written here (independent of the encoder), and checked against the fields of
pprof's profile.proto; the speedscope file against speedscope's file format."""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

import memhound
from memhound import Snapshot
from memhound.reports import pprof, speedscope

APP = os.path.join(os.sep, "srv", "app", "job.py")  # a made-up program of the user's
LIB = os.path.join(os.sep, "srv", "app", "lib.py")

FrameRow = Tuple[str, int, str]


def make_snapshot(stacks: Sequence[Optional[Sequence[FrameRow]]], live: Dict[int, Tuple[float, float]],
                  *, sample_bytes: int = 4096, elapsed: float = 2.5) -> Snapshot:
    """A Snapshot from the core's raw tuple (totals, site rows, cohort rows,
    stacks, epoch starts): ``stacks[i]`` is stack id i + 1 (frames innermost
    first; None for a stack the core could not keep), ``live`` maps a stack id to
    its live (bytes, count), spread over two epochs as the core would."""
    raw_stacks: List[Optional[tuple]] = [None]
    for frames in stacks:
        raw_stacks.append(None if frames is None else (tuple(frames), False))
    cohort_rows = []
    for stack_id, (b, n) in live.items():
        # (stack, epoch, bytes, count, var_bytes, var_count, samples, 0)
        cohort_rows.append((stack_id, 0, b * 0.25, n * 0.25, 0.0, 0.0, 1, 0))
        cohort_rows.append((stack_id, 1, b * 0.75, n * 0.75, 0.0, 0.0, 1, 0))
    total_b = sum(b for b, _ in live.values())
    total_n = sum(n for _, n in live.values())
    totals: Dict[str, object] = {
        "live_bytes": total_b, "live_count": total_n, "peak_bytes": total_b,
        "samples": len(cohort_rows), "frees": 0, "dropped": 0, "unpinned": 0, "epoch": 1,
        "sample_bytes": sample_bytes, "max_frames": 128, "live_entries": len(cohort_rows),
        "stacks": len(stacks), "merges": 0, "stride": 1, "elapsed": elapsed,
    }
    return Snapshot((totals, [], cohort_rows, raw_stacks, [0.0, elapsed / 2]))


#: Stack 1: a leak in load_orders called from main; stack 2: the same function
#: at another line; stack 3: a helper in another file; stack 4: a frame the core
#: could not name; stack 5: nothing alive; stack 6: no Python frame at all.
STACKS: List[Optional[List[FrameRow]]] = [
    [(APP, 12, "load_orders"), (APP, 40, "main"), (APP, 50, "<module>")],
    [(APP, 13, "load_orders"), (APP, 40, "main"), (APP, 50, "<module>")],
    [(LIB, 7, "Parser.parse"), (APP, 41, "main"), (APP, 50, "<module>")],
    [("<unknown>", 0, "<unknown>"), (APP, 42, "main"), (APP, 50, "<module>")],
    [(APP, 99, "idle"), (APP, 50, "<module>")],
    [],
]
LIVE = {1: (8_000_000.4, 1000.6), 2: (1_500.5, 3.0), 3: (65_536.0, 1.49),
        4: (4_096.0, 8.0), 6: (300.2, 2.0)}


@pytest.fixture
def snap() -> Snapshot:
    return make_snapshot(STACKS, LIVE)


# -- a protobuf reader, written from the wire format's definition --------------

def _read_varint(buf: bytes, pos: int) -> Tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def decode(buf: bytes) -> Dict[int, List[Any]]:
    """field number -> its values in order: ints for varints, bytes for
    length-delimited fields (strings, messages, packed runs)."""
    fields: Dict[int, List[Any]] = {}
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 2:
            n, pos = _read_varint(buf, pos)
            value = buf[pos:pos + n]
            assert len(value) == n, "truncated field"
            pos += n
        else:
            raise AssertionError(f"unexpected wire type {wire} for field {field}")
        fields.setdefault(field, []).append(value)
    assert pos == len(buf)
    return fields


def packed(fields: Dict[int, List[Any]], field: int) -> List[int]:
    out: List[int] = []
    for chunk in fields.get(field, []):
        if isinstance(chunk, int):  # unpacked encoding, also legal
            out.append(chunk)
            continue
        pos = 0
        while pos < len(chunk):
            v, pos = _read_varint(chunk, pos)
            out.append(v)
    return out


def one(fields: Dict[int, List[Any]], field: int, default: Any = 0) -> Any:
    values = fields.get(field, [])
    assert len(values) <= 1, f"field {field} repeated"
    return values[0] if values else default


class Profile:
    """The parts of a decoded pprof Profile message the tests look at."""

    def __init__(self, data: bytes):
        p = decode(data)
        self.raw = p
        self.strings = [s.decode("utf-8") for s in p.get(6, [])]
        s = self.strings
        self.sample_types = [(s[one(vt, 1)], s[one(vt, 2)]) for vt in map(decode, p.get(1, []))]
        self.samples = []
        for msg in p.get(2, []):
            m = decode(msg)
            labels = [decode(lb) for lb in m.get(3, [])]
            self.samples.append((packed(m, 1), packed(m, 2),
                                 {s[one(lb, 1)]: one(lb, 3) for lb in labels}))
        self.mappings = [decode(m) for m in p.get(3, [])]
        self.functions = {}
        for msg in p.get(5, []):
            f = decode(msg)
            self.functions[one(f, 1)] = (s[one(f, 2)], s[one(f, 4)], s[one(f, 3)])
        self.locations = {}
        for msg in p.get(4, []):
            loc = decode(msg)
            lines = [decode(ln) for ln in loc.get(4, [])]
            self.locations[one(loc, 1)] = (one(loc, 2), [(one(ln, 1), one(ln, 2)) for ln in lines])
        pt = decode(one(p, 11, b""))
        self.period_type = (s[one(pt, 1)], s[one(pt, 2)])
        self.period = one(p, 12)
        self.time_nanos = one(p, 9)
        self.duration_nanos = one(p, 10)
        self.default_sample_type = s[one(p, 14)]
        self.comments = [s[i] for i in packed(p, 13)]

    def frames(self, location_ids: List[int]) -> List[FrameRow]:
        out = []
        for lid in location_ids:
            _mapping, lines = self.locations[lid]
            assert len(lines) == 1
            fid, line = lines[0]
            name, filename, _system = self.functions[fid]
            out.append((filename, line, name))
        return out

    def by_stack(self) -> Dict[int, Tuple[List[FrameRow], List[int]]]:
        return {labels["stack_id"]: (self.frames(locs), values) for locs, values, labels in self.samples}


# -- pprof ---------------------------------------------------------------------

def test_pprof_header_is_a_heap_profile_of_live_memory(snap: Snapshot) -> None:
    prof = Profile(pprof.build(snap, time_nanos=1_700_000_000_123_456_789))
    assert prof.strings[0] == ""
    assert len(set(prof.strings)) == len(prof.strings), "strings are interned once"
    assert prof.sample_types == [("inuse_objects", "count"), ("inuse_space", "bytes")]
    assert prof.default_sample_type == "inuse_space"
    assert prof.period_type == ("space", "bytes")
    assert prof.period == 4096
    assert prof.time_nanos == 1_700_000_000_123_456_789
    assert prof.duration_nanos == 2_500_000_000


def test_pprof_one_sample_per_live_stack_with_rounded_estimates(snap: Snapshot) -> None:
    prof = Profile(pprof.build(snap))
    stacks = prof.by_stack()
    # Stack 5 has nothing alive; every other stack is one sample.
    assert sorted(stacks) == [1, 2, 3, 4, 6]
    assert stacks[1][1] == [1001, 8_000_000]        # (count, bytes), rounded
    assert stacks[2][1] == [3, 1_500]               # 1500.5 rounds half to even
    assert stacks[3][1] == [1, 65_536]
    assert stacks[4][1] == [8, 4_096]
    assert stacks[6][1] == [2, 300]
    assert all(len(values) == len(prof.sample_types) for _l, values, _lb in prof.samples)
    total = sum(values[1] for _l, values, _lb in prof.samples)
    assert abs(total - snap.tracked_bytes) <= len(prof.samples)


def test_pprof_locations_are_innermost_first_with_file_line_and_function(snap: Snapshot) -> None:
    stacks = Profile(pprof.build(snap)).by_stack()
    for stack_id in (1, 2, 3):
        assert stacks[stack_id][0] == list(STACKS[stack_id - 1]), stack_id
    # A frame the core could not name keeps its name; a stack with no frame gets one.
    assert stacks[4][0][0] == ("<unknown>", 0, "<unknown>")
    assert stacks[6][0] == [("<unknown>", 0, "<unknown>")]


def test_pprof_ids_are_nonzero_unique_and_shared(snap: Snapshot) -> None:
    prof = Profile(pprof.build(snap))
    loc_ids = [one(decode(m), 1) for m in prof.raw[4]]
    fn_ids = [one(decode(m), 1) for m in prof.raw[5]]
    assert 0 not in loc_ids and len(set(loc_ids)) == len(loc_ids)
    assert 0 not in fn_ids and len(set(fn_ids)) == len(fn_ids)
    # One location per (file, line, function), one function per (function, file).
    frames = {f for locs, _v, _l in prof.samples for f in prof.frames(locs)}
    assert len(prof.locations) == len(frames)
    assert len(prof.functions) == len({(fn, fl) for fl, _ln, fn in frames})
    main_locations = [lid for lid, (_m, lines) in prof.locations.items()
                      if prof.functions[lines[0][0]][0] == "main"]
    assert len(main_locations) == 3  # main at lines 40, 41 and 42: one function
    assert len({prof.locations[lid][1][0][0] for lid in main_locations}) == 1
    # Every referenced id exists; every location is in the one mapping.
    mapping_ids = [one(m, 1) for m in prof.mappings]
    assert mapping_ids == [1]
    assert one(prof.mappings[0], 7) == 1  # has_functions: nothing to symbolize
    for locs, _v, _l in prof.samples:
        assert all(lid in prof.locations for lid in locs)
    for mapping_id, lines in prof.locations.values():
        assert mapping_id == 1
        assert all(fid in prof.functions for fid, _line in lines)


def test_pprof_names_in_angle_brackets_have_no_system_name(snap: Snapshot) -> None:
    """pprof "demangles" a system name equal to the name as C++ and strips
    <...>: the name alone keeps <module> and <unknown> intact."""
    prof = Profile(pprof.build(snap))
    names = {name for name, _file, _system in prof.functions.values()}
    assert {"<module>", "<unknown>", "Parser.parse"} <= names
    assert all(system == "" for _n, _f, system in prof.functions.values())


def test_pprof_write_is_gzipped_build(snap: Snapshot, tmp_path: Path) -> None:
    out = tmp_path / "live.pb.gz"
    pprof.write(str(out), snap, time_nanos=42, comments=["run of job.py"])
    data = out.read_bytes()
    assert data[:2] == b"\x1f\x8b"
    prof = Profile(gzip.decompress(data))
    assert prof.time_nanos == 42
    assert prof.comments == ["run of job.py"]
    assert gzip.decompress(data) == pprof.build(snap, time_nanos=42, comments=["run of job.py"])
    assert [p.name for p in tmp_path.iterdir()] == ["live.pb.gz"]  # no temporary left


def test_pprof_empty_snapshot_is_a_valid_profile() -> None:
    prof = Profile(pprof.build(make_snapshot([], {}, sample_bytes=1)))
    assert prof.samples == [] and prof.locations == {} and prof.functions == {}
    assert prof.strings[0] == ""
    assert prof.period == 1
    assert prof.sample_types == [("inuse_objects", "count"), ("inuse_space", "bytes")]


def test_pprof_varints_cover_large_values() -> None:
    big = 3 * 2**40 + 5  # bytes beyond 32 bits need multi-byte varints
    snap = make_snapshot([[(APP, 300, "f")]], {1: (float(big), 2.0**33)})
    stacks = Profile(pprof.build(snap)).by_stack()
    assert stacks[1][1] == [2**33, big]
    assert stacks[1][0] == [(APP, 300, "f")]


# -- speedscope ----------------------------------------------------------------

def check_speedscope(doc: Dict[str, Any]) -> Dict[str, Any]:
    """Structural checks from speedscope's file-format-spec.ts; returns the profile."""
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    frames = doc["shared"]["frames"]
    for f in frames:
        assert isinstance(f["name"], str)
        assert isinstance(f.get("file", ""), str)
        assert isinstance(f.get("line", 1), int)
    assert len(doc["profiles"]) == 1
    assert doc.get("activeProfileIndex", 0) == 0
    prof = doc["profiles"][0]
    assert prof["type"] == "sampled"
    assert prof["unit"] == "bytes"
    assert isinstance(prof["name"], str)
    assert len(prof["samples"]) == len(prof["weights"])
    for stack in prof["samples"]:
        assert stack and all(isinstance(i, int) and 0 <= i < len(frames) for i in stack)
    assert all(isinstance(w, int) and w > 0 for w in prof["weights"])
    assert prof["startValue"] == 0
    assert prof["endValue"] == sum(prof["weights"])
    return prof


def speedscope_stacks(doc: Dict[str, Any]) -> List[Tuple[List[FrameRow], int]]:
    frames = doc["shared"]["frames"]
    prof = doc["profiles"][0]
    return [([(frames[i].get("file", ""), frames[i].get("line", 0), frames[i]["name"]) for i in stack], w)
            for stack, w in zip(prof["samples"], prof["weights"])]


def test_speedscope_is_a_valid_sampled_profile_in_bytes(snap: Snapshot) -> None:
    doc = speedscope.build(snap, name="job.py")
    prof = check_speedscope(doc)
    assert prof["name"] == doc["name"] == "job.py"
    assert doc["exporter"] == f"memhound@{memhound.__version__}"
    assert prof["weights"] == [8_000_000, 1_500, 65_536, 4_096, 300]
    json.dumps(doc, allow_nan=False)


def test_speedscope_stacks_are_outermost_first(snap: Snapshot) -> None:
    stacks = speedscope_stacks(speedscope.build(snap))
    assert stacks[0] == (list(reversed(STACKS[0])), 8_000_000)  # type: ignore[arg-type]
    assert stacks[2] == (list(reversed(STACKS[2])), 65_536)  # type: ignore[arg-type]
    assert all(frames[0] == (APP, 50, "<module>") for frames, _w in stacks[:4])
    assert stacks[3][0][-1] == ("<unknown>", 0, "<unknown>")
    assert stacks[4] == ([("<unknown>", 0, "<unknown>")], 300)


def test_speedscope_frames_are_shared(snap: Snapshot) -> None:
    doc = speedscope.build(snap)
    frames = doc["shared"]["frames"]
    keys = [(f["name"], f.get("file"), f.get("line")) for f in frames]
    assert len(set(keys)) == len(keys)
    samples = doc["profiles"][0]["samples"]
    assert samples[0][0] == samples[1][0] == samples[2][0]  # <module> at line 50


def test_speedscope_write_round_trips(snap: Snapshot, tmp_path: Path) -> None:
    out = tmp_path / "live.speedscope.json"
    speedscope.write(str(out), snap, name="live")
    doc = json.loads(out.read_text(encoding="utf-8"))
    check_speedscope(doc)
    assert doc == speedscope.build(snap, name="live")
    assert [p.name for p in tmp_path.iterdir()] == ["live.speedscope.json"]


def test_speedscope_empty_snapshot() -> None:
    doc = speedscope.build(make_snapshot([], {}))
    prof = check_speedscope(doc)
    assert prof["samples"] == [] and prof["endValue"] == 0


def test_exports_of_a_real_snapshot_agree(tmp_path: Path) -> None:
    """A snapshot from the tracker: both exports name the same stacks and bytes."""
    memhound.start(sample_bytes=1)
    try:
        kept = [bytearray(10_000) for _ in range(50)]
        snap = memhound.snapshot()
    finally:
        memhound.stop()
    assert len(kept) == 50
    prof = Profile(pprof.build(snap))
    doc = speedscope.build(snap)
    check_speedscope(doc)
    from_pprof = sorted((tuple(reversed(prof.frames(locs))), values[1])
                        for locs, values, _l in prof.samples if values[1])
    from_speedscope = sorted((tuple(frames), w) for frames, w in speedscope_stacks(doc))
    assert from_pprof == from_speedscope
    # Innermost frame: this test, or its list comprehension (3.10, 3.11).
    here = [w for frames, w in from_speedscope if frames[-1][0] == __file__]
    assert sum(here) >= 50 * 10_000


def test_runner_frames_are_left_out() -> None:
    """A program run as ``python -m job`` (under memhound run as anywhere): every
    stack ends in runpy's frames, and the exports start at the program's own
    module code."""
    runner = [("<frozen runpy>", 88, "_run_code"), ("<frozen runpy>", 198, "_run_module_as_main")]
    program = [(APP, 12, "load_orders"), (APP, 40, "main"), (APP, 50, "<module>")]
    compile_ = [("<frozen runpy>", 259, "_get_code_from_file")]
    snap = make_snapshot([program + runner, compile_ + runner],
                         {1: (1000.0, 1.0), 2: (500.0, 1.0)})
    stacks = Profile(pprof.build(snap)).by_stack()
    assert stacks[1][0] == program
    assert stacks[2][0] == compile_ + runner  # the runner's own work keeps its stack
    assert speedscope_stacks(speedscope.build(snap))[0][0] == list(reversed(program))
