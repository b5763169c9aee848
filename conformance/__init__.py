"""Runtime-agnostic conformance cases for the OCI runtime-spec MUST/SHOULD clauses.

Run them with ``python3 conformance/run.py`` (see ``conformance/README.md``).
"""
