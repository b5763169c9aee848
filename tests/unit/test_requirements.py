"""setup.cfg's install_requires names every third-party package pyrunc/ imports, at a
version that has what it uses (issue 16 item 8)."""
import ast
import configparser
import sys

import pytest

from support.paths import REPO

pytestmark = pytest.mark.unit


# import name -> the distribution that provides it
_DISTRIBUTION = {"_cffi_backend": "cffi"}


def _requirements():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    out = {}
    for line in cfg["options"]["install_requires"].split("\n"):
        line = line.strip()
        if line:
            name, _, version = line.partition(">=")
            out[name.strip().lower()] = tuple(int(x) for x in version.split(".")) if version else ()
    return out


def _imported_packages():
    """Top-level names imported anywhere in pyrunc/ (function bodies included), except the
    standard library and pyrunc; the build scripts (cffi at build time) included."""
    found = {}
    for path in sorted((REPO / "pyrunc").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "pyrunc":
                    found.setdefault(top, path.relative_to(REPO))
    return found


def test_every_third_party_import_is_required():
    required = _requirements()
    imported = _imported_packages()
    assert {"jsonschema", "referencing", "pyroute2", "cffi"} <= {_DISTRIBUTION.get(m, m) for m in imported}
    missing = {m: str(p) for m, p in imported.items() if _DISTRIBUTION.get(m, m) not in required}
    assert not missing, f"imported but not in setup.cfg install_requires: {missing}"


def test_jsonschema_is_new_enough_for_referencing():
    """config/schema/messages.py passes registry= (a referencing.Registry) to Draft4Validator:
    jsonschema 4.18 and later."""
    required = _requirements()
    assert required["jsonschema"] >= (4, 18)
    assert required["referencing"] >= (0, 28, 4)
