#!/usr/bin/env bash
# Image benchmark, launch part (issue 10; bench/images.sh is the pull part): whole-process launch and exit of
# /bin/true in a Mesos container whose root filesystem is provisioned from
# a cached image (`phobos run --image busybox:local`, overlay backend,
# pid/mount/ipc/uts namespaces), against `runc run` of an OCI bundle with
# the same root filesystem (the image exported by the engine), in the same
# run (interleaved rounds, as bench/launch.sh). Then the per-container disk
# cost with overlay: the size of the container's upper directory.
#
# State (runtime dir, work dir with the image store and the provisioner,
# runc's --root) is on a private tmpfs; STATE_FS=disk puts it under /tmp.
#
#   sudo bench/images-launch.sh [RUNS]        # default 60 runs each (ROUNDS=5)
#
# Needs root, a Docker engine with busybox:local (scripts/test.sh builds
# it), hyperfine and runc (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-60}"
IMAGE="${IMAGE:-busybox:local}"
[ "$(id -u)" -eq 0 ] || { echo "bench/images-launch.sh: must run as root" >&2; exit 1; }
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v runc >/dev/null || need+=(runc)
if [ ${#need[@]} -gt 0 ]; then
  apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${need[@]}"; }
fi
cargo build --release -q -p phobos-cli
PHOBOS="$PWD/target/$(rustc --print host-tuple)/release/phobos"

work=$(mktemp -d /tmp/phobos-images-bench.XXXXXX)
cid=""
cleanup() {
  [ -n "$cid" ] && docker rm -f "$cid" >/dev/null 2>&1 || true
  "$PHOBOS" recover >/dev/null 2>&1 || true
  umount -R "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
if [ "${STATE_FS:-tmpfs}" = tmpfs ]; then
  mount -t tmpfs phobos-images-bench "$work"
fi
export PHOBOS_RUNTIME_DIR="$work/run" PHOBOS_WORK_DIR="$work/work" PHOBOS_CGROUPS_ROOT="phobos-images-bench-$$"

# The cached image, in phobos's store.
docker save -o "$work/image.tar" "$IMAGE"
"$PHOBOS" image load "$work/image.tar" >&2
# The same root filesystem as an OCI bundle for runc.
mkdir -p "$work/bundle/rootfs"
cid=$(docker create "$IMAGE" /bin/true)
docker export "$cid" | tar -x -C "$work/bundle/rootfs"
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

names=("phobos --image" "runc")
commands=(
  "$PHOBOS run --image $IMAGE --isolation filesystem/linux,namespaces/pid,namespaces/ipc,namespaces/uts -- /bin/true"
  "runc --root $work/runc run --bundle $work/bundle phobos-images-bench"
)
ROUNDS="${ROUNDS:-5}"
per_round=$(( (RUNS + ROUNDS - 1) / ROUNDS ))
for ((round = 0; round < ROUNDS; round++)); do
  args=()
  for ((i = 0; i < ${#names[@]}; i++)); do
    j=$(( (i + round) % ${#names[@]} ))
    args+=(--command-name "${names[j]}" "${commands[j]}")
  done
  # Terminated containers' records are cleared between rounds, as an
  # agent's garbage collection would.
  hyperfine -N --warmup 3 --runs "$per_round" --export-json "$work/launch-$round.json" "${args[@]}" >&2
  "$PHOBOS" state --rm >/dev/null
done

# Per-container disk cost: a running container's provisioner directory
# (the overlay's upper and work directories; the layers are shared).
"$PHOBOS" run -d --id disk-probe --image "$IMAGE" -- sleep 600 >/dev/null
upper="$work/work/provisioner/disk-probe/upper"
upper_bytes=$(du -sb "$upper" | cut -f1)
upper_files=$(find "$upper" | wc -l)
layers_bytes=$(du -sb "$work/work/store/layers" | cut -f1)
"$PHOBOS" destroy disk-probe >/dev/null

python3 - "$work" "$ROUNDS" "$upper_bytes" "$upper_files" "$layers_bytes" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
upper_bytes, upper_files, layers_bytes = map(int, sys.argv[3:6])
times, round_medians = {}, []
for r in range(rounds):
    results = {x["command"]: x["times"] for x in json.load(open(f"{work}/launch-{r}.json"))["results"]}
    round_medians.append({name: statistics.median(t) * 1000 for name, t in results.items()})
    for name, t in results.items():
        times.setdefault(name, []).extend(t)
med = {name: statistics.median(t) * 1000 for name, t in times.items()}
p90 = {name: sorted(t)[int(len(t) * 0.9) - 1] * 1000 for name, t in times.items()}
print("| command | median (ms) | p90 (ms) | runs |")
print("| --- | ---: | ---: | ---: |")
for name in ("phobos --image", "runc"):
    print(f"| {name} | {med[name]:.2f} | {p90[name]:.2f} | {len(times[name])} |")
print()
by_round = ", ".join(f"{m['phobos --image'] / m['runc']:.2f}" for m in round_medians)
print(f"- phobos --image / runc = {med['phobos --image'] / med['runc']:.3f} (target ≤ 0.3; by round: {by_round})")
print(f"- per-container disk (overlay upper dir of a running container): {upper_bytes} bytes in {upper_files - 1} entries; the image's layers ({layers_bytes} bytes) are shared")
PY
