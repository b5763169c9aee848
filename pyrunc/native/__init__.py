"""The border to the kernel: everything pyrunc does that Python's `os` cannot.

- constants.py  named kernel and libseccomp values, pure Python (nothing else in pyrunc
                spells an ioctl, flag or syscall number)
- syscalls.py   the wrappers, OSError(errno, "call(args): strerror") on failure, over
                ONE cffi module, _lowlevel (built from _build.py by setup.py);
                libseccomp.so.2 is dlopen'ed by it only for a config with linux.seccomp
- fake.py       a recording stand-in for syscalls.py, for unit tests (no root, no build)
"""
