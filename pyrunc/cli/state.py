USAGE = "<container-id>"
NARGS = 1
FLAGS = []


def run(ctx, opts, args):
    import sys

    from pyrunc.container import state
    from pyrunc.jsonutil import dumps_indent

    sys.stdout.write(dumps_indent(state(ctx.root, args[0])) + "\n")
    return 0
