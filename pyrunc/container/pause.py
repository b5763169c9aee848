"""pause and resume: freeze and thaw the container's cgroup."""
import os

from pyrunc.container.state import manager_or_error, open_container
from pyrunc.errors import ContainerNotRunning, PyruncError


def pause(root, cid):
    c = open_container(root, cid)
    lockfd = c.store.lock(cid)
    try:
        if c.status() not in ("running", "created"):
            raise ContainerNotRunning(cid)
        manager_or_error(c, "pause").freeze()
    finally:
        os.close(lockfd)


def resume(root, cid):
    c = open_container(root, cid)
    lockfd = c.store.lock(cid)
    try:
        if c.status() != "paused":
            raise PyruncError("container not paused")
        manager_or_error(c, "resume").thaw()
    finally:
        os.close(lockfd)
