"""The --systemd-cgroup driver (driver.py): unit properties (props.py) over D-Bus (dbus.py).
"""
