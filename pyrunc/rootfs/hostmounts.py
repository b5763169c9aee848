"""A container without a mount namespace mounts in the runtime's (runc does too: it
binds the rootfs onto itself, mounts the config's mounts under it and chroots). Those
mounts are resources create made (runtime.md "delete"): the runtime notes the rootfs's
mount before the fork, and create's undo and delete detach what was stacked on it
(the init's bind of the rootfs, with every mount under it; runc leaves them).
"""
import os

from pyrunc.native import constants as C

_MAX_STACK = 16  # mounts stacked on one rootfs path (the bind, binds on the container's /)


def top_mount_id(path):
    """The id (mountinfo's first field) of the mount a lookup of path reaches."""
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        with open(f"/proc/self/fdinfo/{fd}", "rb") as f:
            for line in f:
                if line.startswith(b"mnt_id:"):
                    return int(line.split()[1])
    finally:
        os.close(fd)
    return None


def stacked_ids(path, base):
    """Ids of the mounts stacked on path above the mount base, top first."""
    ids = []
    top = top_mount_id(path)
    if top is None or top == base:
        return ids
    parents = {}
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            a = line.split(None, 5)
            parents[int(a[0])] = int(a[1])
    cur = top
    while cur is not None and cur != base and cur not in ids and len(ids) < _MAX_STACK:
        ids.append(cur)
        cur = parents.get(cur)
    return ids if cur == base else []  # not a plain stack on base: not ours to touch


def detach(path, ids):
    """Lazily unmount, top first, the mounts of ids still stacked on path (in this
    mount namespace: ids of another one never match), each with all mounts under it."""
    from pyrunc.native import syscalls as sc

    for _ in range(len(ids)):
        try:
            if top_mount_id(path) not in ids:
                return
            sc.umount2(path, C.MNT_DETACH)
        except OSError:
            return
