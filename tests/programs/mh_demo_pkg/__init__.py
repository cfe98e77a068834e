"""A small package run with ``memhound run -m mh_demo_pkg``."""
