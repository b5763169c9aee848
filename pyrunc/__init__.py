"""pyrunc: an OCI runtime-spec compatible low-level container runtime (a drop-in for runc).

Library use: pyrunc.container.create/start/state/kill/delete; pyrunc.container.load_bundle.
"""
__version__ = "0.1.0"
