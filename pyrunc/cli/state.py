USAGE = "<container-id>"
NARGS = 1
FLAGS = []


def run(ctx, opts, args):
    import sys

    from pyrunc.jsonutil import dumps_indent
    from pyrunc.state import open_container

    sys.stdout.write(dumps_indent(open_container(ctx.root, args[0]).oci_state()) + "\n")
    return 0
