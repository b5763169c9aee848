"""process.apparmorProfile (config.md), as runc's libcontainer/apparmor.

The profile takes effect at the process's next execve: apply() writes
"exec <profile>" to /proc/thread-self/attr/apparmor/exec (attr/exec before Linux 5.8).

check() runs in the runtime: a profile set on a host without AppArmor is an error, as
with runc (whose write is refused then). apply() runs in the container process after
pivot_root and writes only to a file on a real procfs: a rootfs whose /proc leads
somewhere else must not swallow the profile (CVE-2019-16884).
"""
import os

from pyrunc.errors import PyruncError
from pyrunc.native import syscalls as sc
from pyrunc.native.constants import PROC_SUPER_MAGIC


def enabled():
    """runc's apparmor.IsEnabled()."""
    if not os.path.exists("/sys/kernel/security/apparmor"):
        return False
    try:
        with open("/sys/module/apparmor/parameters/enabled", "rb") as f:
            return f.read(2)[:1] == b"Y"
    except OSError:
        return False


def fs_type(fd):
    return sc.fstatfs_type(fd)


def write_proc_attr(paths, data, what):
    """Write data to the first of paths that exists, checking it is on procfs."""
    for path in paths:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        except OSError as e:
            raise PyruncError(f"{what}: open {path}: {e.strerror}") from None
        try:
            if fs_type(fd) != PROC_SUPER_MAGIC:
                raise PyruncError(f"{what}: {path} is not on procfs: the container's /proc "
                                  "is not the kernel's (refusing to write the label there)")
            os.write(fd, data)
            return
        except OSError as e:
            raise PyruncError(f"{what}: write {path}: {e.strerror}") from None
        finally:
            os.close(fd)
    raise PyruncError(f"{what}: none of {', '.join(paths)} exists (is /proc mounted?)")


def check(profile):
    """In the runtime, before fork."""
    if profile and not enabled():
        raise PyruncError(f"process.apparmorProfile {profile!r}: AppArmor is not enabled "
                          "on this host")


def apply(profile):
    """In the container process: the profile for its next execve."""
    if not profile:
        return
    write_proc_attr(("/proc/thread-self/attr/apparmor/exec", "/proc/thread-self/attr/exec"),
                    f"exec {profile}".encode(),
                    f"process.apparmorProfile {profile!r}: apparmor failed to apply profile")
