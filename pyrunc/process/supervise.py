"""Foreground supervision for `run` (and `exec`): forward signals, reap, exit code."""
import os

# _signal, not signal: the signal module builds enums (enum costs ~7 ms to import).
import _signal as signal

_NOT_FORWARDED = {signal.SIGCHLD, signal.SIGKILL, signal.SIGSTOP, signal.SIGURG, signal.SIGWINCH}


def block_all():
    """Block every signal so that supervise() can take them with sigwaitinfo."""
    signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.valid_signals()))


def status_code(status):
    """A wait status as a shell gives it: the exit code, or 128+N if signal N killed it."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _reap(pid):
    """Reap every exited child (we are a subreaper); return pid's exit code if it exited."""
    code = None
    while True:
        try:
            wpid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return code if code is not None else (0 if pid is None else code)
        if wpid == 0:
            return code
        if wpid == pid:
            code = status_code(status)


def supervise(pid, on_winch=None):
    """Forward signals to pid until it exits; returns its exit code (128+N if killed).
    Call block_all() before the process can exit."""
    code = _reap(pid)
    if code is not None:
        return code
    sigs = set(signal.valid_signals())
    while True:
        info = signal.sigwaitinfo(sigs)
        sig = info.si_signo
        if sig == signal.SIGCHLD:
            code = _reap(pid)
            if code is not None:
                return code
        elif sig == signal.SIGWINCH:
            if on_winch:
                on_winch()
        elif sig not in _NOT_FORWARDED:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
