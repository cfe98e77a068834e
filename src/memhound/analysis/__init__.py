"""Analysis over snapshots: the leak verdict, site roll-ups, memory diagnosis.

The names below are imported on first use, so that the program side of
``memhound run`` can import ``memhound.analysis.census`` without the rest."""

__all__ = ["SiteVerdict", "Verdict", "analyze", "is_user_frame", "user_site"]


def __getattr__(name: str) -> object:
    if name in ("SiteVerdict", "Verdict", "analyze"):
        from . import verdict

        return getattr(verdict, name)
    if name in ("is_user_frame", "user_site"):
        from . import frames as sites

        return getattr(sites, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
