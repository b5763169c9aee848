USAGE = "<container-id>"
NARGS = 1
FLAGS = []


def run(ctx, opts, args):
    import sys

    from pyrunc.jsonutil import dumps_indent
    from pyrunc.state import CorruptState, open_container

    c = open_container(ctx.root, args[0], partial=True)
    if isinstance(c.problem, CorruptState):
        from pyrunc.errors import PyruncError

        raise PyruncError(f"container {c.id}: {c.problem} (status {c.status()}); "
                          f"'delete --force {c.id}' removes it")
    sys.stdout.write(dumps_indent(c.oci_state()) + "\n")
    return 0
