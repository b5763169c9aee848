"""The command-line frame: runc's global flags, usage errors, logging, and the
commands that need no container (spec, validate, features)."""
import json
import subprocess
import sys

import pytest

from support.checks import one_line_error
from support.host import pyrunc_binary
from support.paths import REPO, SHARED_SPEC


def run(*args, cwd=None, input=None):
    return subprocess.run([pyrunc_binary(), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, input=input, timeout=60)


def test_version():
    p = run("--version")
    assert p.returncode == 0
    assert p.stdout.startswith("pyrunc version ")
    assert "spec: 1.3.0" in p.stdout


def test_unknown_command_and_flag():
    assert "No help topic for 'frobnicate'" in one_line_error(run("frobnicate"), 1)
    assert "flag provided but not defined: -bogus" in one_line_error(run("--bogus", "list"), 1)
    assert "flag provided but not defined: -bogus" in one_line_error(run("list", "--bogus"), 1)


def test_missing_arguments():
    assert 'requires exactly 1 argument' in one_line_error(run("state"), 1)
    assert 'requires exactly 1 argument' in one_line_error(run("start", "a", "b"), 1)


def test_help():
    p = run("--help")
    assert p.returncode == 0 and "create" in p.stdout and "--root" in p.stdout
    p = run("create", "--help")
    assert p.returncode == 0 and "--console-socket" in p.stdout


def test_log_json_file(tmp_path):
    log = tmp_path / "log.json"
    p = run("--root", tmp_path / "r", "--log", log, "--log-format", "json", "state", "nosuch")
    assert p.returncode == 1
    lines = log.read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "error" and "does not exist" in entry["msg"] and entry["time"]
    # stderr has the plain message too (as runc)
    assert "does not exist" in p.stderr


def test_log_text_default_stderr(tmp_path):
    p = run("--root", tmp_path / "r", "state", "nosuch")
    line = one_line_error(p, 1)
    assert "level=error" in line and "does not exist" in line


def test_spec_writes_default_config(tmp_path):
    p = run("spec", "--bundle", tmp_path)
    assert p.returncode == 0, p.stderr
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["process"]["args"] == ["sh"]
    assert config["process"]["terminal"] is True
    # refuses to overwrite
    assert "exists" in one_line_error(run("spec", "--bundle", tmp_path), 1)
    p = run("spec", "--rootless", "--bundle", tmp_path / "x")
    assert p.returncode == 1  # missing dir: a one-line error


def test_features_is_json():
    p = run("features")
    assert p.returncode == 0
    f = json.loads(p.stdout)
    assert f["ociVersionMin"] == "1.0.0"
    assert set(f["linux"]["namespaces"]) == {"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}


@pytest.mark.parametrize("content", [
    "", "not json", "[1, 2]", '{"process": {}}', '{"ociVersion": 1}',
    '{"ociVersion": "1.0.0", "root": {"path": 5}}', '{"ociVersion": "9.0.0", "root": {"path": "rootfs"}}',
    "{" * 100000,
])
def test_malformed_config_never_tracebacks(tmp_path, content):
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "config.json").write_text(content)
    for argv in (["validate", "--strict", "--bundle", tmp_path],
                 ["--root", tmp_path / "state", "create", "--bundle", tmp_path, "x"]):
        p = run(*argv)
        assert p.returncode == 1
        assert "Traceback" not in p.stderr and p.stderr.strip()
        if argv[0] != "validate":
            assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not (tmp_path / "state" / "x").exists()


def test_huge_config_is_rejected(tmp_path):
    (tmp_path / "rootfs").mkdir()
    with open(tmp_path / "config.json", "w") as f:
        f.write('{"ociVersion": "1.0.0", "x": "' + "a" * (20 << 20) + '"}')
    p = run("validate", "--bundle", tmp_path)
    assert p.returncode == 1 and "Traceback" not in p.stderr


@pytest.mark.unit
def test_validate_official_documents():
    """validate: each official bad config exits non-zero naming the field; each good one 0."""
    docs = SHARED_SPEC / "schema" / "test" / "config"
    if not docs.exists():
        pytest.skip("../shared/runtime-spec-v1.3.0 is absent")
    from pyrunc.config.schema.messages import schema_problems

    for kind in ("good", "bad"):
        for doc in sorted((docs / kind).glob("*.json")):
            try:
                config = json.loads(doc.read_text())
            except ValueError:
                assert kind == "bad"  # not even JSON: load_config's error, tested above
                continue
            problems = schema_problems(config)
            assert bool(problems) == (kind == "bad"), (doc.name, problems)
            if kind == "bad":
                assert all(p.startswith("/") and ": " in p for p in problems)


def test_validate_cli_prints_pointer(tmp_path):
    from pyrunc.config.default import default_config

    c = default_config()
    c["linux"]["namespaces"][2]["type"] = "foo"
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(c))
    p = run("validate", "--bundle", tmp_path)
    assert p.returncode == 1
    assert "/linux/namespaces/2/type: " in p.stdout
    c["linux"]["namespaces"][2]["type"] = "ipc"
    (tmp_path / "config.json").write_text(json.dumps(c))
    assert run("validate", "--bundle", tmp_path).returncode == 0


