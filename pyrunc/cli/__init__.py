"""pyrunc command line: runc's global flags and a table of subcommands.

Each subcommand lives in pyrunc/cli/<name>.py with FLAGS, USAGE, NARGS (exact
positional count, or (min, max)), optional STOP_AT_POSITIONAL, and run(ctx, opts, args).
Only the module of the command that runs is imported.
"""
import gc
import os
import sys

# A command lives ~10-25 ms and makes little cyclic garbage; the collector's passes during
# the imports cost ~0.8 ms of `create` (bench/run.py). The commands that stay (run and exec
# in the foreground, events) enable it again before they wait.
gc.disable()

from pyrunc.cli.flags import Flag, flag_name, help_text, parse
from pyrunc.errors import OptionError, PyruncError, UsageError

from pyrunc import __version__ as VERSION, log

SPEC_VERSION = "1.3.0"

COMMANDS = {
    "create": "create a container",
    "delete": "delete any resources held by the container often used with detached container",
    "events": "display container events such as OOM notifications, cpu, memory, and IO usage statistics",
    "exec": "execute new process inside the container",
    "features": "show the enabled features",
    "kill": "kill sends the specified signal (default: SIGTERM) to the container's init process",
    "list": "lists containers started by pyrunc with the given root",
    "pause": "pause suspends all processes inside the container",
    "ps": "ps displays the processes running inside a container",
    "resume": "resumes all processes that have been previously paused",
    "run": "create and run a container",
    "spec": "create a new specification file",
    "start": "executes the user defined process in a created container",
    "state": "output the state of a container",
    "update": "update container resource constraints",
    "validate": "validate a bundle's config.json against the runtime-spec (beyond runc)",
}
ALIASES = {"h": "help"}

GLOBAL_FLAGS = [
    Flag("debug", help="enable debug logging"),
    Flag("log", "str", "", "set the log file to write pyrunc logs to (default is '/dev/stderr')"),
    Flag("log-format", "str", "text", "set the log format ('text' (default), or 'json')"),
    Flag("root", "str", "/run/pyrunc", "root directory for storage of container state"),
    Flag("criu", "str", "criu", "path to the criu binary (checkpoint/restore is not supported)"),
    Flag("systemd-cgroup", help="enable systemd cgroup support, expects cgroupsPath to be of form \"slice:prefix:name\" for e.g. \"system.slice:runc:434234\""),
    Flag("rootless", "str", "auto", "ignore cgroup permission errors ('true', 'false', or 'auto')"),
    Flag("help,h", help="show help"),
    Flag("version,v", help="print the version"),
]


class Context:
    __slots__ = ("root", "log", "log_format", "debug", "systemd_cgroup", "rootless")

    def __init__(self, opts):
        self.root = opts["root"]
        self.log = opts["log"]
        self.log_format = opts["log_format"]
        self.debug = opts["debug"]
        self.systemd_cgroup = opts["systemd_cgroup"]
        self.rootless = opts["rootless"]

    def rootless_cgroups(self):
        """runc's --rootless, read where a cgroup manager is made (create, run): "true"
        (Go's ParseBool spellings) ignores cgroup permission errors; "auto" (or "") is
        true unless the runtime is root of the initial user namespace."""
        r = self.rootless
        if r.lower() in ("", "auto"):
            if os.geteuid() != 0:
                return True
            try:
                with open("/proc/self/uid_map", "rb") as f:
                    return f.read().split() != [b"0", b"0", b"4294967295"]
            except OSError:
                return False
        if r in ("1", "t", "T", "true", "TRUE", "True"):
            return True
        if r in ("0", "f", "F", "false", "FALSE", "False"):
            return False
        raise UsageError(f'--rootless: invalid value "{r}" (want true, false or auto)')


def _version():
    return (f"pyrunc version {VERSION}\nspec: {SPEC_VERSION}\n"
            f"python: {sys.version.split()[0]}\n")


def _main_help():
    cmds = "\n".join(f"   {n:<10} {d}" for n, d in COMMANDS.items())
    return ("NAME:\n   pyrunc - Open Container Initiative runtime, in Python\n\n"
            "USAGE:\n   pyrunc [global options] command [command options] [arguments...]\n\n"
            f"VERSION:\n   {VERSION}\nspec: {SPEC_VERSION}\n\nCOMMANDS:\n{cmds}\n\n"
            f"GLOBAL OPTIONS:\n{help_text(GLOBAL_FLAGS)}\n")


