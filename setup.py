"""Build pyprof's native core with CMake (pybind11's cmake_example pattern: CMakeExtension / CMakeBuild).

Knobs (environment variables):
  PYPROF_CUDA        AUTO (default: build the CUDA/CUPTI part if a toolkit is found), ON (missing toolkit is an
                     error; CI sets this), OFF (CPU part only).
  PYPROF_CUDA_ARCHS  CMAKE_CUDA_ARCHITECTURES for the CUDA part (default "80;90a": wgmma needs sm_90a).
  PYPROF_BUILD_TYPE  CMake build type (default Release).
  CMAKE_BUILD_PARALLEL_LEVEL  parallel compile jobs (default: all cores).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str, sourcedir: Path = ROOT, optional: bool = False) -> None:
        super().__init__(name, sources=[], optional=optional)
        self.sourcedir = str(sourcedir)


class CMakeBuild(build_ext):
    def build_extension(self, ext: CMakeExtension) -> None:
        # One CMake project builds both modules into the same folder; the CUDA one is declared (optional=True) only
        # so that setuptools copies it into place for editable installs. A CUDA compile error still fails the build:
        # it happens in the pyprof._C step, which is not optional.
        if ext.name != "pyprof._C":
            return
        cmake = shutil.which("cmake")
        if cmake is None:
            raise RuntimeError("pyprof needs CMake >= 3.18 to build its native core: `apt-get install cmake` or `pip install cmake`")
        import pybind11

        extdir = Path(self.get_ext_fullpath(ext.name)).parent.resolve()
        cuda = os.environ.get("PYPROF_CUDA", "AUTO").upper()
        if cuda not in {"AUTO", "ON", "OFF"}:
            raise RuntimeError(f"PYPROF_CUDA must be AUTO, ON or OFF, got {cuda!r}")
        args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={extdir}{os.sep}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DCMAKE_BUILD_TYPE={os.environ.get('PYPROF_BUILD_TYPE', 'Release')}",
            f"-DPYPROF_CUDA={cuda}",
        ]
        if "PYPROF_CUDA_ARCHS" in os.environ:
            args.append(f"-DCMAKE_CUDA_ARCHITECTURES={os.environ['PYPROF_CUDA_ARCHS']}")
        build_temp = Path(self.build_temp) / ext.name
        build_temp.mkdir(parents=True, exist_ok=True)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 1))
        subprocess.run([cmake, ext.sourcedir, *args], cwd=build_temp, check=True)
        subprocess.run([cmake, "--build", ".", "--parallel", jobs], cwd=build_temp, check=True)


setup(ext_modules=[CMakeExtension("pyprof._C"), CMakeExtension("pyprof._C_cuda", optional=True)], cmdclass={"build_ext": CMakeBuild})
