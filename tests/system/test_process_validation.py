"""exec --process and update --resources go through the checks of config.json's
process and linux.resources (issue 14, point 8); runc 1.1.5 refuses the same documents
(its JSON decoding takes no -1 or true for a uid)."""
import json
import os
import subprocess
import uuid

import pytest

from support.checks import one_line_error


@pytest.fixture
def running(rt, runc_rt):
    for r in (rt, runc_rt):
        r.run("ex", r.bundle(["sleep", "60"]), "--detach")
    return rt, runc_rt


@pytest.mark.parametrize("change,pointer", [
    ({"user": {"uid": -1, "gid": 0}}, "/user/uid: -1 is less than the minimum of 0"),
    ({"user": {"uid": True, "gid": 0}}, '/user/uid: true is not of type "integer"'),
    ({"user": {"uid": 1.5, "gid": 0}}, '/user/uid: 1.5 is not of type "integer"'),
    ({"user": {"uid": 1 << 32, "gid": 0}}, "/user/uid: 4294967296 is greater than the maximum"),
    ({"user": {"uid": 0xFFFFFFFF, "gid": 0}}, "/user/uid: 4294967295 is (uid_t)-1"),
    ({"cwd": "tmp"}, '/cwd: "tmp" must be an absolute path'),
    ({"cwd": None}, '/: "cwd" is a required property'),  # null is unset (Go), as runc
    ({"terminal": "no"}, '/terminal: "no" is not of type "boolean"'),
    ({"env": ["A\0=b"]}, "/env/0: must not contain a NUL byte"),
    ({"rlimits": [{"type": "RLIMIT_NOFILE", "soft": -1, "hard": 1}]}, "/rlimits/0/soft: -1 is less than the minimum of 0"),
])
def test_exec_process_is_validated(running, tmp_path, change, pointer):
    """It used to run as root with "uid": -1 (and 4294967295), as uid 1 with true; runc
    refuses each with exit 255 too."""
    for r in running:
        mark = f"/tmp/ran-{uuid.uuid4().hex[:6]}"
        proc = {"args": ["touch", mark], "cwd": "/", "env": ["PATH=/bin"],
                "user": {"uid": 0, "gid": 0}}
        proc.update(change)
        pf = tmp_path / "process.json"
        pf.write_text(json.dumps(proc))
        p = r.cmd("exec", "--process", pf, "ex", check=False)
        assert p.returncode == 255, (r.binary, p.stderr)
        if r is running[0]:
            line = one_line_error(p)
            assert f"exec failed: {pf}: {pointer}".replace('"', '\\"') in line, line
        assert r.cmd("exec", "ex", "test", "-e", mark, check=False).returncode == 1


@pytest.mark.parametrize("flags,message", [
    (["--user", "-1"], "invalid --user -1: uids and gids must be in range 0-4294967294"),
    (["--user", "0:4294967295"], "invalid --user 0:4294967295: uids and gids must be in range"),
    (["--additional-gids", "-3"], "invalid --additional-gids -3: uids and gids must be in range"),
    (["--cwd", "tmp"], "exec failed: invalid --cwd tmp: must be an absolute path"),
    (["--env", "A"], "exec failed: invalid --env A: not of the form NAME=value"),
    (["--env", "=x"], "exec failed: invalid --env =x: not of the form NAME=value"),
])
def test_exec_flags_are_validated(running, flags, message):
    rt, runc_rt = running
    for r in running:
        p = r.cmd("exec", *flags, "ex", "true", check=False)
        assert p.returncode == 255, (r.binary, p.stderr)
    assert message.replace('"', '\\"') in one_line_error(rt.cmd("exec", *flags, "ex", "true", check=False))


def test_exec_process_as_runc_reads_it(running, tmp_path):
    """What runc's Go decoding takes, exec takes too (config/compat.py, as create): nulls
    are unset, a missing uid or gid is 0."""
    for r in running:
        for change, ids in [({"user": {}}, "0 0"), ({"user": {"uid": 5}}, "5 0"),
                            ({"user": None, "env": None}, "0 0"), ({"user": {"gid": 7, "uid": None}}, "0 7")]:
            proc = {"args": ["/bin/sh", "-c", "echo $(/bin/id -u) $(/bin/id -g)"], "cwd": "/",
                    "env": ["PATH=/bin"]}
            proc.update(change)
            pf = tmp_path / "process.json"
            pf.write_text(json.dumps(proc))
            p = r.cmd("exec", "--process", pf, "ex")
            assert p.stdout.strip() == ids, (r.binary, change, p.stdout)


def test_exec_process_file_errors(running, tmp_path):
    rt = running[0]
    for content, message in [(None, "cannot open: No such file or directory"), ("{", "not valid JSON"),
                             ("[]", "must contain a JSON object, not an array")]:
        pf = tmp_path / "p.json"
        if content is not None:
            pf.write_text(content)
        p = rt.cmd("exec", "--process", pf, "ex", check=False)
        assert p.returncode == 255
        assert f"exec failed: {pf}: {message}" in one_line_error(p)
        pf.unlink(missing_ok=True)


@pytest.mark.parametrize("doc,message", [
    ({"pids": {"limit": "x"}}, '/pids/limit: "x" is not of type "integer"'),
    ({"pids": {"limit": None}}, '/pids/limit: null is not of type "integer"'),
    ({"memory": []}, '/memory: [] is not of type "object"'),
    ({"cpu": {"shares": True}}, '/cpu/shares: true is not of type "integer"'),
    ({"cpu": {"quota": 10 ** 30}}, "/cpu/quota: 1000000000000000000000000000000 is greater than the maximum"),
])
def test_update_resources_are_validated(rt, tmp_path, doc, message):
    """`update` validated nothing: a null pids limit or a list for memory were taken
    as "no change" (exit 0), true as a cpu share of 1 (an "invalid shares" error)."""
    rt.run("u1", rt.bundle(["sleep", "60"]), "--detach")
    f = tmp_path / "r.json"
    f.write_text(json.dumps(doc))
    line = one_line_error(rt.cmd("update", "--resources", f, "u1", check=False))
    assert f"{f}: {message}".replace('"', '\\"') in line, line
    p = rt.cmd("update", "--resources", "-", "u1", check=False, input=json.dumps(doc))
    assert f"resources (standard input): {message}".replace('"', '\\"') in one_line_error(p)


def test_update_value_that_is_not_utf8(rt):
    rt.run("u1", rt.bundle(["sleep", "60"]), "--detach")
    argv = [os.fsencode(x) for x in (rt.binary, "--root", rt.root, "update", "--cpuset-cpus")]
    p = subprocess.run(argv + [b"\xff", b"u1"], capture_output=True, text=True, errors="replace",
                       stdin=subprocess.DEVNULL, timeout=60)
    assert 'cgroup cpuset: writing \\"\\udcff\\" to cpuset.cpus: Invalid argument' in one_line_error(p)
