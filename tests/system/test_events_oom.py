"""`events` and OOM kills on cgroup v2 (memory.events), where the kernel's inotify event for
an oom_kill increase is rate-limited (cgroup_file_notify: up to 10 ms late) and may come after
the one for cgroup.events "populated 0" when the container's last process exits at once.
A fake cgroup directory (regular files: inotify works on them) orders the two events."""
import os

from pyrunc.cgroups.oomwatch import MemoryEventsWatch
from pyrunc.events import events


class _Container:
    """What events() uses of a container: its id, status() and its cgroup manager's
    oom_watch(). The status is "running" at first (events() looks before the exit is
    seen), then "stopped" once the cgroup is empty."""

    def __init__(self, cgdir, watch):
        self.id = "c1"
        self.cgdir = cgdir
        self.watch = watch
        self.looked = False

    def status(self):
        if not self.looked:
            self.looked = True
            return "running"
        populated = (self.cgdir / "cgroup.events").read_text().split("\n")[0]
        return "running" if populated == "populated 1" else "stopped"

    def cgroup_manager(self):
        return self

    def oom_watch(self):
        return self.watch


def _cgroup(tmp_path):
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n")
    (tmp_path / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    return MemoryEventsWatch(str(tmp_path))


def _oom_kill_notified_late(tmp_path):
    """memory.events says oom_kill 1, but its watch has no event yet: the file is replaced
    (the watched inode, held open, stays as it was)."""
    held = open(tmp_path / "memory.events", "rb")
    new = tmp_path / "memory.events.new"
    new.write_text("low 0\nhigh 0\nmax 5\noom 2\noom_kill 1\n")
    os.replace(new, tmp_path / "memory.events")
    return held


def test_oom_kill_reported_when_the_cgroup_empties_first(tmp_path):
    watch = _cgroup(tmp_path)
    held = _oom_kill_notified_late(tmp_path)
    try:
        (tmp_path / "cgroup.events").write_text("populated 0\nfrozen 0\n")
        got = [e["type"] for e in events(_Container(tmp_path, watch), interval=30)]
    finally:
        held.close()
    assert got == ["oom"]


def test_oom_kill_notified_in_time(tmp_path):
    watch = _cgroup(tmp_path)
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 5\noom 2\noom_kill 1\n")
    (tmp_path / "cgroup.events").write_text("populated 0\nfrozen 0\n")
    got = [e["type"] for e in events(_Container(tmp_path, watch), interval=30)]
    assert got == ["oom"]


def test_no_oom_no_event(tmp_path):
    watch = _cgroup(tmp_path)
    (tmp_path / "cgroup.events").write_text("populated 0\nfrozen 0\n")
    got = [e["type"] for e in events(_Container(tmp_path, watch), interval=30)]
    assert got == []
