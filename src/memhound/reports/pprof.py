"""Live memory by stack as a pprof profile: the gzipped ``profile.proto`` that
``go tool pprof``, Pyroscope and Parca read.

The profile is a heap profile as pprof knows it: two values per sample,
``inuse_objects``/``count`` and ``inuse_space``/``bytes`` (inuse_space is the
default), one sample per interned stack with its estimated live objects and
bytes rounded to integers, locations innermost first, one location per
(file, line, function) and one function per (function, file). Each sample
carries a numeric label ``stack_id``, memhound's id of the stack. The period
is the sampling rate: ``space``/``bytes``, ``snapshot.sample_bytes`` (1 in
exact mode). Values are already scaled estimates; readers must not scale them
again.

The protobuf encoding is written here rather than taken from the ``protobuf``
package: the profile needs only varints, length-delimited fields and packed
repeated varints (a few dozen lines), while ``protobuf`` is a large dependency
with a native part and generated code that would have to track the schema.
"""
from __future__ import annotations

import gzip
import os
import time
from typing import Dict, Iterable, List, Optional, Tuple

from ..snapshot import Snapshot
from ._live import live_stacks

__all__ = ["build", "write"]

_U64 = (1 << 64) - 1

#: The one mapping every location belongs to: Python code has no binary
#: image, so it is named as a virtual one (as "[vdso]" is).
_MAPPING_ID = 1
_MAPPING_NAME = "[python]"

# Field numbers of github.com/google/pprof proto/profile.proto.
# Profile
_SAMPLE_TYPE, _SAMPLE, _MAPPING, _LOCATION, _FUNCTION, _STRING_TABLE = 1, 2, 3, 4, 5, 6
_TIME_NANOS, _DURATION_NANOS, _PERIOD_TYPE, _PERIOD, _COMMENT, _DEFAULT_SAMPLE_TYPE = 9, 10, 11, 12, 13, 14
# ValueType
_VT_TYPE, _VT_UNIT = 1, 2
# Sample
_S_LOCATION_ID, _S_VALUE, _S_LABEL = 1, 2, 3
# Label
_L_KEY, _L_STR, _L_NUM, _L_NUM_UNIT = 1, 2, 3, 4
# Mapping
_M_ID, _M_FILENAME, _M_HAS_FUNCTIONS, _M_HAS_FILENAMES, _M_HAS_LINE_NUMBERS = 1, 5, 7, 8, 9
# Location
_LOC_ID, _LOC_MAPPING_ID, _LOC_LINE = 1, 2, 4
# Line
_LINE_FUNCTION_ID, _LINE_LINE = 1, 2
# Function
_F_ID, _F_NAME, _F_FILENAME = 1, 2, 4


# -- protobuf wire format ---------------------------------------------------
# A message is a sequence of fields, each a key varint (field number << 3 |
# wire type) and a value: wire type 0 is a varint, 2 a length-prefixed byte
# string (a string, a nested message, or a packed run of varints). Negative
# int64 values are written as their 64-bit two's complement (ten bytes).
# proto3 leaves fields at their default (0, empty) out.

def _varint(value: int) -> bytes:
    value &= _U64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint((field << 3) | wire_type)


def _int_field(field: int, value: int) -> bytes:
    """A varint field; empty for 0 (the proto3 default)."""
    return _key(field, 0) + _varint(value) if value else b""


def _bytes_field(field: int, data: bytes) -> bytes:
    """A length-delimited field, written even when empty (repeated entries,
    such as string_table[0] == "", must not be dropped)."""
    return _key(field, 2) + _varint(len(data)) + data


def _packed_field(field: int, values: Iterable[int]) -> bytes:
    """A packed repeated varint field; empty when there are no values."""
    data = b"".join(_varint(v) for v in values)
    return _bytes_field(field, data) if data else b""


# -- the profile --------------------------------------------------------------

class _Strings:
    """The string table: index 0 is always ""."""

    def __init__(self) -> None:
        self.table: List[str] = [""]
        self.index: Dict[str, int] = {"": 0}

    def __call__(self, s: str) -> int:
        i = self.index.get(s)
        if i is None:
            i = self.index[s] = len(self.table)
            self.table.append(s)
        return i


def _value_type(strings: _Strings, type_: str, unit: str) -> bytes:
    return _int_field(_VT_TYPE, strings(type_)) + _int_field(_VT_UNIT, strings(unit))


