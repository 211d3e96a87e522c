#!/usr/bin/env bash
# Launch benchmark (issue "spine"): whole-process `phobos run -- /bin/true`
# with pid, mount, ipc and uts namespaces and a kill cgroup, against
# `runc run` of an equivalent bundle and `unshare`, in the same run
# (interleaved rounds); plus phobos with its full default isolation (cgroups cpu, mem and
# pids, capabilities, seccomp, rlimits too) for reference, and the same without
# the hardening isolators (linux/capabilities, linux/seccomp, cgroups/devices), which is the
# default isolation before issue 11, so the hardening's cost per launch is
# their difference. Prints a Markdown table of medians and ratios
# (for docs/benchmarks.md).
#
# Every runtime's state (phobos's runtime and work dirs, runc's --root) goes
# on a private tmpfs, as /run is on most hosts and as a Mesos runtime dir is
# meant to be. STATE_FS=disk puts it under /tmp instead (on these VMs an ext4
# mounted with `discard`, whose metadata operations slow down with use).
# STATE_FS=split is a real host's layout: the runtime dir (and runc's
# --root) on the tmpfs, as /run, and the sandboxes (phobos's work dir, runc's
# bundle) on disk under /var/tmp, as /var/lib/phobos. The load average is
# printed with the results.
#
#   sudo bench/launch.sh [RUNS]        # default 60 runs each (ROUNDS=5 rounds)
#   (PHOBOS=path/to/phobos skips the build)
#   PAUSE_MS=300 sudo bench/launch.sh 30   # each launch after 300 ms of quiet
#
# PAUSE_MS is how an agent launches: now and then, not back to back. On a
# v1 or hybrid host the kernel then makes the first move of a process
# between cgroups wait a whole RCU grace period (its threadgroup lock has
# gone idle), which back-to-back launches never show.
#
# Needs root, hyperfine, runc and busybox-static (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
RUNS="${1:-60}"
bench_need_root bench/launch.sh
bench_install hyperfine=hyperfine runc=runc /bin/busybox=busybox-static
bench_build

bench_state_dir phobos-bench
trap bench_state_cleanup EXIT
# An OCI bundle equivalent to phobos's default: busybox rootfs, /bin/true,
# pid/mount/ipc/uts namespaces (runc spec's network namespace removed).
mkdir -p "$disk/bundle/rootfs/bin" "$disk/bundle/rootfs/proc" "$disk/bundle/rootfs/dev"
cp /bin/busybox "$disk/bundle/rootfs/bin/busybox"
ln -s busybox "$disk/bundle/rootfs/bin/true"
bench_runc_spec "$disk/bundle"

# The default isolation as root on a host with every controller, without
# the hardening isolators.
NO_HARDENING=filesystem/linux,posix/rlimits,cgroups/cpu,cgroups/mem,cgroups/pids,namespaces/pid,namespaces/ipc,namespaces/uts
export PHOBOS_RUNTIME_DIR="$work/run" PHOBOS_WORK_DIR="$disk/work"
names=("phobos" "phobos (default isolation)" "phobos (default, no hardening)" "runc" "unshare")
commands=(
  "$PHOBOS run --isolation filesystem/linux,namespaces/pid,namespaces/ipc,namespaces/uts -- /bin/true"
  "$PHOBOS run -- /bin/true"
  "$PHOBOS run --isolation $NO_HARDENING -- /bin/true"
  "runc --root $work/runc run --bundle $disk/bundle phobos-bench"
  "unshare --pid --fork --mount --ipc --uts /bin/true"
)
bench_rounds "$RUNS"
bench_state_line

python3 bench/rounds.py "$work" "$ROUNDS" "${names[@]}" \
  --ratio "phobos/runc@0.25" --ratio "phobos/unshare@2" \
  --ratio "phobos (default isolation)/phobos" \
  --diff "phobos (default isolation)|phobos (default, no hardening)@hardening (capabilities + seccomp + devices) per launch"
