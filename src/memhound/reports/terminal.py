"""The terminal report: the verdict in one sentence, the ranked suspects with their
rate and interval, the stack of each (the user's frames highlighted), and a sparkline
of memory over time. Rich draws it; without a terminal the same text comes out plain."""
from __future__ import annotations

from typing import IO, Any, Dict, List, Optional, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .._format import fmt_bytes
from ..analysis.frames import rule_for
from ..analysis.verdict import SiteVerdict, Verdict
from ..result import SessionResult

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 48) -> str:
    """Values resampled to ``width`` columns of block characters, scaled from the
    minimum to the maximum."""
    if not values:
        return ""
    if len(values) > width:
        step = len(values) / width
        values = [max(values[int(i * step):max(int((i + 1) * step), int(i * step) + 1)])
                  for i in range(width)]
    lo, hi = min(values), max(values)
    span = hi - lo
    if span <= 0:
        return _BARS[0] * len(values)
    return "".join(_BARS[min(int((v - lo) / span * (len(_BARS) - 1) + 0.5), len(_BARS) - 1)]
                   for v in values)


def _p(p: float) -> str:
    return "<1e-12" if p < 1e-12 else f"{p:.1g}"


def render(result: SessionResult, verdict: Verdict, out: IO[str], *, top: int = 5,
           stack_lines: int = 8, program: Optional[str] = None,
           force_terminal: Optional[bool] = None, retention: Any = None,
           census: Optional[Dict[str, Any]] = None) -> None:
    """Write the report to ``out``."""
    is_tty = force_terminal if force_terminal is not None else out.isatty()
    console = Console(file=out, force_terminal=force_terminal, highlight=False,
                      width=None if is_tty else 200)
    snap = result.snapshot
    unit = "epoch" if result.epoch_kind == "time" else "call"
    mode = "exact" if snap.sample_bytes <= 1 else f"1 sample per {fmt_bytes(snap.sample_bytes)}"
    console.print()
    console.print(Text(f"memhound · {program or ''} · {snap.elapsed:.1f} s · {verdict.epochs} "
                       f"{'epochs' if result.epoch_kind == 'time' else unit + 's (epochs)'} · {mode}",
                       style="dim"))
    style = "bold red" if verdict.leaking else ("bold yellow" if verdict.diagnosis == "native" else "bold green")
    console.print(Text(verdict.summary, style=style))
    if verdict.rss_note and verdict.diagnosis != "native":  # "native" says it already
        console.print(Text(verdict.rss_note, style="bold yellow"))

    tracked = [p[2] for p in result.timeline]
    rss = [float(p[1]) for p in result.timeline]
    own = result.timeline[-1][4] if result.timeline and len(result.timeline[-1]) > 4 else None
    if tracked:
        console.print(Text.assemble(("  tracked ", "dim"), (sparkline(tracked), "cyan"),
                                    (f"  {fmt_bytes(tracked[-1])} (peak {fmt_bytes(snap.peak_bytes)})", "dim")))
    if rss and any(rss):
        mine = f"; memhound's own {fmt_bytes(own)}" if own is not None else ""
        console.print(Text.assemble(("  RSS     ", "dim"), (sparkline(rss), "magenta"),
                                    (f"  {fmt_bytes(rss[-1])} (peak {fmt_bytes(result.peak_rss)}{mine})",
                                     "dim")))

    if census is not None and census["growth"]:
        grown = ", ".join(f"+{d} {t}" for t, _n, d in census["growth"][:5])
        console.print(Text(f"  objects {census['start']} → {census['end']}: {grown}", style="dim"))
    rule = rule_for(snap)
    rows: List[SiteVerdict] = verdict.leaks[:top]
    if not rows:
        return
    per = "epoch" if result.epoch_kind == "time" else unit
    table = Table(title=None, box=None, header_style="bold", pad_edge=False)
    table.add_column("#", justify="right")
    table.add_column(f"per {per}", justify="right")
    table.add_column("95% interval", justify="right")
    table.add_column("per s", justify="right")
    table.add_column("p", justify="right")
    table.add_column("live now", justify="right")
    table.add_column("site")
    for v in rows:
        table.add_row(str(v.rank), fmt_bytes(v.bytes_per_epoch),
                      f"{fmt_bytes(v.ci95[0])} – {fmt_bytes(v.ci95[1])}",
                      fmt_bytes(v.bytes_per_second), _p(v.p_value), fmt_bytes(v.live_bytes),
                      f"{rule.display(v.site.filename)}:{v.site.lineno} in {v.site.function}")
    console.print()
    console.print(table)
    for v in rows[:3]:
        console.print()
        console.print(Text(f"#{v.rank} allocated at (innermost first):", style="bold"))
        frames = list(v.stack)[:stack_lines]
        for f in frames:
            mine = rule.is_user_frame(f)
            console.print(Text(f"    {rule.display(f.filename)}:{f.lineno} in {f.function}",
                               style="bold" if mine else "dim"))
        hidden = len(v.stack) - len(frames)
        if hidden > 0 or v.stack.truncated:
            console.print(Text(f"    ... {hidden} more frame{'s' if hidden != 1 else ''}"
                               + (" (truncated at --max-frames)" if v.stack.truncated else ""), style="dim"))
        _render_retention(console, v, retention)


def _render_retention(console: Console, v: SiteVerdict, retention: Any) -> None:
    """Under a leak site: what holds its objects, root first, with the bytes
    each holder retains (analysis/retention.py)."""
    r = next((r for r in retention.sites if r.site is v.site), None) if retention else None
    if r is None:
        return
    if not r.steps:
        if r.note:
            console.print(Text(f"  held by: unknown ({r.note})", style="dim"))
        return
    what = f"{r.objects} {r.type} object{'s' if r.objects != 1 else ''}" if r.type else "objects"
    console.print(Text(f"  {what} held by:", style="bold"))
    for i, line in enumerate(r.lines()):
        console.print(Text(f"    {'' if i == 0 else '→ '}{line}", style="bold" if i == 0 else ""))
