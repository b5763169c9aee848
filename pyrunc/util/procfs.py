"""/proc/PID/mountinfo and /proc/PID/cgroup, parsed in one place for the rootfs steps and
the cgroup managers (bytes decoded with surrogateescape: a path need not be UTF-8)."""


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


def read_text(path):
    with open(path, "rb") as f:
        return f.read().decode(errors="surrogateescape")


def parse_mountinfo(text, fstypes=None):
    """The mounts of a mountinfo text (only those of fstypes, if given): dicts of id, root,
    mountpoint (both unescaped), fstype, source and super (the super options, as
    written). Lines that are not mounts are skipped."""
    out = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        b = right.split()
        if not sep or not b or (fstypes is not None and b[0] not in fstypes):
            continue
        a = left.split()
        if len(a) < 5:
            continue
        out.append({"id": a[0], "root": unescape(a[3]), "mountpoint": unescape(a[4]),
                    "fstype": b[0], "source": b[1] if len(b) > 1 else "",
                    "super": b[2] if len(b) > 2 else ""})
    return out


def mountinfo(fstypes=None):
    return parse_mountinfo(read_text("/proc/self/mountinfo"), fstypes)


def parse_cgroup(text):
    """(controllers, path) for each line of a /proc/PID/cgroup text: controllers a tuple
    of the hierarchy's controllers and "name=" entries, () for the cgroup v2 one."""
    out = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            out.append((tuple(c for c in parts[1].split(",") if c), parts[2]))
    return out


def own_cgroups():
    """{frozenset(controllers): path} from /proc/self/cgroup (the init is in its cgroups)."""
    return {frozenset(ctrls): path for ctrls, path in parse_cgroup(read_text("/proc/self/cgroup"))}
