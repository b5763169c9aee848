"""kill (runtime.md "Operations: Kill"): a signal to the init, or with --all to every
process of the container's cgroup."""
import os

# _signal, not signal: the signal module builds enums (enum costs ~7 ms to import).
import _signal as signal

from pyrunc.container.state import open_container
from pyrunc.errors import ContainerNotRunning, PyruncError


SIGNALS = {name: getattr(signal, name) for name in dir(signal)
           if name.startswith("SIG") and not name.startswith("SIG_")
           and isinstance(getattr(signal, name), int)}


def parse_signal(text):
    t = str(text).strip()
    if t.isdigit():
        n = int(t)
        if 0 <= n < signal.NSIG:  # 0: runc accepts it (a liveness check)
            return n
    else:
        name = t.upper()
        if not name.startswith("SIG"):
            name = "SIG" + name
        if name in SIGNALS:
            return SIGNALS[name]
        for base, sign in (("SIGRTMIN+", 1), ("SIGRTMAX-", -1)):  # as runc (moby's parser)
            if name.startswith(base) and name[len(base):].isdigit():
                n = SIGNALS[base[:-1]] + sign * int(name[len(base):])
                if signal.SIGRTMIN <= n <= signal.SIGRTMAX:
                    return n
    raise PyruncError(f'unknown signal "{text}"')


def kill_all(c, sig):
    mgr = c.cgroup_manager()
    if sig == signal.SIGKILL and mgr is not None and mgr.kill_all():
        # cgroup v2's cgroup.kill: every process of the subtree at once, none escapes by
        # forking meanwhile (runc 1.2 uses it; 1.1 freezes the cgroup while it signals)
        if c.init_alive():  # (an init a rootless runtime could not place)
            try:
                os.kill(c.record["init_pid"], sig)
            except ProcessLookupError:
                pass
        if mgr.frozen():
            mgr.thaw()
        return
    pids = set(mgr.pids()) if mgr is not None else set()
    if c.init_alive():
        pids.add(c.record["init_pid"])
    frozen = mgr is not None and sig == signal.SIGKILL and mgr.frozen()
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    if frozen:
        mgr.thaw()


def kill(root, cid, sig=signal.SIGTERM, all_processes=False):
    c = open_container(root, cid)
    status = c.status()
    if status == "stopped":
        if all_processes:
            return  # runc: kill --all of a stopped container is no error (engines rely on it)
        raise ContainerNotRunning(cid)
    if all_processes:
        kill_all(c, sig)
        return
    try:
        os.kill(c.record["init_pid"], sig)
    except ProcessLookupError:
        raise ContainerNotRunning(cid) from None
