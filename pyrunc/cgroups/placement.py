"""Putting a process the runtime forks into its container's cgroups, without the
runtime migrating it.

A write of a pid to cgroup.procs takes the kernel's cgroup_threadgroup_rwsem for
writing, and the first writer after a quiet spell waits an RCU grace period (8-12 ms
on this 2-CPU machine, longer than the rest of a create). Two ways around it:

- cgroup v1: a single thread that moves itself (writes "0" to a hierarchy's `tasks`)
  skips that lock (kernel/cgroup/cgroup.c, cgroup_procs_write_start: "If we migrate a
  single thread ... we can skip the global lock"; older kernels take it: same result,
  slower);
- cgroup v2: clone3(CLONE_INTO_CGROUP) makes the child in its cgroup (Linux >= 5.7).

What neither covers (the v2 manager, an older kernel, a failed clone3) the runtime
still places with Manager.apply().
"""
import os

from pyrunc.cgroups.base import ROOTLESS_JOIN_ERRNOS
from pyrunc.errors import PyruncError
from pyrunc.native import syscalls as sc


class Placement:
    """Runtime: open() before fork(), then apply_rest(pid) once limits are set, then
    tell the child, which calls join_self() before anything else that depends on its
    cgroups (its cgroup namespace, its children)."""

    def __init__(self, manager):
        self.manager = manager
        self.rootless = bool(getattr(manager, "rootless", False))
        self.tasks = []  # (controller, directory, fd of its `tasks` file)
        self.joined = set()  # directories the child joins (or is born in)
        self.clone_dir = None
        self.clone_fd = None

    def open(self):
        clone_dir, dirs = self.manager.placement_targets()
        try:
            for label, d in dirs:
                try:
                    fd = os.open(os.path.join(d, "tasks"), os.O_WRONLY | os.O_CLOEXEC)
                except OSError as e:
                    if self.rootless and e.errno in ROOTLESS_JOIN_ERRNOS:
                        continue
                    raise PyruncError(f"cgroup {label}: opening {d}/tasks: "
                                      f"{os.strerror(e.errno)}") from None
                self.tasks.append((label, d, fd))
                self.joined.add(d)
            if clone_dir:
                try:
                    self.clone_fd = os.open(clone_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                    self.clone_dir = clone_dir
                except OSError:
                    pass  # apply() tries it (and knows which failures matter)
        except BaseException:
            self.close()
            raise
        return self

    def fork(self, clone_flags=0):
        """os.fork(); the child is born in the v2 directory if there is one, and in new
        namespaces with clone_flags (then a refused clone3 raises OSError)."""
        pid = None
        if clone_flags or self.clone_fd is not None:
            try:
                pid = sc.clone_fork(clone_flags, self.clone_fd)
            except OSError:
                if clone_flags:
                    raise
                pid = None  # e.g. ENOSYS, or threads (EAGAIN): a plain fork and apply()
            else:
                if self.clone_fd is not None:
                    self.joined.add(self.clone_dir)
        if pid is None:
            pid = os.fork()
        if pid == 0 and self.clone_fd is not None:
            os.close(self.clone_fd)
            self.clone_fd = None
        return pid

    def apply_rest(self, pid):
        self.manager.apply(pid, skip=self.joined)

    def join_self(self):
        """Child side (single-threaded): join the v1 hierarchies."""
        tasks, self.tasks = self.tasks, []
        for label, d, fd in tasks:
            try:
                os.write(fd, b"0")
            except OSError as e:
                if not (self.rootless and e.errno in ROOTLESS_JOIN_ERRNOS):
                    raise PyruncError(f"cgroup {label}: joining {d}: "
                                      f"{os.strerror(e.errno)}") from None
            finally:
                os.close(fd)

    def close(self):
        """Runtime side, after fork: the child has its own copies."""
        for _, _, fd in self.tasks:
            os.close(fd)
        self.tasks = []
        if self.clone_fd is not None:
            os.close(self.clone_fd)
            self.clone_fd = None
