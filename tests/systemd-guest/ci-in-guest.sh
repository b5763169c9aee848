# Inside the systemd guest (run-in-systemd-guest.sh): the checkout, shared read-only at
# /mnt/main, copied to /srv/project (../shared at /srv/shared, as on the host), installed
# as README's test command does (the image has its apt packages, plus systemd, dbus and
# docker.io), then the tests marked `systemd` (pytest -m systemd); arguments go to pytest.
set -e
mkdir -p /srv/project
tar -C /mnt/main --exclude=./.venv --exclude=./build --exclude=./pyrunc.egg-info -cf - . | tar -C /srv/project -xf -
cd /srv/project
echo "guest: $(systemctl --version | head -1), cgroup $(stat -fc %T /sys/fs/cgroup), $(runc --version | head -1)"
s=$(date +%s); python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'; echo "[time] venv + pip install: $(( $(date +%s) - s )) s"
s=$(date +%s); set +e
.venv/bin/python -m pytest -p no:cacheprovider -m systemd -q -rs --durations=10 "$@"; rc=$?
echo "[time] pytest -m systemd: $(( $(date +%s) - s )) s"; exit $rc
