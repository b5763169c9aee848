"""pyrunc: an OCI runtime-spec compatible low-level container runtime (a drop-in for runc).

The library (docs/API.md):

    from pyrunc import Container, CreateOptions, ExecOptions, PyruncError

Those names are loaded when first used (module __getattr__, PEP 562), not by
`import pyrunc`: every `pyrunc` command imports this package first, and `state` needs
none of them. ``__all__`` lists them; errors are in pyrunc.errors.
"""
import sys

__version__ = "0.1.0"

# name -> the module that defines it
_LAZY = {
    "Container": "pyrunc.api",
    "DEFAULT_ROOT": "pyrunc.api",
    "load_config": "pyrunc.api",
    "CreateOptions": "pyrunc.options",
    "ExecOptions": "pyrunc.options",
    "PyruncError": "pyrunc.errors",
    "ContainerNotFound": "pyrunc.errors",
    "ContainerNotRunning": "pyrunc.errors",
    "ConfigError": "pyrunc.errors",
    "HookError": "pyrunc.errors",
    "OptionError": "pyrunc.errors",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pyrunc' has no attribute {name!r}")
    __import__(module)

    value = getattr(sys.modules[module], name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
