"""The JSON-schema side of validation: the compiler (compiler.py) of specs/*.json into
_checks.py (generated), its run-time helpers (runtime.py), and the jsonschema-worded
messages (messages.py, only when a check fails).
"""
