"""A small flag parser with the syntax of runc's urfave/cli (Go's flag package):
`-x`, `--x`, `--x=v`, `--x v`, bool flags take no value (`--x=false` allowed).
Flags may follow positional arguments unless the command stops at the first one
(exec, whose trailing ARGS belong to the container process).
"""
from pyrunc.errors import UsageError


class Flag:
    __slots__ = ("names", "kind", "default", "help", "dest")

    def __init__(self, names, kind="bool", default=None, help=""):
        self.names = names.split(",")
        self.dest = self.names[0].replace("-", "_")
        self.kind = kind  # bool | str | int | list
        if default is None:
            default = {"bool": False, "list": []}.get(kind)
        self.default = default
        self.help = help


def _parse_bool(text, name):
    low = text.lower()
    if low in ("1", "t", "true"):
        return True
    if low in ("0", "f", "false"):
        return False
    raise UsageError(f'invalid boolean value "{text}" for -{name}')


def parse(flags, argv, stop_at_positional=False):
    """Return (options dict, positional list)."""
    table = {}
    for f in flags:
        for n in f.names:
            table[n] = f
    opts = {f.dest: (list(f.default) if f.kind == "list" else f.default) for f in flags}
    pos = []
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            pos.extend(argv[i:])
            break
        if len(a) < 2 or a[0] != "-" or (pos and stop_at_positional):
            pos.append(a)
            if stop_at_positional:
                pos.extend(argv[i:])
                break
            continue
        name = a[2:] if a.startswith("--") else a[1:]
        value = None
        if "=" in name:
            name, value = name.split("=", 1)
        f = table.get(name)
        if f is None:
            raise UsageError(f"flag provided but not defined: -{name}")
        if f.kind == "bool":
            opts[f.dest] = True if value is None else _parse_bool(value, name)
            continue
        if value is None:
            if i >= len(argv):
                raise UsageError(f"flag needs an argument: -{name}")
            value = argv[i]
            i += 1
        if f.kind == "int":
            try:
                value = int(value, 0)
            except ValueError:
                raise UsageError(f'invalid value "{value}" for flag -{name}: parse error') from None
        if f.kind == "list":
            opts[f.dest].append(value)
        else:
            opts[f.dest] = value
    return opts, pos


def help_text(flags):
    lines = []
    for f in flags:
        names = ", ".join(("--" if len(n) > 1 else "-") + n + ("" if f.kind == "bool" else " value")
                          for n in f.names)
        lines.append(f"   {names:<32} {f.help}")
    return "\n".join(lines)


# The library's option names whose flag is not "--" + the name with "-" for "_".
_FLAG_OF_OPTION = {"capabilities": "--cap", "apparmor_profile": "--apparmor",
                   "selinux_label": "--process-label", "no_new_privileges": "--no-new-privs",
                   "uid": "--user", "gid": "--user"}


def flag_name(option):
    """The flag that sets the library's option (errors.OptionError.option)."""
    return _FLAG_OF_OPTION.get(option) or "--" + option.replace("_", "-")
