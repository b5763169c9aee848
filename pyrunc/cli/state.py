import sys

from pyrunc.api import Container
from pyrunc.errors import CorruptState, PyruncError
from pyrunc.util.jsonutil import dumps_indent

USAGE = "<container-id>"
NARGS = 1
FLAGS = []


def run(ctx, opts, args):
    try:
        state = Container(args[0], root=ctx.root).state()
    except CorruptState as e:
        if e.container is None:
            raise
        raise PyruncError(f"{e}; 'delete --force {e.container}' removes it") from None
    sys.stdout.write(dumps_indent(state) + "\n")
    return 0
