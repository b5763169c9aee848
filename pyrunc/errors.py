"""Errors that reach the user as one line on stderr (and in the --log file), exit 1."""


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
