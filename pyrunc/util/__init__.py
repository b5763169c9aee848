"""Small helpers with no pyrunc dependencies.
"""
