"""Who holds it: from a leaking site's surviving sampled allocations to the live
objects that own them, the shortest reference chain from a root to those objects,
the root named in words, and the retained size of each holder on the chain.

The heavy part is C (``_core.heap_retention``, see src/core/mh_heap.h): a
breadth-first walk of the object graph from the roots through each object's
``tp_traverse`` (so str, bytes, int and float, which the GC does not track, are
found through their containers), the dominator tree of that graph, and the
mapping of sampled addresses to object starts and buffers. This module gathers
the roots and names the steps of a chain.

Safety rules, kept everywhere here:

* no user code runs: containers are read through the built-in types' own
  methods (``dict.items(d)``, ``list.__getitem__(l, i)``), objects are compared
  by identity only, and never hashed, compared, printed or ``repr``'d;
* object values are never printed: a step names a global, an attribute, a
  local or a parameter by its name, a dict key only if it is a str or an int
  (truncated to a few characters), and everything else by its type;
* the analysis is not tracked (its thread is ignored by the sampler), runs no
  ``gc.collect()``, and gives up with a note on a heap above ``max_objects``.
"""
from __future__ import annotations

import gc
import os
import sys
import time
import types
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from .. import _core
from .._format import fmt_bytes

__all__ = ["Step", "SiteRetention", "RetentionResult", "analyze_retention", "roots",
           "KEY_CHARS", "DEFAULT_MAX_OBJECTS"]

#: Characters of a str dict key shown in a chain (the rest is elided).
KEY_CHARS = 6
#: Beyond this many GC-tracked objects the analysis is skipped (with a note).
DEFAULT_MAX_OBJECTS = 20_000_000
#: Chains computed per site, among which the most common shape is shown.
CHAINS_PER_SITE = 24

_MEMHOUND_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_RUNNER_FILES = ("runpy.py", "<frozen runpy>")

_dict_items = dict.items
_list_len = list.__len__
_list_get = list.__getitem__
_tuple_len = tuple.__len__
_tuple_get = tuple.__getitem__
_module_dict = types.ModuleType.__dict__["__dict__"]
_type_dict = type.__dict__["__dict__"]
_type_mro = type.__dict__["__mro__"]
_GetSet = types.GetSetDescriptorType
_Member = types.MemberDescriptorType


@dataclass
class Step:
    """One step of a chain: how the previous object refers to this one (words),
    this object's type, and the bytes it retains (freed if it went away)."""

    how: str
    type: str
    retained_bytes: int

    def text(self) -> str:
        return f"{self.how} ({self.type})"


@dataclass
class SiteRetention:
    """What keeps a leaking site's memory alive."""

    site: Any  # snapshot.Frame
    type: Optional[str] = None
    steps: List[Step] = field(default_factory=list)
    root_kind: Optional[str] = None
    samples: int = 0          # live samples of the site
    matched: int = 0          # of which mapped to a live object
    objects: int = 0          # distinct objects they belong to
    object_bytes: int = 0     # those objects' own sizes
    types: Dict[str, int] = field(default_factory=dict)
    note: Optional[str] = None

    @property
    def retained_by(self) -> List[str]:
        """The chain in words, root first (the JSON's ``retained_by``)."""
        return [s.text() for s in self.steps]

    def lines(self) -> List[str]:
        """The chain for a report: each step with the size it retains."""
        return [f"{s.text()}  retains {fmt_bytes(s.retained_bytes)}" for s in self.steps]

    def to_json(self) -> Dict[str, Any]:
        return {
            "root_kind": self.root_kind,
            "steps": [{"how": s.how, "type": s.type, "retained_bytes": s.retained_bytes}
                      for s in self.steps],
            "samples": self.samples, "matched_samples": self.matched,
            "objects": self.objects, "object_bytes": self.object_bytes,
            "types": dict(sorted(self.types.items(), key=lambda kv: -kv[1])[:5]),
            "note": self.note,
        }


