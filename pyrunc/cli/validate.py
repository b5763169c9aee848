from pyrunc.cli.flags import Flag

USAGE = "[command options]"
NARGS = 0
FLAGS = [
    Flag("bundle,b", "str", "", "path to the root of the bundle directory, defaults to the current directory"),
    Flag("schema-only", help="check against the JSON schema only (no checks of what this runtime and host can run)"),
]


def run(ctx, opts, args):
    """Print every problem as `JSON-pointer: message`; exit 1 if there is any."""
    import os
    import sys

    from pyrunc.errors import PyruncError
    from pyrunc.spec.compat import runc_compat
    from pyrunc.spec.config import load_config
    from pyrunc.spec.validate import schema_problems, validate

    bundle = os.path.abspath(opts["bundle"] or ".")
    config = load_config(bundle)
    if opts["schema_only"]:
        problems = schema_problems(config)
    else:
        for note in runc_compat(config):  # as create does
            sys.stderr.write(f"note: {note}\n")
        problems = validate(config, bundle)
    if not problems:
        sys.stdout.write(f"{os.path.join(bundle, 'config.json')}: valid\n")
        return 0
    sys.stdout.write("".join(p + "\n" for p in problems))
    raise PyruncError(f"{os.path.join(bundle, 'config.json')}: {len(problems)} problem(s)")
