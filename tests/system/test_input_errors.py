"""Any input gives exit 0 or one error line naming what is wrong and where (issue 14,
point 9): no traceback, no "internal error". runc 1.1.5 is the reference where it runs
the same input."""
import json
import os
import subprocess
import uuid

import pytest
from support.checks import one_line_error

only_line = one_line_error  # its old name here, for branches that import it


def write_config(bundle, text):
    (bundle / "config.json").write_text(text, errors="surrogatepass")


@pytest.mark.parametrize("text", ["{", '{"ociVersion": "1.0.0"', "[", '{"a": [1, 2'])
def test_truncated_config_is_one_line_naming_the_file(rt, text):
    b = rt.bundle()
    write_config(b, text)
    for p in (rt.cmd("create", "--bundle", b, "c1", check=False),
              rt.cmd("validate", "--bundle", b, check=False)):
        line = one_line_error(p)
        assert f"{b}/config.json: not valid JSON" in line, line


def test_undecodable_bytes_in_arguments(rt, tmp_path):
    """Arguments that are not UTF-8 (Python sees lone surrogates) reach messages as
    escapes: they used to crash the logger itself with a traceback."""
    b = rt.bundle(["true"])
    bad = os.fsencode(str(tmp_path)) + b"/no/\xff/pid"
    argv = [os.fsencode(rt.binary), b"--root", os.fsencode(rt.root), b"create", b"--bundle",
            os.fsencode(str(b)), b"--pid-file", bad, b"c1"]
    rt.ids.add("c1")
    for extra in ([], [b"--log-format", b"json", b"--log", os.fsencode(str(tmp_path / "log"))]):
        p = subprocess.run(argv[:1] + extra + argv[1:], capture_output=True, text=True,
                           errors="replace", stdin=subprocess.DEVNULL, timeout=60)
        line = one_line_error(p)
        assert "writing pid file" in line and "\\udcff" in line, line
    for entry in (tmp_path / "log").read_text().splitlines():
        assert json.loads(entry)["msg"].startswith("writing pid file")


def test_control_characters_stay_escaped_on_one_line(rt, tmp_path):
    """A mount source of "\\t\\r" appears in the error escaped (a raw \\r used to end the
    line early), in the text log line, the plain line next to a --log file and the
    message of a json log line."""
    def edit(c):
        c["mounts"].append({"destination": "/mnt", "source": "\t\r", "type": "bind", "options": ["bind"]})
    b = rt.bundle(["true"], edit=edit)
    line = one_line_error(rt.create("c1", b, check=False))
    assert "\\t\\r" in line and "level=error" in line, line
    log = tmp_path / "log.json"
    p = rt.cmd("--log-format", "json", "--log", log, "create", "--bundle", b, "c2", check=False)
    assert "\\t\\r" in one_line_error(p)
    (entry,) = log.read_text().splitlines()
    assert "\\t\\r" in json.loads(entry)["msg"]  # the message itself is one line too


def test_lone_surrogates_are_read_as_runc_reads_them(rt, runc_rt):
    """JSON allows "\\ud800" though Unicode text cannot hold it: runc's decoder reads
    U+FFFD (bytes ef bf bd); pyrunc did the same where it used to fail with an internal
    error. `validate` names each such string."""
    script = "hostname | od -An -c; printf %s \"$FOO\" | od -An -c"

    def edit(c):
        c["hostname"] = "x\udc00y"
        c["process"]["env"].append("FOO=a\ud800b")
    outs = []
    for r in (rt, runc_rt):
        b = r.bundle(["sh", "-c", script], edit=edit)
        outs.append(r.run(f"c-{uuid.uuid4().hex[:6]}", b).stdout.split())
    assert outs[0] == outs[1]
    assert outs[0][:4] == ["x", "357", "277", "275"]
    p = rt.cmd("validate", "--bundle", b, check=False)
    assert p.returncode == 1
    assert p.stdout.splitlines() == [
        "/hostname: contains a lone UTF-16 surrogate escape, which is not Unicode text (read as U+FFFD)",
        "/process/env/2: contains a lone UTF-16 surrogate escape, which is not Unicode text (read as U+FFFD)",
    ]


