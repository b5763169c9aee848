"""Fix-ups for what engines write and runc accepts, applied before validation so that
pyrunc takes the same configs: each returns a note (`validate` shows them)."""


def runc_compat(config):
    """Normalise config in place; returns notes as `JSON-pointer: message`."""
    notes = []
    linux = config.get("linux") if isinstance(config, dict) else None
    devices = linux.get("devices") if isinstance(linux, dict) else None
    for i, d in enumerate(devices if isinstance(devices, list) else ()):
        mode = d.get("fileMode") if isinstance(d, dict) else None
        # podman writes fileMode with the file-type bits (0o20666 for a char device);
        # runc ORs the type in anyway. The schema allows permission bits only.
        if isinstance(mode, int) and not isinstance(mode, bool) and 0o777 < mode <= 0o177777:
            d["fileMode"] = mode & 0o777
            notes.append(f"/linux/devices/{i}/fileMode: {mode} ({mode:#o}) includes file-type bits; "
                         f"taken as {mode & 0o777:#o} (runc compatibility)")
    return notes