@dataclass
class RetentionResult:
    sites: List[SiteRetention]
    nodes: int = 0
    edges: int = 0
    seconds: float = 0.0
    skipped: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        return {"objects": self.nodes, "references": self.edges,
                "seconds": round(self.seconds, 3), "skipped": self.skipped}

    def dump(self) -> Dict[str, Any]:
        """Everything, as plain JSON values (what the capture keeps)."""
        return {"result": self.to_json(),
                "sites": [{"site": list(r.site), "type": r.type, "root_kind": r.root_kind,
                           "steps": [[s.how, s.type, s.retained_bytes] for s in r.steps],
                           "samples": r.samples, "matched": r.matched, "objects": r.objects,
                           "object_bytes": r.object_bytes, "types": r.types, "note": r.note}
                          for r in self.sites]}

    @classmethod
    def load(cls, doc: Dict[str, Any], sites: Dict[Any, Any]) -> "RetentionResult":
        """The inverse of :meth:`dump`; ``sites`` maps (file, line, function) to
        the verdict's site frames, which the reports match by identity. Raises
        ValueError, TypeError or KeyError on a malformed document."""
        res = doc["result"]
        out = cls([], int(res["objects"]), int(res["references"]), float(res["seconds"]),
                  None if res["skipped"] is None else str(res["skipped"]))
        for d in doc["sites"]:
            key = (str(d["site"][0]), int(d["site"][1]), str(d["site"][2]))
            site = sites.get(key)
            if site is None:
                continue
            out.sites.append(SiteRetention(
                site=site, type=None if d["type"] is None else str(d["type"]),
                steps=[Step(str(h), str(t), int(b)) for h, t, b in d["steps"]],
                root_kind=None if d["root_kind"] is None else str(d["root_kind"]),
                samples=int(d["samples"]), matched=int(d["matched"]), objects=int(d["objects"]),
                object_bytes=int(d["object_bytes"]),
                types={str(k): int(v) for k, v in dict(d["types"]).items()},
                note=None if d["note"] is None else str(d["note"])))
        return out


# -- safe reading of objects ---------------------------------------------------

def _tname(obj: object) -> str:
    return str(_core.type_name(obj))


def _key_text(key: object) -> str:
    """A dict key as it may be shown: str and int truncated, else its type."""
    if type(key) is str:
        s = key if len(key) <= KEY_CHARS else key[:KEY_CHARS] + "…"
        return repr(s) if len(key) <= KEY_CHARS else "'" + s.replace("'", "") + "'"
    if type(key) is int:
        s = str(key) if -10**KEY_CHARS < key < 10**KEY_CHARS else f"{str(key)[:KEY_CHARS]}…"
        return s
    if type(key) is bool or key is None:
        return str(key)
    return f"of type {_tname(key)}"


def _name_text(name: object) -> str:
    """An identifier (global, attribute, local): shown whole unless absurd."""
    if type(name) is not str:
        return f"<{_tname(name)}>"
    return name if len(name) <= 60 else name[:60] + "…"


def _instance_dict(obj: object) -> Optional[dict]:
    """obj.__dict__ through the standard descriptor only (no __getattr__)."""
    try:
        for cls in _type_mro.__get__(type(obj)):
            d = _type_dict.__get__(cls).get("__dict__")
            if d is not None:
                if type(d) is _GetSet:
                    v = d.__get__(obj, type(obj))
                    return v if type(v) is dict else None
                return None
    except Exception:
        return None
    return None


def _slot_names(obj: object, child: object) -> Optional[str]:
    try:
        for cls in _type_mro.__get__(type(obj)):
            for name, desc in _dict_items(_type_dict.__get__(cls)):
                if type(desc) is _Member:
                    try:
                        if desc.__get__(obj, type(obj)) is child:
                            return name
                    except AttributeError:
                        continue
    except Exception:
        return None
    return None


#: id(dict) -> (the dict, {id(value or key): ("value", key) or ("key", None)}),
#: for big dicts met by several chains of one analysis (cleared after it).
_key_index: Dict[int, Tuple[dict, Dict[int, Tuple[str, object]]]] = {}


