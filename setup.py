"""Build of memhound's C core (the rest of the metadata is in pyproject.toml).

MEMHOUND_SANITIZE=1 builds the core with AddressSanitizer and UBSan (see
scripts/sanitize.sh)."""
import glob
import os

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

cflags = ["-std=c11", "-O2", "-g", "-Wall", "-Wextra", "-Werror",
          "-Wno-unused-parameter", "-Wno-missing-field-initializers",
          "-fvisibility=hidden"]
ldflags = ["-lm", "-pthread", "-lsqlite3"]
if os.environ.get("MEMHOUND_SANITIZE"):
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
           "-fno-sanitize-recover=undefined"]
    cflags = [f for f in cflags if f != "-O2"] + ["-O1"] + san
    ldflags += san

core_sources = sorted(glob.glob("src/core/*.c"))


def _have_sqlite_headers() -> bool:
    import sysconfig
    dirs = ["/usr/include", "/usr/local/include", sysconfig.get_config_var("INCLUDEDIR") or ""]
    dirs += os.environ.get("CPATH", "").split(os.pathsep) + os.environ.get("C_INCLUDE_PATH", "").split(os.pathsep)
    return any(d and os.path.isfile(os.path.join(d, "sqlite3.h")) for d in dirs)


if not _have_sqlite_headers():
    raise SystemExit("memhound: building the core needs SQLite's headers (sqlite3.h): "
                     "install libsqlite3-dev (Debian, Ubuntu) or sqlite-devel (Fedora)")

class build_py_with_pth(build_py):
    """Also put memhound.pth at the top of site-packages: the start-up hook
    that switches tracking on in every Python process of a program run by
    ``memhound run`` (it does nothing unless MEMHOUND_CONFIG is set)."""

    def run(self):
        super().run()
        self.copy_file(os.path.join("src", "memhound", "memhound.pth"),
                       os.path.join(self.build_lib, "memhound.pth"), preserve_mode=False)

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, "memhound.pth")]


setup(
    cmdclass={"build_py": build_py_with_pth},
    ext_modules=[
        Extension(
            "memhound._core",
            sources=["src/memhound/_core.c", "src/memhound/_core_heap.c"] + core_sources,
            include_dirs=["src/core"],
            extra_compile_args=cflags,
            extra_link_args=ldflags,
        )
    ],
)
