"""The runtime's side of a seccomp notify listener (config-linux.md "Seccomp",
listenerPath), started by seccomp.prepare() for a filter with SCMP_ACT_NOTIFY rules.

SCMP_ACT_NOTIFY and listenerPath: the container process sends the listener fd it got
from seccomp(2) to the runtime over a socketpair made before fork; a thread of the
runtime (which knows the process's pid as the host sees it from SCM_CREDENTIALS)
connects to listenerPath and sends runc's ContainerProcessState JSON with the fd in
SCM_RIGHTS, one message per connection, then tells the process whether that worked.
"""
import os
import socket
import struct  # seccomp._hand_over, in the container, imports it too (from sys.modules)

SECCOMP_FD_NAME = "seccompFd"  # runtime-spec's name of the fd in ContainerProcessState
OCI_VERSION = "1.3.0"


def start_forwarder(cfg, state):
    import threading

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    # The kernel then tells us the sender's pid, in our pid namespace: the container
    # process's pid "as seen by the runtime", which the process itself cannot know.
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    t = threading.Thread(target=_forward, name="pyrunc-seccomp-notify", daemon=True,
                         args=(ours, cfg["listenerPath"], cfg.get("listenerMetadata") or "",
                               dict(state)))
    t.start()
    return theirs


def container_process_state(pid, metadata, state):
    """runc's specs.ContainerProcessState, key order and omitempty included."""
    doc = {"ociVersion": OCI_VERSION, "fds": [SECCOMP_FD_NAME], "pid": pid}
    if metadata:
        doc["metadata"] = metadata
    st = {"ociVersion": state.get("ociVersion") or OCI_VERSION, "id": state.get("id", ""),
          "status": state.get("status", "")}
    if state.get("pid"):
        st["pid"] = state["pid"]
    st["bundle"] = state.get("bundle", "")
    if state.get("annotations"):
        st["annotations"] = state["annotations"]
    doc["state"] = st
    return doc


def send_to_listener(path, doc, fd):
    """Connect to the agent's socket, send the JSON with fd in SCM_RIGHTS, close."""
    import json

    data = json.dumps(doc, separators=(",", ":")).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as s:
        s.connect(path)
        sent = s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))])
        while sent < len(data):  # a stream: the rest without the fd (config-linux.md)
            sent += s.send(data[sent:])


def _forward(sock, path, metadata, state):
    """The runtime's thread: one fd from the container process to the listener."""
    fd = None
    try:
        msg, anc, _, _ = sock.recvmsg(64, socket.CMSG_SPACE(struct.calcsize("i")) +
                                      socket.CMSG_SPACE(struct.calcsize("3i")))
        pid = 0
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fd = struct.unpack("i", data[:4])[0]
            elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("3i", data[:12])[0]
        if not msg or fd is None:
            return  # the process died (EOF) or sent nothing usable
        if state.get("status") == "creating":
            state["pid"] = pid  # the init: the state's pid is the process's own
        reply = b"ok"
        try:
            send_to_listener(path, container_process_state(pid, metadata, state), fd)
        except OSError as e:
            reply = (f"linux.seccomp.listenerPath {path}: sending the seccomp fd to the "
                     f"agent: {e.strerror or e}").encode()
        sock.send(reply)
    except OSError:
        pass
    finally:
        if fd is not None:
            os.close(fd)
        sock.close()
