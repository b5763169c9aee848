import os
import sys

from pyrunc.cli.flags import Flag
from pyrunc.errors import PyruncError, one_line
from pyrunc.config.load import load_config
from pyrunc.config.problems import sort_problems
from pyrunc.config.validate import problems as check
from pyrunc.util.jsonutil import deep_copy

USAGE = "[command options]"
NARGS = 0
FLAGS = [
    Flag("bundle,b", "str", "", "path to the root of the bundle directory, defaults to the current directory"),
    Flag("schema-only", help="check against the JSON schema only (no checks of what this runtime and host can run)"),
    Flag("strict", help="fail on warnings too (what the schema or the spec refuses but runc, and so create, accepts)"),
]


def run(ctx, opts, args):
    """Print every problem as `JSON-pointer: message` and every deviation that runc and
    create accept as `JSON-pointer: warning: message`; exit 1 on a problem, or with
    --strict on a warning too."""
    bundle = os.path.abspath(opts["bundle"] or ".")
    path = os.path.join(bundle, "config.json")
    surrogates = []
    config = load_config(bundle, surrogates)
    if opts["schema_only"]:
        problems, warnings = check(config, schema_only=True)
    else:
        # what create does: runc's reading of the config (on a copy), then the checks
        problems, warnings = check(deep_copy(config), bundle=bundle)
    if surrogates:
        # Not Unicode (RFC 8259 section 8.2): runc and create read each as U+FFFD.
        problems = sort_problems(problems + [
            one_line(f"{ptr}: contains a lone UTF-16 surrogate escape, which is not Unicode "
                     "text (read as U+FFFD)") for ptr in surrogates])
    out = [p + "\n" for p in problems]
    for w in warnings:
        ptr, _, message = w.partition(": ")
        out.append(f"{ptr}: warning: {message}\n")
    sys.stdout.write("".join(out))
    if problems or (warnings and opts["strict"]):
        what = f"{len(problems)} problem(s)" + (f", {len(warnings)} warning(s)" if warnings else "")
        raise PyruncError(f"{path}: {what}")
    if not warnings:
        sys.stdout.write(f"{path}: valid\n")
    else:
        sys.stdout.write(f"{path}: valid, with {len(warnings)} warning(s) (runc and create accept "
                         f"them; --strict fails on them)\n")
    return 0
