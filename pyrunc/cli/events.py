import gc
import json
import sys

from pyrunc.cli.flags import Flag
from pyrunc.errors import UsageError
from pyrunc.api import Container

USAGE = "[command options] <container-id>"
NARGS = 1
FLAGS = [
    Flag("interval", "str", "5s", "set the stats collection interval"),
    Flag("stats", help="display the container's stats then exit"),
]


def parse_duration(text):
    """Go durations as runc takes them: 500ms, 5s, 1m, 1h30m."""
    import re

    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise UsageError(f"invalid duration {text!r}")
    total = sum(float(a) * units[b] for a, b in parts)
    if total <= 0:
        raise UsageError("duration interval must be greater than 0")
    return total


def run(ctx, opts, args):
    interval = parse_duration(opts["interval"])
    c = Container(args[0], root=ctx.root)

    def emit(event):
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

    if opts["stats"]:
        stats = c.stats()
        emit({"type": "stats", "id": c.id, "data": stats})
        return 0
    gc.enable()  # streams until the container stops (see pyrunc/cli/__init__.py)
    for event in c.events(interval):
        emit(event)
    return 0
