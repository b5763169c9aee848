"""process.selinuxLabel (config.md): the label the process's next execve takes.

As runc: a label set on a host without SELinux is an error ("selinux label is specified
in config, but selinux is disabled or not supported", runc's validateProcessSpec), found
in the runtime before anything is made. With SELinux, the label is written to
/proc/thread-self/attr/exec (checked to be on procfs) by the container process.
"""
import os

from pyrunc.errors import PyruncError


def enabled():
    return os.path.exists("/sys/fs/selinux/enforce")


def check(label):
    """In the runtime, before fork."""
    if label and not enabled():
        raise PyruncError(f"process.selinuxLabel {label!r}: selinux label is specified in "
                          "config, but selinux is disabled or not supported")
    from pyrunc.linux.lsm import apparmor

    apparmor._load_libc()


def set_exec_label(label):
    """In the container process."""
    if not label:
        return
    from pyrunc.linux.lsm.apparmor import write_proc_attr

    write_proc_attr(("/proc/thread-self/attr/exec",), label.encode(),
                    f"process.selinuxLabel {label!r}")
