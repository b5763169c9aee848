import sys

from pyrunc.cli.flags import Flag
from pyrunc.api import Container
from pyrunc.errors import ContainerNotFound, PyruncError
from pyrunc import log
from pyrunc.util.jsonutil import dumps

USAGE = "[command options]"
NARGS = 0
FLAGS = [
    Flag("format,f", "str", "table", "select one of: table or json"),
    Flag("quiet,q", help="display only container IDs"),
]


def run(ctx, opts, args):
    if opts["format"] not in ("table", "json"):
        raise PyruncError(f"invalid format option: {opts['format']}")
    rows = []
    for c in Container.list(root=ctx.root):
        try:
            # An interrupted create or a corrupt state.json is listed too.
            rows.append(c.state(allow_corrupt=True))
        except ContainerNotFound:
            continue  # removed meanwhile
        except PyruncError as e:
            log.warning(f"list: skipping {c.id}: {e}")  # not ours, or damaged (as runc)
    out = sys.stdout
    if opts["quiet"]:
        out.write("".join(r["id"] + "\n" for r in rows))
    elif opts["format"] == "json":
        out.write(dumps(rows) + "\n" if rows else "null\n")
    else:
        table = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        table += [(r["id"], str(r["pid"]), r["status"], r["bundle"], r["created"], r["owner"] or "root")
                  for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(6)]
        for row in table:
            out.write("".join(col.ljust(w + 3) for col, w in zip(row[:-1], widths)) + row[-1] + "\n")
    return 0
