"""Tooling, not runtime: helpers for the README, tests and benchmarks.
"""
