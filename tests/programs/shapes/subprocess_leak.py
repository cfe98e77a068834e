# A driver that runs another python script as a subprocess (which leaks).
import os
import subprocess
import sys

child = os.path.join(os.path.dirname(os.path.abspath(__file__)), "leak_child.py")
proc = subprocess.run([sys.executable, child], capture_output=True, text=True)
print(proc.stdout, end="")
print("child exit", proc.returncode)
