"""config/validate.py is the one validation pipeline (schema -> runc compatibility ->
semantic checks) that create, `pyrunc validate`, exec --process and update --resources
use; its steps load only what the document's kind needs, and the semantic checks are
split by area into small functions (issue 16 item 2)."""
import ast
import json
import os
import subprocess
import sys

import pytest

from pyrunc.errors import ConfigError
from pyrunc.config import validate
from support.paths import REPO

pytestmark = pytest.mark.unit

PROCESS = {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}}
CONFIG = {"ociVersion": "1.2.0", "root": {"path": "rootfs"}, "process": PROCESS,
          "linux": {"namespaces": [{"type": "mount"}]}}
HEAVY = ("jsonschema", "referencing", "pyrunc.config.compat", "pyrunc.config.schema.messages")


def _loaded(kind, doc):
    """The modules a fresh interpreter has loaded after check() of a valid doc."""
    code = ("import json, sys\n"
            "from pyrunc.config import validate\n"
            f"doc = json.loads({json.dumps(json.dumps(doc))})\n"
            f"assert validate.check(doc, {kind!r}, source='doc.json') is doc\n"
            "print(json.dumps(sorted(sys.modules)))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 0, r.stderr[-2000:]
    return set(json.loads(r.stdout))


def _heavy(modules):
    return sorted(m for m in modules if m.startswith(HEAVY))


def test_a_valid_process_loads_only_the_process_checks():
    """exec --process: no semantic.py (config.json's checks), no compat, no jsonschema."""
    loaded = _loaded("process", PROCESS)
    assert "pyrunc.config.semantic.process" in loaded
    assert _heavy(loaded) == [] and "pyrunc.config.semantic.checks" not in loaded


def test_a_valid_config_loads_neither_compat_nor_jsonschema():
    loaded = _loaded("config", CONFIG)
    assert "pyrunc.config.semantic.checks" in loaded
    assert _heavy(loaded) == []


def test_valid_resources_load_no_semantic_checks():
    loaded = _loaded("resources", {"pids": {"limit": 5}})
    assert _heavy(loaded) == []
    assert not {"pyrunc.config.semantic.checks", "pyrunc.config.semantic.process"} & loaded


@pytest.mark.parametrize("kind,doc,message", [
    ("config", dict(CONFIG, process=dict(PROCESS, cwd=5, args=[])),
     "doc.json: /process/cwd: 5 is not of type \"string\" (and 1 more problems: run 'pyrunc validate')"),
    ("process", dict(PROCESS, cwd=5, args=[]),
     "doc.json: /cwd: 5 is not of type \"string\" (and 1 more)"),
    ("resources", {"pids": {"limit": "x"}, "cpu": {"shares": -1}},
     "doc.json: /cpu/shares: -1 is less than the minimum of 0 (and 1 more)"),
])
def test_check_words_the_first_problem_and_counts_the_rest(kind, doc, message):
    """Schema problems first, then the semantic checks' (the config's two: cwd's type
    and the empty args)."""
    with pytest.raises(ConfigError) as e:
        validate.check(doc, kind, source="doc.json")
    assert str(e.value) == message


def test_check_takes_a_document_as_runc_reads_it():
    """A missing gid is 0 for runc (a Go struct): create accepts it, the strict reading
    (the linter's) refuses it; problems() says what was taken, as a note."""
    doc = dict(PROCESS, user={"uid": 0})
    assert validate.check(dict(doc, user={"uid": 0}), "process", source="p.json")["user"] == {"uid": 0, "gid": 0}
    with pytest.raises(ConfigError, match='^p.json: /user: "gid" is required$'):
        validate.check(dict(doc, user={"uid": 0}), "process", source="p.json", strict=True)
    problems, notes = validate.problems(dict(doc, user={"uid": 0}), "process")
    assert problems == [] and notes == ["/user/gid: missing; taken as 0 (runc: the Go struct's zero value)"]


def test_unknown_kind():
    with pytest.raises(ValueError):
        validate.problems({}, "state-of-mind")


def test_semantic_checks_are_small_functions():
    """No function of the validation modules over 60 lines (semantic.py had one of 178)."""
    config = REPO / "pyrunc" / "config"
    files = [config / "validate.py", config / "compat.py", *sorted((config / "semantic").glob("*.py"))]
    assert len(files) >= 7
    long = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 60:
                    long.append(f"{path.name}:{node.name} {lines} lines")
    assert long == []
