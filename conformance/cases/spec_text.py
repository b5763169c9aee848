"""Clauses where runc 1.1.5 and the spec text part ways: capabilities that cannot be
granted, the state create-phase hooks read, the device list's order, and what runs under
the seccomp filter. Where runc departs from the text, the case says so (runc_deviation)."""
from __future__ import annotations

import json
import os

from conformance.bundle import CGROUP_MOUNT, expect, fail
from conformance.cases import case
from conformance.cases.cgroups import need_v1, read_inside

UNKNOWN_CAP = "CAP_CONFORMANCE_NOT_A_CAPABILITY"


@case("capabilities-ungrantable-warn", "config.md#linux-process")
def capabilities_ungrantable(ctx):
    """A capability the runtime cannot map is logged as a warning, and the container runs with the others.

    config.md#linux-process: capabilities "Any value which cannot be mapped to a relevant
    kernel interface, or cannot be granted otherwise MUST be logged as a warning by the
    runtime. Runtimes SHOULD NOT fail if the container configuration requests capabilities
    that cannot be granted".
    """
    b = ctx.bundle(["sh", "-c", "grep ^CapEff: /proc/self/status > /out/caps"])
    caps = b.process["capabilities"]
    for kind in ("bounding", "effective", "permitted"):
        caps[kind].append(UNKNOWN_CAP)
    c = ctx.create(b, ok=False)
    if not c.result.ok:
        fail(f"create failed on an unknown capability: {c.result.reason()}")
    log = c.result.err + c.result.out
    expect(UNKNOWN_CAP in log and "warn" in log.lower(),
           f"no warning naming {UNKNOWN_CAP} from create: {log.strip()[:160]!r}")
    ctx.start(c.id)
    ctx.wait_stopped(c)
    expect(read_inside(b, "caps") == "CapEff:\t0000000020000420",
           f"the known capabilities are not granted: {read_inside(b, 'caps')!r}")


@case("hooks-create-phase-status", "runtime.md#lifecycle",
      runc_deviation="runc 1.1.5 passes status \"creating\" to prestart, createRuntime and "
                     "createContainer hooks")
def hooks_create_phase_status(ctx):
    """prestart, createRuntime and createContainer hooks read a state whose status is "created".

    runtime.md#lifecycle: the create operation is step 2; "the prestart hooks MUST be invoked
    by the runtime" at step 3, createRuntime at 4, createContainer at 5. runtime.md#state:
    "creating: the container is being created (step 2 in the lifecycle)", "created: the
    runtime has finished the create operation (after step 2 in the lifecycle)".
    """
    from conformance.cases.hooks import add_rec, hook_bundle, hook_state

    b = hook_bundle(ctx)
    kinds = ("prestart", "createRuntime", "createContainer")
    for kind in kinds:
        add_rec(b, kind)
    ctx.create(b)
    got = {k: hook_state(b, k).get("status") for k in kinds}
    wrong = {k: s for k, s in got.items() if s != "created"}
    expect(not wrong, f"hooks read status {wrong}, expected 'created'")


