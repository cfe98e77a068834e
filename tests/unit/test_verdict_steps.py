"""Unit tests of the sustained-growth rule of the leak verdict: memory that rises
in a few epochs after warm-up and then stays (an import, a first call, a cache
filled once) is a step, not a leak; growth that goes on to the end is a leak,
even when it is sparse, uneven or starts late. Snapshots are built by hand with
test_verdict's builders, so every number is known."""
from __future__ import annotations

from typing import List, Sequence

import pytest
from test_verdict import APP, LIB, Site, churn, leak, make_snapshot

from memhound.analysis import analyze

N = 60  # warm-up: epochs 0-11; old: 12-44; guard: 45-59; later half: 36-59


def step(n: int, epochs: Sequence[int], size: float = 400_000.0, line: int = 9) -> Site:
    """Memory allocated in ``epochs`` and kept to the end; churn at the same site
    every epoch (a function whose first calls initialise something)."""
    kept = [size if e in epochs else 0.0 for e in range(n)]
    alloc = [k + 20_000.0 for k in kept]
    freed = [20_000.0] * n
    return Site([(APP, line, "load_plugins"), (APP, 90, "main")], alloc, freed, kept)


def suspect(v, line: int):
    return next(s for s in v.suspects if s.site.lineno == line)


@pytest.mark.parametrize("where", [
    range(12, 17),  # just after warm-up
    range(20, 26),  # early in the old epochs
    range(33, 39),  # across the middle of the post-warm-up epochs
    range(39, 45),  # at the end of the old epochs
])
def test_a_step_after_warmup_is_not_a_leak(where):
    v = analyze(make_snapshot([churn(N), step(N, list(where))]))
    s = suspect(v, 9)
    # The cohort and trend tests alone would call it a leak...
    assert s.p_value < 0.05
    assert s.old_epochs_with_survivors >= 3
    assert s.slope - 2 * s.slope_se > 0
    # ...but it is a step.
    assert s.step is True
    assert s.leaking is False
    assert v.leaking is False
    assert v.diagnosis == "none"
    assert v.summary.startswith("No leak found")
    assert "job.py:9 in load_plugins" in v.summary and "a step, not a leak" in v.summary


def test_a_step_is_caught_by_the_rule_that_fits_its_place():
    early = suspect(analyze(make_snapshot([step(N, list(range(20, 26)))])), 9)
    assert early.late_share == 0.0  # nothing of it in the later half
    late = suspect(analyze(make_snapshot([step(N, list(range(39, 45)))])), 9)
    assert late.late_share == 1.0  # all of it in the later half...
    assert late.bunching > 0.8     # ...and bunched at the end of the old epochs


def test_no_step_no_step_sentence():
    v = analyze(make_snapshot([churn(N)]))
    assert v.leaking is False
    assert "step" not in v.summary


def test_a_step_next_to_a_leak_does_not_hide_the_leak():
    v = analyze(make_snapshot([step(N, list(range(20, 26))), leak(N, 8000.0)]))
    assert v.leaking is True
    assert [l.site.lineno for l in v.leaks] == [12]


def test_a_sparse_leak_of_single_samples_is_still_a_leak():
    # One surviving sample now and then, as at a high sampling rate: 7 samples
    # in 60 epochs. Too few to call bunched, and they reach the later half.
    kept = [150.0 if e in (14, 20, 27, 33, 41, 48, 55) else 0.0 for e in range(N)]
    s = Site([(APP, 12, "audit")], kept, [0.0] * N, kept)
    v = analyze(make_snapshot([churn(N), s]))
    top = suspect(v, 12)
    assert top.bunching == pytest.approx(2 / 15)  # 5 samples in the 33 old epochs
    assert top.late_share == pytest.approx(3 / 7)
    assert top.leaking is True
    assert v.leaking is True


def test_a_leak_whose_rate_doubles_is_still_a_leak():
    kept = [4000.0 if e < 30 else 8000.0 for e in range(N)]
    v = analyze(make_snapshot([Site([(APP, 12, "ingest")], kept, [0.0] * N, kept)]))
    assert v.leaking is True
    assert v.leaks[0].bunching == pytest.approx(0.545 - 0.375, abs=0.01)


def test_a_leak_that_starts_after_warmup_and_goes_on_is_a_leak():
    kept = [0.0 if e < 24 else 5000.0 for e in range(N)]
    v = analyze(make_snapshot([churn(N), Site([(APP, 12, "ingest")], kept, [0.0] * N, kept)]))
    assert v.leaking is True
    assert v.leaks[0].late_share == pytest.approx(2 / 3)
    assert v.leaks[0].bunching == pytest.approx(12 / 33)  # no survivors in 12 of 33 old epochs


