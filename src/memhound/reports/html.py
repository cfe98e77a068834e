"""The HTML report: one self-contained page (inline CSS and JavaScript, no network
fetch) drawn from the JSON report dict (schema 1).

It shows memory over time (RSS, C heap, tracked live bytes) with the normal band
and the trend line (memhound.analysis.timeline; docs/html.md), the verdict and its
key figures, and the ranked leak sites, each with its growth per epoch, its stack
(the user's own frames highlighted) and its retention chain when the report has one.

Charts are drawn by uPlot (MIT), vendored in ``reports/vendor/`` and inlined. The
timeline is downsampled to at most ``MAX_POINTS`` points, so a long run still makes a
small page. Jinja2 is imported only when a page is rendered.
"""
from __future__ import annotations

import json
import math
import os
import shlex
from importlib import resources
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .._format import fmt_bytes
from ..analysis.frames import FrameRule, here
from ..analysis.timeline import Row, downsample, normal_band, trend, warmup_end

#: Most points of the memory-over-time chart (the page's size is bounded by it).
MAX_POINTS = 2000
#: Stack frames shown before "N more frames" (the rest are one click away).
STACK_LINES = 8

_TEMPLATE = "report.html.j2"
_VENDOR_JS = "uPlot.iife.min.js"
_VENDOR_CSS = "uPlot.min.css"


def _asset(*parts: str) -> str:
    return resources.files(__package__).joinpath(*parts).read_text(encoding="utf-8")


def _num(v: Any) -> Optional[float]:
    """A finite number, or None (missing, null, NaN)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _unit(report: Dict[str, Any]) -> str:
    """What one epoch is, in the verdict's words (as the terminal report says it)."""
    return "epoch" if report.get("epochs", {}).get("kind", "time") == "time" else "call"


def fmt_duration(seconds: float) -> str:
    """3.2 s, 4 min 05 s, 1 h 02 min."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    s = int(round(seconds))
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def fmt_range(lo: float, hi: float) -> str:
    """An interval of sizes, its unit said once when both ends share it: 1.9 – 2.1 MB."""
    a, b = fmt_bytes(lo), fmt_bytes(hi)
    ua, ub = a.rsplit(" ", 1), b.rsplit(" ", 1)
    return f"{ua[0]} – {b}" if ua[1] == ub[1] else f"{a} – {b}"


def _timeline_rows(report: Dict[str, Any]) -> List[Row]:
    rows: List[Row] = []
    for p in report.get("timeline") or []:
        t = _num(p.get("t"))
        if t is None:
            continue
        rows.append((t, _num(p.get("tracked")), _num(p.get("rss")), _num(p.get("heap"))))
    rows.sort(key=lambda r: r[0] or 0.0)
    return rows


def _combined_ci(leaks: Sequence[Dict[str, Any]]) -> Optional[Tuple[float, float]]:
    """The 95 % interval of the summed leak rate. One site: its own interval. Several:
    the sites' standard errors (the upper half-width / 1.96 of each interval) added
    in quadrature, as for independent estimates."""
    if not leaks:
        return None
    if len(leaks) == 1:
        lo, hi = leaks[0].get("ci95") or (0.0, 0.0)
        return float(lo), float(hi)
    total = sum(float(v.get("bytes_per_epoch") or 0.0) for v in leaks)
    var = sum(((float((v.get("ci95") or (0, 0))[1]) - float(v.get("bytes_per_epoch") or 0.0)) / 1.96) ** 2
              for v in leaks)
    half = 1.96 * math.sqrt(var)
    return max(0.0, total - half), total + half


def _status(report: Dict[str, Any]) -> Tuple[str, str]:
    """(css class, badge text) of the verdict."""
    v = report.get("verdict", {})
    if v.get("leaking"):
        return "leak", "Leaking"
    return {"native": ("native", "Native growth"), "too-short": ("short", "Too short to judge")
            }.get(v.get("diagnosis", ""), ("ok", "No leak"))


def _rss_note(report: Dict[str, Any]) -> Optional[str]:
    """The verdict's sentence on RSS growing far faster than tracked memory, unless
    the summary already says it (diagnosis "native")."""
    v = report.get("verdict", {})
    note = v.get("rss_note")
    return str(note) if note and v.get("diagnosis") != "native" else None


def _round_bytes(v: Optional[float]) -> Optional[int]:
    return None if v is None else int(round(v))


def chart_data(report: Dict[str, Any], max_points: int = MAX_POINTS) -> Dict[str, Any]:
    """What the page's script draws: the downsampled timeline, the warm-up end, the
    normal band and trend line of tracked memory, and each leak site's series."""
    rows = _timeline_rows(report)
    tracked = [(r[0], r[1]) for r in rows if r[0] is not None and r[1] is not None]
    verdict = report.get("verdict", {})
    leak_rate = float(verdict.get("bytes_per_second") or 0.0) if verdict.get("leaking") else 0.0
    band = normal_band(tracked, leak_rate=leak_rate)
    tr = trend(tracked)
    small = downsample(rows, max_points) if rows else []
    heap = [_round_bytes(r[3]) for r in small]
    epochs = report.get("epochs", {})
    return {
        "t": [round(r[0] or 0.0, 3) for r in small],
        "tracked": [_round_bytes(r[1]) for r in small],
        "rss": [_round_bytes(r[2]) for r in small],
        "heap": heap if any(h is not None for h in heap) else None,
        "warmup_end": round(warmup_end(tracked), 3) if tracked else None,
        "band": None if band is None else {"low": round(band.low), "high": round(band.high)},
        "trend": None if tr is None else {"t0": round(tr.t_start, 3), "t1": round(tr.t_end, 3),
                                          "y0": round(tr.at(tr.t_start)),
                                          "y1": round(tr.at(tr.t_end)), "slope": tr.slope},
        "unit": _unit(report),
        "epoch_warmup": int(epochs.get("warmup") or 0),
        "sites": [[_round_bytes(_num(b)) for b in (leak.get("series") or [])]
                  for leak in report.get("leaks") or []],
    }


