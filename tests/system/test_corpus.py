"""The corpus (tests/corpus/*.json, README.md there): configs written by real engines, each
run by runc and by pyrunc in the same test with a busybox rootfs: runc runs it, so pyrunc
runs it, with the same exit code and the same observations from inside (ids, capability
sets, seccomp mode, hostname, limits, oom score, the mount points, masked paths)."""
import json
import shutil
import uuid
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
CONFIGS = sorted(p.stem for p in CORPUS.glob("*.json"))

OBSERVE = ("id; grep -E '^(CapBnd|CapEff|Seccomp|NoNewPrivs):' /proc/self/status; hostname; ulimit -n; "
           "cat /proc/self/oom_score_adj; awk '{print $5}' /proc/self/mountinfo | sort; "
           "wc -c < /proc/kcore 2>/dev/null || echo no-kcore; touch /proc/sys/x 2>/dev/null || echo procsys-ro; "
           "exit 7")


def _bundle(r, name):
    """The corpus config in a bundle of `r`'s: the busybox rootfs, our command, a cgroup
    of the test's, and the files and dirs its bind mounts name (@BUNDLE@/...)."""
    config = json.loads((CORPUS / f"{name}.json").read_text())
    template = r.bundle(["true"])  # the runtime's busybox rootfs, made once per test
    b = r.tmp / f"corpus-{uuid.uuid4().hex[:8]}"
    b.mkdir()
    shutil.move(str(template / "rootfs"), b / "rootfs")
    for m in config.get("mounts", []):
        src = m.get("source", "")
        if src.startswith("@BUNDLE@/"):
            path = b / src[len("@BUNDLE@/"):]
            if Path(m["destination"]).name in ("shm",) or path.name.startswith("vol-"):
                path.mkdir(exist_ok=True)
            else:
                path.write_text(f"{path.name}\n")
            m["source"] = str(path)
    config["process"].update(args=["sh", "-c", OBSERVE], terminal=False)
    config["linux"]["cgroupsPath"] = f"{r.cgroup_prefix}/{b.name}"
    (b / "config.json").write_text(json.dumps(config))
    return b


@pytest.mark.parametrize("name", CONFIGS)
def test_corpus_config_runs_as_on_runc(rt, runc_rt, name):
    results = []
    for r in (runc_rt, rt):
        b = _bundle(r, name)
        p = r.run(f"c-{uuid.uuid4().hex[:8]}", b, check=False)
        results.append((p.returncode, p.stdout, p.stderr))
    (runc_code, runc_out, runc_err), (code, out, err) = results
    assert runc_code == 7, f"runc does not run {name}: {runc_err}"
    assert code == 7, f"pyrunc does not run {name}: {err}"
    assert out == runc_out