IMPORT = [("<frozen importlib._bootstrap>", 488, "_call_with_frames_removed"),
          ("<frozen importlib._bootstrap_external>", 994, "_LoaderBasics.exec_module"),
          ("<frozen importlib._bootstrap>", 935, "_load_unlocked"),
          ("<frozen importlib._bootstrap>", 1360, "_find_and_load")]


def test_memory_made_by_an_import_is_not_a_leak_however_long_the_import():
    # A run that is mostly one import (a 0.1 s script: `import asyncio`, a few
    # calls): the import's memory grows through most epochs, with nothing after
    # it to show that it stopped. Its stacks pass through the import system.
    kept = [30_000.0] * N
    frames = [(LIB, 175, "<module>")] + IMPORT + [(APP, 1, "<module>")]
    v = analyze(make_snapshot([churn(N), Site(frames, kept, [0.0] * N, kept)]))
    assert v.leaking is False
    assert all(s.site.lineno != 1 for s in v.suspects)
    # The same growth without the import frames is a leak.
    plain = [(LIB, 175, "build"), (APP, 1, "<module>")]
    assert analyze(make_snapshot([churn(N), Site(plain, kept, [0.0] * N, kept)])).leaking is True


def test_an_import_at_a_leaking_line_leaves_the_leak_and_its_rate():
    # A line whose first call imports a module (lazily) and which leaks on every
    # call: the import's stacks are left out, the leak's are judged.
    first = [500_000.0 if e == 20 else 0.0 for e in range(N)]
    lazy = Site([(LIB, 10, "<module>")] + IMPORT + [(LIB, 5, "strptime"), (APP, 12, "load_orders")],
                first, [0.0] * N, first)
    v = analyze(make_snapshot([lazy, leak(N, 8000.0)]))
    assert v.leaking is True
    assert v.leaks[0].site.lineno == 12
    assert v.leaks[0].bytes_per_epoch == pytest.approx(8000.0)
    assert v.leaks[0].stack_ids == [2]


def test_the_thresholds_are_parameters():
    snap = make_snapshot([step(N, list(range(20, 26)))])
    assert analyze(snap).leaking is False
    # With the sustained-growth test switched off, the old verdict comes back.
    assert analyze(snap, min_late_share=0.0, max_bunching=1.01, min_late_growth=0.0).leaking is True


def test_bunching_is_the_distance_from_an_even_spread():
    from memhound.analysis.verdict import _bunching

    even: List[float] = [3.0] * 10
    assert _bunching(even)[0] == pytest.approx(0.0)
    first = [30.0] + [0.0] * 9
    assert _bunching(first)[0] == pytest.approx(0.9)
    middle = [0.0] * 5 + [30.0] + [0.0] * 4
    assert _bunching(middle)[0] == pytest.approx(0.5)
    # The critical distance shrinks with the number of samples.
    assert _bunching([1.0] * 4)[1] > 0.9
    assert _bunching([100.0] * 4)[1] < 0.1
    assert _bunching([0.0] * 4) == (0.0, float("inf"))


def test_a_bounded_cache_filling_past_warmup_is_not_a_leak():
    """An LRU cache that fills until the middle of the post-warm-up epochs and
    then replaces its oldest entries: its newest entries survive (late
    survivors, spread out, not bunched), but its live memory stops growing."""
    size = 4000.0
    kept, alloc, freed = [0.0] * N, [0.0] * N, [0.0] * N
    entries: List[int] = []  # the epoch each cached entry was made in
    for e in range(N):
        for _ in range(3):
            entries.append(e)
            alloc[e] += size
            if e >= 34:  # full: the oldest entry goes
                freed[e] += size
                entries.pop(0)
    for e in entries:
        kept[e] += size
    cache = Site([(APP, 42, "render_profile"), (APP, 90, "main")], alloc, freed, kept)
    v = analyze(make_snapshot([churn(N), cache]))
    s = suspect(v, 42)
    assert s.late_share > 0.1          # the newest entries survive...
    assert s.late_growth < 0.15        # ...but the cache stopped growing
    assert s.leaking is False and v.leaking is False


def test_a_leak_keeps_growing_over_the_later_half():
    v = analyze(make_snapshot([churn(N), leak(N, 8000.0)]))
    top = suspect(v, 12)
    assert top.late_growth == pytest.approx(0.5, abs=0.1)
    assert top.leaking is True
