"""Run a script under memhound: the benchmark harness's stand-in for `memhound run`.

    python benchmarks/_under_memhound.py [--sample-bytes N] [--max-frames N]
                                         [--stats FILE] [--src DIR] [--no-start]
                                         -- script.py [args...]

Tracking starts before the script runs, with memhound.start(...) and the options
given (no --sample-bytes: memhound's default rate). The script runs as __main__
with its own argv and its own directory first on sys.path, as `python script.py`
would run it. --stats FILE writes memhound's running totals (samples taken, the
estimated live bytes, ...) as a Python dict literal when the script returns, before tracking
stops; the harness uses them to compare sampling rates. --src DIR imports
memhound from DIR (default: the repository's src/); the harness points it at a
copy taken when the run starts, so that a rebuild in the middle of a run cannot
mix two builds in one table. --no-start imports memhound and runs the script
without tracking: the runner's own cost, for comparison.

The options are parsed by hand, and nothing is imported that the measurement
does not need, so that the runner itself adds as little as possible to the time
and memory charged to memhound.
"""
import os
import runpy
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_SRC = os.path.join(os.path.dirname(_HERE), "src")
_USAGE = ("usage: _under_memhound.py [--sample-bytes N] [--max-frames N] "
          "[--stats FILE] [--src DIR] [--no-start] -- script.py [args...]")


def _parse(argv):
    opts = {"--sample-bytes": None, "--max-frames": None, "--stats": None, "--src": None,
            "--no-start": None}
    i = 0
    while i < len(argv) and argv[i].startswith("--"):
        if argv[i] == "--":
            i += 1
            break
        if argv[i] == "--no-start":
            opts["--no-start"] = True
            i += 1
            continue
        name, eq, value = argv[i].partition("=")
        if name not in opts:
            sys.exit(f"{_USAGE}\nunknown option {name}")
        if not eq:
            i += 1
            if i >= len(argv):
                sys.exit(f"{_USAGE}\n{name} needs a value")
            value = argv[i]
        opts[name] = value
        i += 1
    if i >= len(argv):
        sys.exit(_USAGE)
    return opts, argv[i], argv[i + 1:]


def _write_stats(path):
    # repr() of a dict of numbers, not json: no import at the end of the run
    # (the harness reads it back with ast.literal_eval).
    try:
        from memhound import _core

        totals = dict(_core.totals())
    except Exception as exc:  # the totals are informative only
        totals = {"error": repr(exc)}
    with open(path, "w") as fh:
        fh.write(repr(totals))


def main():
    opts, script, args = _parse(sys.argv[1:])
    # This file's directory must not shadow anything the script imports.
    if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
        del sys.path[0]
    src = opts["--src"] or _SRC
    if os.path.isdir(os.path.join(src, "memhound")):
        sys.path.insert(0, src)
    import memhound

    sample_bytes = opts["--sample-bytes"]
    kwargs = {}
    if opts["--max-frames"] is not None:
        kwargs["max_frames"] = int(opts["--max-frames"])
    stats = opts["--stats"]

    sys.argv = [script] + args
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    if not opts["--no-start"]:
        memhound.start(None if sample_bytes is None else int(sample_bytes), **kwargs)
    try:
        # Hold the script's globals until the totals are read, so that what it
        # leaves behind at exit still counts as live.
        script_globals = runpy.run_path(script, run_name="__main__")
    except SystemExit:
        if stats and memhound.is_tracking():
            _write_stats(stats)
        raise
    if stats and memhound.is_tracking():
        _write_stats(stats)
    del script_globals


if __name__ == "__main__":
    main()
