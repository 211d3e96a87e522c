#!/usr/bin/env bash
# The read paths at density (issue 14 §3): `ps --json`, `stats --json` and
# `recover` over N live containers, two phobos binaries against each other
# in the same run (e.g. main's build and a branch's), at several N.
#
#   sudo BEFORE=/path/phobos AFTER=/path/phobos bench/density-read.sh 1000 3000
#
# `sleep` containers are launched with AFTER (`run -d`, default isolation,
# runtime directory on a private tmpfs as in bench/density.sh) until N are
# live; then for each N, each command and each binary, alternating:
# CPU time (`perf stat -e task-clock`, user + system of the process and its
# threads) and wall time, median of RUNS (default 5), and the system calls
# of one run (`strace -f -c`: total calls and failed calls). Everything is
# destroyed at the end (one `destroy ID...` call) and checked gone.
# Wall times on a loaded machine are loaded; CPU times much less so.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench/density-read.sh: must run as root" >&2; exit 1; }
: "${BEFORE:?set BEFORE to the first phobos binary}" "${AFTER:?set AFTER to the second phobos binary}"
[ $# -gt 0 ] || set -- 1000 3000
for n in "$@"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "bench/density-read.sh: N must be a positive integer, got '$n'" >&2; exit 2; }
done
RUNS="${RUNS:-5}"
BEFORE=$(realpath "$BEFORE")
AFTER=$(realpath "$AFTER")
command -v perf >/dev/null && command -v strace >/dev/null || {
    echo "bench/density-read.sh: needs perf and strace (apt-get install linux-perf strace)" >&2
    exit 1
}
ulimit -n 65536 2>/dev/null || true

TMP=$(mktemp -d /tmp/phobos-density-read.XXXXXX)
ROOT="phobos-density-read-$$"
mount -t tmpfs -o size=50% phobos-density-read "$TMP"
cat >"$TMP/phobos.toml" <<EOF
runtime_dir = "$TMP/run"
work_dir = "$TMP/work"
cgroups_root = "$ROOT"
containerizers = ["mesos"]
EOF

cleanup() {
    set +e
    if [ -d "$TMP/run/containers" ]; then
        ids=()
        for c in "$TMP/run/containers"/*; do
            [ -e "$c" ] && ids+=("$(basename "$c")")
        done
        [ ${#ids[@]} -gt 0 ] && "$AFTER" --config "$TMP/phobos.toml" destroy "${ids[@]}" >/dev/null 2>&1
    fi
    for m in /sys/fs/cgroup/*/"$ROOT" /sys/fs/cgroup/"$ROOT"; do
        [ -d "$m" ] && rmdir "$m" 2>/dev/null
    done
    umount "$TMP" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

python3 - "$TMP" "$ROOT" "$RUNS" "$BEFORE" "$AFTER" "$@" <<'PY'
import os, re, statistics, subprocess, sys, time
tmp, root, runs, before, after = sys.argv[1:6]
runs = int(runs)
counts = [int(n) for n in sys.argv[6:]]
conf = ["--config", f"{tmp}/phobos.toml"]
bins = {"before": before, "after": after}
cmds = {"ps --json": ["ps", "--json"], "stats --json": ["stats", "--json"], "recover": ["recover"]}

def load():
    return float(open("/proc/loadavg").read().split()[0])

def say(msg):
    print(f"[{time.strftime('%H:%M:%S')} load {load():.1f}] {msg}", file=sys.stderr, flush=True)

def cpu_and_wall(argv):
    """task-clock (ms) and wall (ms) of one run."""
    t = time.perf_counter()
    r = subprocess.run(["perf", "stat", "-x,", "-e", "task-clock", "--"] + argv,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, check=True)
    wall = (time.perf_counter() - t) * 1000
    for line in r.stderr.splitlines():
        f = line.split(",")
        if len(f) > 2 and f[2] == "task-clock":
            return float(f[0]), wall
    raise SystemExit(f"no task-clock in perf output: {r.stderr}")

def syscalls(argv):
    """total and failed system calls of one run (strace -f -c)."""
    out = f"{tmp}/strace.txt"
    subprocess.run(["strace", "-f", "-c", "-o", out, "--"] + argv, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    for line in open(out):
        m = re.match(r"^100\.00\s+\S+\s+\S+\s+(\d+)\s+(\d*)\s+total", line)
        if m:
            return int(m.group(1)), int(m.group(2) or 0)
    raise SystemExit(f"no total in {out}")

live = 0
rows = []
for n in counts:
    say(f"launching up to {n}")
    while live < n:
        live += 1
        subprocess.run([after] + conf + ["run", "-d", "--id", f"d{live}", "--", "sleep", "1000000"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)
    say(f"{n} live")
    for name, args in cmds.items():
        samples = {b: [] for b in bins}
        for _ in range(runs):
            for b, path in bins.items():
                samples[b].append(cpu_and_wall([path] + conf + args))
        for b, path in bins.items():
            calls, failed = syscalls([path] + conf + args)
            cpu = statistics.median(s[0] for s in samples[b])
            wall = statistics.median(s[1] for s in samples[b])
            rows.append((n, name, b, cpu, wall, calls, failed))
            say(f"N={n} {name} {b}: CPU {cpu:.1f} ms, wall {wall:.1f} ms, {calls} syscalls ({failed} failed)")

print("| N | command | binary | CPU (task-clock, median) | wall (median) | system calls (failed) |")
print("| ---: | --- | --- | ---: | ---: | ---: |")
for n, name, b, cpu, wall, calls, failed in rows:
    print(f"| {n} | `{name}` | {b} | {cpu:.1f} ms | {wall:.1f} ms | {calls} ({failed}) |")

say("destroying all")
ids = [f"d{i}" for i in range(1, live + 1)]
subprocess.run([after] + conf + ["destroy"] + ids, stdin=subprocess.DEVNULL,
               stdout=subprocess.DEVNULL, check=True)
subprocess.run([after] + conf + ["state", "--rm"], stdin=subprocess.DEVNULL,
               stdout=subprocess.DEVNULL, check=True)
left = [e for e in os.listdir(f"{tmp}/run/containers") if not e.startswith(".")] \
    if os.path.isdir(f"{tmp}/run/containers") else []
cgroups = [d for d in os.listdir("/sys/fs/cgroup") if os.path.isdir(f"/sys/fs/cgroup/{d}/{root}")
           and any(os.path.isdir(f"/sys/fs/cgroup/{d}/{root}/{c}")
                   for c in os.listdir(f"/sys/fs/cgroup/{d}/{root}"))]
say(f"left after destroy: {len(left)} records, container cgroups in {cgroups or 'no'} hierarchies")
if left or cgroups:
    sys.exit(1)
PY
