"""The cgroup v2 manager (manager.py) and the device-rule eBPF program (ebpf.py).
"""
