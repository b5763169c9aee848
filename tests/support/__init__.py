"""Helpers shared by the test modules (imported as ``support.<module>``; tests/ is on
sys.path: conftest.py puts it there).

- paths:    REPO, SHARED_SPEC (the runtime-spec text in ../shared), SCHEMA_DIR
- host:     what this host is and has: cgroup version, systemd as init, busybox, the
            pyrunc console script, /proc/self/mountinfo parsing, cgroup dirs of a
            container or of a test prefix, 0711 on tmp dirs for a user namespace
- runtime:  Runtime (one runtime binary with a private --root, bundles, cleanup) and
            ConsoleReceiver (a --console-socket listener)
- checks:   wait_for, one_line_error (the "one line, no traceback" rule for errors)
- bundles:  config edits used by several modules (user namespace, namespaces, ids)
- schemas:  a jsonschema validator for the official runtime-spec schemas
- compare:  pyrunc next to runc: the same bundle through both

Every module imports only the standard library (and pytest) at its top, never pyrunc's
compiled module: the tests marked ``unit`` use them without root or pyrunc.native._lowlevel.
"""
