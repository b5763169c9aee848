"""Device rules on cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the
container's cgroup (cgroup v2 has no devices controller; the kernel runs the programs
attached to a cgroup and its ancestors on every device access: mknod, open).

The program is generated as runc's devicefilter.go (itself after crun's ebpf.c): the
rules go through the v1 devices emulator first (pyrunc.cgroups.devices: the config's
rules in order, then runc's defaults, later rules winning, holes in wildcard rules
refused), and what it leaves - a default verdict and exceptions that all have the
other verdict - becomes one block per exception and the default at the end.

Attaching follows runc's ebpf_linux.go: the new program is attached with
BPF_F_ALLOW_MULTI, then every program attached before to the same cgroup is detached
(on `update`: the old filter of this runtime). Between the two both run and both must
allow, so the change never lets more through than either.

Context of the program: R1 points at struct bpf_cgroup_dev_ctx { u32 access_type
(access << 16 | type); u32 major; u32 minor; }; return 1 allows, 0 denies (EPERM).
"""
import errno
import os
import struct

from pyrunc.cgroups.devices import Emulator, WILDCARD
from pyrunc.errors import PyruncError
from pyrunc.native import constants as C

# include/uapi/linux/bpf.h
_DEV_BLOCK, _DEV_CHAR = 1, 2
_ACC = {"m": 1, "r": 2, "w": 4}
_R0, _R1, _R2, _R3, _R4, _R5 = range(6)
# opcodes (class | op | source)
_LDX_MEM_W = 0x61     # BPF_LDX | BPF_MEM | BPF_W
_ALU32_AND_K = 0x54   # BPF_ALU | BPF_AND | BPF_K
_ALU32_RSH_K = 0x74   # BPF_ALU | BPF_RSH | BPF_K
_ALU32_MOV_K = 0xb4   # BPF_ALU | BPF_MOV | BPF_K
_ALU32_MOV_X = 0xbc   # BPF_ALU | BPF_MOV | BPF_X
_JNE_K = 0x55         # BPF_JMP | BPF_JNE | BPF_K
_JNE_X = 0x5d         # BPF_JMP | BPF_JNE | BPF_X
_EXIT = 0x95          # BPF_JMP | BPF_EXIT

LICENSE = "Apache"  # runc's; the kernel wants a string, GPL-only helpers are not used


def _insn(code, dst=0, src=0, off=0, imm=0):
    # struct bpf_insn { u8 code; u8 dst_reg:4, src_reg:4; s16 off; s32 imm; } (little endian)
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _s32(v):
    return v - (1 << 32) if v >= 1 << 31 else v


def _block(key, perms, allow):
    """The instructions for one exception: when the access matches, return allow."""
    dtype, major, minor = key
    checks = [(_JNE_K, _R2, 0, _DEV_CHAR if dtype == "c" else _DEV_BLOCK)]
    access = 0
    for p in perms:
        access |= _ACC[p]
    if access != 7:
        # R1 (free once the context is read) = R3 & access; all asked bits allowed?
        checks += [(_ALU32_MOV_X, _R1, _R3, 0), (_ALU32_AND_K, _R1, 0, access),
                   (_JNE_X, _R1, _R3, 0)]
    if major != WILDCARD:
        checks.append((_JNE_K, _R4, 0, _s32(major)))
    if minor != WILDCARD:
        checks.append((_JNE_K, _R5, 0, _s32(minor)))
    n = len(checks) + 2  # then: mov r0, verdict; exit
    out = []
    for i, (code, dst, src, imm) in enumerate(checks):
        # a failed check jumps past this block (offsets count from the next insn)
        off = n - 1 - i if code in (_JNE_K, _JNE_X) else 0
        out.append(_insn(code, dst, src, off, imm))
    out.append(_insn(_ALU32_MOV_K, _R0, imm=1 if allow else 0))
    out.append(_insn(_EXIT))
    return out


