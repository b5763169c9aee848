import os

from pyrunc.cli.flags import Flag
from pyrunc.errors import UsageError
from pyrunc.options import CreateOptions
from pyrunc.api import Container

USAGE = "[command options] <container-id>"
NARGS = 1
FLAGS = [
    Flag("bundle,b", "str", "", "path to the root of the bundle directory, defaults to the current directory"),
    Flag("console-socket", "str", "", "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
    Flag("pid-file", "str", "", "specify the file to write the process id to"),
    Flag("no-pivot", help="do not use pivot root to jail process inside rootfs"),
    Flag("no-new-keyring", help="do not create a new session keyring for the container"),
    Flag("preserve-fds", "int", 0, "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"),
]


def preserved_fds(opts):
    """(fds after stdio to pass on, how many of them are socket-activation fds): runc
    passes $LISTEN_FDS fds first when $LISTEN_PID is its own pid (systemd's protocol),
    then --preserve-fds N more."""
    n = opts["preserve_fds"]
    if n < 0:
        raise UsageError("--preserve-fds must be >= 0")
    listen = os.environ.get("LISTEN_FDS", "")
    listen = int(listen) if listen.isdigit() and os.environ.get("LISTEN_PID") == str(os.getpid()) else 0
    return n + listen, listen


def create_options(ctx, opts, **more):
    """The flags as CreateOptions (more: fields the flags do not give)."""
    total, listen = preserved_fds(opts)
    return CreateOptions(opts["bundle"] or ".", pid_file=opts["pid_file"] or None,
                         console_socket=opts["console_socket"] or None, no_pivot=opts["no_pivot"],
                         no_new_keyring=opts["no_new_keyring"], preserve_fds=total,
                         listen_fds=listen, systemd_cgroup=ctx.systemd_cgroup,
                         rootless_cgroups=ctx.rootless_cgroups(), **more)


def run(ctx, opts, args):
    Container.create(args[0], create_options(ctx, opts), root=ctx.root)
    return 0
