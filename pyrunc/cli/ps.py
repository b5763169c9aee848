import sys

from pyrunc.cli.flags import Flag
from pyrunc.api import Container
from pyrunc.errors import PyruncError

USAGE = "[command options] <container-id> [ps options]"
NARGS = (1, None)
STOP_AT_POSITIONAL = True
FLAGS = [Flag("format,f", "str", "table", "select one of: table or json")]


def run(ctx, opts, args):
    """json: the container's pids as a JSON list; table: the host's ps output for them."""
    if opts["format"] not in ("table", "json"):
        raise PyruncError(f"invalid format option: {opts['format']}")
    pids = Container(args[0], root=ctx.root).ps()
    if opts["format"] == "json":
        import json

        sys.stdout.write((json.dumps(pids) if pids else "null") + "\n")  # runc: null
        return 0
    import subprocess

    ps_args = args[1:] or ["-ef"]
    p = subprocess.run(["ps", *ps_args], capture_output=True, text=True)
    if p.returncode != 0:
        raise PyruncError(f"ps {' '.join(ps_args)}: {p.stderr.strip()}")
    lines = p.stdout.splitlines()
    if not lines:
        return 0
    header = lines[0].split()
    if "PID" not in header:
        raise PyruncError("couldn't find PID field in ps output")
    col = header.index("PID")
    want = set(pids)
    out = [lines[0]] + [l for l in lines[1:] if len(l.split()) > col and l.split()[col].isdigit()
                        and int(l.split()[col]) in want]
    sys.stdout.write("\n".join(out) + "\n")
    return 0
