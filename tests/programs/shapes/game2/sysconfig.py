# The project's own settings module, named like the stdlib's.
DEBUG = True
