"""Builds xferlab's optional native kernels (``xferlab/native``); everything else is in
pyproject.toml.

The LSTM and GRU loops (``xferlab/native/lstm_*.cc``) compile against the XLA FFI headers that
jaxlib ships (a build requirement, so a fresh machine needs only registry packages and a
C++ compiler); their AVX-512, AVX2 and generic variants are all built and the CPU picks one
at run time. The extension is optional: where it does not build, the install still
succeeds and xferlab runs its pure-JAX scan.
"""

import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NATIVE = "xferlab/native"


class BuildNative(build_ext):
  """Adds the XLA FFI headers of the jaxlib found at build time."""

  def build_extensions(self):
    try:
      import jaxlib
    except ImportError as error:
      print(f"xferlab: native kernels skipped ({error}); the pure-JAX scan is used")
      return
    for ext in self.extensions:
      ext.include_dirs.append(os.path.join(os.path.dirname(jaxlib.__file__), "include"))
    super().build_extensions()


setup(
    ext_modules=[Extension(
        "xferlab.native._lstm_loop",
        [f"{NATIVE}/lstm_loop.cc", f"{NATIVE}/lstm_avx512.cc", f"{NATIVE}/lstm_avx2.cc",
         f"{NATIVE}/lstm_generic.cc"],
        depends=[f"{NATIVE}/lstm_kernels.h", f"{NATIVE}/lstm_loop.h"],
        include_dirs=[NATIVE], language="c++",
        extra_compile_args=["-std=c++17", "-O3", "-ffast-math", "-fopenmp-simd"],
        optional=True)],
    cmdclass={"build_ext": BuildNative},
)
