#!/bin/sh
# PID 1 of the pure cgroup v2 lane's guest (see scripts/v2-lane.sh): the
# host's / is the root, read-only over 9p; /run is a tmpfs holding
# v2-lane.env. Mounts what a systemd host has (cgroup2 only, with systemd's
# options) and tmpfs wherever tests write, runs the selected tests with
# nextest from the host's build, prints `V2LANE-RESULT <status>` and powers
# off. As PID 1 this shell also reaps orphans: `wait` collects any child.
#
# `v2-lane-guest.sh systemd`: the systemd leg. systemd is PID 1 and runs
# this script as phobos-lane.service; it has mounted cgroup2 and /dev's
# file systems, and the initramfs put tmpfs over /tmp and /var's writable
# parts. Runs the systemd tests and checks that no phobos unit is left.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C.UTF-8 HOME=/tmp/home TMPDIR=/tmp RUST_BACKTRACE=1
. /run/v2-lane.env
mode=${1:-}

# Powers off with reboot(2) (busybox's `poweroff -f`: sync, then
# RB_POWER_OFF) in the calling process: the kernel shuts the devices down
# and the machine off before that call could return, so nothing runs from
# the 9p root once virtio is gone. (The sysrq trigger powered off from a
# kernel worker while this script went on: its next command got EIO from
# 9p and, as PID 1, its exit made the kernel panic with "Attempted to kill
# init".) As PID 1 the shell execs it, so PID 1 never exits.
finish() {
  echo "V2LANE-RESULT $1"
  sync
  exec /bin/busybox poweroff -f
}

if [ "$mode" = systemd ]; then
  mkdir -p "$HOME"
else
  mount -t tmpfs -o mode=1777 tmpfs /tmp
  mount -t tmpfs -o mode=1777 tmpfs /var/tmp
  mount -t tmpfs -o mode=755 tmpfs /var/lib
  mkdir -p /dev/pts /dev/shm /dev/mqueue "$HOME"
  mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
  mount -t tmpfs -o mode=1777 tmpfs /dev/shm
  mount -t mqueue mqueue /dev/mqueue
  [ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx
  # cgroup2 alone, as systemd mounts it.
  mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup || finish 125
  ip link set lo up 2>/dev/null
  hostname v2-lane
fi

echo "v2-lane guest: kernel $(uname -r), $(nproc) CPUs, cgroup mounts:"
grep cgroup /proc/self/mountinfo | cut -d' ' -f5,9-
echo "v2-lane guest: cgroup.controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "v2-lane guest: scratch disk $V2LANE_DISK: $(cat /sys/class/block/${V2LANE_DISK#/dev/}/size 2>/dev/null) sectors"

# The tests use the scratch disk for io.stat and know they must not skip
# what a pure cgroup v2 host has.
export PHOBOS_TEST_SCRATCH_DISK="$V2LANE_DISK" PHOBOS_TEST_PURE_V2=1
cd "$V2LANE_REPO" || finish 125
if [ "$mode" = systemd ]; then
  echo "v2-lane guest: $(systemctl --version | head -n1 | cut -d' ' -f1-2) is PID 1; this script runs in $(cut -d: -f3 /proc/self/cgroup)"
  export PHOBOS_TEST_SYSTEMD=1
  V2LANE_FILTER=$V2LANE_SYSTEMD_FILTER
fi
"$V2LANE_NEXTEST" nextest run \
  --binaries-metadata "$V2LANE_DIR/binaries.json" \
  --cargo-metadata "$V2LANE_DIR/cargo-metadata.json" \
  --workspace-remap "$V2LANE_REPO" \
  --profile v2-lane --test-threads "$V2LANE_THREADS" --color never --show-progress counter \
  -E "$V2LANE_FILTER" </dev/null &
wait $!
rc=$?
if [ "$mode" = systemd ]; then
  # Every container scope is gone from systemd and from the tree.
  left=$( { systemctl list-units --all --plain --no-legend 'phobos-*.scope' | cut -d' ' -f1;
            find /sys/fs/cgroup -name 'phobos-*.scope'; } | head -n 20)
  if [ -n "$left" ]; then
    echo "v2-lane guest: phobos scopes left behind:"
    echo "$left"
    [ "$rc" -eq 0 ] && rc=1
  fi
  finish "$rc"
fi
left=$(find /sys/fs/cgroup -mindepth 1 -type d | head -n 20)
if [ -n "$left" ]; then
  echo "v2-lane guest: cgroups left behind:"
  echo "$left"
  [ "$rc" -eq 0 ] && rc=1
fi
finish "$rc"
