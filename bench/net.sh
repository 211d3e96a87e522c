#!/usr/bin/env bash
# Network benchmark (issue 11): launch + exit of `true` on the default
# bridge network (`phobos run --network phobos`) against `docker run --rm
# --network bridge` of the same command, in the same hyperfine run; the
# cost of CNI ADD and DEL alone (from phobos's debug log); and 20 launches
# on one network at once against one launch. Prints Markdown for
# docs/benchmarks.md.
#
#   sudo bench/net.sh [RUNS]        # default 30 runs each, 3 warm-ups
#   PHOBOS=/path/to/phobos bench/net.sh   # a binary already built
#
# The default network's bridge is phobos0 on default_network_subnet
# 10.77.0.0/16; the bridge is removed afterwards unless it existed before.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-30}"
[ "$(id -u)" -eq 0 ] || { echo "bench/net.sh: must run as root" >&2; exit 1; }
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null 2>&1 \
  || { apt-get update -qq && apt-get install -y -qq hyperfine; }
[ -x /usr/lib/cni/bridge ] || apt-get install -y -qq containernetworking-plugins
# Stop the engine afterwards only if this script started it: a dockerd
# that already answered belongs to someone else.
engine_was_up=0
"${DOCKER:-/usr/bin/docker}" info >/dev/null 2>&1 && engine_was_up=1
scripts/docker-test-setup.sh >&2
had_bridge=0
[ -e /sys/class/net/phobos0 ] && had_bridge=1
work=$(mktemp -d /tmp/phobos-net-bench.XXXXXX)
cleanup() {
  [ "$engine_was_up" = 1 ] || scripts/docker-test-teardown.sh >&2 || true
  umount -l "$work/run/net" 2>/dev/null || true
  if [ "$had_bridge" = 0 ]; then
    ip link del phobos0 2>/dev/null || true
    # The network's masquerade/forward rules the first launch installed.
    for table in nat filter; do
      iptables-save -t "$table" | grep -F -- '--comment "phobos network phobos0"' \
        | sed 's/^-A /-D /' | while read -r rule; do
          eval "iptables -w -t $table $rule" || true
        done
    done
  fi
  rm -rf "$work"
}
trap cleanup EXIT
if [ -z "${PHOBOS:-}" ]; then
  cargo build --release -q -p phobos-cli
  PHOBOS="$PWD/target/$(rustc --print host-tuple)/release/phobos"
fi
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=docker
export PHOBOS_RUNTIME_DIR="$work/run" PHOBOS_WORK_DIR="$work/work"
mkdir -p "$work/run" "$work/work"

hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/net.json" \
  --command-name "phobos --network phobos" "$PHOBOS run --network phobos -- true" \
  --command-name "docker run --rm --network bridge" "$DOCKER run --rm --network bridge busybox:local true" >&2

# ADD and DEL alone, as phobos measures them around the plugin chain.
for _ in $(seq "$RUNS"); do
  "$PHOBOS" --log-level debug run --network phobos -- true 2>>"$work/debug.log"
done

# 20 launches on one network at once, against one; the same on the host
# network (no network namespace, no CNI) in the same rounds, so what the
# network adds to the concurrency cost stands apart from what every launch
# pays (cgroup attach, process start-up) on a machine with few cores.
burst_of() {
  local net=$1 single=() burst=()
  one() { "$PHOBOS" run --network "$NET" -- true; }
  export -f one; export PHOBOS NET="$net"
  for _ in 1 2 3 4 5; do
    s=$(date +%s.%N); one; e=$(date +%s.%N)
    single+=("$(python3 -c "print($e - $s)")")
  done
  for _ in 1 2 3; do
    s=$(date +%s.%N)
    seq 20 | xargs -P 20 -I{} bash -c one
    e=$(date +%s.%N)
    burst+=("$(python3 -c "print($e - $s)")")
  done
  echo "${single[*]}|${burst[*]}"
}
rounds=()
for _ in 1 2 3; do
  rounds+=("$(burst_of phobos)" "$(burst_of host)")
done
"$PHOBOS" state --rm >/dev/null

python3 - "$work/net.json" "$work/debug.log" "${rounds[@]}" <<'PY'
import json, re, statistics, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
med = {name: statistics.median(r["times"]) * 1000 for name, r in results.items()}
log = open(sys.argv[2]).read()
add = [float(x) for x in re.findall(r"CNI ADD of \d+ network\(s\) took ([0-9.]+) ms", log)]
dele = [float(x) for x in re.findall(r"CNI DEL took ([0-9.]+) ms", log)]
def parse(arg):
    single, burst = arg.split("|")
    return ([float(x) * 1000 for x in single.split()], [float(x) * 1000 for x in burst.split()])
rounds = [(parse(sys.argv[i]), parse(sys.argv[i + 1])) for i in range(3, len(sys.argv), 2)]
p, d = "phobos --network phobos", "docker run --rm --network bridge"
print("| command | median (ms) | runs |")
print("| --- | ---: | ---: |")
for name in (p, d):
    print(f"| {name} | {med[name]:.1f} | {len(results[name]['times'])} |")
print()
print(f"- phobos / docker = {med[p] / med[d]:.2f} (target ≤ 0.25)")
print(f"- CNI ADD (bridge + host-local; lo up; no ports published, so no portmap): median {statistics.median(add):.1f} ms of {len(add)}")
print(f"- CNI DEL (reverse order, netns unbound): median {statistics.median(dele):.1f} ms of {len(dele)}")
print()
print("20 launches at once ÷ one launch, per round (medians of 5 single launches and 3 bursts):")
print()
print("| round | `--network phobos`: one, 20 at once (ms) | ratio | `--network host`: one, 20 at once (ms) | ratio |")
print("| ---: | ---: | ---: | ---: | ---: |")
ratios = []
for k, ((ps, pb), (hs, hb)) in enumerate(rounds, 1):
    pm, pbm, hm, hbm = (statistics.median(x) for x in (ps, pb, hs, hb))
    ratios.append((pbm / pm, hbm / hm))
    print(f"| {k} | {pm:.1f}, {pbm:.1f} | {pbm / pm:.2f} | {hm:.1f}, {hbm:.1f} | {hbm / hm:.2f} |")
print()
print(f"- median ratio: phobos network {statistics.median(r[0] for r in ratios):.2f} × one (target ≤ 3), "
      f"host network {statistics.median(r[1] for r in ratios):.2f} × one")
PY