def build(snapshot: Snapshot, *, time_nanos: Optional[int] = None,
          duration_nanos: Optional[int] = None, comments: Iterable[str] = ()) -> bytes:
    """The profile as an encoded (not yet gzipped) ``Profile`` message.

    ``time_nanos``: when the snapshot was taken, in nanoseconds since the Unix
    epoch (default: now). ``duration_nanos``: how long tracking ran (default:
    ``snapshot.elapsed``). ``comments``: free text that pprof shows as is.
    """
    strings = _Strings()
    functions: Dict[Tuple[str, str], int] = {}
    locations: Dict[Tuple[str, int, str], int] = {}
    function_msgs: List[bytes] = []
    location_msgs: List[bytes] = []
    sample_msgs: List[bytes] = []
    stack_id_key = strings("stack_id")

    for live in live_stacks(snapshot):
        ids = []
        for filename, lineno, function in live.frames:
            loc = locations.get((filename, lineno, function))
            if loc is None:
                fn = functions.get((function, filename))
                if fn is None:
                    fn = functions[(function, filename)] = len(functions) + 1
                    # No system_name: pprof would "demangle" a name equal to it
                    # as C++ and strip <...> as template arguments (<module>,
                    # <listcomp>, <unknown> would come out empty).
                    function_msgs.append(
                        _int_field(_F_ID, fn) + _int_field(_F_NAME, strings(function))
                        + _int_field(_F_FILENAME, strings(filename)))
                loc = locations[(filename, lineno, function)] = len(locations) + 1
                line = _int_field(_LINE_FUNCTION_ID, fn) + _int_field(_LINE_LINE, lineno)
                location_msgs.append(_int_field(_LOC_ID, loc) + _int_field(_LOC_MAPPING_ID, _MAPPING_ID)
                                     + _bytes_field(_LOC_LINE, line))
            ids.append(loc)
        label = _int_field(_L_KEY, stack_id_key) + _int_field(_L_NUM, live.stack_id)
        sample_msgs.append(
            _packed_field(_S_LOCATION_ID, ids)
            + _packed_field(_S_VALUE, (live.objects, live.bytes))
            + _bytes_field(_S_LABEL, label))

    out = bytearray()
    out += _bytes_field(_SAMPLE_TYPE, _value_type(strings, "inuse_objects", "count"))
    out += _bytes_field(_SAMPLE_TYPE, _value_type(strings, "inuse_space", "bytes"))
    for msg in sample_msgs:
        out += _bytes_field(_SAMPLE, msg)
    # One mapping, marked as already symbolized, so that readers do not look
    # for a binary to symbolize the locations with.
    out += _bytes_field(_MAPPING, _int_field(_M_ID, _MAPPING_ID) + _int_field(_M_FILENAME, strings(_MAPPING_NAME))
                        + _int_field(_M_HAS_FUNCTIONS, 1) + _int_field(_M_HAS_FILENAMES, 1)
                        + _int_field(_M_HAS_LINE_NUMBERS, 1))
    for msg in location_msgs:
        out += _bytes_field(_LOCATION, msg)
    for msg in function_msgs:
        out += _bytes_field(_FUNCTION, msg)
    out += _int_field(_TIME_NANOS, time.time_ns() if time_nanos is None else time_nanos)
    if duration_nanos is None:
        duration_nanos = int(round(max(snapshot.elapsed, 0.0) * 1e9))
    out += _int_field(_DURATION_NANOS, duration_nanos)
    out += _bytes_field(_PERIOD_TYPE, _value_type(strings, "space", "bytes"))
    out += _int_field(_PERIOD, max(int(snapshot.sample_bytes), 1))
    comment_ids = [strings(c) for c in comments]
    out += _packed_field(_COMMENT, comment_ids)
    out += _int_field(_DEFAULT_SAMPLE_TYPE, strings("inuse_space"))
    # The string table goes last: every string above has been interned by now.
    # Undecodable file names (surrogate escapes) get "?" there: proto3 strings
    # must be valid UTF-8.
    for s in strings.table:
        out += _bytes_field(_STRING_TABLE, s.encode("utf-8", "replace"))
    return bytes(out)


def write(path: str, snapshot: Snapshot, *, time_nanos: Optional[int] = None,
          duration_nanos: Optional[int] = None, comments: Iterable[str] = ()) -> None:
    """Write the gzipped profile to ``path`` atomically (a temporary file renamed
    into place). Arguments as for :func:`build`."""
    data = build(snapshot, time_nanos=time_nanos, duration_nanos=duration_nanos, comments=comments)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            # mtime=0: the same snapshot gives the same file.
            f.write(gzip.compress(data, mtime=0))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
