"""update: change the limits of a live container (runc update); stored in its state."""
import os

from pyrunc.container.state import Store, manager_or_error, open_container
from pyrunc.errors import PyruncError


def update(root, cid, resources):
    """Change the limits of a live container; the new values are stored in its state."""
    store = Store(root)
    lockfd = store.lock(cid)
    try:
        c = open_container(root, cid)
        if c.status() == "stopped":
            raise PyruncError(f"cannot update a stopped container {cid}")
        linux = c.config.setdefault("linux", {})
        merged = _merge(linux.get("resources") or {}, resources)
        manager_or_error(c, "update").set(merged, linux_devices=linux.get("devices"))
        linux["resources"] = merged
        store.save(cid, c.record)
    finally:
        os.close(lockfd)


def _merge(old, new):
    out = dict(old)
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out