def _command_help(name, mod):
    return (f"NAME:\n   pyrunc {name} - {COMMANDS[name]}\n\nUSAGE:\n   pyrunc {name} {mod.USAGE}\n\n"
            f"OPTIONS:\n{help_text(mod.FLAGS)}\n")


def _check_nargs(name, mod, args):
    n = mod.NARGS
    lo, hi = (n, n) if isinstance(n, int) else n
    if len(args) < lo or (hi is not None and len(args) > hi):
        if lo == hi:
            raise UsageError(f'pyrunc: "{name}" requires exactly {lo} argument(s)')
        if hi is None:
            raise UsageError(f'pyrunc: "{name}" requires a minimum of {lo} argument(s)')
        raise UsageError(f'pyrunc: "{name}" requires at most {hi} argument(s)')


def run(argv):
    """Run one command line; returns the exit code. Never raises for user errors."""
    try:
        gopts, rest = parse(GLOBAL_FLAGS, argv, stop_at_positional=True)
    except UsageError as e:
        log.error(str(e))
        return 1
    log.setup(gopts["log"] or None, gopts["log_format"], gopts["debug"])
    if gopts["log_format"] not in ("text", "json"):
        log.setup(gopts["log"] or None, "text", gopts["debug"])
        log.error(f"invalid log-format: {gopts['log_format']}")
        return 1
    if gopts["version"]:
        sys.stdout.write(_version())
        return 0
    if not gopts["help"] and not log.open_file():
        return 1
    if not rest or gopts["help"] or rest[0] in ("help", "h"):
        topic = rest[1] if len(rest) > 1 and rest[0] in ("help", "h") else None
        if topic and topic in COMMANDS:
            __import__(f"pyrunc.cli.{topic}")
            sys.stdout.write(_command_help(topic, sys.modules[f"pyrunc.cli.{topic}"]))
        else:
            sys.stdout.write(_main_help())
        return 0
    name = ALIASES.get(rest[0], rest[0])
    if name not in COMMANDS:
        log.error(f"No help topic for '{name}'")
        return 1
    try:
        __import__(f"pyrunc.cli.{name}")  # not importlib: ~0.7 ms of imports
        mod = sys.modules[f"pyrunc.cli.{name}"]
        opts, args = parse(mod.FLAGS + [Flag("help,h")], rest[1:],
                           getattr(mod, "STOP_AT_POSITIONAL", False))
        if opts.pop("help"):
            sys.stdout.write(_command_help(name, mod))
            return 0
        _check_nargs(name, mod, args)
        return mod.run(Context(gopts), opts, args) or 0
    except OptionError as e:  # the library's words, with the flag for the option
        log.error(e.render(flag_name(e.option)))
        return e.exit_code
    except PyruncError as e:
        log.error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        # A syscall failure that no lower layer turned into a PyruncError (each should
        # name its file and operation): still one line, naming what the error holds.
        _debug_traceback(log)
        log.error(f"{name}: {os_error(e)}")
        return 1
    except Exception as e:  # noqa: BLE001 - a bug, but never a traceback for the user
        _debug_traceback(log)
        log.error(f"internal error: {type(e).__name__}: {e} (run with --debug for details)")
        return 1


def _debug_traceback(log):
    if log.is_debug():
        import traceback

        log.debug(traceback.format_exc())


def os_error(e):
    """An OSError as "strerror: file[ -> file2]" (no "[Errno N]")."""
    text = e.strerror or str(e)
    if e.filename is not None:
        text += f": {e.filename}"
        if e.filename2 is not None:
            text += f" -> {e.filename2}"
    return text


def main(fast_exit=False):
    """The `pyrunc` command. fast_exit (the installed command): end with os._exit once
    stdout/stderr are flushed, skipping the interpreter's teardown (module and object
    finalization: ~1.5 ms of `state`, ~4 ms of `run`); nothing else is buffered (files
    are written with os.write) and every child the runtime forks ends with os._exit."""
    code = run(sys.argv[1:])
    log.finish(failed=code != 0 and code is not None)
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):
            pass
    if fast_exit:
        os._exit(code if isinstance(code, int) else int(code is not None))
    sys.exit(code)