def _frames(stack: Sequence[Dict[str, Any]], rule: FrameRule) -> List[Dict[str, Any]]:
    return [{"file": str(f.get("file", "?")), "line": f.get("line", 0),
             "function": str(f.get("function", "?")),
             "mine": rule.is_user_file(str(f.get("file", "")))}
            for f in stack]


def _rule(report: Dict[str, Any]) -> FrameRule:
    """The frame rule of the interpreter that ran the program (the report's
    ``prefixes``), or this one's."""
    prefixes = report.get("prefixes")
    return FrameRule(prefixes) if isinstance(prefixes, dict) and prefixes else here()


def _retains(leak: Dict[str, Any]) -> List[str]:
    """What each holder of the chain retains (from ``leaks[].retention``), one per
    ``retained_by`` entry, or [] when the report has no sizes."""
    steps = (leak.get("retention") or {}).get("steps") or []
    chain = leak.get("retained_by") or []
    if len(steps) != len(chain):
        return []
    try:
        return [fmt_bytes(float(s.get("retained_bytes") or 0)) for s in steps]
    except (AttributeError, TypeError, ValueError):
        return []


def _site_view(leak: Dict[str, Any], unit: str, rule: FrameRule) -> Dict[str, Any]:
    site = leak.get("site") or {}
    frames = _frames(leak.get("stack") or [], rule)
    lo, hi = (leak.get("ci95") or (0.0, 0.0))[:2]
    p = _num(leak.get("p_value"))
    p = 1.0 if p is None else p
    return {
        "rank": leak.get("rank", 0),
        "file": str(site.get("file", "?")),
        "base": os.path.basename(str(site.get("file", "?"))),
        "line": site.get("line", 0),
        "function": str(site.get("function", "?")),
        "per_epoch": fmt_bytes(float(leak.get("bytes_per_epoch") or 0.0)),
        "ci": fmt_range(float(lo), float(hi)),
        "per_s": fmt_bytes(float(leak.get("bytes_per_second") or 0.0)),
        "p": "< 1e-12" if p < 1e-12 else f"{p:.1g}",
        "live": fmt_bytes(float(leak.get("live_bytes") or 0.0)),
        "count": f"{int(leak.get('live_count') or 0):,}",
        "type": leak.get("type"),
        "shown": frames[:STACK_LINES],
        "hidden": frames[STACK_LINES:],
        "truncated": bool(leak.get("stack_truncated")),
        "retained_by": [str(r) for r in leak.get("retained_by") or []],
        "retains": _retains(leak),
        "has_series": bool(leak.get("series")),
        "unit": unit,
    }


