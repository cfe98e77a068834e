"""The contract between ``memhound run`` (the launcher) and the program side:
the environment variable ``MEMHOUND_CONFIG``, set by the launcher and read by
the start-up hook (memhound.pth) in every Python process of the program.

Its value is ``1;key=value;...;capture=PATH``: version 1, then settings whose
values hold no ``;``, and last the capture's path, which may hold anything. It
is parsed without json (which imports re) because it is read inside the
user's program before its first line."""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Dict, Optional

#: Linux pids stay below this. In a capture, a process image that exec'd
#: another keeps its rows under the key -(pid + k * PID_SPAN), k = 0, 1, ...
PID_SPAN = 1 << 22

#: The environment variable.
ENV = "MEMHOUND_CONFIG"
VERSION = "1"

#: Settings and their defaults (all but the capture are ints or short words).
DEFAULTS = {
    "sample_bytes": 2048,   # mean bytes between samples (1: exact)
    "max_frames": 128,
    "epoch_on": "",         # function spec, or ""
    "manual_epochs": 0,
    "retention": 1,         # the end-of-run retention analysis and census
    "top": 5,               # sites the retention analysis looks at
    "children": 1,          # track the program's child processes too
}


def encode(capture: str, **settings: object) -> str:
    """The variable's value for a capture path and settings (others default)."""
    parts = [VERSION]
    for key, default in DEFAULTS.items():
        value = settings.pop(key, default)
        if isinstance(value, bool):
            value = int(value)
        text = "" if value is None else str(value)
        if ";" in text or "\n" in text:
            raise ValueError(f"memhound config: {key} cannot hold ';'")
        parts.append(f"{key}={text}")
    if settings:
        raise TypeError(f"unknown memhound config keys: {', '.join(settings)}")
    parts.append("capture=" + capture)
    return ";".join(parts)


def decode(value: "Optional[str]") -> "Optional[Dict[str, object]]":
    """The settings (with "capture"), or None if the value is missing or not of
    this version. Ints are ints; unknown keys are ignored."""
    if not value:
        return None
    head, sep, path = value.partition(";capture=")
    if not sep or not path:
        return None
    fields = head.split(";")
    if fields[0] != VERSION:
        return None
    out: "Dict[str, object]" = dict(DEFAULTS)
    for item in fields[1:]:
        key, _, text = item.partition("=")
        if key not in DEFAULTS:
            continue
        if isinstance(DEFAULTS[key], int):
            try:
                out[key] = int(text)
            except ValueError:
                return None
        else:
            out[key] = text
    out["capture"] = path
    return out
