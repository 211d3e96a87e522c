#!/usr/bin/env bash
# The pure cgroup v2 lane: runs Phobos's privileged cgroup, launcher, init,
# OOM, recovery and CLI tests inside a Debian kernel booted with ONLY cgroup2
# (`cgroup_no_v1=all`), as every systemd distribution runs today. The CI host
# is hybrid (v1 controllers + cgroup2 at /sys/fs/cgroup/unified), so what is
# v2-only (controllers on cgroup2, io.stat, memory.events OOM,
# CLONE_INTO_CGROUP with every controller) can only be tested there.
#
#   sudo scripts/v2-lane.sh            # called by scripts/test.sh
#
# Steps, all under target/v2-lane/ (PHOBOS_V2_LANE_DIR):
#   1. qemu-system-x86 (installed from Debian when missing, as root);
#   2. the kernel: `apt-get download linux-image-amd64`, then the package
#      it depends on, unpacked with `dpkg-deb -x` (not installed);
#   3. a minimal initramfs: busybox-static, the virtio/9p modules (and
#      their dependencies, read from each module's .modinfo) and an /init
#      that mounts the host's / read-only over 9p and switches to it;
#   4. the test binaries, built here with cargo-nextest (the same build as
#      the main test run), plus their metadata for nextest's build reuse;
#   5. boots qemu under TCG (this host's /dev/kvm is PVM, which cannot run
#      a stock kernel) with a small scratch virtio disk (/dev/vda, for
#      io.stat on a real block device), and runs scripts/v2-lane-guest.sh
#      there: nextest over the selected tests, tmpfs for every writable dir;
#   6. the systemd leg: boots again with the host's systemd as PID 1 (tmpfs
#      over /run, /tmp and /var's writable parts; units generated into
#      /run/systemd/system; the D-Bus system bus socket-activated) and runs
#      the tests of crates/cli/tests/systemd.rs from a service
#      (`phobos-lane.service`): the systemd cgroup driver's transient
#      scopes over D-Bus, and cgroups roots under real services.
# Exits with the first failing guest run's status; prints what ran. Skips
# (exit 0, one line saying why) only where qemu cannot run at all.
#
# Environment:
#   PHOBOS_V2_LANE_DIR      work directory (default target/v2-lane)
#   PHOBOS_V2_LANE_FILTER   nextest filterset (default: the lane's selection
#                           below)
#   PHOBOS_V2_LANE_TIMEOUT  wall-clock limit of the VM in seconds (default 780)
#   PHOBOS_V2_LANE_THREADS  nextest test threads in the guest (default 2)
#   PHOBOS_V2_LANE_ACCEL    qemu accelerator (default tcg,thread=multi)
#   PHOBOS_V2_LANE_SYSTEMD  0 skips the systemd leg (default 1)
#   PHOBOS_V2_LANE_SYSTEMD_FILTER  its nextest filterset (default below)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd -P)
lane=${PHOBOS_V2_LANE_DIR:-$repo/target/v2-lane}
timeout_secs=${PHOBOS_V2_LANE_TIMEOUT:-780}
threads=${PHOBOS_V2_LANE_THREADS:-2}
accel=${PHOBOS_V2_LANE_ACCEL:-tcg,thread=multi}

# What runs in the guest: every privileged test of the crates that drive
# cgroups, the launcher, init and the CLI (run, wait, kill, destroy,
# recover, exec, stats, update, OOM), and the cgroups crate's kernel tests.
# ECP, Docker and configuration tests have nothing cgroup-v2-specific.
# A test in a module of its binary (spine's `crash::`) is named with the
# module's path: `privileged_` may follow a `::`. The agent's zygote
# tests too: a pre-started init is moved into its kill cgroup by a
# `cgroup.procs` write, which on a pure v2 host is every cgroup it has.
default_filter='((binary(privileged) | binary(privileged_resources) | binary(privileged_v2)
  | binary(launcher) | binary(spine) | binary(resources) | binary(exec) | binary(v2_host))
  & test(/(^|::)privileged_/))
  | (binary(agent) & test(/^zygote::privileged_/))'
filter=${PHOBOS_V2_LANE_FILTER:-$default_filter}
systemd_leg=${PHOBOS_V2_LANE_SYSTEMD:-1}
systemd_filter=${PHOBOS_V2_LANE_SYSTEMD_FILTER:-'binary(systemd) & test(/^privileged_/)'}

say() { printf 'v2-lane: %s\n' "$*"; }
die() { printf 'v2-lane: error: %s\n' "$*" >&2; exit 1; }
skip() { say "SKIPPED: $*"; exit 0; }

start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }

