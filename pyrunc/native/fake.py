"""A recording stand-in for pyrunc.native.syscalls, for unit tests: no root and no
compiled module (youki's Syscall trait and its test double, in Python).

    from pyrunc.native.fake import FakeSyscalls

    with FakeSyscalls() as fake:     # every wrapper in syscalls.CALLS is replaced
        fake.fails("mount", errno.EPERM)
        namespaces.unshare_new({"uts": None, "ipc": None})
    assert fake.called("unshare") == [{"flags": C.CLONE_NEWUTS | C.CLONE_NEWIPC}]

Code under test calls `sc.mount(...)` on the module (`from pyrunc.native import syscalls
as sc`), so it sees the fake while installed. Each call is checked against the real
wrapper's signature (a wrong call raises TypeError, as the real one would) and recorded
as (name, {parameter: value}), defaults filled in. What a call gives: returns(name, v),
fails(name, errno) (an OSError shaped as the real wrapper's), answers(name, fn) (fn of
the arguments); otherwise None.
"""
import inspect
import os

from pyrunc.native import syscalls as _real


class FakeSyscalls:
    def __init__(self):
        self.calls = []  # [(name, {parameter: value})], in call order
        self._results = {}
        self._saved = None
        for name in _real.CALLS:
            setattr(self, name, self._recorder(name, inspect.signature(getattr(_real, name))))

    def _recorder(self, name, sig):
        def call(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            self.calls.append((name, dict(bound.arguments)))
            kind, value = self._results.get(name, ("returns", None))
            if kind == "fails":
                raise OSError(value, f"{name}: {os.strerror(value)}")
            if kind == "answers":
                return value(**bound.arguments)
            return value

        call.__name__ = call.__qualname__ = name
        return call

    def _set(self, name, kind, value):
        if name not in _real.CALLS:
            raise AttributeError(f"pyrunc.native.syscalls has no wrapper {name!r}")
        self._results[name] = (kind, value)
        return self

    def returns(self, name, value):
        return self._set(name, "returns", value)

    def fails(self, name, err):
        return self._set(name, "fails", err)

    def answers(self, name, fn):
        return self._set(name, "answers", fn)

    def called(self, name):
        """The arguments of each call of name, in order."""
        return [args for n, args in self.calls if n == name]

    def install(self):
        """Put the fake in place of the real wrappers (uninstall() undoes it)."""
        if self._saved is None:
            self._saved = {name: getattr(_real, name) for name in _real.CALLS}
            for name in _real.CALLS:
                setattr(_real, name, getattr(self, name))
        return self

    def uninstall(self):
        if self._saved is not None:
            for name, fn in self._saved.items():
                setattr(_real, name, fn)
            self._saved = None

    def __enter__(self):
        return self.install()

    def __exit__(self, *exc):
        self.uninstall()
