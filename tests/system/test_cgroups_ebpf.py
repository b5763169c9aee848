"""The cgroup v2 device program (pyrunc.cgroups.v2.ebpf).

1. Its verdicts, run by a small interpreter of the instructions it emits, are the v1
   devices controller's for the same rules (the emulator: later rules win, defaults
   last), for every device class, number and access combination that matters.
2. The kernel loads it and enforces it: a process in a cgroup with the program attached
   can open/mknod what the rules allow and gets EPERM for the rest; replacing the rules
   leaves one program attached. On a hybrid host this runs in a test cgroup of the
   unified hierarchy (/sys/fs/cgroup/unified accepts device programs too, and the kernel
   runs them before the v1 devices controller), on a v2 host in a test cgroup below the
   parent of this process's own (where the runtime puts containers).
(The container-level test, a pyrunc container against runc, is in test_cgroups_v2_live.py.)
"""
import errno
import os
import struct
import uuid

import pytest
from hypothesis import assume, given, settings, strategies as st

from pyrunc.cgroups.base import is_unified

from pyrunc.cgroups.v2 import ebpf
from pyrunc.cgroups.devices import WILDCARD, Emulator, Rule, default_rules, rules_from_oci, \
    target_emulator
from pyrunc.errors import PyruncError
from support.host import attached_device_programs

pytestmark = pytest.mark.cgroups

ACC = {"m": 1, "r": 2, "w": 4}


def run_program(prog, dtype, major, minor, access):
    """Interpret the instructions device_filter emits; returns R0."""
    ctx = struct.pack("<III", (access << 16) | (2 if dtype == "c" else 1), major, minor)
    regs = [0] * 11
    pc = 0
    insns = [struct.unpack("<BBhi", prog[i:i + 8]) for i in range(0, len(prog), 8)]
    m32 = 0xFFFFFFFF
    for _ in range(10000):
        code, regs_b, off, imm = insns[pc]
        dst, src = regs_b & 0xF, regs_b >> 4
        pc += 1
        if code == 0x61:
            assert src == 1
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == 0x54:
            regs[dst] = (regs[dst] & imm) & m32
        elif code == 0x74:
            regs[dst] = (regs[dst] & m32) >> imm
        elif code == 0xb4:
            regs[dst] = imm & m32
        elif code == 0xbc:
            regs[dst] = regs[src] & m32
        elif code == 0x55:
            if regs[dst] != imm & ((1 << 64) - 1):  # imm sign-extended to 64 bits
                pc += off
        elif code == 0x5d:
            if regs[dst] != regs[src]:
                pc += off
        elif code == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("no exit")


def v1_allows(emu, dtype, major, minor, perms):
    """The v1 devices controller's check (security/device_cgroup.c match_exception)."""
    for (t, ma, mi), have in emu.rules.items():
        if t != dtype or (ma != WILDCARD and ma != major) or (mi != WILDCARD and mi != minor):
            continue
        if all(p in have for p in perms):
            return not emu.default_allow
    return emu.default_allow


ACCESSES = ["m", "r", "w", "rw", "rwm", "mr"]
DEVICES = [("c", 1, 3), ("c", 1, 5), ("c", 5, 2), ("c", 136, 7), ("c", 10, 200), ("c", 10, 229),
           ("b", 8, 0), ("b", 7, 1), ("c", 4, 1), ("b", 1, 3)]


def check_same(emu, devices=DEVICES):
    prog = ebpf.device_filter(emu)
    for dtype, ma, mi in devices:
        for perms in ACCESSES:
            acc = sum(ACC[p] for p in perms)
            want = v1_allows(emu, dtype, ma, mi, perms)
            assert run_program(prog, dtype, ma, mi, acc) == int(want), (emu.rules, dtype, ma, mi, perms)


@pytest.mark.unit
def test_defaults_program():
    emu = target_emulator([{"allow": False, "access": "rwm"}])
    check_same(emu)
    prog = ebpf.device_filter(emu)
    assert run_program(prog, "c", 1, 3, ACC["r"] | ACC["w"]) == 1       # /dev/null
    assert run_program(prog, "b", 8, 0, ACC["m"]) == 1                  # b *:* m
    assert run_program(prog, "b", 8, 0, ACC["r"]) == 0
    assert run_program(prog, "c", 10, 229, ACC["r"] | ACC["w"]) == 0    # /dev/fuse


@pytest.mark.unit
def test_later_rules_win():
    allow_fuse = {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}
    deny_all = {"allow": False, "access": "rwm"}
    emu = target_emulator([deny_all, allow_fuse])
    check_same(emu)
    assert run_program(ebpf.device_filter(emu), "c", 10, 229, ACC["r"]) == 1
    emu = target_emulator([allow_fuse, deny_all])  # the deny-all comes later: it wins
    check_same(emu)
    assert run_program(ebpf.device_filter(emu), "c", 10, 229, ACC["r"]) == 0
    # an allow-all default with a deny exception (blacklist mode)
    emu = Emulator.from_rules(rules_from_oci([{"allow": True, "access": "rwm"},
                                              {"allow": False, "type": "b", "access": "rw"}]))
    assert emu.default_allow
    check_same(emu)
    # allow-all then the defaults (which only add allows): everything is allowed
    emu = target_emulator([{"allow": True, "access": "rwm"}])
    assert run_program(ebpf.device_filter(emu), "b", 8, 0, 7) == 1


