"""The processes pyrunc forks: stage-1 and the container's init, the init-pipe channel
between them and the runtime, the exec helper, process attributes, foreground supervision.
"""
