"""Human-readable sizes, shared by the verdict's sentences and the reports."""


def fmt_bytes(n: float) -> str:
    """Decimal units, as people read them: 930 B, 1.9 MB, 2.4 GB."""
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{sign}{n:.0f} {unit}" if unit == "B" else f"{sign}{n:.1f} {unit}"
        n /= 1000
    return f"{sign}{n:.1f} GB"  # pragma: no cover
