"""Bundles a built librobustagg into the package when one is found at build time.

Looked for, in order: $RAGG_LIBRARY, then ../build/host/librobustagg.so (the
CMake build of this source tree). Without either the package installs pure
Python and finds the library at import time (see robustagg/_lib.py).
librobustagg_nccl (built where CUDA and nccl.h are) comes along when it lies
next to the library or in the build tree's dist/ ($RAGG_NCCL_LIBRARY names
another).
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


def _built_nccl_library(main):
    env = os.environ.get("RAGG_NCCL_LIBRARY")
    if env and os.path.isfile(env):
        return env
    base = os.path.dirname(main)
    for cand in (os.path.join(base, "librobustagg_nccl.so"),
                 os.path.join(base, "dist", "librobustagg_nccl.so")):
        if os.path.isfile(cand):
            return cand
    return None


class BuildPyWithLibrary(build_py):
    def run(self):
        super().run()
        src = _built_library()
        if src and not self.dry_run:
            dst_dir = os.path.join(self.build_lib, "robustagg", "lib")
            os.makedirs(dst_dir, exist_ok=True)
            shutil.copyfile(src, os.path.join(dst_dir, "librobustagg.so"))
            self.announce(f"bundled {src}", level=2)
            nccl = _built_nccl_library(src)
            if nccl:
                shutil.copyfile(nccl, os.path.join(dst_dir, "librobustagg_nccl.so"))
                self.announce(f"bundled {nccl}", level=2)


setup(cmdclass={"build_py": BuildPyWithLibrary})