@pytest.mark.unit
def test_cli_import_is_light():
    """jsonschema and pyroute2 are imported only when their work runs."""
    p = subprocess.run([sys.executable, "-X", "importtime", "-c", "import pyrunc.cli"],
                       capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0
    mods = {l.split("|")[-1].strip() for l in p.stderr.splitlines() if "|" in l}
    for heavy in ("jsonschema", "pyroute2", "argparse", "subprocess"):
        assert heavy not in mods, heavy


# What this runtime refuses on purpose in documents the schema accepts: spec versions
# outside 1.0.0-1.3.x (the supported range), and netDevices without a network
# namespace to move them into (config-linux.md: the runtime MUST check the move is possible).
RUNTIME_CONSTRAINTS = ("unsupported runtime-spec version", "needs a network namespace")


def test_validate_cli_on_official_documents(tmp_path):
    docs = SHARED_SPEC / "schema" / "test" / "config"
    if not docs.exists():
        pytest.skip("../shared/runtime-spec-v1.3.0 is absent")
    for kind in ("good", "bad"):
        for doc in sorted((docs / kind).glob("*.json")):
            b = tmp_path / f"{kind}-{doc.stem}"
            (b / "rootfs").mkdir(parents=True)
            (b / "config.json").write_bytes(doc.read_bytes())
            schema_only = run("validate", "--schema-only", "--bundle", b)
            full = run("validate", "--bundle", b)
            assert "Traceback" not in full.stderr + schema_only.stderr
            if kind == "good":
                assert schema_only.returncode == 0, (doc.name, schema_only.stdout)
                problems = [l for l in full.stdout.splitlines() if l.startswith("/")]
                assert full.returncode == 0 or all(any(c in l for c in RUNTIME_CONSTRAINTS)
                                                   for l in problems), (doc.name, full.stdout)
            else:
                assert schema_only.returncode == 1 and full.returncode == 1, doc.name
                try:
                    json.loads(doc.read_text())
                except ValueError:
                    continue  # not JSON: the one-line load error names the file instead
                assert any(l.startswith("/") and ": " in l for l in full.stdout.splitlines()), doc.name


def test_failed_command_writes_exactly_one_json_line(tmp_path):
    """podman reads a failed command's --log file as one JSON document: warnings that
    came before the error (here: a failing poststop hook) must not be in it."""
    from support.host import busybox_path
    from pyrunc.tooling.bundle import make_rootfs
    from pyrunc.config.default import default_config

    make_rootfs(str(tmp_path / "rootfs"), busybox_path())
    c = default_config()
    c["process"].update(terminal=False, args=["true"])
    c["linux"]["cgroupsPath"] = "pyrunc-test-log/x"
    c["hooks"] = {"createRuntime": [{"path": "/bin/false"}], "poststop": [{"path": "/bin/false"}]}
    (tmp_path / "config.json").write_text(json.dumps(c))
    log = tmp_path / "log.json"
    p = run("--root", tmp_path / "state", "--log", log, "--log-format", "json", "create",
            "--bundle", tmp_path, "x")
    assert p.returncode == 1
    doc = json.loads(log.read_text())  # one document
    assert doc["level"] == "error" and "createRuntime" in doc["msg"]


@pytest.mark.unit
def test_init_pipe_reads_the_error_of_a_peer_that_died_with_unread_input():
    """A container side that fails while a message of ours is unread: its error, not
    "Connection reset by peer" (the kernel reports ECONNRESET first)."""
    from pyrunc.process import channel

    ours, theirs = channel.pair()
    channel.send(theirs, "error", msg="the real reason")
    channel.send(ours, "go")  # never read
    theirs.close()
    with pytest.raises(channel.InitError, match="the real reason"):
        channel.recv(ours)
    ours.close()