def _dict_key_of(d: dict, child: object) -> Tuple[Optional[str], object]:
    """('value', key) if child is a value of d, ('key', None) if a key."""
    try:
        if len(d) > 64:
            entry = _key_index.get(id(d))
            if entry is None or entry[0] is not d:
                index: Dict[int, Tuple[str, object]] = {}
                for k, v in list(_dict_items(d)):
                    index.setdefault(id(k), ("key", None))
                    index.setdefault(id(v), ("value", k))
                entry = _key_index[id(d)] = (d, index)
            hit = entry[1].get(id(child))
            if hit is not None:
                return hit
        for k, v in list(_dict_items(d)):
            if v is child:
                return "value", k
            if k is child:
                return "key", None
    except RuntimeError:  # changed size under us (another thread)
        pass
    return None, None


def _seq_index(seq: object, child: object) -> Optional[int]:
    try:
        if isinstance(seq, list):
            n = _list_len(seq)
            for i in range(n):
                if _list_get(seq, i) is child:
                    return i
        elif isinstance(seq, tuple):
            for i in range(_tuple_len(seq)):
                if _tuple_get(seq, i) is child:
                    return i
    except IndexError:
        pass
    return None


def _namespace(obj: object) -> Tuple[Optional[dict], str]:
    """The dict that is obj's namespace and the words for its entries."""
    try:
        if isinstance(obj, types.ModuleType):
            return _module_dict.__get__(obj), "global"
        if isinstance(obj, type):
            proxy = _type_dict.__get__(obj)
            inner = [r for r in gc.get_referents(proxy) if type(r) is dict]
            return (inner[0] if inner else None), "class attribute"
    except Exception:
        return None, ""
    return _instance_dict(obj), "attribute"


def _func_name(f: object) -> str:
    try:
        code = f.__code__  # type: ignore[attr-defined]
        return f"{_name_text(getattr(f, '__qualname__', code.co_name))}()"
    except Exception:
        return "a function"


def _edge(parent: object, child: object, nxt: object) -> Tuple[str, int]:
    """Words for parent -> child, and how many chain objects they cover (1, or
    2 when child is an inner container such as a namespace dict, a defaults
    tuple or a closure cell, and the words name nxt directly)."""
    pt = type(parent)
    if pt is types.FunctionType:
        f: Any = parent
        if child is f.__defaults__ and nxt is not None:
            i = _seq_index(child, nxt)
            names = f.__code__.co_varnames[f.__code__.co_argcount - len(child):f.__code__.co_argcount] \
                if i is not None else ()
            name = names[i] if i is not None and i < len(names) else "?"
            return f"default of parameter {_name_text(name)} of {_func_name(f)}", 2
        if child is f.__kwdefaults__ and nxt is not None:
            kind, key = _dict_key_of(child, nxt)
            return f"default of keyword parameter {_name_text(key)} of {_func_name(f)}", 2
        if child is f.__closure__ and nxt is not None:
            i = _seq_index(child, nxt)
            free = f.__code__.co_freevars
            name = free[i] if i is not None and i < len(free) else "?"
            return f"closure variable {_name_text(name)} of {_func_name(f)}", 2
        if child is f.__globals__:
            return "globals of its module", 1
    if isinstance(parent, functools_lru_types()) and type(child) is dict \
            and child is not _instance_dict(parent):
        return "lru_cache entries", 1
    if pt is types.CellType:
        return "cell contents", 1
    if pt is types.MethodType:
        return ("bound to instance" if child is parent.__self__ else "function"), 1  # type: ignore[attr-defined]
    if pt is types.FrameType:
        fr: Any = parent
        if child is fr.f_back:
            return "caller frame", 1
        try:
            kind, key = _dict_key_of(fr.f_locals, child) if type(fr.f_locals) is dict \
                else (None, None)
            if kind is None:
                for k, v in fr.f_locals.items():
                    if v is child:
                        kind, key = "value", k
                        break
        except Exception:
            kind = None
        if kind == "value":
            return f"local {_name_text(key)} of {_name_text(fr.f_code.co_name)}()", 1
        return "frame internals", 1
    if pt is types.TracebackType:
        tb: Any = parent
        if child is tb.tb_frame:
            return f"frame of {_name_text(tb.tb_frame.f_code.co_name)}()", 1
        if child is tb.tb_next:
            return "next traceback entry", 1
    if isinstance(parent, BaseException):
        for attr in ("__traceback__", "__context__", "__cause__", "args"):
            try:
                if object.__getattribute__(parent, attr) is child:
                    return attr if attr != "args" else "exception args", 1
            except AttributeError:
                continue
    if isinstance(parent, (types.GeneratorType, types.CoroutineType)):
        return "suspended frame", 1
    if isinstance(parent, dict):
        kind, key = _dict_key_of(parent, child)
        if kind == "value":
            return f"value for key {_key_text(key)}", 1
        if kind == "key":
            return "a key", 1
    if isinstance(parent, (list, tuple)):
        i = _seq_index(parent, child)
        if i is not None:
            return f"item {i}", 1
    if isinstance(parent, (set, frozenset)):
        return "member", 1
    ns, words = _namespace(parent)
    if ns is not None:
        if child is ns:
            kind, key = _dict_key_of(ns, nxt) if nxt is not None else (None, None)
            if kind == "value":
                return f"{words} {_name_text(key)}", 2
            return "its __dict__", 1
        kind, key = _dict_key_of(ns, child)  # inline values (3.11+)
        if kind == "value":
            return f"{words} {_name_text(key)}", 1
    slot = _slot_names(parent, child)
    if slot is not None:
        return f"attribute {_name_text(slot)}", 1
    if isinstance(parent, type):
        return "class internals", 1
    return f"reference from {_tname(parent)}", 1


