"""Build the compiled fast paths of `netprobe analyze` (netprobe/_native/*.c).

Everything else about the package is in pyproject.toml. The modules are
optional: if they cannot be compiled (no C compiler), netprobe installs
anyway and uses its numpy code, which gives the same results, slower.
"""

from pathlib import Path

from setuptools import Extension, setup

FLAGS = ["-O2", "-std=c11", "-ffp-contract=off", "-fno-strict-aliasing"]
SOURCES = sorted(Path("netprobe/_native").glob("*.c"))

setup(
    ext_modules=[
        Extension(f"netprobe._native.{src.stem}", [str(src)],
                  depends=["netprobe/_native/buffers.h"], extra_compile_args=FLAGS, optional=True)
        for src in SOURCES
    ]
)
