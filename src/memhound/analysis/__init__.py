"""Analysis over snapshots: the leak verdict, site roll-ups, memory diagnosis."""
from .sites import is_user_frame, user_site
from .verdict import SiteVerdict, Verdict, analyze

__all__ = ["SiteVerdict", "Verdict", "analyze", "is_user_frame", "user_site"]