_LRU: Optional[Tuple[type, ...]] = None


def functools_lru_types() -> Tuple[type, ...]:
    global _LRU
    if _LRU is None:
        import functools

        _LRU = (type(functools.lru_cache(maxsize=None)(len)),)
    return _LRU


# -- roots ---------------------------------------------------------------------

def _module_label(name: str, mod_globals: dict) -> str:
    if name == "__main__":
        f = mod_globals.get("__file__")
        if type(f) is str:
            return os.path.splitext(os.path.basename(f))[0]
    return name


def _add_namespace_roots(out: List[Tuple[object, str, str]], label: str, ns: dict,
                         seen_classes: set) -> None:
    """Module globals, and the attributes, defaults and closures of the classes
    and functions among them."""
    try:
        items = list(_dict_items(ns))
    except RuntimeError:
        return
    for name, value in items:
        if type(name) is not str or name.startswith("__") and name.endswith("__"):
            continue
        out.append((value, f"module {label}, global {_name_text(name)}", "module global"))
    for name, value in items:
        if isinstance(value, type) and id(value) not in seen_classes \
                and getattr(value, "__module__", None) == ns.get("__name__"):
            seen_classes.add(id(value))
            try:
                cls_items = list(_dict_items(gc.get_referents(_type_dict.__get__(value))[0]))
            except Exception:
                continue
            for attr, v in cls_items:
                if type(attr) is str and not (attr.startswith("__") and attr.endswith("__")):
                    out.append((v, f"class {_name_text(value.__qualname__)}, attribute {_name_text(attr)}",
                                "class attribute"))


def _function_roots(out: List[Tuple[object, str, str]], funcs: Iterable[object]) -> None:
    for f in funcs:
        if isinstance(f, functools_lru_types()):
            try:
                inner = [r for r in gc.get_referents(f) if type(r) is dict
                         and r is not _instance_dict(f)]
                wrapped = _instance_dict(f) or {}
                target = wrapped.get("__wrapped__", f)
                for d in inner:
                    out.append((d, f"lru_cache of {_func_name(target)}, its entries",
                                "functools cache"))
            except Exception:
                pass
            continue
        if type(f) is not types.FunctionType:
            continue
        fn: Any = f
        code = fn.__code__
        defaults = fn.__defaults__ or ()
        names = code.co_varnames[code.co_argcount - len(defaults):code.co_argcount]
        for name, v in zip(names, defaults):
            if not isinstance(v, (int, float, str, bytes, bool, type(None))):
                out.append((v, f"default of parameter {name} of {_func_name(fn)}",
                            "default argument"))
        for name, v in _dict_items(fn.__kwdefaults__ or {}):
            out.append((v, f"default of keyword parameter {name} of {_func_name(fn)}",
                        "default argument"))
        for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
            try:
                v = cell.cell_contents
            except ValueError:
                continue
            out.append((v, f"closure variable {name} of {_func_name(fn)}", "closure cell"))


