# A program that moves to another folder, works there, and removes it.
import os
import shutil
import tempfile

start = os.getcwd()
work = tempfile.mkdtemp(prefix="shape-chdir-")
os.chdir(work)
with open("scratch.txt", "w") as f:
    f.write("x" * 1000)
os.chdir(start)
shutil.rmtree(work)
os.chdir(tempfile.gettempdir())
print("ended elsewhere")
