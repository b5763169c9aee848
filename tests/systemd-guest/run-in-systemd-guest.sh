#!/usr/bin/env bash
# run-in-systemd-guest.sh - run a command, as root, in a throwaway QEMU guest whose PID 1
# is systemd (Debian 12's), on cgroup v2 (default) or on systemd's hybrid v1 layout.
#
# The kernel and Debian 12 rootfs come from ../shared/v2-guest/run-in-v2-guest.sh (its
# --build, into a cache of our own with systemd, dbus and docker.io added); this script
# builds its own small initrd, which drops a few files into the per-run copy-on-write
# overlay of the image (the command's unit, masks, a machine-id) and switch_roots to
# /lib/systemd/systemd. The command runs in sdvm-cmd.service (system.slice) once the
# boot reaches it; docker and containerd are installed but not started (tests start them).
#
# Usage:
#   run-in-systemd-guest.sh [options] [--] COMMAND [ARGS...]
#   run-in-systemd-guest.sh --build       # only build the cached image (first time ~3-5 min)
# Options (as run-in-v2-guest.sh):
#   -v HOSTDIR:GUESTDIR[:ro]  share a host directory (9p, repeatable)
#   -m MB  guest memory (default 4096)     -c N  guest CPUs (default: host's nproc)
#   -t SECONDS  kill the guest after this long (default 5400)
#   -w DIR  working directory in the guest (default /root)
#   -e NAME=VALUE  environment variable for the command (repeatable)
#   --cgroup v2|v1  v2: cgroup_no_v1=all, unified hierarchy (default);
#                   v1: systemd.unified_cgroup_hierarchy=0 (systemd's hybrid layout)
#   --no-net, --keep-console, --build, --rebuild
# A single COMMAND argument is run by `bash -c`; several are exec'd as argv. Its stdout and
# stderr come back on this script's stdout; its exit code is this script's (plus a last
# line "sdvm: exit code N"); 124 on timeout, 125 if the guest died without one.
# Environment: SDVM_CACHE (default /tmp/sdvm/cache), V2VM_SCRIPT (the shared builder),
# SDVM_NICE (nice level of QEMU, default 10: the host is shared).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
V2VM=${V2VM_SCRIPT:-$HERE/../../../shared/v2-guest/run-in-v2-guest.sh}
CACHE=${SDVM_CACHE:-/tmp/sdvm/cache}
NICE=${SDVM_NICE:-10}
EXTRA_PKGS="systemd systemd-sysv dbus docker.io"
MEM=4096; CPUS=$(nproc); TIMEOUT=5400; WORKDIR=/root; NET=1; KEEPCON=0; BUILD_ONLY=0; REBUILD=0; CG=v2
SHARES=(); ENVS=()

log() { printf 'sdvm: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 125; }

while [ $# -gt 0 ]; do
  case $1 in
    -v) SHARES+=("$2"); shift 2;;
    -m) MEM=$2; shift 2;;
    -c) CPUS=$2; shift 2;;
    -t) TIMEOUT=$2; shift 2;;
    -w) WORKDIR=$2; shift 2;;
    -e) ENVS+=("$2"); shift 2;;
    --cgroup) CG=$2; shift 2;;
    --no-net) NET=0; shift;;
    --keep-console) KEEPCON=1; shift;;
    --build) BUILD_ONLY=1; shift;;
    --rebuild) BUILD_ONLY=1; REBUILD=1; shift;;
    -h|--help) sed -n '2,30p' "$0"; exit 0;;
    --) shift; break;;
    -*) die "unknown option $1";;
    *) break;;
  esac
done
[ "$(id -u)" = 0 ] || die "run as root"
[ $BUILD_ONLY = 1 ] || [ $# -gt 0 ] || die "no command (see --help)"
case $CG in v1|v2) ;; *) die "--cgroup: v1 or v2";; esac
[ -f "$V2VM" ] || die "no $V2VM (the shared v2-guest builder; set V2VM_SCRIPT)"

# ---------------------------------------------------------------------------- build
build() {
  mkdir -p "$CACHE"
  local want="$EXTRA_PKGS"
  if [ $REBUILD = 1 ] || { [ -f "$CACHE/rootfs/.done" ] && [ "$(cat "$CACHE/.sdvm-pkgs" 2>/dev/null)" != "$want" ]; }; then
    V2VM_CACHE=$CACHE V2VM_EXTRA_PKGS="$want" nice -n "$NICE" bash "$V2VM" --rebuild >&2
  else
    V2VM_CACHE=$CACHE V2VM_EXTRA_PKGS="$want" nice -n "$NICE" bash "$V2VM" --build >&2
  fi
  echo "$want" > "$CACHE/.sdvm-pkgs"
  build_initrd
}