def roots(program_globals: Optional[dict] = None) -> List[Tuple[object, str, str]]:
    """The roots, in order of preference: (object, words, kind). Ties between
    equally short chains go to the earlier root."""
    out: List[Tuple[object, str, str]] = []
    seen_classes: set = set()
    namespaces: List[Tuple[str, dict]] = []
    if program_globals is not None:
        namespaces.append((_module_label("__main__", program_globals), program_globals))
    main = sys.modules.get("__main__")
    mains = _module_dict.__get__(main) if isinstance(main, types.ModuleType) else None
    if mains is not None and mains is not program_globals:
        namespaces.append((_module_label("__main__", mains), mains))
    for label, ns in namespaces:
        _add_namespace_roots(out, label, ns, seen_classes)
    # Locals of live frames, every thread (not memhound's own frames).
    _frame_roots(out)
    # Functions' defaults and closures, lru caches: program first, then the rest.
    others = [(name, _module_dict.__get__(m)) for name, m in list(sys.modules.items())
              if isinstance(m, types.ModuleType) and name != "__main__"]
    for _label, ns in namespaces + others:
        try:
            values = [v for _k, v in list(_dict_items(ns))]
        except RuntimeError:
            continue
        funcs: List[object] = []
        for v in values:
            if isinstance(v, type):
                try:
                    funcs.extend(v2 for _k, v2 in list(_dict_items(
                        gc.get_referents(_type_dict.__get__(v))[0])))
                except Exception:
                    pass
            else:
                funcs.append(v)
        _function_roots(out, funcs)
    _special_roots(out)
    for name, ns in others:
        if name.startswith("memhound"):
            continue
        _add_namespace_roots(out, name, ns, seen_classes)
    return out


def _frame_roots(out: List[Tuple[object, str, str]]) -> None:
    import threading

    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in list(sys._current_frames().items()):
        f: Optional[types.FrameType] = frame
        while f is not None:
            fn = f.f_code.co_filename
            if not (fn.startswith(_MEMHOUND_DIR) or fn.endswith(_RUNNER_FILES)):
                try:
                    local_items = list(f.f_locals.items())
                except Exception:
                    local_items = []
                for name, v in local_items:
                    out.append((v, f"local {_name_text(name)} of {_name_text(f.f_code.co_name)}() "
                                   f"in thread {_name_text(names.get(ident, ident))}", "local"))
            f = f.f_back


def _special_roots(out: List[Tuple[object, str, str]]) -> None:
    logging = sys.modules.get("logging")
    if logging is not None:
        try:
            loggers = [("root", logging.root)] + [
                (k, v) for k, v in list(_dict_items(logging.Logger.manager.loggerDict))
                if isinstance(v, logging.Logger)]
            for name, lg in loggers:
                for h in list(lg.handlers):
                    out.append((h, f"logger {_key_text(name)}, handler", "logging handler"))
        except Exception:
            pass
    try:
        import signal

        for s in signal.valid_signals():
            h = signal.getsignal(s)
            if callable(h) and not isinstance(h, types.BuiltinFunctionType):
                out.append((h, f"signal handler for {signal.Signals(s).name}", "registered callback"))
    except Exception:
        pass
    for hook in ("gettrace", "getprofile"):
        fn = getattr(sys, hook, None)
        h = fn() if fn is not None else None
        if h is not None:
            out.append((h, f"sys.{hook[3:]} function", "registered callback"))
    aio = sys.modules.get("asyncio.tasks")
    if aio is not None:
        try:
            for t in list(getattr(aio, "_all_tasks", ())):
                out.append((t, "asyncio task (in the event loop)", "asyncio task"))
        except Exception:
            pass


# -- the analysis --------------------------------------------------------------

