"""config-linux.md#seccomp: errno actions (errnoRet, defaultErrnoRet), argument conditions,
kill actions, unknown syscall names, invalid actions.

The filters are loaded with noNewPrivileges true (the default config), i.e. as late as
the runtime can, so the short rule lists below do not depend on what the runtime itself
does after loading them.
"""
from __future__ import annotations

import ctypes
import ctypes.util

from conformance.bundle import expect, failed_create_leftovers, skip
from conformance.cases import case

EPERM_MSG = "Operation not permitted"


def seccomp(default="SCMP_ACT_ALLOW", syscalls=(), **extra) -> dict:
    return dict({"defaultAction": default, "syscalls": [dict(s) for s in syscalls]}, **extra)


def rule(names, action, **kw) -> dict:
    return dict({"names": list(names), "action": action}, **kw)


def out(b, name) -> str:
    return (b.read_out(name) or "").strip()


# mkdir through the mkdir and the mkdirat syscalls (whichever libc/busybox uses)
MKDIR = ("mkdir", "mkdirat")

MKDIR_SCRIPT = """mkdir /tmp/made 2>/out/mkdir.err; echo $? > /out/mkdir.rc
[ -d /tmp/made ] && echo yes > /out/made
echo hello > /tmp/file && cat /tmp/file > /out/other
"""


@case("seccomp-errno-rule", "config-linux.md#seccomp")
def seccomp_errno(ctx):
    """defaultAction ALLOW + an SCMP_ACT_ERRNO rule (errnoRet 1) for mkdir: mkdir fails with EPERM, other syscalls work.

    config-linux.md#seccomp: syscalls[].action "the action for seccomp rules"; errnoRet "the
    errno return code to use"; defaultAction "the default action for seccomp";
    runtime.md#create: "All of the properties configured in config.json except for process
    MUST be applied."
    """
    b = ctx.bundle(["sh", "-c", MKDIR_SCRIPT])
    b.linux["seccomp"] = seccomp(syscalls=[rule(MKDIR, "SCMP_ACT_ERRNO", errnoRet=1)])
    ctx.run(b)
    expect(out(b, "mkdir.rc") not in ("", "0"), "mkdir succeeded under an SCMP_ACT_ERRNO rule for mkdir")
    expect(b.read_out("made") is None, "the directory was created")
    expect(EPERM_MSG in out(b, "mkdir.err"), f"mkdir failed with {out(b, 'mkdir.err')!r}, expected EPERM")
    expect(out(b, "other") == "hello", "other syscalls (open/write/read) did not work under the filter")


ERRNORET_SCRIPT = """chmod 600 /tmp/f 2>/out/chmod.err; echo $? > /out/chmod.rc
rmdir /tmp/d 2>/out/rmdir.err; echo $? > /out/rmdir.rc
"""


@case("seccomp-errnoret", "config-linux.md#seccomp")
def seccomp_errnoret(ctx):
    """errnoRet is the errno an SCMP_ACT_ERRNO rule returns (EROFS given); without errnoRet it is EPERM.

    config-linux.md#seccomp: errnoRet "the errno return code to use. Some actions like
    SCMP_ACT_ERRNO and SCMP_ACT_TRACE allow to specify the errno code to return. ... The
    default is EPERM."
    """
    b = ctx.bundle(["sh", "-c", ERRNORET_SCRIPT])
    b.add_file("/tmp/f", "x\n")
    (b.rootfs / "tmp/d").mkdir()
    b.linux["seccomp"] = seccomp(syscalls=[
        rule(("chmod", "fchmod", "fchmodat"), "SCMP_ACT_ERRNO", errnoRet=30),  # EROFS
        rule(("rmdir", "unlinkat"), "SCMP_ACT_ERRNO"),
    ])
    ctx.run(b)
    expect("Read-only file system" in out(b, "chmod.err"),
           f"chmod under errnoRet 30 failed with {out(b, 'chmod.err')!r} (rc {out(b, 'chmod.rc')}), "
           "expected EROFS 'Read-only file system'")
    expect(EPERM_MSG in out(b, "rmdir.err"),
           f"rmdir under SCMP_ACT_ERRNO without errnoRet failed with {out(b, 'rmdir.err')!r} "
           f"(rc {out(b, 'rmdir.rc')}), expected EPERM")
    expect((b.rootfs / "tmp/d").is_dir(), "the directory was removed")
    expect((b.rootfs / "tmp/f").stat().st_mode & 0o777 == 0o644, "the file mode was changed")


_names: list[str] | None = None


