"""Where the runtime-spec v1.3.0 text says what to do, pyrunc does it, also where runc
(Debian's 1.1.5, run alongside) does otherwise; each test says where runc differs."""
import errno
import json
import os
import uuid
from pathlib import Path

import pytest

from test_lifecycle import wait_for

UNKNOWN_CAPS = ["CAP_PYRUNC_UNKNOWN", "CAP_ALSO_NOT_A_CAP"]


def _cid():
    return f"t-{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------ hook state


def test_create_phase_hooks_see_status_created(rt, runc_rt, tmp_path):
    # runtime.md "Lifecycle": prestart, createRuntime and createContainer hooks run at
    # steps 3-5, after the create operation's step 2; runtime.md "State": "creating" is
    # step 2, "created" after it. runc 1.1.5 passes "creating" (a deviation).
    rec = tmp_path / "rec.sh"
    rec.write_text('#!/bin/sh\ncat > "$1"\n')
    rec.chmod(0o755)
    seen = {}
    for name, r in (("pyrunc", rt), ("runc", runc_rt)):
        out = tmp_path / f"out-{name}"
        out.mkdir()

        def edit(c, out=out):
            c["hooks"] = {k: [{"path": str(rec), "args": ["rec", f"{out}/{k}.json"]}]
                          for k in ("prestart", "createRuntime", "createContainer")}

        cid = _cid()
        r.create(cid, r.bundle(["true"], edit=edit))
        seen[name] = {k: json.loads((out / f"{k}.json").read_text())["status"]
                      for k in ("prestart", "createRuntime", "createContainer")}
        assert r.state(cid)["status"] == "created"
    assert seen["pyrunc"] == dict.fromkeys(("prestart", "createRuntime", "createContainer"), "created")
    assert set(seen["runc"].values()) == {"creating"}  # runc's deviation, for the record


# ------------------------------------------------------------------ device rules

V1_DEVICES = Path("/sys/fs/cgroup/devices")
RULES = [{"allow": False, "access": "rwm"},
         {"allow": True, "type": "c", "major": 42, "minor": 7, "access": "rw"},
         {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"},
         {"allow": True, "type": "c", "major": 4, "access": "rwm"},
         {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"}]


@pytest.mark.skipif(not V1_DEVICES.is_dir(), reason="needs the cgroup v1 devices controller")
def test_device_rules_applied_in_the_listed_order(rt, runc_rt):
    # config-linux.md "Allowed Device List": "The runtime MUST apply entries in the listed
    # order." As runc builds them: the config's entries, then the default allowances; the
    # kernel lists exceptions in the order they were added. runc 1.1.5 ends in the same
    # state but writes it sorted by type and numbers (its devices.list is sorted).
    def edit(c):
        c["linux"]["resources"]["devices"] = RULES

    args = ["cat", "/sys/fs/cgroup/devices/devices.list"]
    ours, theirs = rt.output_of(args, edit=edit).splitlines(), runc_rt.output_of(args, edit=edit).splitlines()
    assert sorted(ours) == sorted(theirs)
    assert ours == ["c 42:7 rw", "b 8:0 r", "c 4:* rwm", "c 1:3 rwm",  # the config's, c 1:3 +wm from
                    "c *:* m", "b *:* m", "c 1:8 rwm", "c 1:7 rwm",      # its default, then the
                    "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm", "c 136:* rwm",  # other defaults
                    "c 5:2 rwm", "c 10:200 rwm"]
    assert theirs != ours  # runc: sorted
