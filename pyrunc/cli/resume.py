USAGE = "<container-id>"
NARGS = 1
FLAGS = []


def run(ctx, opts, args):
    from pyrunc.container import resume

    resume(ctx.root, args[0])
    return 0
