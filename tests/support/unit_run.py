"""Run pytest with pyrunc's compiled modules unimportable, as the tests marked ``unit``
must run (no root, no pyrunc.native._lowlevel: a checkout where nothing was built):

    python tests/support/unit_run.py -m unit tests/

The arguments are pytest's. tests/system/test_unit_marker.py runs it as `nobody`.
"""
import importlib.abc
import sys

BLOCKED = ("pyrunc.native._lowlevel",)


class _Unbuilt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in BLOCKED:
            raise ImportError(f"{name} is not built (blocked: a unit test must not need it)")
        return None


if __name__ == "__main__":
    sys.meta_path.insert(0, _Unbuilt())
    import pytest

    sys.exit(pytest.main(sys.argv[1:]))


def unbuilt_copy(dest):
    """Copy this checkout's pyrunc/, tests/, specs/, conformance/, docs/ and setup.cfg to dest/main without
    pyrunc's compiled module (the .so files), and
    link dest/shared to the runtime-spec text next to the checkout. Returns dest/main."""
    import shutil
    from pathlib import Path

    from support.paths import REPO, SHARED_SPEC

    main = Path(dest) / "main"
    skip = shutil.ignore_patterns("*.so", "__pycache__", ".hypothesis")
    for d in ("pyrunc", "tests", "specs", "conformance", "docs"):
        shutil.copytree(REPO / d, main / d, ignore=skip, symlinks=True)
    shutil.copy2(REPO / "setup.cfg", main / "setup.cfg")
    if SHARED_SPEC.parent.is_dir():
        (Path(dest) / "shared").symlink_to(SHARED_SPEC.parent)
    return main


def _others_can_exec(path):
    import os
    import stat

    p = os.path.realpath(path)
    while True:
        if not os.stat(p).st_mode & stat.S_IXOTH:
            return False
        if p == "/":
            return True
        p = os.path.dirname(p)


def command_for(main, *pytest_args):
    """argv and env that run pytest (through this file) on the copy `main`, with this
    interpreter's packages (pytest, jsonschema, hypothesis ...) but not its pyrunc."""
    import os
    import sys
    import sysconfig

    exe = os.path.realpath(sys.executable)
    if not _others_can_exec(exe):  # e.g. a pyenv build under a 0700 /root
        exe = f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"
    env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8",
           "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    return [exe, str(main / "tests" / "support" / "unit_run.py"), "-p", "no:cacheprovider",
            "-c", str(main / "setup.cfg"), "--rootdir", str(main), *pytest_args], env