@pytest.mark.parametrize("key,value", [("major", 1 << 40), ("minor", 1 << 20), ("major", 4096), ("minor", -1)])
def test_device_numbers_beyond_the_kernel(rt, key, value):
    """mknod(2) takes 12 bits of major and 20 of minor: beyond them it would make another
    node (runc truncates). A huge one used to be an internal error (OverflowError)."""
    def edit(c):
        c["linux"]["devices"] = [dict({"path": "/dev/fz", "type": "c", "major": 1, "minor": 3}, **{key: value})]
    b = rt.bundle(["true"], edit=edit)
    line = one_line_error(rt.create("c1", b, check=False))
    assert f"/linux/devices/0/{key}: {value} is outside the kernel's {key} numbers" in line, line


def test_largest_device_numbers_work(rt):
    def edit(c):
        c["linux"]["devices"] = [{"path": "/dev/fz", "type": "c", "major": 4095, "minor": (1 << 20) - 1}]
    out = rt.output_of(["stat", "-c", "%t %T", "/dev/fz"], edit=edit)
    assert out.split() == ["fff", "fffff"]


def test_hook_with_a_nul_byte_fails_create_naming_it(rt):
    """execve(2) cannot take it: runc fails the create too ("invalid argument")."""
    def edit(c):
        c["hooks"] = {"createRuntime": [{"path": "/bin/true", "args": ["true", "a\0b"]}]}
    b = rt.bundle(["true"], edit=edit)
    line = one_line_error(rt.create("c1", b, check=False))
    assert "createRuntime hook #0 (/bin/true): args[1] contains a NUL byte" in line, line
    assert rt.cmd("list", "-q").stdout.split() == []


def test_hook_with_a_huge_timeout_runs(rt, tmp_path):
    """A timeout beyond what the clocks hold is no timeout (it was an internal error:
    OverflowError; runc 1.1.5 overflows to a timeout of 0 and fails)."""
    mark = tmp_path / "ran"

    def edit(c):
        c["hooks"] = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", f"touch {mark}"],
                                    "timeout": 1 << 62}]}
    rt.create("c1", rt.bundle(["true"], edit=edit))
    assert mark.exists()


def test_poststop_hook_that_cannot_run_is_a_warning(rt, runc_rt):
    """runtime.md: a failing poststop hook is logged as a warning and the lifecycle goes
    on. `delete --force` used to exit 1 (internal error) after removing the container;
    runc exits 0 too."""
    def edit(c):
        c["hooks"] = {"poststop": [{"path": "/bin/true", "args": ["true", "a\0b"]}]}
    for r in (rt, runc_rt):
        r.create("c1", r.bundle(["true"], edit=edit))
        p = r.cmd("delete", "--force", "c1", check=False)
        assert p.returncode == 0, p.stderr
        assert "c1" not in r.cmd("list", "-q").stdout.split()
        if r is rt:
            (line,) = p.stderr.splitlines()
            assert "level=warning" in line and "poststop hook #0" in line and "NUL" in line, line


def test_warnings_stay_one_line(rt, tmp_path):
    """An unknown capability is a warning (as runc's); one named with a newline kept
    it raw in the json log's msg (found by tests/system/test_fuzz.py)."""
    def edit(c):
        c["process"]["capabilities"]["bounding"].append("CAP_FOO\nBAR")
    b = rt.bundle(["true"], edit=edit)
    p = rt.run("c1", b)
    (line,) = p.stderr.splitlines()
    assert "level=warning" in line and "CAP_FOO\\nBAR" in line, line
    log = tmp_path / "log.json"
    rt.ids.add("c2")
    rt.cmd("--log-format", "json", "--log", log, "run", "--bundle", b, "c2")
    (entry,) = log.read_text().splitlines()
    msg = json.loads(entry)["msg"]
    assert "CAP_FOO\\nBAR" in msg and "\n" not in msg, msg
