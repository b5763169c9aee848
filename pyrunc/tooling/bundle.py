"""Build a small OCI bundle from the host's static busybox (Debian busybox-static): no image
download. Used by the README's first-run command and by the tests.

    python3 -m pyrunc.tooling.bundle DIR [-- ARGS...]
"""
import json
import os
import shutil
import sys

from pyrunc.config.default import default_config

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


def find_busybox():
    for p in BUSYBOX_CANDIDATES:
        if os.path.exists(p):
            return p
    raise SystemExit("busybox not found: apt-get install busybox-static")


def make_rootfs(rootfs, busybox=None):
    busybox = busybox or find_busybox()
    for d in ("bin", "dev", "etc", "proc", "sys", "tmp", "root", "home", "var", "run", "mnt"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    dst = os.path.join(rootfs, "bin", "busybox")
    shutil.copy2(busybox, dst)
    import subprocess

    applets = subprocess.run([dst, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        link = os.path.join(rootfs, "bin", a)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        "etc/group": "root:x:0:\nnogroup:x:65534:\n",
        "etc/hostname": "pyrunc\n",
    }
    for name, text in files.items():
        with open(os.path.join(rootfs, name), "w") as f:
            f.write(text)


def make_bundle(bundle, args=None, *, busybox=None, terminal=False, cgroups_path=None, **overrides):
    """Write BUNDLE/rootfs and BUNDLE/config.json (runc's default spec, non-interactive)."""
    os.makedirs(bundle, exist_ok=True)
    make_rootfs(os.path.join(bundle, "rootfs"), busybox)
    config = default_config()
    config["process"]["terminal"] = terminal
    config["process"]["args"] = list(args or ["sh"])
    config["root"]["readonly"] = False
    if cgroups_path:
        config["linux"]["cgroupsPath"] = cgroups_path
    config.update(overrides)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f, indent="\t")
    return config


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    args = argv[2:] if argv[1:2] == ["--"] else None
    args = args or ["sh", "-c", "echo Hello from a pyrunc container: $(hostname), pid $$, $(id)"]
    make_bundle(argv[0], args)
    print(f"bundle written to {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
