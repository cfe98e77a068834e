# Which of memhound's modules and dependencies the program can see in sys.modules.
import sys

FOREIGN = ("rich", "jinja2", "markupsafe", "pygments", "memhound.analysis",
           "memhound.reports", "memhound.cli")
seen = sorted(m for m in sys.modules if m.split(".")[0] in FOREIGN[:4]
              or any(m == f or m.startswith(f + ".") for f in FOREIGN[4:]))
print("foreign modules:", seen)
