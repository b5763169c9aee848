"""Linux features applied to the container: namespaces, capabilities, seccomp, sysctl,
console, network devices, LSMs (lsm/).
"""
