USAGE = "<container-id>"
NARGS = 1
FLAGS = []


def run(ctx, opts, args):
    from pyrunc.api import Container

    Container(args[0], root=ctx.root).resume()
    return 0
