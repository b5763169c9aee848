"""A container's lifecycle (runtime.md "Operations"): the state store, create, the
operations on a created container, hooks.
"""
