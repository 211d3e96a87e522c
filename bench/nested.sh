#!/usr/bin/env bash
# Nested launch benchmark (issue 12): whole-process `phobos run --parent P
# -- /bin/true` into a running container P (its own mount, pid and ipc
# namespaces, the parent's network and UTS joined with setns, cgroups nested
# in the parent's), with --share-cgroups, and a top-level `phobos run --
# /bin/true`, against what a user would otherwise pick to start a command
# inside a running container: `runc exec` (and `docker exec` when an engine
# runs), in the same run (interleaved rounds, rotated order). Every phobos
# launch uses the default isolation. Prints a Markdown table of medians and
# ratios (for docs/benchmarks.md).
#
# Runtime state (phobos's runtime and work dirs, runc's --root) is on a
# private tmpfs, as in bench/launch.sh.
#
#   sudo bench/nested.sh [RUNS]        # default 60 runs each (ROUNDS=5)
#   sudo PHOBOS=/path/to/release/phobos bench/nested.sh [RUNS]
#
# Needs root, hyperfine, runc and busybox-static (installed when missing);
# Docker is measured only when `docker info` answers (image busybox:local,
# else busybox).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-60}"
[ "$(id -u)" -eq 0 ] || { echo "bench/nested.sh: must run as root" >&2; exit 1; }
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v runc >/dev/null || need+=(runc)
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${need[@]}"; }
fi
# PHOBOS=/path/to/phobos measures a binary already built (a release one).
if [ -z "${PHOBOS:-}" ]; then
  cargo build --release -q -p phobos-cli
  PHOBOS="$PWD/target/$(rustc --print host-tuple)/release/phobos"
fi

work=$(mktemp -d /tmp/phobos-bench-nested.XXXXXX)
name="phobos-bench-nested-$$"
# runc's default cgroup is /<container name>: never phobos's cgroups root.
runc_name="$name-runc"
docker_name=""
cleanup() {
  "$PHOBOS" destroy parent >/dev/null 2>&1 || true
  runc --root "$work/runc" delete --force "$runc_name" >/dev/null 2>&1 || true
  if [ -n "$docker_name" ]; then docker rm -f "$docker_name" >/dev/null 2>&1 || true; fi
  umount "$work" 2>/dev/null || true
  rm -rf "$work"
  for root in /sys/fs/cgroup/*/"$name" /sys/fs/cgroup/"$name"; do
    [ -d "$root" ] && find "$root" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}
trap cleanup EXIT
mount -t tmpfs phobos-bench-nested "$work"
export PHOBOS_RUNTIME_DIR="$work/run" PHOBOS_WORK_DIR="$work/work"
export PHOBOS_CGROUPS_ROOT="$name"

# The running parents: a phobos container, a runc container of an
# equivalent bundle (busybox rootfs, pid/mount/ipc/uts namespaces), and a
# Docker container.
"$PHOBOS" run -d --id parent -- sleep 100000 >/dev/null
mkdir -p "$work/bundle/rootfs/bin" "$work/bundle/rootfs/proc" "$work/bundle/rootfs/dev"
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
for applet in true sleep; do ln -s busybox "$work/bundle/rootfs/bin/$applet"; done
(cd "$work/bundle" && runc spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["process"]["args"] = ["/bin/sleep", "100000"]
spec["process"]["terminal"] = False
spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] in ("pid", "mount", "ipc", "uts")]
json.dump(spec, open(path, "w"), indent=2)
PY
runc --root "$work/runc" run -d --bundle "$work/bundle" "$runc_name" </dev/null >/dev/null

names=("phobos nested" "phobos nested (--share-cgroups)" "phobos top-level" "runc exec")
commands=(
  "$PHOBOS run --parent parent -- /bin/true"
  "$PHOBOS run --parent parent --share-cgroups -- /bin/true"
  "$PHOBOS run -- /bin/true"
  "runc --root $work/runc exec $runc_name /bin/true"
)
if docker info >/dev/null 2>&1; then
  image=busybox:local
  docker image inspect "$image" >/dev/null 2>&1 || image=busybox
  docker_name="$name-docker"
  docker run -d --name "$docker_name" "$image" sleep 100000 >/dev/null
  names+=("docker exec")
  commands+=("docker exec $docker_name /bin/true")
fi

ROUNDS="${ROUNDS:-5}"
per_round=$(( (RUNS + ROUNDS - 1) / ROUNDS ))
for ((round = 0; round < ROUNDS; round++)); do
  args=()
  for ((i = 0; i < ${#names[@]}; i++)); do
    j=$(( (i + round) % ${#names[@]} ))
    args+=(--command-name "${names[j]}" "${commands[j]}")
  done
  hyperfine -N --warmup 3 --runs "$per_round" --export-json "$work/nested-$round.json" "${args[@]}" >&2
done

python3 - "$work" "$ROUNDS" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
times, round_medians = {}, []
for r in range(rounds):
    results = {x["command"]: x["times"] for x in json.load(open(f"{work}/nested-{r}.json"))["results"]}
    round_medians.append({name: statistics.median(t) * 1000 for name, t in results.items()})
    for name, t in results.items():
        times.setdefault(name, []).extend(t)
med = {name: statistics.median(t) * 1000 for name, t in times.items()}
p90 = {name: sorted(t)[int(len(t) * 0.9) - 1] * 1000 for name, t in times.items()}
print("| command | median (ms) | p90 (ms) | runs |")
print("| --- | ---: | ---: | ---: |")
for name in ("phobos nested", "phobos nested (--share-cgroups)", "phobos top-level", "runc exec", "docker exec"):
    if name in med:
        print(f"| {name} | {med[name]:.2f} | {p90[name]:.2f} | {len(times[name])} |")
print()
def ratio(a, b):
    by_round = ", ".join(f"{m[a] / m[b]:.2f}" for m in round_medians)
    return f"{med[a] / med[b]:.2f} (by round: {by_round})"
print(f"- phobos nested / phobos top-level = {ratio('phobos nested', 'phobos top-level')}")
print(f"- phobos nested / runc exec = {ratio('phobos nested', 'runc exec')}")
if "docker exec" in med:
    print(f"- phobos nested / docker exec = {ratio('phobos nested', 'docker exec')}")
PY
