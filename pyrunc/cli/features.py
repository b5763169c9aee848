import sys

from pyrunc.features import features_json

USAGE = ""
NARGS = 0
FLAGS = []


def run(ctx, opts, args):
    sys.stdout.write(features_json() + "\n")
    return 0