def _figures(report: Dict[str, Any]) -> List[Tuple[str, str, str]]:
    """(label, value, note) of the key figures."""
    v = report.get("verdict", {})
    mem = report.get("memory", {})
    ep = report.get("epochs", {})
    unit = _unit(report)
    leaks = report.get("leaks") or []
    out: List[Tuple[str, str, str]] = []
    if v.get("leaking"):
        ci = _combined_ci(leaks)
        out.append(("leak rate", fmt_bytes(float(v.get("bytes_per_epoch") or 0)),
                    f"per {unit} · {fmt_bytes(float(v.get('bytes_per_second') or 0))}/s"))
        if ci is not None:
            out.append(("95 % interval", fmt_range(ci[0], ci[1]),
                        f"per {unit}" + (", sites combined" if len(leaks) > 1 else "")))
    else:
        rss_rate = _num(v.get("rss_bytes_per_second"))
        out.append(("leak rate", "none found",
                    "" if rss_rate is None else f"RSS {fmt_bytes(rss_rate)}/s after warm-up"))
    out.append(("duration", fmt_duration(float(report.get("duration_s") or 0.0)),
                f"{ep.get('count', 0)} epochs, {ep.get('warmup', 0)} of warm-up"))
    out.append(("peak RSS", fmt_bytes(float(mem.get("peak_rss") or 0)),
                f"final {fmt_bytes(float(mem.get('final_rss') or 0))}"))
    out.append(("peak tracked", fmt_bytes(float(mem.get("peak_tracked") or 0)),
                f"final {fmt_bytes(float(mem.get('final_tracked') or 0))}"))
    sample = int(report.get("mode", {}).get("sample_bytes") or 1)
    out.append(("sampling", "exact" if sample <= 1 else f"1 per {fmt_bytes(sample)}",
                "every allocation" if sample <= 1 else "Poisson, unbiased"))
    return out


def _script_json(data: Any) -> str:
    """JSON safe inside a <script> element."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(report: Dict[str, Any]) -> str:
    """The page, as a string, from a JSON report dict (schema 1)."""
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(_asset("templates", _TEMPLATE))
    data = chart_data(report)
    band = data["band"]
    program = report.get("program") or {}
    unit = _unit(report)
    leaks = report.get("leaks") or []
    rule = _rule(report)
    sites = [_site_view(leak, unit, rule) for leak in leaks]
    argv = [str(a) for a in report.get("argv") or []]
    status_class, status_text = _status(report)
    return template.render(
        title=f"memhound · {os.path.basename(argv[0]) if argv else 'report'}",
        command=shlex.join(argv),
        summary=str(report.get("verdict", {}).get("summary", "")),
        rss_note=_rss_note(report),
        status_class=status_class,
        status_text=status_text,
        partial=(None if program.get("complete", True)
                 else f"The program ended early ({program.get('status', '?')}, exit code "
                      f"{program.get('exit_code', '?')}): this report covers a partial run."),
        figures=_figures(report),
        band_text=(None if band is None else
                   f"{fmt_bytes(band['low'])} – {fmt_bytes(band['high'])}"),
        band_leak=bool(report.get("verdict", {}).get("leaking")),
        trend_text=None if data["trend"] is None else fmt_bytes(data["trend"]["slope"]) + "/s",
        has_heap=data["heap"] is not None,
        points=len(data["t"]),
        points_total=len(report.get("timeline") or []),
        sites=sites,
        any_retention=any(s["retained_by"] for s in sites),
        unit=unit,
        meta={"memhound": report.get("memhound", "?"), "schema": report.get("schema", "?"),
              "python": report.get("python", "?"), "pid": report.get("pid", "?")},
        data_json=Markup(_script_json(data)),
        uplot_js=Markup(_asset("vendor", _VENDOR_JS)),
        uplot_css=Markup(_asset("vendor", _VENDOR_CSS)),
    )


def write(path: str, report: Dict[str, Any]) -> None:
    """Render and write the page atomically (a temporary file renamed into place)."""
    text = render(report)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