DEV_RULES = [{"allow": False, "access": "rwm"},
             {"allow": True, "type": "c", "major": 42, "minor": 7, "access": "rw"},
             {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"},
             {"allow": True, "type": "c", "major": 4, "access": "rwm"}]


@case("devices-list-in-listed-order", "config-linux.md#allowed-device-list",
      runc_deviation="runc 1.1.5 writes the resulting rules sorted by type and numbers, so "
                     "its devices.list is sorted, not in the listed order")
def devices_listed_order(ctx):
    """The cgroup v1 devices.list shows the config's entries in the config's order (the kernel lists them as written).

    config-linux.md#allowed-device-list: "The runtime MUST apply entries in the listed order."
    """
    need_v1("devices")
    b = ctx.bundle(["sh", "-c", "cat /sys/fs/cgroup/devices/devices.list > /out/list"])
    b.config["mounts"].append(dict(CGROUP_MOUNT))
    b.linux["resources"]["devices"] = DEV_RULES
    ctx.run(b)
    lines = read_inside(b, "list").splitlines()
    want = ["c 42:7 rw", "b 8:0 r", "c 4:* rwm"]
    expect(lines[:3] == want, f"devices.list starts {lines[:3]}, expected the config's {want}")


# the runtime's own syscalls on its way to execve (cwd check, exec.fifo via /proc,
# closing descriptors, signal defaults, ...); `echo` of static busybox needs none
RUNTIME_SYSCALLS = ["getcwd", "close_range", "close", "fstat", "newfstatat", "statx", "openat",
                    "open", "openat2", "readlinkat", "rt_sigaction", "rt_sigprocmask", "chdir",
                    "fchdir", "umask", "getdents64", "read", "lseek", "fcntl", "dup2", "dup3",
                    "sendmsg", "recvmsg", "socket", "connect", "wait4", "clone", "clone3",
                    "mount", "umount2", "pivot_root", "chroot", "capget"]


def _seccomp_last(ctx, nnp):
    b = ctx.bundle(["echo", "ok"], cwd="/tmp")
    b.process["noNewPrivileges"] = nnp
    b.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                          "syscalls": [{"names": RUNTIME_SYSCALLS, "action": "SCMP_ACT_ERRNO"}]}
    c = ctx.create(b, ok=False)
    if not c.result.ok:
        fail(f"create failed: {c.result.reason()}")
    ctx.start(c.id)
    ctx.wait_stopped(c)
    out = c.result.out_path.read_text()
    expect(out == "ok\n", f"the container's program did not run (its output: {out!r}; "
                          f"create said {c.result.reason()!r})")


SECCOMP_DEVIATION = ("runc 1.1.5 opens exec.fifo, reads /proc/self/fd and (without "
                     "noNewPrivileges) checks the cwd under the container's filter")


@case("seccomp-last-step", "config-linux.md#seccomp", runc_deviation=SECCOMP_DEVIATION)
def seccomp_last_step(ctx):
    """A filter denying what the runtime itself still does in the container (getcwd, openat, close_range, fstat...) does not stop the container.

    config-linux.md#seccomp: the filter is "application sandboxing" of the container's
    process; runtime.md#lifecycle step 8: the runtime executes the user-specified program.
    Syscalls the runtime makes before that are not the program's.
    """
    _seccomp_last(ctx, True)


@case("seccomp-last-step-without-nnp", "config-linux.md#seccomp", runc_deviation=SECCOMP_DEVIATION)
def seccomp_last_step_without_nnp(ctx):
    """The same without noNewPrivileges (loading the filter then needs CAP_SYS_ADMIN, which the config does not grant).

    config-linux.md#seccomp, config.md#linux-process (noNewPrivileges).
    """
    _seccomp_last(ctx, False)


def _json_lines(text):
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


@case("capabilities-warning-in-json-log", "config.md#linux-process")
def capabilities_warning_json_log(ctx):
    """With runc's --log FILE --log-format json, the capability warning is a JSON line of level warning in FILE.

    config.md#linux-process ("MUST be logged as a warning"), through runc's logging flags.
    """
    log = ctx.tmp / "log.json"
    b = ctx.bundle(["true"])
    b.process["capabilities"]["bounding"].append(UNKNOWN_CAP)
    b.save()
    cid = ctx.new_id()
    ctx.ids.append(cid)
    res = ctx.rt("create", "--bundle", str(b.path), cid,
                 global_args=("--log", str(log), "--log-format", "json"))
    expect(res.ok, f"create failed: {res.reason()}")
    lines = _json_lines(log.read_text() if os.path.exists(log) else "")
    warn = [ln for ln in lines if ln.get("level") in ("warning", "warn") and UNKNOWN_CAP in str(ln.get("msg"))]
    expect(warn, f"no JSON warning naming {UNKNOWN_CAP} in the --log file: {lines[:3]}")