write_guest_files() {  # $1: a directory laid out like the guest's root
  local r=$1
  mkdir -p "$r/etc/systemd/system/multi-user.target.wants" "$r/usr/local/sbin"
  cat > "$r/etc/systemd/system/sdvm-cmd.service" <<'UNIT'
[Unit]
Description=run-in-systemd-guest.sh command
Wants=dbus.service
After=dbus.service

[Service]
Type=exec
ExecStart=/usr/local/sbin/sdvm-cmd
StandardInput=null
StandardOutput=journal
TimeoutStartSec=infinity
UNIT
  ln -sf ../sdvm-cmd.service "$r/etc/systemd/system/multi-user.target.wants/sdvm-cmd.service"
  # Nothing the tests do not use: no gettys (the consoles are QEMU's serial files), no
  # timers; docker/containerd installed, not started.
  for u in serial-getty@ttyS0.service serial-getty@ttyS1.service getty@tty1.service \
           apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
           fstrim.timer man-db.timer dpkg-db-backup.timer logrotate.timer \
           systemd-tmpfiles-clean.timer podman-auto-update.timer podman-auto-update.service \
           podman-restart.service podman-clean-transient.service podman.socket \
           docker.service docker.socket containerd.service; do
    case $u in docker.*|containerd.*) ;; *) ln -sf /dev/null "$r/etc/systemd/system/$u";; esac
  done
  cat > "$r/usr/local/sbin/sdvm-cmd" <<'CMD'
#!/bin/bash
# The guest side of run-in-systemd-guest.sh (sdvm-cmd.service): /v2ctl (9p) holds the
# command, its environment and the shares; the exit code goes back there; then power off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb
off() { sync; umount -a -t 9p 2>/dev/null; echo o > /proc/sysrq-trigger; sleep 10; }
modprobe -a 9p 9pnet_virtio virtio_net 2>/dev/null
mkdir -p /v2ctl
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none v2ctl /v2ctl || { echo "sdvm: no /v2ctl" > /dev/ttyS0; off; }
if [ -f /v2ctl/net ]; then
  for _ in $(seq 100); do [ -e /sys/class/net/eth0 ] && break; sleep 0.1; done
  ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
fi
while read -r tag gpath mode; do
  [ -n "$tag" ] || continue
  mkdir -p "$gpath"
  mount -t 9p -o "trans=virtio,version=9p2000.L,msize=512000,cache=loose,$mode" "$tag" "$gpath" || echo "sdvm: cannot mount $tag on $gpath" > /dev/ttyS0
done < /v2ctl/mounts
date -s "@$(cat /v2ctl/epoch)" >/dev/null 2>&1
stty -F /dev/ttyS1 raw -echo 2>/dev/null
echo "sdvm: booted in $(cut -d' ' -f1 /proc/uptime) s (guest clock), systemd $(systemctl is-system-running 2>/dev/null)" > /dev/ttyS0
(
  cd "$(cat /v2ctl/workdir)" 2>/dev/null || cd /root
  set -a; . /v2ctl/env; set +a
  exec bash /v2ctl/cmd.sh
) </dev/null 2>&1 | cat > /dev/ttyS1
echo "${PIPESTATUS[0]}" > /v2ctl/rc
off
CMD
  chmod +x "$r/usr/local/sbin/sdvm-cmd"
}

