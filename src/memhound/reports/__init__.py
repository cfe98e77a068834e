"""Reports: functions from a snapshot to output, one renderer per module."""
