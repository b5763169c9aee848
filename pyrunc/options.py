"""Typed options of the library's operations (pyrunc.api.Container).

Plain classes with keyword-only constructors rather than @dataclass: `import dataclasses`
costs ~6 ms (it imports inspect, re and enum), more than every other import of `create`
together. They behave as dataclasses do where it matters: a signature inspect shows,
repr, ==, replace(); an unknown field is a TypeError (__slots__).
"""


class _Options:
    __slots__ = ()

    def __repr__(self):
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__ = None  # mutable, as a dataclass without frozen=True

    def replace(self, **changes):
        """A copy with ``changes`` (as dataclasses.replace)."""
        values = {n: getattr(self, n) for n in self.__slots__}
        values.update(changes)
        return type(self)(**values)


class CreateOptions(_Options):
    """How to create a container (runtime.md "create").

    bundle: the bundle directory (its config.json, unless config is given).
    config: the bundle's configuration, already loaded (a dict, as config.json).
    console_socket: process.terminal: a unix socket path that receives the pty master
        (SCM_RIGHTS), or an already connected socket.
    pid_file: a file the init's pid is written to.
    no_pivot: chroot-like move of the root instead of pivot_root (a ramdisk rootfs).
    no_new_keyring: keep the caller's session keyring.
    preserve_fds: descriptors after stdio (3 ... 2+N) the process inherits, the first
        listen_fds of them socket-activation ones (it gets LISTEN_FDS/LISTEN_PID).
    systemd_cgroup: cgroups through systemd (a transient scope; cgroupsPath
        "slice:prefix:name").
    rootless_cgroups: cgroup permission errors are ignored, as runc's rootless cgroup
        manager ignores them (a controller that cannot be joined is skipped).
    """

    __slots__ = ("bundle", "config", "console_socket", "pid_file", "no_pivot",
                 "no_new_keyring", "preserve_fds", "listen_fds", "systemd_cgroup",
                 "rootless_cgroups")

    def __init__(self, bundle: str = ".", *, config: "dict | None" = None,
                 console_socket: "str | socket.socket | None" = None,  # noqa: F821
                 pid_file: "str | None" = None, no_pivot: bool = False,
                 no_new_keyring: bool = False, preserve_fds: int = 0, listen_fds: int = 0,
                 systemd_cgroup: bool = False, rootless_cgroups: bool = False):
        self.bundle = bundle
        self.config = config
        self.console_socket = console_socket
        self.pid_file = pid_file
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds
        self.listen_fds = listen_fds
        self.systemd_cgroup = systemd_cgroup
        self.rootless_cgroups = rootless_cgroups


class ExecOptions(_Options):
    """A new process in a running container (runc's exec).

    The process is either ``process`` (a whole process object, as config.json's; its
    capabilities default to the container's) or the container's own process with
    ``args`` and the changes below:
    env: NAME=value entries added to its environment; cwd: an absolute path;
    uid/gid, additional_gids: numeric ids; capabilities: names added to its bounding,
    effective, permitted and ambient sets; tty: a pseudo-terminal (console_socket
    receives it); no_new_privileges; apparmor_profile; selinux_label.
    (env, cwd, uid/gid, additional_gids ... also apply over ``process``.)
    console_socket, pid_file, preserve_fds, listen_fds: as CreateOptions'.
    ignore_paused: exec into a paused container too.
    sub_cgroups: run it in existing sub-cgroups of the container's: {controller: path
        relative to the container's cgroup}, or {"": path} for every controller.
    """

    __slots__ = ("args", "process", "env", "cwd", "uid", "gid", "additional_gids",
                 "capabilities", "tty", "no_new_privileges", "apparmor_profile",
                 "selinux_label", "console_socket", "pid_file", "preserve_fds",
                 "listen_fds", "ignore_paused", "sub_cgroups")

    def __init__(self, args: "list[str] | None" = None, *, process: "dict | None" = None,
                 env: "list[str]" = (), cwd: "str | None" = None, uid: "int | None" = None,
                 gid: "int | None" = None, additional_gids: "list[int]" = (),
                 capabilities: "list[str]" = (), tty: bool = False,
                 no_new_privileges: bool = False, apparmor_profile: "str | None" = None,
                 selinux_label: "str | None" = None,
                 console_socket: "str | socket.socket | None" = None,  # noqa: F821
                 pid_file: "str | None" = None, preserve_fds: int = 0, listen_fds: int = 0,
                 ignore_paused: bool = False, sub_cgroups: "dict | None" = None):
        self.args = args
        self.process = process
        self.env = env
        self.cwd = cwd
        self.uid = uid
        self.gid = gid
        self.additional_gids = additional_gids
        self.capabilities = capabilities
        self.tty = tty
        self.no_new_privileges = no_new_privileges
        self.apparmor_profile = apparmor_profile
        self.selinux_label = selinux_label
        self.console_socket = console_socket
        self.pid_file = pid_file
        self.preserve_fds = preserve_fds
        self.listen_fds = listen_fds
        self.ignore_paused = ignore_paused
        self.sub_cgroups = sub_cgroups
