from pyrunc.cli.flags import Flag

USAGE = "[command options]"
NARGS = 0
FLAGS = [
    Flag("format,f", "str", "table", "select one of: table or json"),
    Flag("quiet,q", help="display only container IDs"),
]


def run(ctx, opts, args):
    import sys

    from pyrunc.errors import ContainerNotFound, PyruncError
    from pyrunc.state import Store, load_container

    if opts["format"] not in ("table", "json"):
        raise PyruncError(f"invalid format option: {opts['format']}")
    store = Store(ctx.root)
    rows = []
    for cid in store.ids():
        try:
            # partial: an interrupted create or a corrupt state.json is listed too.
            rows.append(load_container(store, cid, partial=True).oci_state())
        except ContainerNotFound:
            continue  # removed meanwhile
        except PyruncError as e:
            from pyrunc import log

            log.warning(f"list: skipping {cid}: {e}")  # not ours, or damaged (as runc)
    out = sys.stdout
    if opts["quiet"]:
        out.write("".join(r["id"] + "\n" for r in rows))
    elif opts["format"] == "json":
        from pyrunc.jsonutil import dumps

        out.write(dumps(rows) + "\n" if rows else "null\n")
    else:
        table = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        table += [(r["id"], str(r["pid"]), r["status"], r["bundle"], r["created"], r["owner"] or "root")
                  for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(6)]
        for row in table:
            out.write("".join(col.ljust(w + 3) for col, w in zip(row[:-1], widths)) + row[-1] + "\n")
    return 0