def _describe_root(obj: object, words: str, kind: str) -> Tuple[str, str]:
    if kind == "module global" and isinstance(obj, set):
        try:
            if any(_tname(t) == "Task" for t in list(obj)[:16]):
                return words, "asyncio task set"
        except Exception:
            pass
    if isinstance(obj, functools_lru_types()) and kind != "functools cache":
        return words, "functools cache"
    logging = sys.modules.get("logging")
    if logging is not None and kind == "module global" and isinstance(obj, logging.Handler):
        return words, "logging handler"
    return words, kind


def _shape(labels: Sequence[str]) -> Tuple[str, ...]:
    """A chain's words with indices and keys blanked: chains to different items
    of the same container have the same shape."""
    out = []
    for s in labels:
        if s.startswith("item "):
            s = "item"
        elif s.startswith("value for key "):
            s = "value for key"
        out.append(s)
    return tuple(out)


def _steps(chain: Tuple[Any, int, Tuple[object, ...], Tuple[int, ...]],
           root_list: Sequence[Tuple[object, str, str]],
           first_index: Sequence[int]) -> Tuple[List[Step], str]:
    """A chain from the core in words. ``first_index[k]``: the index in
    root_list of the k-th distinct root object (the core's node k)."""
    kind, which, objs, sizes = chain
    steps: List[Step] = []
    if which >= 0:
        words, root_kind = _describe_root(*root_list[first_index[which]])
    elif which == -1:
        words, root_kind = "held by a reference memhound cannot name (C code, or an object outside the walk)", "C reference"
    else:
        words, root_kind = "unreachable: in a reference cycle not yet collected", "unreachable cycle"
    steps.append(Step(words, _tname(objs[0]), int(sizes[0])))
    i = 0
    while i < len(objs) - 1:
        nxt = objs[i + 2] if i + 2 < len(objs) else None
        how, span = _edge(objs[i], objs[i + 1], nxt)
        i += span
        steps.append(Step(how, _tname(objs[i]), int(sizes[i])))
    return steps, root_kind


def analyze_retention(
    site_stacks: Sequence[Tuple[Any, Sequence[int]]],
    samples: bytes,
    *,
    program_globals: Optional[dict] = None,
    max_objects: int = DEFAULT_MAX_OBJECTS,
    dominators: bool = True,
    chains_per_site: int = CHAINS_PER_SITE,
) -> RetentionResult:
    """For each (site, stack ids), map the live samples of those stacks (packed
    as ``_core.live_samples`` gives them) to objects and name what holds them.
    ``program_globals``: the namespace of the program run as ``__main__``, if it
    is no longer in sys.modules. Never calls gc.collect()."""
    import struct

    t0 = time.perf_counter()
    result = RetentionResult([])
    group_of: Dict[int, int] = {}
    for g, (_site, ids) in enumerate(site_stacks):
        for s in ids:
            group_of.setdefault(s, g)
    packed: List[Tuple[int, int]] = []
    counts = [0] * len(site_stacks)
    for ptr, _size, stack, _epoch in struct.iter_unpack("=QQII", samples):
        g = group_of.get(stack)
        if g is not None:
            packed.append((g, ptr))
            counts[g] += 1
    packed.sort()
    buf = b"".join(struct.pack("=QII", ptr, g, 0) for g, ptr in packed)
    tracked = len(gc.get_objects())
    if tracked > max_objects:
        result.skipped = (f"the heap has {tracked} GC-tracked objects, more than the limit "
                          f"({max_objects}); retention not analysed")
        result.sites = [SiteRetention(site, samples=counts[g], note=result.skipped)
                        for g, (site, _ids) in enumerate(site_stacks)]
        return result
    try:
        _core.ignore_thread(True)
        root_list = roots(program_globals)
        objs = [r[0] for r in root_list]
        extra = gc.get_objects()
        try:
            (nodes, edges, _nroots, _held, _garbage), groups = _core.heap_retention(
                objs, extra, buf, len(site_stacks), chains_per_site,
                max(max_objects * 4, 1), dominators)
        except OverflowError:
            result.skipped = "the heap is larger than the retention analysis's limit"
            result.sites = [SiteRetention(site, samples=counts[g], note=result.skipped)
                            for g, (site, _ids) in enumerate(site_stacks)]
            return result
        finally:
            del extra, objs
        result.nodes, result.edges = nodes, edges
        seen_roots: set = set()
        first_index = []
        for i, (obj, _w, _k) in enumerate(root_list):
            if id(obj) not in seen_roots:
                seen_roots.add(id(obj))
                first_index.append(i)
        del seen_roots
        for g, (site, _ids) in enumerate(site_stacks):
            matched, n_obj, obj_bytes, type_counts, chains = groups[g]
            sr = SiteRetention(site, samples=counts[g], matched=matched, objects=n_obj,
                               object_bytes=int(obj_bytes),
                               types={str(k): int(v) for k, v in type_counts})
            if type_counts:
                sr.type = max(type_counts, key=lambda kv: kv[1])[0]
            best: Dict[Tuple[str, ...], List[Tuple[List[Step], str]]] = {}
            for ch in chains:
                try:
                    steps, root_kind = _steps(ch, root_list, first_index)
                except Exception as e:  # a racing thread, an exotic object
                    sr.note = f"a chain could not be named ({type(e).__name__})"
                    continue
                best.setdefault(_shape([s.how for s in steps]), []).append((steps, root_kind))
            if best:
                # The most common shape, then the shortest.
                shape = max(best, key=lambda k: (len(best[k]), -len(k)))
                sr.steps, sr.root_kind = best[shape][0]
                if sr.type == "dict" and len(sr.steps) > 1 and sr.steps[-1].how == "its __dict__":
                    sr.type = sr.steps[-2].type  # an instance's attributes (3.10)
                if any(ch[0] == 1 for ch in chains):
                    sr.note = ("some sampled allocations are buffers owned by these objects "
                               "(list items, dict or set tables, attribute values)")
            elif not sr.note:
                sr.note = ("no live object found at the sampled addresses"
                           if counts[g] else "no live sample left at this site")
            result.sites.append(sr)
            del chains
        del groups, root_list
    finally:
        _key_index.clear()
        _core.ignore_thread(False)
    result.seconds = time.perf_counter() - t0
    return result