@pytest.mark.unit
def test_hole_in_a_wildcard_is_refused():
    with pytest.raises(PyruncError, match=r"^cgroup devices: .*punch a hole"):
        target_emulator([{"allow": False, "access": "rwm"},
                         {"allow": True, "type": "c", "access": "rwm"},
                         {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"}])


RULE = st.builds(
    lambda t, ma, mi, perms, allow: Rule(t, ma, mi, perms, allow),
    st.sampled_from(["a", "b", "c", "c"]), st.sampled_from([WILDCARD, 1, 5, 8, 10, 136]),
    st.sampled_from([WILDCARD, 0, 2, 3, 5, 229]),
    st.sampled_from(["r", "w", "m", "rw", "rm", "wm", "rwm"]), st.booleans())


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(st.lists(RULE, max_size=8))
def test_program_matches_the_v1_controller(rules):
    try:
        emu = Emulator.from_rules(rules + default_rules())
    except PyruncError:
        assume(False)  # refused as runc refuses it (a hole in a wildcard): not an example
    devs = sorted({(t, ma, mi) for t in "bc" for ma in (1, 5, 8, 10, 136, 300)
                   for mi in (0, 2, 3, 5, 229, 7000)})
    check_same(emu, devs)


# ----------------------------------------------------------------------- the kernel


def unified_test_dir():
    """A fresh test cgroup where device programs can be attached, or skip."""
    if is_unified():
        own = ""
        for line in open("/proc/self/cgroup"):
            if line.startswith("0::"):
                own = line[3:].strip()
        base = os.path.join("/sys/fs/cgroup", os.path.dirname(own.rstrip("/")).lstrip("/"))
    else:
        base = "/sys/fs/cgroup/unified"
        if not os.path.exists(os.path.join(base, "cgroup.procs")):
            pytest.skip("no unified hierarchy at /sys/fs/cgroup/unified")
    d = os.path.join(base, f"pyrunc-test-ebpf-{uuid.uuid4().hex[:8]}")
    os.mkdir(d)
    return d


def probe(cgdir, tmpdir):
    """Fork a child into cgdir; it tries to open and mknod devices. {what: errno name or ok}"""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            fd = os.open(os.path.join(cgdir, "cgroup.procs"), os.O_WRONLY)
            os.write(fd, b"0")
            os.close(fd)
            out = []
            for name, path, flags in (("open null", "/dev/null", os.O_RDWR),
                                      ("open zero", "/dev/zero", os.O_RDONLY),
                                      ("open full", "/dev/full", os.O_RDONLY)):
                try:
                    os.close(os.open(path, flags))
                    out.append(f"{name}=ok")
                except OSError as e:
                    out.append(f"{name}={errno.errorcode[e.errno]}")
            for name, kind, dev in (("mknod null", 0o020000, os.makedev(1, 3)),
                                    ("mknod zero", 0o020000, os.makedev(1, 5)),
                                    ("mknod blk", 0o060000, os.makedev(7, 250))):
                p = os.path.join(tmpdir, name.replace(" ", "-"))
                try:
                    os.mknod(p, 0o600 | kind, dev)
                    out.append(f"{name}=ok")
                    os.unlink(p)
                except OSError as e:
                    out.append(f"{name}={errno.errorcode[e.errno]}")
            os.write(w, ";".join(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 4096):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return dict(kv.split("=") for kv in data.decode().split(";"))


def test_kernel_enforces_the_program_and_update_replaces_it(tmp_path):
    d = unified_test_dir()
    try:
        deny_all = {"allow": False, "access": "rwm"}
        allow_null = {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
        allow_zero_r = {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"}
        # only /dev/null, fully; nothing else (no defaults: mknod denied too)
        ebpf.load_attach(d, ebpf.device_filter(Emulator.from_rules(rules_from_oci([deny_all, allow_null]))))
        assert len(attached_device_programs(d)) == 1
        assert probe(d, str(tmp_path)) == {
            "open null": "ok", "open zero": "EPERM", "open full": "EPERM",
            "mknod null": "ok", "mknod zero": "EPERM", "mknod blk": "EPERM"}
        first = attached_device_programs(d)
        # update: new rules; the old program is gone, the new one alone decides
        ebpf.load_attach(d, ebpf.device_filter(Emulator.from_rules(rules_from_oci([deny_all, allow_zero_r]))))
        now = attached_device_programs(d)
        assert len(now) == 1 and now != first
        assert probe(d, str(tmp_path)) == {
            "open null": "EPERM", "open zero": "ok", "open full": "EPERM",
            "mknod null": "EPERM", "mknod zero": "EPERM", "mknod blk": "EPERM"}
        # runc's defaults: every mknod, no block device open
        ebpf.load_attach(d, ebpf.device_filter(target_emulator([deny_all])))
        assert len(attached_device_programs(d)) == 1
        assert probe(d, str(tmp_path)) == {
            "open null": "ok", "open zero": "ok", "open full": "ok",
            "mknod null": "ok", "mknod zero": "ok", "mknod blk": "ok"}
    finally:
        os.rmdir(d)
