# The one cffi module (pyrunc/native/_build.py) is compiled out-of-line at install time (no
# pycparser at run time), and so is the `pyrunc` command (scripts/pyrunc.c: why it is C is said there).
import os
import shlex
import subprocess
import sysconfig

from setuptools import setup

try:
    from setuptools.command.build_scripts import build_scripts
except ImportError:  # setuptools < 69 has only distutils' (its own copy)
    from distutils.command.build_scripts import build_scripts


class BuildLauncher(build_scripts):
    """Copies the scripts as usual (scripts/pyrunc-py's "#!python" line becomes the
    installation's interpreter), and compiles the `pyrunc` command from scripts/pyrunc.c
    beside them (it reads the interpreter from pyrunc-py's line)."""

    def copy_scripts(self):
        outfiles, updated = super().copy_scripts()
        out = os.path.join(self.build_dir, "pyrunc")
        cc = shlex.split(sysconfig.get_config_var("CC") or "cc")[:1] or ["cc"]
        argv = cc + ["-O2", "-Wall", "-o", out, os.path.join("scripts", "pyrunc.c")]
        # Without libc where the source has raw syscalls (its start-up is ~0.5 ms).
        nolibc = ["-static", "-nostdlib", "-fno-stack-protector", "-fno-builtin"]
        if subprocess.run(argv + nolibc, stderr=subprocess.DEVNULL).returncode:
            subprocess.run(argv + ["-DPYRUNC_LIBC"], check=True)
        outfiles.append(out)
        updated.append(out)
        self._change_modes(outfiles)
        return outfiles, updated


setup(cffi_modules=["pyrunc/native/_build.py:ffibuilder"],
      cmdclass={"build_scripts": BuildLauncher})