build_initrd() {  # the shared builder's initrd modules + our init and guest files
  local sum; sum=$(cat "$0" "$CACHE/initrd.sum" | sha256sum | cut -c1-16)
  [ -f "$CACHE/sd-initrd.img" ] && [ "$(cat "$CACHE/sd-initrd.sum" 2>/dev/null)" = "$sum" ] && return 0
  [ -d "$CACHE/initrd.d/mods" ] || die "the shared builder left no $CACHE/initrd.d"
  local i=$CACHE/sd-initrd.d; rm -rf "$i"; cp -a "$CACHE/initrd.d" "$i"; rm -f "$i/v2init"
  mkdir -p "$i/sdvm"; write_guest_files "$i/sdvm"
  cat > "$i/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
for m in $(cat /mods/order); do insmod /mods/$m 2>/dev/null; done
n=0; while [ ! -b /dev/vda ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done
mount -t ext4 -o rw /dev/vda /newroot || { echo "initrd: cannot mount /dev/vda"; exec sh; }
cp -a /sdvm/. /newroot/
rm -f /newroot/etc/systemd/system/multi-user.target.wants/docker.service \
      /newroot/etc/systemd/system/multi-user.target.wants/containerd.service \
      /newroot/etc/systemd/system/sockets.target.wants/docker.socket
# a machine-id: an empty one would make this a "first boot" (preset-all enables units)
cat /proc/sys/kernel/random/uuid | tr -d '-' > /newroot/etc/machine-id
mount --move /dev /newroot/dev; umount /proc /sys
exec switch_root /newroot /lib/systemd/systemd
INIT
  chmod +x "$i/init"
  (cd "$i" && find . | cpio -o -H newc --quiet | gzip -1) > "$CACHE/sd-initrd.img.tmp"
  mv "$CACHE/sd-initrd.img.tmp" "$CACHE/sd-initrd.img"; echo "$sum" > "$CACHE/sd-initrd.sum"
}

build
[ $BUILD_ONLY = 1 ] && exit 0

# ---------------------------------------------------------------------------- run
KVER=$(cat "$CACHE/kernel/.done")
CTL=$(mktemp -d /tmp/sdvm-run.XXXXXX)
cleanup() { rm -rf "$CTL"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ $# -eq 1 ]; then printf '%s\n' "$1" > "$CTL/cmd.sh"
else { printf 'exec'; printf ' %q' "$@"; printf '\n'; } > "$CTL/cmd.sh"; fi
: > "$CTL/env"; for e in "${ENVS[@]}"; do printf '%q\n' "$e" >> "$CTL/env"; done
echo "$WORKDIR" > "$CTL/workdir"; date +%s > "$CTL/epoch"; [ $NET = 1 ] && touch "$CTL/net"
if [ $CG = v2 ]; then CGARGS="cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1"
else CGARGS="systemd.unified_cgroup_hierarchy=0"; fi
QARGS=(-name sdvm -m "$MEM" -smp "$CPUS" -display none -monitor none -no-reboot -nodefaults
  -kernel "$CACHE/kernel/x/boot/vmlinuz-$KVER" -initrd "$CACHE/sd-initrd.img"
  -append "console=ttyS0 quiet loglevel=3 panic=-1 rw rdinit=/init hugepages=16 tsc=reliable lsm=lockdown,landlock,bpf systemd.show_status=0 $CGARGS ${V2VM_APPEND:-}"
  -drive "file=$CACHE/rootfs.img,if=virtio,format=raw,snapshot=on,cache=unsafe,aio=threads"
  -serial "file:$CTL/console.log" -serial stdio
  -device virtio-rng-pci
  -virtfs "local,path=$CTL,mount_tag=v2ctl,security_model=none,multidevs=remap"
  -accel tcg,thread=multi,tb-size=1024 -cpu max)
[ $NET = 1 ] && QARGS+=(-netdev user,id=n0 -device virtio-net-pci,netdev=n0)
: > "$CTL/mounts"; n=0
for s in "${SHARES[@]}"; do
  IFS=: read -r hp gp mode <<<"$s"
  [ -d "$hp" ] || die "share $hp: not a directory"
  ro=""; [ "$mode" = ro ] && ro=",readonly=on"
  QARGS+=(-virtfs "local,path=$(realpath "$hp"),mount_tag=v2s$n,security_model=none,multidevs=remap$ro")
  echo "v2s$n $gp ${mode:-rw}" >> "$CTL/mounts"; n=$((n + 1))
done
log "booting systemd (cgroup $CG, tcg, ${CPUS} CPU, ${MEM} MiB, kernel $KVER, nice $NICE)"
T0=$(date +%s.%N)
qrc=0; timeout -k 10 "$TIMEOUT" nice -n "$NICE" qemu-system-x86_64 "${QARGS[@]}" </dev/null || qrc=$?
T1=$(date +%s.%N)
if [ $KEEPCON = 1 ] || [ ! -s "$CTL/rc" ]; then
  log "---- guest console ----"; tr -d '\r' < "$CTL/console.log" | grep -v $'\e\\[' >&2 || true; log "----"
fi
booted=$(grep -a -o 'booted in [0-9.]* s[^,]*, systemd [a-z-]*' "$CTL/console.log" | head -1 || true)
log "guest ${booted:-did not boot}; wall time from qemu start to poweroff $(awk "BEGIN{printf \"%.1f\", $T1 - $T0}") s"
if [ -s "$CTL/rc" ]; then rc=$(cat "$CTL/rc"); else
  rc=125; [ $qrc = 124 ] && { rc=124; log "timed out after $TIMEOUT s"; }
fi
echo "sdvm: exit code $rc"
exit "$rc"
