#!/usr/bin/env bash
# Launch benchmark (issue "spine"): whole-process `phobos run -- /bin/true`
# with pid, mount, ipc and uts namespaces and a kill cgroup, against
# `runc run` of an equivalent bundle and `unshare`, in the same hyperfine
# run; plus phobos with its full default isolation (cgroups cpu, mem and
# pids too) for reference. Prints a Markdown table of medians and ratios
# (for docs/benchmarks.md).
#
# Every runtime's state (phobos's runtime and work dirs, runc's --root) goes
# on a private tmpfs, as /run is on most hosts and as a Mesos runtime dir is
# meant to be. STATE_FS=disk puts it under /tmp instead (on these VMs an ext4
# mounted with `discard`, whose metadata operations slow down with use).
#
#   sudo bench/launch.sh [RUNS]        # default 60 runs each, 5 warm-ups
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
cargo build --release -q -p phobos-cli
PHOBOS="$PWD/target/release/phobos"

work=$(mktemp -d /tmp/phobos-bench.XXXXXX)
trap 'umount "$work" 2>/dev/null || true; rm -rf "$work"' EXIT
if [ "${STATE_FS:-tmpfs}" = tmpfs ]; then
  mount -t tmpfs phobos-bench "$work"
fi
# An OCI bundle equivalent to phobos's default: busybox rootfs, /bin/true,
# pid/mount/ipc/uts namespaces (runc spec's network namespace removed).
mkdir -p "$work/bundle/rootfs/bin" "$work/bundle/rootfs/proc" "$work/bundle/rootfs/dev"
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
ln -s busybox "$work/bundle/rootfs/bin/true"
(cd "$work/bundle" && runc spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["process"]["args"] = ["/bin/true"]
spec["process"]["terminal"] = False
spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] in ("pid", "mount", "ipc", "uts")]
json.dump(spec, open(path, "w"), indent=2)
PY

export PHOBOS_RUNTIME_DIR="$work/run" PHOBOS_WORK_DIR="$work/work"
hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$work/launch.json" \
  --command-name phobos "$PHOBOS run --isolation filesystem/linux,namespaces/pid,namespaces/ipc,namespaces/uts -- /bin/true" \
  --command-name "phobos (default isolation)" "$PHOBOS run -- /bin/true" \
  --command-name runc "runc --root $work/runc run --bundle $work/bundle phobos-bench" \
  --command-name unshare "unshare --pid --fork --mount --ipc --uts /bin/true" >&2

python3 - "$work/launch.json" "$RUNS" <<'PY'
import json, statistics, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
med = {name: statistics.median(r["times"]) * 1000 for name, r in results.items()}
p90 = {name: sorted(r["times"])[int(len(r["times"]) * 0.9) - 1] * 1000 for name, r in results.items()}
print(f"| command | median (ms) | p90 (ms) | runs |")
print(f"| --- | ---: | ---: | ---: |")
for name in ("phobos", "phobos (default isolation)", "runc", "unshare"):
    print(f"| {name} | {med[name]:.2f} | {p90[name]:.2f} | {len(results[name]['times'])} |")
print()
print(f"- phobos / runc = {med['phobos'] / med['runc']:.3f} (target ≤ 0.25)")
print(f"- phobos / unshare = {med['phobos'] / med['unshare']:.2f} (target ≤ 2)")
print(f"- phobos (default isolation) / phobos = {med['phobos (default isolation)'] / med['phobos']:.2f}")
PY
