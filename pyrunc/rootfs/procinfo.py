"""What the init reads of its own mounts and cgroups: /proc/self/mountinfo, /proc/self/cgroup."""


def unescape(s):
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mountinfo():
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            a, b = left.split(), right.split()
            out.append({"id": a[0], "root": unescape(a[3]), "mountpoint": unescape(a[4]),
                        "fstype": b[0], "source": b[1] if len(b) > 1 else "",
                        "super": b[2] if len(b) > 2 else ""})
    return out


def own_cgroups():
    """{frozenset(controllers): path} from /proc/self/cgroup (the init is in its cgroups)."""
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            parts = line.rstrip("\n").split(":", 2)
            if len(parts) == 3:
                own[frozenset(c for c in parts[1].split(",") if c)] = parts[2]
    return own