# 1. qemu.
[ "$(uname -m)" = x86_64 ] || skip "the lane boots an amd64 kernel; this host is $(uname -m)"
if ! command -v qemu-system-x86_64 >/dev/null 2>&1 || ! [ -x /bin/busybox ]; then
  [ "$(id -u)" -eq 0 ] || skip "qemu-system-x86_64 or busybox-static is missing and only root may install them"
  say "installing qemu-system-x86 and busybox-static"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      qemu-system-x86 busybox-static >"$lane.apt.log" 2>&1 \
      && ! { apt-get update -q >>"$lane.apt.log" 2>&1 \
             && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                qemu-system-x86 busybox-static >>"$lane.apt.log" 2>&1; }; then
    skip "qemu-system-x86 could not be installed (see $lane.apt.log)"
  fi
fi
qemu_version=$(qemu-system-x86_64 --version 2>/dev/null | head -n1) \
  || skip "qemu-system-x86_64 does not run on this host"
mkdir -p "$lane"

# 2. The kernel, from Debian's linux-image-amd64.
kdir=$lane/kernel
fetch_kernel() {
  rm -rf "$kdir"
  mkdir -p "$kdir/debs"
  (
    cd "$kdir/debs"
    apt-get download -q -o APT::Sandbox::User=root linux-image-amd64 >/dev/null
    # The meta package depends on exactly one versioned image package.
    image=$(dpkg-deb -f linux-image-amd64_*.deb Depends | sed -n 's/^\(linux-image-[^ ,]*\).*/\1/p')
    [ -n "$image" ] || { echo "linux-image-amd64 names no image package" >&2; exit 1; }
    apt-get download -q -o APT::Sandbox::User=root "$image" >/dev/null
    dpkg-deb -x "$image"_*.deb "$kdir/root"
  )
}
if ! compgen -G "$kdir/root/boot/vmlinuz-*" >/dev/null; then
  say "fetching Debian's linux-image-amd64"
  fetch_kernel || die "could not download or unpack linux-image-amd64 (apt-get update first?)"
