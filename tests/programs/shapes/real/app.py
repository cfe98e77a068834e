# Installed as bin/app.py -> ../real/app.py: imports the module next to the real file.
import sys

import app_helpers

print("app ok:", app_helpers.NAME, sys.argv[1:])
