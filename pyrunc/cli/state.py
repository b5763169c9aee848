USAGE = "<container-id>"
NARGS = 1
FLAGS = []


def run(ctx, opts, args):
    import json
    import sys

    from pyrunc.container import state

    sys.stdout.write(json.dumps(state(ctx.root, args[0]), indent=2) + "\n")
    return 0
