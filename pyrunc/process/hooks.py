"""OCI hooks (config.md "POSIX-platform Hooks"): each gets the container state on stdin."""
from pyrunc.errors import HookError, PyruncError  # noqa: F401 - HookError re-exported
from pyrunc.util.jsonutil import dumps
from pyrunc import log


OCI_VERSION = "1.3.0"


def hook_state(cid, status, pid, bundle, config):
    """The state (runtime.md "State") a hook reads on stdin."""
    return {"ociVersion": OCI_VERSION, "id": cid, "status": status, "pid": pid,
            "bundle": bundle, "annotations": config.get("annotations") or {}}


def run_hooks(config, kind, state, *, warn_only=False, inherit=None):
    """Run config.hooks[kind] in order. A failure raises, or only warns (poststop).
    A hook without env gets inherit (a list of "K=V"), or with None the runtime's
    environment (as runc's: Go's exec with a nil Env)."""
    hooks = (config.get("hooks") or {}).get(kind) or ()
    if not hooks:
        return

    data = dumps(state, spaced=True).encode()
    for i, h in enumerate(hooks):
        try:
            run_hook(h, data, inherit)
        except PyruncError as e:
            msg = f"{kind} hook #{i} ({h.get('path')}): {e}"
            if not warn_only:
                raise HookError(msg) from None

            log.warning(msg)


# A timeout beyond this (136 years) is no timeout: the clocks' arithmetic overflows.
_MAX_TIMEOUT = 1 << 32


def run_hook(hook, stdin_data, inherit=None):
    import subprocess

    path = hook["path"]
    args = hook.get("args") or [path]
    for where, value in [("path", path)] + [(f"args[{i}]", a) for i, a in enumerate(args)] + \
            [(f"env[{i}]", e) for i, e in enumerate(hook.get("env") or ())]:
        if "\0" in value:
            # execve(2) cannot pass it (runc: "invalid argument").
            raise PyruncError(f"{where} contains a NUL byte")
    env = hook.get("env")  # an empty list is an empty environment
    if env is None:
        env = inherit
    if env is not None:
        env = dict(e.split("=", 1) for e in env if "=" in e)
    # "_timeout": below 1 s, kept by config/compat.py (runc: already expired at the start)
    timeout = hook.get("timeout", hook.get("_timeout"))
    if timeout is not None and timeout >= _MAX_TIMEOUT:
        timeout = None
    try:
        p = subprocess.Popen(args, executable=path, env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
                             restore_signals=True, start_new_session=False)
    except OSError as e:
        raise PyruncError(f"starting {path}: {e.strerror}") from None
    except ValueError as e:  # e.g. an env name Python's exec refuses ("=x")
        raise PyruncError(f"cannot run it: {e}") from None
    try:
        out, err = p.communicate(stdin_data, timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise PyruncError(f"timed out after {timeout}s") from None
    if p.returncode != 0:
        how = (f"exit status {p.returncode}" if p.returncode > 0
               else f"killed by signal {-p.returncode}")
        detail = (err or out).decode(errors="replace").strip().replace("\n", " ")[:500]
        raise PyruncError(f"{how}" + (f": {detail}" if detail else ""))
