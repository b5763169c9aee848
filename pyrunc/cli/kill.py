from pyrunc.cli.flags import Flag

USAGE = "[command options] <container-id> [signal]"
NARGS = (1, 2)
FLAGS = [Flag("all,a", help="send the specified signal to all processes inside the container")]


def run(ctx, opts, args):
    from pyrunc.container import kill, parse_signal

    sig = parse_signal(args[1]) if len(args) > 1 else 15
    kill(ctx.root, args[0], sig, all_processes=opts["all"])
    return 0
