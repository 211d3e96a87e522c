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
#
# Needs root, hyperfine, runc and busybox-static (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-60}"
[ "$(id -u)" -eq 0 ] || { echo "bench/launch.sh: must run as root" >&2; exit 1; }
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v runc >/dev/null || need+=(runc)
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${need[@]}"; }
fi
if [ -z "${PHOBOS:-}" ]; then
  cargo build --release -q -p phobos-cli
  PHOBOS="$PWD/target/$(rustc --print host-tuple)/release/phobos"
fi
PHOBOS=$(realpath "$PHOBOS")

work=$(mktemp -d /tmp/phobos-bench.XXXXXX)
disk=$work
case "${STATE_FS:-tmpfs}" in
  tmpfs) mount -t tmpfs phobos-bench "$work" ;;
  split) mount -t tmpfs phobos-bench "$work"; disk=$(mktemp -d /var/tmp/phobos-bench-disk.XXXXXX) ;;
  disk) ;;
  *) echo "bench/launch.sh: STATE_FS must be tmpfs, split or disk, got '$STATE_FS'" >&2; exit 2 ;;
esac
trap 'umount "$work" 2>/dev/null || true; rm -rf "$work"; [ "$disk" = "$work" ] || rm -rf "$disk"' EXIT
# An OCI bundle equivalent to phobos's default: busybox rootfs, /bin/true,
# pid/mount/ipc/uts namespaces (runc spec's network namespace removed).
mkdir -p "$disk/bundle/rootfs/bin" "$disk/bundle/rootfs/proc" "$disk/bundle/rootfs/dev"
cp /bin/busybox "$disk/bundle/rootfs/bin/busybox"
ln -s busybox "$disk/bundle/rootfs/bin/true"
(cd "$disk/bundle" && runc spec)
python3 - "$disk/bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["process"]["args"] = ["/bin/true"]
spec["process"]["terminal"] = False
spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] in ("pid", "mount", "ipc", "uts")]
json.dump(spec, open(path, "w"), indent=2)
PY

# The default isolation as root on a host with every controller, without
# the hardening isolators.
NO_HARDENING=filesystem/linux,posix/rlimits,cgroups/cpu,cgroups/mem,cgroups/pids,namespaces/pid,namespaces/ipc,namespaces/uts
export PHOBOS_RUNTIME_DIR="$work/run" PHOBOS_WORK_DIR="$disk/work"
# The runs are spread over ROUNDS hyperfine invocations, each with the
# commands in a rotated order, so a burst of background noise on this small
# VM lands on every command alike instead of on whichever ran at the time.
names=("phobos" "phobos (default isolation)" "phobos (default, no hardening)" "runc" "unshare")
commands=(
  "$PHOBOS run --isolation filesystem/linux,namespaces/pid,namespaces/ipc,namespaces/uts -- /bin/true"
  "$PHOBOS run -- /bin/true"
  "$PHOBOS run --isolation $NO_HARDENING -- /bin/true"
  "runc --root $work/runc run --bundle $disk/bundle phobos-bench"
  "unshare --pid --fork --mount --ipc --uts /bin/true"
)
ROUNDS="${ROUNDS:-5}"
load_before=$(cut -d' ' -f1 /proc/loadavg)
per_round=$(( (RUNS + ROUNDS - 1) / ROUNDS ))
for ((round = 0; round < ROUNDS; round++)); do
  args=()
  for ((i = 0; i < ${#names[@]}; i++)); do
    j=$(( (i + round) % ${#names[@]} ))
    args+=(--command-name "${names[j]}" "${commands[j]}")
  done
  hyperfine -N --warmup 3 --runs "$per_round" --export-json "$work/launch-$round.json" "${args[@]}" >&2
done

load_after=$(cut -d' ' -f1 /proc/loadavg)
echo "state: ${STATE_FS:-tmpfs}; load average (1 min) before $load_before, after $load_after on $(nproc) CPUs"
python3 - "$work" "$ROUNDS" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
times, round_medians = {}, []
for r in range(rounds):
    results = {x["command"]: x["times"] for x in json.load(open(f"{work}/launch-{r}.json"))["results"]}
    round_medians.append({name: statistics.median(t) * 1000 for name, t in results.items()})
    for name, t in results.items():
        times.setdefault(name, []).extend(t)
med = {name: statistics.median(t) * 1000 for name, t in times.items()}
p90 = {name: sorted(t)[int(len(t) * 0.9) - 1] * 1000 for name, t in times.items()}
print(f"| command | median (ms) | p90 (ms) | runs |")
print(f"| --- | ---: | ---: | ---: |")
for name in ("phobos", "phobos (default isolation)", "phobos (default, no hardening)", "runc", "unshare"):
    print(f"| {name} | {med[name]:.2f} | {p90[name]:.2f} | {len(times[name])} |")
print()
def per_round(a, b):
    return ", ".join(f"{m[a] / m[b]:.2f}" for m in round_medians)
print(f"- phobos / runc = {med['phobos'] / med['runc']:.3f} (target ≤ 0.25; by round: {per_round('phobos', 'runc')})")
print(f"- phobos / unshare = {med['phobos'] / med['unshare']:.2f} (target ≤ 2; by round: {per_round('phobos', 'unshare')})")
print(f"- phobos (default isolation) / phobos = {med['phobos (default isolation)'] / med['phobos']:.2f}")
A, B = "phobos (default isolation)", "phobos (default, no hardening)"
by_round = ", ".join(f"{m[A] - m[B]:+.2f}" for m in round_medians)
print(f"- hardening (capabilities + seccomp + devices) per launch = {med[A] - med[B]:+.2f} ms (by round: {by_round})")
PY