def native_syscall_names() -> list[str]:
    """Every syscall name libseccomp knows for the native architecture (numbers 0..1023)."""
    global _names
    if _names is None:
        path = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            skip("libseccomp is not installed on the host (needed to list syscall names)")
        lib.seccomp_syscall_resolve_num_arch.restype = ctypes.c_void_p
        lib.seccomp_syscall_resolve_num_arch.argtypes = [ctypes.c_uint32, ctypes.c_int]
        libc = ctypes.CDLL(None)
        libc.free.argtypes = [ctypes.c_void_p]
        names = []
        for nr in range(1024):
            p = lib.seccomp_syscall_resolve_num_arch(0, nr)  # SCMP_ARCH_NATIVE
            if p:
                names.append(ctypes.string_at(p).decode())
                libc.free(p)
        _names = names
    return _names


@case("seccomp-default-errnoret", "config-linux.md#seccomp")
def seccomp_default_errnoret(ctx):
    """defaultAction SCMP_ACT_ERRNO with defaultErrnoRet 13: a syscall no rule allows (mkdir) fails with EACCES.

    config-linux.md#seccomp: defaultErrnoRet "the errno return code to use" for the default
    action; defaultAction "the default action for seccomp". Every other syscall libseccomp
    knows is allowed by a rule.
    """
    allowed = [n for n in native_syscall_names() if n not in MKDIR]
    expect(len(allowed) > 200, f"libseccomp resolved only {len(allowed)} syscall names")
    b = ctx.bundle(["sh", "-c", MKDIR_SCRIPT])
    b.linux["seccomp"] = seccomp("SCMP_ACT_ERRNO", [rule(allowed, "SCMP_ACT_ALLOW")], defaultErrnoRet=13)
    ctx.run(b)
    expect(b.read_out("made") is None, "mkdir succeeded although no rule allows it")
    err = out(b, "mkdir.err")
    expect("Permission denied" in err, f"mkdir failed with {err!r}, expected EACCES (defaultErrnoRet 13)")
    expect(out(b, "other") == "hello", "the allowed syscalls (open/write/read) did not work")


@case("seccomp-errnoret-unsupported-action", "config-linux.md#seccomp",
      runc_deviation="runc 1.1.5 accepts defaultErrnoRet/errnoRet with an action that takes "
                     "no errno (SCMP_ACT_ALLOW, SCMP_ACT_KILL) instead of failing")
def seccomp_errnoret_bad_action(ctx):
    """defaultErrnoRet with defaultAction SCMP_ACT_ALLOW, or errnoRet on an SCMP_ACT_KILL rule, makes create fail, leaving nothing.

    config-linux.md#seccomp: defaultErrnoRet / errnoRet: "Some actions like SCMP_ACT_ERRNO
    and SCMP_ACT_TRACE allow to specify the errno code to return. When the action doesn't
    support an errno, the runtime MUST print and error and fail."
    """
    for what, prof in (("defaultErrnoRet with defaultAction SCMP_ACT_ALLOW",
                        seccomp("SCMP_ACT_ALLOW", [rule(MKDIR, "SCMP_ACT_ERRNO")], defaultErrnoRet=5)),
                       ("errnoRet on an SCMP_ACT_KILL rule",
                        seccomp(syscalls=[rule(MKDIR, "SCMP_ACT_KILL", errnoRet=5)]))):
        b = ctx.bundle(["true"])
        b.linux["seccomp"] = prof
        c = ctx.create(b, ok=False)
        expect(not c.result.ok, f"create accepted {what}")
        left = failed_create_leftovers(ctx, c)
        expect(not left, f"the failed create ({what}) left: {'; '.join(left)}")


ARG_SCRIPT = """sleep 100 & p=$!
kill -USR1 $p 2>/out/usr1.err; echo $? > /out/usr1.rc
kill -0 $p 2>/out/zero.err; echo $? > /out/zero.rc
kill -USR2 $p 2>/out/usr2.err; echo $? > /out/usr2.rc
wait $p; echo $? > /out/wait.rc
"""


@case("seccomp-arg-condition", "config-linux.md#seccomp")
def seccomp_args(ctx):
    """A rule with an args condition (kill, arg 1 == SIGUSR1) matches only that value: kill -USR1 gets EPERM, -0 and -USR2 work.

    config-linux.md#seccomp: "Seccomp configuration ... also allows matching on values passed
    as arguments to syscalls"; args[].index "the index for syscall arguments", value, op
    SCMP_CMP_EQ.
    """
    b = ctx.bundle(["sh", "-c", ARG_SCRIPT])
    b.linux["seccomp"] = seccomp(syscalls=[
        rule(("kill",), "SCMP_ACT_ERRNO", args=[{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}])])
    ctx.run(b)
    expect(out(b, "usr1.rc") not in ("", "0"), "kill -USR1 succeeded although the rule matches signal 10")
    expect(EPERM_MSG in out(b, "usr1.err"), f"kill -USR1 failed with {out(b, 'usr1.err')!r}, expected EPERM")
    expect(out(b, "zero.rc") == "0", f"kill -0 (arg 1 = 0) failed: {out(b, 'zero.err')!r}")
    expect(out(b, "usr2.rc") == "0", f"kill -USR2 (arg 1 = 12) failed: {out(b, 'usr2.err')!r}")
    expect(out(b, "wait.rc") == "140", f"the sleep exited {out(b, 'wait.rc')!r}, expected 140 (SIGUSR2)")