# -- the pure-Python twin of the core's dominator computation (for tests) -----

def dominators(succ: Dict[int, List[int]], root: int) -> Dict[int, int]:
    """Immediate dominators of the nodes reachable from ``root`` in the graph
    ``succ`` (node -> successors), by the iterative algorithm of Cooper, Harvey
    and Kennedy, as mh_heap_dominators computes them. ``root`` maps to itself."""
    order: List[int] = []
    seen = {root}
    stack = [(root, iter(succ.get(root, ())))]
    while stack:
        v, it = stack[-1]
        for w in it:
            if w not in seen:
                seen.add(w)
                stack.append((w, iter(succ.get(w, ()))))
                break
        else:
            order.append(v)
            stack.pop()
    po = {v: i for i, v in enumerate(order)}
    preds: Dict[int, List[int]] = {v: [] for v in order}
    for v in order:
        for w in succ.get(v, ()):
            preds[w].append(v)
    idom = {root: root}
    changed = True
    while changed:
        changed = False
        for b in reversed(order[:-1]):
            new = None
            for p in preds[b]:
                if p not in idom:
                    continue
                if new is None:
                    new = p
                    continue
                f1, f2 = p, new
                while f1 != f2:
                    while po[f1] < po[f2]:
                        f1 = idom[f1]
                    while po[f2] < po[f1]:
                        f2 = idom[f2]
                new = f1
            if new is not None and idom.get(b) != new:
                idom[b] = new
                changed = True
    return idom


def retained_sizes(succ: Dict[int, List[int]], root: int, size: Dict[int, int]) -> Dict[int, int]:
    """Retained size of each node: its own size plus that of every node it
    dominates."""
    idom = dominators(succ, root)
    kids: Dict[int, List[int]] = {}
    for v, d in idom.items():
        if v != root:
            kids.setdefault(d, []).append(v)

    def total(v: int) -> int:
        return size.get(v, 0) + sum(total(k) for k in kids.get(v, ()))

    return {v: total(v) for v in idom}
