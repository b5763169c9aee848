"""The cgroup v1 manager (manager.py) and its per-controller writers (controllers.py).
"""
