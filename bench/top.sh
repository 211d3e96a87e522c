#!/usr/bin/env bash
# `phobos top` benchmark (issue 13): the CPU time (user + system, from
# getrusage(RUSAGE_CHILDREN) around each command) of one refresh with N
# sleeping containers, against `phobos ps --json`, `phobos stats --json`
# and, as the peer, `systemd-cgtop` over the same cgroups, in the same run.
#
#   sudo bench/top.sh [N]            # default N=1000
#   sudo PHOBOS=target/…/debug/phobos bench/top.sh 50   # a given binary, no build
#
# A refresh is measured as the difference between `top -b -n K+1` and
# `top -b -n 1`, divided by K (the steady cost, files already open); the
# first frame (`-n 1`: discovery, every config parsed, files opened) is
# reported too. systemd-cgtop likewise (`-n K+1` minus `-n 1`, over the
# containers' root cgroup). Each figure is the median of RUNS (default 5).
# The issue's target: one refresh ≤ 100 ms of CPU at N=1000.
#
# Needs root and systemd-cgtop (systemd); the state is on a private tmpfs.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000}"
RUNS="${RUNS:-5}"
K="${K:-10}"
source bench/lib.sh
bench_need_root bench/top.sh
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "bench/top.sh: N must be a positive integer, got '$N'" >&2; exit 2; }
bench_build
ulimit -n 65536 2>/dev/null || true

TMP=$(mktemp -d /tmp/phobos-top-bench.XXXXXX)
ROOT="phobos-top-bench-$$"
mount -t tmpfs -o size=25% phobos-top-bench "$TMP"
cat >"$TMP/phobos.toml" <<EOF
runtime_dir = "$TMP/run"
work_dir = "$TMP/work"
cgroups_root = "$ROOT"
containerizers = ["mesos"]
EOF
P=("$PHOBOS" --config "$TMP/phobos.toml")
cleanup() {
  set +e
  if [ -d "$TMP/run/containers" ]; then
    for c in "$TMP/run/containers"/*; do
      [ -e "$c" ] && "${P[@]}" destroy "$(basename "$c")" >/dev/null 2>&1
    done
  fi
  for m in /sys/fs/cgroup/*/"$ROOT" /sys/fs/cgroup/"$ROOT"; do
    [ -d "$m" ] && rmdir "$m" 2>/dev/null
  done
  umount "$TMP" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

echo "launching $N containers…" >&2
for i in $(seq 1 "$N"); do
  "${P[@]}" run -d --id "t$i" -- sleep 1000000 >/dev/null
done

# The cgroup systemd-cgtop shows: the containers' root in the cpu hierarchy.
CG="/$ROOT"
python3 - "$N" "$RUNS" "$K" "$CG" "${P[@]}" <<'PY'
import os, resource, statistics, subprocess, sys
n, runs, k, cg = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
P = sys.argv[5:]

def cpu_ms(argv):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return 1000 * ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))

def median(argv):
    return statistics.median(cpu_ms(argv) for _ in range(runs))

def per_refresh(one, many):
    return (median(many) - median(one)) / k, median(one)

def load():
    return float(open("/proc/loadavg").read().split()[0])

print(f"N = {n} sleeping containers, {os.cpu_count()} CPUs, load {load():.1f}; "
      f"CPU time (user + sys), median of {runs}", file=sys.stderr)
top_refresh, top_first = per_refresh(P + ["top", "-b", "-n", "1"],
                                     P + ["top", "-b", "-n", str(k + 1), "-d", "0.05"])
ps = median(P + ["ps", "--json"])
stats = median(P + ["stats", "--json"])
cgtop = ["systemd-cgtop", "-b", "--raw", "-d", "0.05"]
cg_refresh, cg_first = per_refresh(cgtop + ["-n", "1", cg], cgtop + ["-n", str(k + 1), cg])
print("| command | CPU per refresh | first frame / one call |")
print("|---|---|---|")
print(f"| phobos top -b | {top_refresh:.1f} ms | {top_first:.1f} ms |")
print(f"| phobos ps --json | | {ps:.1f} ms |")
print(f"| phobos stats --json | | {stats:.1f} ms |")
print(f"| systemd-cgtop {cg} | {cg_refresh:.1f} ms | {cg_first:.1f} ms |")
print(f"\nload after: {load():.1f}; target: one refresh <= 100 ms at N=1000 "
      f"({'met' if top_refresh <= 100 else 'not met'} at N={n})")
PY
