"""Bundles a built librobustagg into the package when one is found at build time.

Looked for, in order: $RAGG_LIBRARY, then ../build/host/librobustagg.so (the
CMake build of this source tree). Without either the package installs pure
Python and finds the library at import time (see robustagg/_lib.py).
"""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py


def _built_library():
    env = os.environ.get("RAGG_LIBRARY")
    if env and os.path.isfile(env):
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    cand = os.path.join(os.path.dirname(here), "build", "host", "librobustagg.so")
    return cand if os.path.isfile(cand) else None


class BuildPyWithLibrary(build_py):
    def run(self):
        super().run()
        src = _built_library()
        if src and not self.dry_run:
            dst_dir = os.path.join(self.build_lib, "robustagg", "lib")
            os.makedirs(dst_dir, exist_ok=True)
            shutil.copyfile(src, os.path.join(dst_dir, "librobustagg.so"))
            self.announce(f"bundled {src}", level=2)


setup(cmdclass={"build_py": BuildPyWithLibrary})
