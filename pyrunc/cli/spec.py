from pyrunc.cli.flags import Flag
from pyrunc.config.default import write_default_config

USAGE = "[command options]"
NARGS = 0
FLAGS = [
    Flag("bundle,b", "str", "", "path to the root of the bundle directory"),
    Flag("rootless", help="generate a configuration for a rootless container"),
]


def run(ctx, opts, args):
    write_default_config(opts["bundle"] or ".", rootless=opts["rootless"])
    return 0
