"""Errors that reach the user as one line on stderr (and in the --log file), exit 1."""

_CONTROL = {i: f"\\x{i:02x}" for i in list(range(0x20)) + [0x7F]}
_CONTROL.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x85: "\\x85", 0x2028: "\\u2028",
                 0x2029: "\\u2029"})


def one_line(text):
    """``text`` with control characters written as escapes, and lone surrogates (JSON
    allows "\\ud800"; undecodable bytes of argv become them) as \\udXXX: one line that
    can be written out as UTF-8."""
    text = text.translate(_CONTROL)
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


class PyruncError(Exception):
    """A user-facing error: the message is one line naming what is wrong and where."""

    exit_code = 1


class UsageError(PyruncError):
    """Bad command line (unknown command or flag, missing argument)."""


class ConfigError(PyruncError):
    """config.json is missing, unreadable or invalid."""


class ContainerNotFound(PyruncError):
    def __init__(self, cid):
        # runc's wording: engines string-match "does not exist".
        super().__init__(f"container {cid} does not exist")


class ContainerNotRunning(PyruncError):
    def __init__(self, cid=None):
        super().__init__("container not running")


class HookError(PyruncError):
    """A hook failed: runtime.md "Lifecycle" then stops the container, destroys it and
    runs the poststop hooks. (Here, not in hooks.py: the container side reports it after
    pivot_root, when nothing new can be imported.)"""


class OptionError(PyruncError):
    """An option of the library's API is invalid. ``option`` is its name in the API
    (ExecOptions.cwd: "cwd"); the message names it through ``render``, so that the CLI
    can name its flag instead ("invalid --cwd ...") with the same words."""

    def __init__(self, option, template, **values):
        self.option, self.template, self.values = option, template, values
        super().__init__(self.render(option))

    def render(self, name):
        """The message with ``name`` for the option (the template's ``{option}``)."""
        return self.template.format(option=name, **self.values)


class CorruptState(PyruncError):
    """A state file that cannot be read as one. ``container``: the id of a container
    whose create.json still finds what it made (a forced delete removes it)."""

    container = None


class InitError(PyruncError):
    """An error reported by the container's init."""


class MountError(PyruncError):
    """A mount of the container's rootfs failed."""


class DeviceError(PyruncError):
    """A device node of the container could not be made."""


class SysctlError(PyruncError):
    """A linux.sysctl entry the container's namespaces do not allow."""


class CgroupError(PyruncError):
    """A cgroup operation failed; ``errno`` is set when a syscall failed."""

    def __init__(self, msg, err=None):
        super().__init__(msg)
        self.errno = err
