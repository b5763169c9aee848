"""Config edits (functions of the config dict) that several modules apply."""
import uuid


def new_id(prefix="t"):
    """A fresh container id."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def userns(c, host_id=200000, size=65536):
    """A user namespace mapping container ids 0..size-1 to host_id... (uid and gid)."""
    c["linux"]["namespaces"].append({"type": "user"})
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": host_id, "size": size}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": host_id, "size": size}]


def drop_namespace(c, kind):
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != kind]
