"""The program side of ``memhound run``: what runs inside the user's own
processes. The start-up hook (memhound.pth) calls :func:`startup.start` when the
launcher's environment variable is set; :mod:`finish` runs at the process's end.

Only these modules (and the small ones they name) enter the user's process
while it runs: no typing, dataclasses, json, re, rich or Jinja2."""
