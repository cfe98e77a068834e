"""``memhound run [options] script.py [args]`` / ``memhound run -m module [args]``:
run a program under memhound and report where its live memory was allocated."""
from __future__ import annotations

import argparse
import os
import runpy
import sys
import traceback
from typing import List, Optional

from .. import tracker
from ..reports import text

HELP = "run a Python program under memhound and report its live memory by site"


def prepare_parser(p: argparse.ArgumentParser) -> None:
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--sample-bytes", type=_positive_int, default=None, metavar="N",
                      help=f"mean bytes between samples (default {tracker.DEFAULT_SAMPLE_BYTES})")
    mode.add_argument("--exact", action="store_true", help="record every allocation")
    p.add_argument("--max-frames", type=_positive_int, default=tracker.DEFAULT_MAX_FRAMES,
                   metavar="N", help="deepest stack kept per sample (default %(default)s)")
    p.add_argument("--top", type=_positive_int, default=10, metavar="N",
                   help="sites shown (default %(default)s)")
    p.add_argument("-m", dest="module", metavar="MODULE", help="run a library module as a script")
    p.add_argument("target", nargs=argparse.REMAINDER, metavar="script.py [args]",
                   help="the program and its arguments")


def _positive_int(text_value: str) -> int:
    try:
        v = int(text_value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text_value!r}")
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text_value!r}")
    return v


def _fail(message: str) -> int:
    sys.stderr.write(f"memhound: error: {message}\n")
    return 2


def run(args: argparse.Namespace) -> int:
    target: List[str] = list(args.target)
    if target and target[0] == "--":
        target = target[1:]
    if args.module is None and not target:
        return _fail("missing the script to run (memhound run script.py [args])")
    if args.module is not None:
        import importlib.util

        try:
            spec = importlib.util.find_spec(args.module)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            return _fail(f"no module named {args.module!r}")
        argv = [args.module] + target
        path: Optional[str] = None
    else:
        path = os.path.abspath(target[0])
        if not os.path.isfile(path):
            return _fail(f"no such file: {target[0]}")
        argv = [path] + target[1:]

    sample_bytes = 1 if args.exact else args.sample_bytes
    saved_argv, saved_path0 = sys.argv, sys.path[0] if sys.path else None
    sys.argv = argv
    if path is not None:
        sys.path.insert(0, os.path.dirname(path))
    exit_code = 0
    tracker.start(sample_bytes, args.max_frames)
    try:
        if path is not None:
            runpy.run_path(path, run_name="__main__")
        else:
            runpy.run_module(args.module, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        exit_code = _exit_code(e.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        exit_code = 130
    except BaseException:
        # The program's own traceback, as Python would print it (minus our frames).
        etype, value, tb = sys.exc_info()
        while tb is not None and tb.tb_frame.f_code.co_filename in (__file__, runpy.__file__):
            tb = tb.tb_next
        traceback.print_exception(etype, value, tb)
        exit_code = 1
    finally:
        sys.argv = saved_argv
        snap = tracker.snapshot()
        tracker.stop()
    sys.stdout.flush()
    text.render_top_sites(snap, sys.stderr, top=args.top, program=argv[0])
    return exit_code


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1
