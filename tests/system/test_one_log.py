"""One log (issue 16, item 5): every warning, the cgroup modules' included, reaches
`--log FILE` in the `--log-format` asked for, as runc 1.1.5's logrus lines do; nothing
of pyrunc's goes through the stdlib `logging` module (heavy, and unconfigured: its
lines bypass --log and --log-format)."""
import ast
import json
import re
import uuid
from pathlib import Path

import pytest

from support.bundles import new_id
from support.paths import REPO

TEXT_LINE = re.compile(r'^time="[^"]+" level=(\w+) msg="(.*)"$')


def _kernel_memory(c):
    # memory.kernel is ignored by both runtimes on both cgroup versions, with a warning
    # (runc: "Kernel memory settings are ignored and will be removed").
    c["linux"]["resources"] = {"memory": {"kernel": 1 << 30, "limit": 64 << 20}}


def _log_lines(path, fmt):
    lines = Path(path).read_text().splitlines()
    if fmt == "json":
        return [json.loads(ln) for ln in lines]
    out = []
    for ln in lines:
        m = TEXT_LINE.match(ln)
        assert m, ln
        out.append({"level": m.group(1), "msg": m.group(2)})
    return out


@pytest.mark.cgroups
@pytest.mark.parametrize("fmt", ["json", "text"])
def test_cgroup_warning_reaches_the_log_file(rt, runc_rt, tmp_path, fmt):
    """The cgroup manager's warning is a line of --log FILE with level "warning", in the
    format asked for, and not on stderr; runc's is too."""
    for name, r in (("pyrunc", rt), ("runc", runc_rt)):
        log = tmp_path / f"{name}-{fmt}.log"
        b = r.bundle(["true"], edit=_kernel_memory)
        cid = new_id("l")
        r.ids.add(cid)
        p = r.cmd("--log", log, "--log-format", fmt, "run", "--bundle", b, cid, check=False)
        assert p.returncode == 0, (name, p.stderr)
        warned = [ln for ln in _log_lines(log, fmt) if ln["level"] == "warning"]
        assert len(warned) == 1 and "kernel" in warned[0]["msg"].lower(), (name, warned)
        assert p.stderr == "", (name, p.stderr)


@pytest.mark.unit
def test_no_stdlib_logging_in_the_runtime():
    """No module of the package imports `logging` (or `warnings`): a warning that took
    that way would miss --log and --log-format (and `logging` costs ~5 ms to import)."""
    found = []
    for path in sorted((REPO / "pyrunc").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            found += [f"{path.relative_to(REPO)}:{node.lineno} {n}" for n in names
                      if n.split(".")[0] in ("logging", "warnings")]
    assert found == []


@pytest.mark.systemd
def test_systemd_driver_warning_reaches_the_json_log(rt, runc_rt, tmp_path):
    """The systemd driver's warning on a device rule systemd cannot express ("*:n") is a
    JSON line of --log FILE, as runc's is (it went to stdlib logging, i.e. plain stderr)."""
    slice_name = f"pyrunctest-{uuid.uuid4().hex[:8]}.slice"
    units = []
    try:
        for name, r in (("pyrunc", rt), ("runc", runc_rt)):
            cid = new_id("l")
            units.append(f"pyrunctest-{cid}.scope")

            def edit(c):
                c["linux"]["cgroupsPath"] = f"{slice_name}:pyrunctest:{cid}"
                c["linux"]["resources"] = {"devices": [
                    {"allow": False, "access": "rwm"},
                    {"allow": True, "type": "c", "minor": 3, "access": "rwm"}]}

            log = tmp_path / f"{name}.log"
            r.ids.add(cid)
            p = r.cmd("--systemd-cgroup", "--log", log, "--log-format", "json", "run",
                      "--bundle", r.bundle(["true"], edit=edit), cid, check=False)
            assert p.returncode == 0, (name, p.stderr)
            warned = [ln for ln in _log_lines(log, "json") if ln["level"] == "warning"]
            assert any("'*:n' device rules" in w["msg"] for w in warned), (name, warned)
            assert "device rules" not in p.stderr, (name, p.stderr)
    finally:
        import subprocess

        for u in units + [slice_name, "pyrunctest.slice"]:
            subprocess.run(["systemctl", "stop", u], capture_output=True, timeout=120)
            subprocess.run(["systemctl", "reset-failed", u], capture_output=True, timeout=60)
