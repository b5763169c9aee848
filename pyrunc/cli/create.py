from pyrunc.cli.flags import Flag

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
    """--preserve-fds N plus $LISTEN_FDS (as runc), the fds after stdio to pass on."""
    import os

    from pyrunc.errors import UsageError

    n = opts["preserve_fds"]
    if n < 0:
        raise UsageError("--preserve-fds must be >= 0")
    listen = os.environ.get("LISTEN_FDS", "")
    if listen.isdigit():
        n += int(listen)
    return n


def run(ctx, opts, args):
    from pyrunc.container import create

    create(ctx.root, args[0], opts["bundle"] or ".", pid_file=opts["pid_file"] or None,
           console_socket=opts["console_socket"] or None, no_pivot=opts["no_pivot"],
           no_new_keyring=opts["no_new_keyring"], preserve_fds=preserved_fds(opts))
    return 0
