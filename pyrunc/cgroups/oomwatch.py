"""OOM notifications for `events` (off the hot paths).

A watch has fileno() (poll it) and read(): how many OOM kills happened since the last
read, or None once the container's cgroup is gone or empty (the watch is over);
final(): how many OOM kills not yet reported, without waiting (called once the container
has stopped).

- cgroup v1: an eventfd registered on memory.oom_control (cgroup.event_control).
- cgroup v2: inotify on memory.events and cgroup.events, as runc's registerMemoryEventV2:
  a change of memory.events with a larger oom_kill count is an OOM kill; cgroup.events
  saying "populated 0" ends the watch. (runc reports an event at every change of
  memory.events once oom_kill is non-zero; this reports each increase once.)
"""
import os
import select
import struct

from pyrunc.native import constants as C


class EventfdWatch:
    def __init__(self, manager, fd):
        self.manager = manager
        self.fd = fd

    def fileno(self):
        return self.fd

    def read(self):
        os.read(self.fd, 8)
        # The eventfd also fires when the cgroup is removed: that is no OOM (runc).
        return 1 if self.manager.exists() else None

    def final(self):
        if select.select([self.fd], [], [], 0)[0]:
            return self.read() or 0
        return 0

    def close(self):
        os.close(self.fd)


def _keyed(path, key):
    try:
        with open(path, "rb") as f:
            for line in f.read().decode().splitlines():
                k, _, v = line.partition(" ")
                if k == key:
                    return int(v)
    except (OSError, ValueError):
        return None
    return None


class MemoryEventsWatch:
    _EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (+ name)

    def __init__(self, cgdir):
        from pyrunc.native import syscalls as sc

        self.events = os.path.join(cgdir, "memory.events")
        self.cgevents = os.path.join(cgdir, "cgroup.events")
        self.fd = sc.inotify_init()
        try:
            self.ev_wd = sc.inotify_add_watch(self.fd, self.events, C.IN_MODIFY)
            self.cg_wd = sc.inotify_add_watch(self.fd, self.cgevents, C.IN_MODIFY)
        except OSError:
            os.close(self.fd)
            raise
        self.seen = _keyed(self.events, "oom_kill") or 0

    def fileno(self):
        return self.fd

    def read(self):
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return 0
        wds = set()
        off = 0
        while off + self._EVENT.size <= len(data):
            wd, _mask, _cookie, length = self._EVENT.unpack_from(data, off)
            wds.add(wd)
            off += self._EVENT.size + length
        count = 0
        if self.ev_wd in wds:
            now = _keyed(self.events, "oom_kill")
            if now is None:
                return None  # the cgroup is gone
            count, self.seen = max(now - self.seen, 0), max(now, self.seen)
        if self.cg_wd in wds and not _keyed(self.cgevents, "populated"):
            return count or None
        return count

    def final(self):
        # cgroup_file_notify() rate-limits: the inotify event for the oom_kill increase
        # may still be on a timer (up to 10 ms) when the killed init is already reaped.
        # The kernel raises the counter before it sends SIGKILL, so read it directly.
        now = _keyed(self.events, "oom_kill")
        if now is None:
            return 0
        count, self.seen = max(now - self.seen, 0), max(now, self.seen)
        return count

    def close(self):
        os.close(self.fd)
