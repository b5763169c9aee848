"""Semantic checks of config.json beyond the schema, one module per area; checks.py runs them.
"""