fi
vmlinuz=$(compgen -G "$kdir/root/boot/vmlinuz-*" | head -n1)
kver=${vmlinuz##*/vmlinuz-}
moddir=$kdir/root/lib/modules/$kver

# 3. The initramfs.
initramfs=$lane/initramfs.cpio.gz
build=$lane/initramfs
rm -rf "$build"
mkdir -p "$build"/{bin,dev,proc,sys,newroot,modules}
cp /bin/busybox "$build/bin/busybox"
for applet in sh mount mkdir insmod switch_root cat echo sleep poweroff grep; do
  ln -s busybox "$build/bin/$applet"
done
# Modules in load order: each after the modules its .modinfo depends on.
declare -A loaded=()
load_order=()
module_path() {
  local f found
  for f in "$1.ko" "${1//_/-}.ko"; do
    found=$(find "$moddir/kernel" -name "$f" -print -quit)
    if [ -n "$found" ]; then
      echo "$found"
      return
    fi
  done
}
add_module() {
  local name=$1 path deps dep
  [ -n "${loaded[$name]:-}" ] && return
  loaded[$name]=1
  path=$(module_path "$name")
  [ -n "$path" ] || die "module $name is not in $moddir"
  deps=$(tr '\0' '\n' <"$path" | sed -n 's/^depends=//p' | tr ',' ' ')
  for dep in $deps; do add_module "$dep"; done
  cp "$path" "$build/modules/"
  load_order+=("$(basename "$path")")
}
for m in virtio_pci 9pnet_virtio 9p virtio_blk; do add_module "$m"; done
printf '%s\n' "${load_order[@]}" >"$build/modules/order"
cat >"$build/init" <<'EOF'
#!/bin/sh
# v2-lane initramfs: load virtio + 9p, mount the host's / read-only, switch.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules/order); do insmod "/modules/$m" || echo "v2-lane-init: insmod $m failed"; done
if ! mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=1048576,cache=loose hostroot /newroot; then
  echo "v2-lane-init: cannot mount the host's root over 9p"
  echo "V2LANE-RESULT 125"
  poweroff -f
fi
# The guest script runs from the host's tree; only /run is written before it.
mount -t tmpfs -o mode=755 tmpfs /newroot/run
cp /lane.env /newroot/run/v2-lane.env
. /lane.env
if grep -q 'phobos_lane=systemd' /proc/cmdline; then
  # The systemd leg: what systemd and its services write goes to tmpfs;
  # the lane's target and service are runtime units. (systemd finds
  # /.dockerenv in the shared root and so reads its options from its own
  # arguments, not the kernel's command line. Telling it otherwise, an
  # empty `container=`, was tried: a getty login prompt took the console
  # and no test output came within 4 minutes.)
  for d in tmp var/tmp; do mount -t tmpfs -o mode=1777 tmpfs "/newroot/$d"; done
  for d in var/lib var/log var/cache; do mount -t tmpfs -o mode=755 tmpfs "/newroot/$d"; done
  mkdir -p /newroot/run/systemd/system
  cat >/newroot/run/systemd/system/phobos-lane.target <<UNIT
[Unit]
Description=Phobos v2 lane, systemd leg
Requires=phobos-lane.service
After=phobos-lane.service
AllowIsolate=yes
UNIT
  cat >/newroot/run/systemd/system/phobos-lane.service <<UNIT
[Unit]
Description=Phobos v2 lane tests under systemd
DefaultDependencies=no
Requires=dbus.socket
After=sysinit.target dbus.socket
[Service]
Type=oneshot
ExecStart=/bin/sh $V2LANE_REPO/scripts/v2-lane-guest.sh systemd
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
UNIT
  mount --move /dev /newroot/dev
  mount --move /proc /newroot/proc
  mount --move /sys /newroot/sys
  exec switch_root /newroot /lib/systemd/systemd systemd.unit=phobos-lane.target systemd.show_status=error
fi
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
exec switch_root /newroot /bin/sh "$V2LANE_REPO/scripts/v2-lane-guest.sh"
EOF
chmod +x "$build/init"

# 4. The test binaries and their metadata (nextest reuses this build).
nextest=$(command -v cargo-nextest) \
  || die "cargo-nextest is needed to run the lane (cargo install cargo-nextest)"
say "building the test binaries"
cargo nextest list --workspace --locked --list-type binaries-only \
  --message-format json >"$lane/binaries.json"
cargo metadata --format-version 1 --locked --no-deps >"$lane/cargo-metadata.json"

disk=$lane/scratch.img
rm -f "$disk"
truncate -s 64M "$disk"

{
  printf 'V2LANE_REPO=%q\n' "$repo"
  printf 'V2LANE_DIR=%q\n' "$lane"
  printf 'V2LANE_THREADS=%q\n' "$threads"
  printf 'V2LANE_NEXTEST=%q\n' "$nextest"
  printf 'V2LANE_FILTER=%q\n' "$(printf '%s' "$filter" | tr '\n' ' ')"
  printf 'V2LANE_SYSTEMD_FILTER=%q\n' "$systemd_filter"
  printf 'V2LANE_DISK=/dev/vda\n'
} >"$build/lane.env"
(cd "$build" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$initramfs"

# 5. Boot (and 6., the systemd leg: the same VM with systemd as PID 1).
# boot NAME EXTRA_APPEND TIMEOUT: runs the VM, sets result and summary.
boot() {
  local name=$1 extra=$2 limit=$3 console=$lane/console$1.log boot_start qemu_rc
  boot_start=$(date +%s)
  set +e
  timeout --foreground -k 10 "$limit" qemu-system-x86_64 \
    -accel "$accel" -cpu max -machine q35 -smp 2 -m 3G \
    -nographic -nodefaults -no-reboot -serial stdio \
    -kernel "$vmlinuz" -initrd "$initramfs" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 cgroup_no_v1=all rdinit=/init $extra" \
    -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
    -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
    -drive file="$disk",if=virtio,format=raw,cache=unsafe \
    </dev/null 2>&1 | tee "$console" | sed -u 's/\r$//'
  qemu_rc=${PIPESTATUS[0]}
  set -e
  vm_secs=$(( $(date +%s) - boot_start ))
  result=$(tr -d '\r' <"$console" | sed -n 's/^V2LANE-RESULT \([0-9]*\).*/\1/p' | tail -n1)
  summary=$(tr -d '\r' <"$console" | grep -E '^ *Summary \[' | tail -n1 | sed 's/^ *//')
  if [ -z "$result" ]; then
    [ "$qemu_rc" -eq 124 ] && die "the VM${name:+ ($name)} ran out of its ${limit}s (console: $console)"
    die "the guest${name:+ ($name)} reported no result (qemu exited $qemu_rc; console: $console)"
  fi
}

say "booting Debian $kver under qemu ($qemu_version, accel $accel); tests: $(printf '%s' "$filter" | tr -s ' \n' ' ')"
boot "" "" "$timeout_secs"
main_result=$result
say "pure cgroup v2 (Debian $kver, TCG): ${summary:-no nextest summary}; VM ${vm_secs}s, lane $(elapsed)s"
if [ "$systemd_leg" = 0 ]; then
  exit "$main_result"
fi
say "booting again with systemd as PID 1; tests: $systemd_filter"
boot "-systemd" "phobos_lane=systemd" "${PHOBOS_V2_LANE_SYSTEMD_TIMEOUT:-600}"
say "pure cgroup v2 under systemd $(systemctl --version 2>/dev/null | sed -n '1s/^systemd \([0-9]*\).*/\1/p'): ${summary:-no nextest summary}; VM ${vm_secs}s, lane $(elapsed)s"
[ "$main_result" -ne 0 ] && exit "$main_result"
exit "$result"
