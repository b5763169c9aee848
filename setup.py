# The cffi bindings are compiled out-of-line at install time (no pycparser at run time).
from setuptools import setup

setup(cffi_modules=["pyrunc/_native_build.py:ffibuilder",
                    "pyrunc/_seccomp_build.py:ffibuilder"])
