# A forked child that runs the rest of the script and exits with sys.exit().
import os
import sys

pid = os.fork()
if pid == 0:
    print("in child", flush=True)
    sys.exit(3)
_, status = os.waitpid(pid, 0)
print("parent saw child exit", os.waitstatus_to_exitcode(status))