def device_filter(emulator):
    """The program (bytes of struct bpf_insn) enforcing an Emulator's device state."""
    if not isinstance(emulator, Emulator):
        raise TypeError("device_filter wants a devices.Emulator")
    for (t, ma, mi) in emulator.rules:
        if t not in ("b", "c"):
            raise PyruncError(f'cgroup devices: invalid device type "{t}" in an exception')
        for v in (ma, mi):
            if v != WILDCARD and not 0 <= v <= 0xFFFFFFFF:
                raise PyruncError(f"cgroup devices: invalid device number {v}")
    insns = [
        _insn(_LDX_MEM_W, _R2, _R1, 0),       # R2 = access_type
        _insn(_ALU32_AND_K, _R2, imm=0xFFFF),  # R2 = device type
        _insn(_LDX_MEM_W, _R3, _R1, 0),
        _insn(_ALU32_RSH_K, _R3, imm=16),      # R3 = access asked (m, r, w bits)
        _insn(_LDX_MEM_W, _R4, _R1, 4),        # R4 = major
        _insn(_LDX_MEM_W, _R5, _R1, 8),        # R5 = minor
    ]
    # Every exception has the verdict opposite to the default (the emulator keeps no
    # others), so their order does not matter; sorted for a stable program.
    for key in sorted(emulator.rules):
        insns += _block(key, emulator.rules[key], not emulator.default_allow)
    insns += [_insn(_ALU32_MOV_K, _R0, imm=1 if emulator.default_allow else 0), _insn(_EXIT)]
    return b"".join(insns)


def attached_programs(dirfd):
    """Ids of the device programs attached to this cgroup itself."""
    from pyrunc.native import syscalls as sc

    return sc.bpf_prog_query(dirfd, C.BPF_CGROUP_DEVICE)


def load_attach(dirpath, program):
    """Load ``program`` and attach it to the cgroup directory, then detach whatever
    device program was attached there before. OSError on failure, with the call."""
    from pyrunc.native import syscalls as sc

    dirfd = os.open(dirpath, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        old = attached_programs(dirfd)
        prog = _load(program)
        try:
            sc.bpf_prog_attach(dirfd, prog, C.BPF_CGROUP_DEVICE, C.BPF_F_ALLOW_MULTI)
            for pid in old:
                try:
                    ofd = sc.bpf_prog_get_fd_by_id(pid)
                except OSError as e:
                    # detached meanwhile; or an LSM keeps it from us (runc skips those:
                    # another device program can only deny more)
                    if e.errno in (errno.ENOENT, errno.EACCES, errno.EPERM):
                        continue
                    raise
                try:
                    sc.bpf_prog_detach(dirfd, ofd, C.BPF_CGROUP_DEVICE)
                except OSError as e:
                    if e.errno != errno.ENOENT:
                        raise
                finally:
                    os.close(ofd)
        finally:
            os.close(prog)  # the attachment holds the program
    finally:
        os.close(dirfd)


def _load(program):
    from pyrunc.native import syscalls as sc

    try:
        return sc.bpf_prog_load(C.BPF_PROG_TYPE_CGROUP_DEVICE, program, LICENSE)
    except OSError as e:
        if e.errno != errno.EPERM:
            raise
    # Kernels before 5.11 charge programs to RLIMIT_MEMLOCK (runc raises it too); the
    # container's processes are forked already and do not inherit it.
    try:
        sc.setrlimit(C.RLIMITS["RLIMIT_MEMLOCK"], (1 << 64) - 1, (1 << 64) - 1)
    except OSError:
        pass
    return sc.bpf_prog_load(C.BPF_PROG_TYPE_CGROUP_DEVICE, program, LICENSE, log_size=65536)


def probe():
    """Load (and drop) an allow-all device program: OSError if this kernel or this
    process cannot (no CONFIG_CGROUP_BPF, no CAP_BPF/CAP_SYS_ADMIN, a seccomp filter)."""
    os.close(_load(device_filter(Emulator(default_allow=True))))


def in_user_namespace():
    """True when this process is in a user namespace other than the initial one (runc's
    userns.RunningInUserNS: uid_map is not the identity of the whole range)."""
    try:
        with open("/proc/self/uid_map", "rb") as f:
            text = f.read().decode()
    except OSError:
        return False
    return text.split() != ["0", "0", "4294967295"]
