# A folder (or a zipapp built from it) run as `python dirapp args`.
import sys

import dirapp_util

print("directory app ran", __name__, sys.argv[1:], dirapp_util.answer())
