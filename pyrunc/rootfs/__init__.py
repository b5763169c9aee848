"""The container's root filesystem, set up by the init in its mount namespace: resolve and
mount (mounts, idmap, devices), pivot, finalize; host-side mount preparation (hostmounts).
"""
