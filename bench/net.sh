#!/usr/bin/env bash
# Network benchmark (issue 11): launch + exit of `true` on the default
# bridge network (`phobos run --network phobos`) against `docker run --rm
# --network bridge` of the same command, in the same hyperfine run; the
# cost of CNI ADD and DEL alone (from phobos's debug log); the CPU time of
# one launch (perf stat, every process of the launch counted) on the
# built-in network (its bridge step in process), on a conflist `plugins`
# running the reference bridge and host-local programs as the built-in
# network did before, and on the host network; and 20 launches on one
# network at once against one launch, with the floor that CPU time puts
# under it on this machine's cores. Prints Markdown for docs/benchmarks.md.
#
#   sudo bench/net.sh [RUNS]        # default 30 runs each, 3 warm-ups
#   PHOBOS=/path/to/phobos bench/net.sh   # a binary already built
#
# State layout (NET_STATE_FS, bench/lib.sh's bench_net_state): split
# (default since session 11) puts the runtime directory on a tmpfs as /run
# is on real hosts and the sandboxes on disk; disk puts both on disk, as
# sessions 5-10 measured (this machine's ext4 has no journal, which makes
# every file created soon after many were deleted cost more CPU). The
# layout is printed with the results.
#
# The default network's bridge is phobos0 on default_network_subnet
# 10.77.0.0/16; the bridge is removed afterwards unless it existed before.
# The `plugins` network's bridge is phxbench1 on 10.78.0.0/16, removed
# afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-30}"
. bench/lib.sh
bench_need_root bench/net.sh
bench_install hyperfine=hyperfine /usr/lib/cni/bridge=containernetworking-plugins perf=linux-perf
# Stop the engine afterwards only if this script started it: a dockerd
# that already answered belongs to someone else.
engine_was_up=0
"${DOCKER:-/usr/bin/docker}" info >/dev/null 2>&1 && engine_was_up=1
scripts/docker-test-setup.sh >&2
bench_net_state phobos-net-bench
cleanup() {
  [ "$engine_was_up" = 1 ] || scripts/docker-test-teardown.sh >&2 || true
  ip link del phxbench1 2>/dev/null || true
  bench_net_cleanup
}
trap cleanup EXIT
bench_build
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=docker
mkdir -p "$work/cni"
# The built-in network as it was before its bridge step ran in process:
# the reference bridge and host-local programs, same options.
cat >"$work/cni/plugins.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "plugins", "plugins": [{"type": "bridge",
 "bridge": "phxbench1", "isGateway": true, "ipMasq": false, "hairpinMode": true,
 "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.78.0.0/16"}]],
          "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$work/run/net/ipam"}}]}
EOF
printf 'network_cni_config_dir = "%s"\n' "$work/cni" >"$work/phobos.toml"

hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/net.json" \
  --command-name "phobos --network phobos" "$PHOBOS run --network phobos -- true" \
  --command-name "docker run --rm --network bridge" "$DOCKER run --rm --network bridge busybox:local true" >&2

# ADD and DEL alone, as phobos measures them around the plugin chain.
for _ in $(seq "$RUNS"); do
  "$PHOBOS" --log-level debug run --network phobos -- true 2>>"$work/debug.log"
done

# CPU time of one launch (task-clock of every process it starts, summed),
# in interleaved rounds so that load changes hit each network alike.
cpu_of() {
  perf stat -x, -e task-clock -r "$RUNS" -- \
    "$PHOBOS" --config "$work/phobos.toml" run --network "$1" -- true 2>&1 >/dev/null \
    | awk -F, '/task-clock/ { print $1 }'
}
cpu=()
for _ in 1 2 3; do
  cpu+=("$(cpu_of phobos),$(cpu_of plugins),$(cpu_of host)")
done

# 20 launches on one network at once, against one; the same on the host
# network (no network namespace, no CNI) in the same rounds, so what the
# network adds to the concurrency cost stands apart from what every launch
# pays (cgroup attach, process start-up) on a machine with few cores.
# Both start phobos straight from their parent (the shell, xargs): a
# `bash -c` per burst launch, as before session 11, added a shell's start
# (~1.6 ms of CPU here) to each of the 20 and to none of the singles.
burst_of() {
  local net=$1 single=() burst=()
  for _ in 1 2 3 4 5; do
    s=$(date +%s.%N); "$PHOBOS" run --network "$net" -- true; e=$(date +%s.%N)
    single+=("$(python3 -c "print($e - $s)")")
  done
  for _ in 1 2 3; do
    s=$(date +%s.%N)
    seq 20 | xargs -P 20 -I{} "$PHOBOS" run --network "$net" -- true
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

python3 - "$work/net.json" "$work/debug.log" "$(nproc)" "${cpu[*]}" "${rounds[@]}" <<'PY'
import json, os, re, statistics, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
cores = int(sys.argv[3])
cpu_rounds = [[float(x) for x in r.split(",")] for r in sys.argv[4].split()]
cpu = {name: statistics.median(r[i] for r in cpu_rounds)
       for i, name in enumerate(("phobos", "plugins", "host"))}
med = {name: statistics.median(r["times"]) * 1000 for name, r in results.items()}
log = open(sys.argv[2]).read()
add = [float(x) for x in re.findall(r"CNI ADD of \d+ network\(s\) took ([0-9.]+) ms", log)]
dele = [float(x) for x in re.findall(r"CNI DEL took ([0-9.]+) ms", log)]
def parse(arg):
    single, burst = arg.split("|")
    return ([float(x) * 1000 for x in single.split()], [float(x) * 1000 for x in burst.split()])
rounds = [(parse(sys.argv[i]), parse(sys.argv[i + 1])) for i in range(5, len(sys.argv), 2)]
p, d = "phobos --network phobos", "docker run --rm --network bridge"
print(f"state layout: {os.environ.get('NET_STATE_FS', 'split')}; load average (1 min) at the end {open('/proc/loadavg').read().split()[0]}")
print()
print("| command | median (ms) | runs |")
print("| --- | ---: | ---: |")
for name in (p, d):
    print(f"| {name} | {med[name]:.1f} | {len(results[name]['times'])} |")
print()
print(f"- phobos / docker = {med[p] / med[d]:.2f} (target ≤ 0.25)")
print(f"- CNI ADD (bridge step in process; lo up; no ports published, so no portmap): median {statistics.median(add):.1f} ms of {len(add)}")
print(f"- CNI DEL (reverse order, netns unbound): median {statistics.median(dele):.1f} ms of {len(dele)}")
print()
print("CPU time of one launch of `true` (perf stat task-clock, every process; median of 3 rounds, each the mean of RUNS):")
print()
print("| `--network phobos` (bridge step in process) | `--network plugins` (bridge + host-local programs) | `--network host` |")
print("| ---: | ---: | ---: |")
print(f"| {cpu['phobos']:.1f} ms | {cpu['plugins']:.1f} ms | {cpu['host']:.1f} ms |")
print()
print(f"- the network's own CPU per launch: {cpu['phobos'] - cpu['host']:.1f} ms in process, "
      f"{cpu['plugins'] - cpu['host']:.1f} ms with the plugin programs")
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
one = statistics.median(statistics.median(ps) for (ps, _), _ in rounds)
floor = 20 * cpu["phobos"] / cores
print(f"- CPU floor: 20 launches × {cpu['phobos']:.1f} ms of CPU on {cores} cores cannot take less than "
      f"{floor:.0f} ms, {floor / one:.2f} × one launch ({one:.1f} ms)")
PY
