"""/proc/self/mountinfo and /proc/self/cgroup as the rootfs steps and the cgroup managers read them."""


def unescape(s):
    """A mountinfo field: the kernel writes space, tab, newline and backslash as \\ooo."""
    if "\\" not in s:
        return s
    out = []
    i = 0
    while i < len(s):
        esc = s[i + 1:i + 4]
        if s[i] == "\\" and len(esc) == 3 and esc.isdigit():
            out.append(chr(int(esc, 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


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