KILL_SCRIPT = """sh -c 'mkdir /tmp/k'; echo $? > /out/mkdir.rc
sh -c 'rmdir /tmp/d'; echo $? > /out/rmdir.rc
[ -d /tmp/k ] && echo yes > /out/made
echo alive > /out/after
"""


@case("seccomp-kill", "config-linux.md#seccomp")
def seccomp_kill(ctx):
    """SCMP_ACT_KILL (mkdir) and SCMP_ACT_KILL_PROCESS (rmdir) kill the calling process with SIGSYS; others go on.

    config-linux.md#seccomp: syscalls[].action SCMP_ACT_KILL / SCMP_ACT_KILL_PROCESS, "the
    actions ... match the definitions in seccomp.h from libseccomp" (kill the thread /
    the process as if by SIGSYS). The shell sees its child exit 128+31 = 159.
    """
    b = ctx.bundle(["sh", "-c", KILL_SCRIPT])
    (b.rootfs / "tmp/d").mkdir()
    b.linux["seccomp"] = seccomp(syscalls=[rule(MKDIR, "SCMP_ACT_KILL"),
                                           rule(("rmdir", "unlinkat"), "SCMP_ACT_KILL_PROCESS")])
    ctx.run(b)
    expect(out(b, "after") == "alive", "the container's shell did not run on after its child was killed")
    expect(b.read_out("made") is None, "the directory was created")
    expect(out(b, "mkdir.rc") == "159",
           f"mkdir under SCMP_ACT_KILL exited {out(b, 'mkdir.rc')!r}, expected 159 (SIGSYS)")
    expect(out(b, "rmdir.rc") == "159",
           f"rmdir under SCMP_ACT_KILL_PROCESS exited {out(b, 'rmdir.rc')!r}, expected 159 (SIGSYS)")
    expect((b.rootfs / "tmp/d").is_dir(), "the directory was removed")


@case("seccomp-unknown-syscall-skipped", "config-linux.md#seccomp")
def seccomp_unknown_name(ctx):
    """[runc behaviour] A syscall name libseccomp does not know is skipped: create works, the known names still apply.

    No spec clause (neither MUST nor SHOULD): config-linux.md#seccomp only says names "MUST
    contain at least one entry". runc 1.1.5 ignores names it cannot resolve (so one profile
    works across kernels and libseccomp versions, as docker's and podman's default
    profiles expect); a drop-in must accept such profiles too.
    """
    b = ctx.bundle(["sh", "-c", MKDIR_SCRIPT])
    b.linux["seccomp"] = seccomp(syscalls=[
        rule(("pyrunc_conformance_no_such_syscall",) + MKDIR, "SCMP_ACT_ERRNO"),
        rule(("another_unknown_syscall",), "SCMP_ACT_KILL"),
    ])
    ctx.run(b)
    expect(b.read_out("made") is None, "mkdir succeeded: the known names of the entry were not applied")
    expect(EPERM_MSG in out(b, "mkdir.err"), f"mkdir failed with {out(b, 'mkdir.err')!r}, expected EPERM")
    expect(out(b, "other") == "hello", "other syscalls did not work under the filter")


@case("seccomp-invalid-action", "config-linux.md#seccomp")
def seccomp_invalid_action(ctx):
    """An unknown action (in syscalls[] or as defaultAction) makes create fail, leaving nothing behind.

    config-linux.md#seccomp: action is one of the listed SCMP_ACT_* constants;
    runtime.md#create: "If the runtime cannot apply a property as specified in the
    configuration, it MUST generate an error and a new container MUST NOT be created";
    runtime.md#errors: the error leaves the environment "as if the operation were never
    attempted".
    """
    for what, prof in (("syscalls[].action SCMP_ACT_NO_SUCH_ACTION",
                        seccomp(syscalls=[rule(MKDIR, "SCMP_ACT_NO_SUCH_ACTION")])),
                       ("defaultAction SCMP_ACT_NO_SUCH_ACTION",
                        seccomp("SCMP_ACT_NO_SUCH_ACTION", [rule(MKDIR, "SCMP_ACT_ERRNO")]))):
        b = ctx.bundle(["true"])
        b.linux["seccomp"] = prof
        c = ctx.create(b, ok=False)
        expect(not c.result.ok, f"create accepted {what}")
        left = failed_create_leftovers(ctx, c)
        expect(not left, f"the failed create ({what}) left: {'; '.join(left)}")
