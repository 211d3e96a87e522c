#!/usr/bin/env bash
# Density benchmark (issue 14 §3): N live containers on one host, Phobos
# against runc in the same run.
#
#   sudo bench/density.sh [N]      # default N=10000
#
# Phobos: `phobos run -d --id dI -- sleep 1000000` N times one after
# another (the default isolation as root: cgroups cpu, mem, pids, devices,
# pid/ipc/uts namespaces, capabilities, seccomp), each launch timed; then
# `ps --json`, `stats --json` and `recover` over all N (hyperfine, median);
# then `destroy` of the first min(500, N/10) containers one after another
# (each timed) and of the rest with one `phobos destroy ID...` call, and a
# check that nothing is left (no runtime entry, cgroup or process).
#
# Peer, in the same run: `runc run -d` of PEER_N bundles (default the
# smaller of N and 1000: runc takes ~25 ms a launch and ~15 ms a delete
# quiet, so 10,000 would add ~7 minutes for a per-launch median that does
# not need them; set PEER_N=N for the whole count)
# equivalent to Phobos's launch (busybox rootfs, `sleep 1000000`, pid,
# mount, ipc and uts namespaces, runc's cgroupfs cgroups under one parent),
# `runc list` at PEER_N, and `runc delete -f` of each. PEER=none skips it.
#
# Memory per idle container: the container's memory cgroup usage (what the
# kernel charges to it: init and the command's pages, their page tables,
# kernel stacks, slab objects; v1 `memory.usage_in_bytes` or v2
# `memory.current`), the proportional set size of Phobos's init alone
# (`/proc/PID/smaps_rollup`), what init alone owns (its USS: private
# pages; and its page tables, `VmPTE`), and the host's `MemTotal - MemAvailable`
# difference per container (noisy when other work runs on the host).
#
# Load average (1 min) is printed before every phase: numbers taken at a
# load above the core count are loaded numbers. Every 1,000 launches (a
# tenth of N when smaller) a progress line gives the median launch and the
# median CPU of `phobos run` with the children it reaps, free memory, and
# what the kernel did since the last line: reclaim and compaction, the
# unreclaimable slab's growth, the count of memory cgroups (removed ones it
# still holds included) and the pid counter (a wrap is marked), so a step
# in the launch times can be told apart from a step in Phobos's own work.
#
# The runtime directory is on a private tmpfs (as /run is); WORK_FS=disk
# puts the sandboxes under /var/tmp (on disk, as /var/lib/phobos is).
# Environment: PHOBOS (binary, skips the build), PEER_N, PEER=runc|none,
# RUNS (hyperfine runs for ps/stats/recover, default 5).
# Needs root, hyperfine, runc and busybox-static (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10000}"
PEER="${PEER:-runc}"
PEER_N="${PEER_N:-$(( N < 1000 ? N : 1000 ))}"
RUNS="${RUNS:-5}"
[ "$(id -u)" -eq 0 ] || { echo "bench/density.sh: must run as root" >&2; exit 1; }
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "bench/density.sh: N must be a positive integer, got '$N'" >&2; exit 2; }
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
[ "$PEER" = none ] || command -v runc >/dev/null || need+=(runc)
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
    apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${need[@]}"; }
fi
if [[ -z "${PHOBOS:-}" ]]; then
    cargo build --release -q -p phobos-cli
    PHOBOS="target/$(rustc --print host-tuple)/release/phobos"
fi
PHOBOS=$(realpath "$PHOBOS")

# Host limits a few thousand containers run into: every container is two
# processes (init and the command) and runc's bundles are one directory each.
most=$(( N > PEER_N ? N : PEER_N ))
pid_max=$(cat /proc/sys/kernel/pid_max)
if (( pid_max < 2 * most + 4096 )); then
    echo "bench/density.sh: kernel.pid_max is $pid_max; $most containers need at least $(( 2 * most + 4096 )) (sysctl -w kernel.pid_max=4194304)" >&2
    exit 1
fi
threads_max=$(cat /proc/sys/kernel/threads-max)
if (( threads_max < 2 * most + 4096 )); then
    echo "bench/density.sh: kernel.threads-max is $threads_max; $most containers need at least $(( 2 * most + 4096 ))" >&2
    exit 1
fi
ulimit -n 65536 2>/dev/null || true

TMP=$(mktemp -d /tmp/phobos-density.XXXXXX)
ROOT="phobos-density-$$"
RUNC_PARENT="phobos-density-runc-$$"
mount -t tmpfs -o size=50% phobos-density "$TMP"
if [ "${WORK_FS:-tmpfs}" = disk ]; then
    WORK=$(mktemp -d /var/tmp/phobos-density-work.XXXXXX)
else
    WORK="$TMP/work"
fi
cat >"$TMP/phobos.toml" <<EOF
runtime_dir = "$TMP/run"
work_dir = "$WORK"
cgroups_root = "$ROOT"
containerizers = ["mesos"]
EOF
P=("$PHOBOS" --config "$TMP/phobos.toml")

cleanup() {
    set +e
    if [ -d "$TMP/run/containers" ]; then
        ids=()
        for c in "$TMP/run/containers"/*; do
            [ -e "$c" ] && ids+=("$(basename "$c")")
        done
        [ ${#ids[@]} -gt 0 ] && "${P[@]}" destroy "${ids[@]}" >/dev/null 2>&1
    fi
    if [ -d "$TMP/runc" ]; then
        runc --root "$TMP/runc" list -q 2>/dev/null | while read -r id; do
            runc --root "$TMP/runc" delete -f "$id" >/dev/null 2>&1
        done
    fi
    for m in /sys/fs/cgroup/*/"$ROOT" /sys/fs/cgroup/"$ROOT" /sys/fs/cgroup/*/"$RUNC_PARENT" /sys/fs/cgroup/"$RUNC_PARENT"; do
        [ -d "$m" ] && rmdir "$m" 2>/dev/null
    done
    umount "$TMP" 2>/dev/null
    rm -rf "$TMP"
    [ "${WORK_FS:-tmpfs}" = disk ] && rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$PEER" != none ]; then
    # One bundle per container (runc reads config.json from the bundle),
    # all sharing one busybox rootfs; each in its own cgroup under one parent.
    mkdir -p "$TMP/rootfs/bin" "$TMP/rootfs/proc" "$TMP/rootfs/dev" "$TMP/bundles"
    cp /bin/busybox "$TMP/rootfs/bin/busybox"
    ln -s busybox "$TMP/rootfs/bin/sleep"
    (cd "$TMP" && runc spec && mv config.json spec.json)
    python3 - "$TMP" "$PEER_N" "$RUNC_PARENT" <<'PY'
import json, os, sys
tmp, n, parent = sys.argv[1], int(sys.argv[2]), sys.argv[3]
spec = json.load(open(f"{tmp}/spec.json"))
spec["process"]["args"] = ["/bin/sleep", "1000000"]
spec["process"]["terminal"] = False
spec["root"] = {"path": f"{tmp}/rootfs", "readonly": True}
spec["linux"]["namespaces"] = [x for x in spec["linux"]["namespaces"] if x["type"] in ("pid", "mount", "ipc", "uts")]
for i in range(1, n + 1):
    os.makedirs(f"{tmp}/bundles/r{i}")
    spec["linux"]["cgroupsPath"] = f"/{parent}/r{i}"
    with open(f"{tmp}/bundles/r{i}/config.json", "w") as f:
        json.dump(spec, f)
PY
fi

# The driver: times every launch and destroy, measures memory, prints the
# report. Commands come as JSON lists so nothing is re-split by a shell.
python3 - "$TMP" "$N" "$PEER" "$PEER_N" "$RUNS" "$ROOT" "$RUNC_PARENT" "${P[@]}" <<'PY'
import json, os, statistics, subprocess, sys, time
tmp, n, peer, peer_n, runs, root, runc_parent = sys.argv[1:8]
n, peer_n, runs = int(n), int(peer_n), int(runs)
P = sys.argv[8:]
RUNC = ["runc", "--root", f"{tmp}/runc"]
ncpu = os.cpu_count()

def load():
    return float(open("/proc/loadavg").read().split()[0])

def say(msg):
    print(f"[{time.strftime('%H:%M:%S')} load {load():.1f}] {msg}", file=sys.stderr, flush=True)

def kernel_threads(*prefixes):
    """Pids of the kernel threads whose names start with one of `prefixes`
    (kswapd: the host's page reclaim; kdamond: DAMON, where the host runs
    it)."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                comm = open(f"/proc/{pid}/comm").read().strip()
            except OSError:
                continue
            if comm.startswith(prefixes):
                out.append((comm, int(pid)))
    return out

TICK = os.sysconf("SC_CLK_TCK")
RECLAIMERS = kernel_threads("kswapd", "kdamond")

def reclaim_sample():
    """Free memory, the reclaim threads' CPU seconds and /proc/vmstat's
    reclaim counters, to tell a step in the launch times that comes with
    the host starting to reclaim memory from one that does not."""
    cpu = {}
    for comm, pid in RECLAIMERS:
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = comm.rstrip("0123456789.")
        cpu[name] = cpu.get(name, 0.0) + (int(f[11]) + int(f[12])) / TICK
    vm = {}
    for line in open("/proc/vmstat"):
        k, v = line.split()
        vm[k] = int(v)
    scanned = sum(v for k, v in vm.items() if k.startswith(("pgscan_kswapd", "pgscan_direct", "pgscan_khugepaged")))
    direct = sum(v for k, v in vm.items() if k.startswith("pgscan_direct"))
    stalls = sum(v for k, v in vm.items() if k.startswith("allocstall"))
    m = meminfo()
    return {"free": m["MemFree"], "cpu": cpu, "scanned": scanned, "direct": direct, "stalls": stalls,
            "compact": vm.get("compact_stall", 0), "slab": m.get("SUnreclaim", 0),
            "last_pid": int(open("/proc/sys/kernel/ns_last_pid").read()), "memcgs": memory_cgroups()}

def memory_cgroups():
    """The host's memory cgroups, removed ones the kernel still holds
    (charged page cache) included: /proc/cgroups (v1) or the unified
    root's cgroup.stat (v2)."""
    try:
        for line in open("/proc/cgroups"):
            f = line.split()
            if f[0] == "memory" and f[1] != "0":
                return int(f[2])
        st = dict(l.split() for l in open("/sys/fs/cgroup/cgroup.stat"))
        return int(st["nr_descendants"]) + int(st["nr_dying_descendants"])
    except (OSError, KeyError, IndexError, ValueError):
        return None

def reclaim_since(a, b):
    cpu = ", ".join(f"{k} {b['cpu'].get(k, 0) - a['cpu'].get(k, 0):.2f} s" for k in sorted(b["cpu"]))
    return (f"MemFree {b['free'] / 1048576:.0f} MiB; since the last line: {cpu or 'no reclaim threads'} CPU, "
            f"{b['scanned'] - a['scanned']} pages scanned ({b['direct'] - a['direct']} direct), "
            f"{b['stalls'] - a['stalls']} allocation stalls, {b['compact'] - a['compact']} compaction stalls; "
            f"unreclaimable slab {(b['slab'] - a['slab']) / 1048576:+.0f} MiB; memory cgroups {b['memcgs']}; "
            f"pid counter {a['last_pid']} → {b['last_pid']}{' (wrapped)' if b['last_pid'] < a['last_pid'] else ''}")

def timed(argv):
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000

def timed_cpu(argv):
    """Wall time (ms) of `argv` and the CPU time (ms, user + system) of
    it and the children it reaped: for `phobos run -d` the run and its
    init spawner, not init and the command, which live on. A step in the
    wall times without one here is a wait, not more work."""
    t = time.perf_counter()
    with open(os.devnull, "r+b") as null:
        child = subprocess.Popen(argv, stdin=null, stdout=null)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = (time.perf_counter() - t) * 1000
    if child.returncode != 0:
        raise subprocess.CalledProcessError(child.returncode, argv)
    return wall, (usage.ru_utime + usage.ru_stime) * 1000

def meminfo():
    m = {}
    for line in open("/proc/meminfo"):
        k, v = line.split(":")
        m[k] = int(v.split()[0]) * 1024
    return m

def host_used():
    m = meminfo()
    return m["MemTotal"] - m["MemAvailable"]

def cgroup_usage(rel):
    """Memory charged to cgroup `rel` (v2 memory.current or v1 usage)."""
    for path in (f"/sys/fs/cgroup/{rel}/memory.current", f"/sys/fs/cgroup/unified/{rel}/memory.current",
                 f"/sys/fs/cgroup/memory/{rel}/memory.usage_in_bytes"):
        try:
            if os.path.basename(path) == "memory.current" and not os.path.exists(os.path.dirname(path) + "/memory.max"):
                continue
            return int(open(path).read())
        except OSError:
            continue
    return None

def rollup(pid):
    """/proc/PID/smaps_rollup's fields in bytes, plus VmPTE from status."""
    out = {}
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1]) * 1024
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmPTE:"):
                out["VmPTE"] = int(line.split()[1]) * 1024
    except OSError:
        return None
    return out

def first_last(times):
    k = min(500, max(1, len(times) // 10))
    return statistics.median(times[:k]), statistics.median(times[-k:]), k

def hyper(name, argv):
    out = f"{tmp}/{name}.json"
    subprocess.run(["hyperfine", "-N", "--warmup", "1", "--runs", str(runs), "--export-json", out,
                    "--command-name", name, " ".join(argv)], check=True, stdout=sys.stderr)
    return json.load(open(out))["results"][0]["median"] * 1000

report = {"n": n, "peer_n": peer_n, "peer": peer, "cpus": ncpu}

def measure_memory(kind, count, cgroup_of, init_pids=None):
    usage = [cgroup_usage(cgroup_of(i)) for i in range(1, count + 1)]
    usage = [u for u in usage if u is not None]
    r = {"cgroup_median": statistics.median(usage) if usage else None}
    if init_pids:
        rolls = [x for x in (rollup(pid) for pid in init_pids) if x]
        def med(f):
            v = [f(x) for x in rolls]
            return statistics.median(v) if v else None
        r["init_pss_median"] = med(lambda x: x.get("Pss", 0))
        r["init_uss_median"] = med(lambda x: x.get("Private_Clean", 0) + x.get("Private_Dirty", 0))
        r["init_pte_median"] = med(lambda x: x.get("VmPTE", 0))
    return r

# --- Phobos ---------------------------------------------------------------
say(f"phobos: launching {n} containers")
base_used = host_used()
load_launch = load()
t0 = time.perf_counter()
launch = []
launch_cpu = []
first_sample = mark = reclaim_sample()
every = min(1000, max(1, n // 10))
for i in range(1, n + 1):
    wall, cpu = timed_cpu(P + ["run", "-d", "--id", f"d{i}", "--", "sleep", "1000000"])
    launch.append(wall)
    launch_cpu.append(cpu)
    if i % every == 0:
        now = reclaim_sample()
        say(f"phobos: {i} launched, median of the last 100 {statistics.median(launch[-100:]):.2f} ms "
            f"(CPU of the run and its spawner {statistics.median(launch_cpu[-100:]):.2f} ms); "
            + reclaim_since(mark, now))
        mark = now
launch_total = time.perf_counter() - t0
slab_per = (reclaim_sample()["slab"] - first_sample["slab"]) / n
time.sleep(2)
used_per = (host_used() - base_used) / n
def started(pid):
    """The process's start time (clock ticks after boot), to tell it from
    a later process given the same pid; None once it has exited (a zombie
    waiting for the host's pid 1 to reap it has exited)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else fields[19]
    except (OSError, IndexError):
        return None

pids = []
for i in range(1, n + 1):
    try:
        pids.append(int(open(f"{tmp}/run/containers/d{i}/pid").read().strip()))
    except (OSError, ValueError):
        pass
births = {pid: started(pid) for pid in pids}
mem = measure_memory("phobos", n, lambda i: f"{root}/d{i}", pids)
ps_json = subprocess.run(P + ["ps", "--json"], check=True, capture_output=True).stdout
running = sum(1 for c in json.loads(ps_json) if c.get("state") == "RUNNING")
if running != n:
    sys.exit(f"bench/density.sh: expected {n} running containers, ps says {running}")
load_ops = load()
say("phobos: ps, stats, recover")
ps_ms = hyper("ps", P + ["ps", "--json"])
stats_ms = hyper("stats", P + ["stats", "--json"])
recover_ms = hyper("recover", P + ["recover"])
# The first `one` containers one `phobos destroy ID` at a time (each
# timed: the per-destroy cost with ~N live), the rest with a single
# `phobos destroy ID...` call (what a user destroying them all runs).
one = min(500, max(1, n // 10))
say(f"phobos: destroying {one} containers one by one, then {n - one} in one call")
load_destroy = load()
t0 = time.perf_counter()
destroy = [timed(P + ["destroy", f"d{i}"]) for i in range(1, one + 1)]
batch_ms = timed(P + ["destroy"] + [f"d{i}" for i in range(one + 1, n + 1)]) if one < n else 0.0
destroy_total = time.perf_counter() - t0
subprocess.run(P + ["state", "--rm"], check=True, stdout=subprocess.DEVNULL)
left = []
if os.path.isdir(f"{tmp}/run/containers"):
    left += [f"runtime entry {x}" for x in os.listdir(f"{tmp}/run/containers")]
for mount in os.listdir("/sys/fs/cgroup"):
    for base in (f"/sys/fs/cgroup/{mount}/{root}", f"/sys/fs/cgroup/{root}"):
        if os.path.isdir(base):
            left += [f"cgroup {base}/{x}" for x in os.listdir(base) if os.path.isdir(f"{base}/{x}")]
alive = [p for p in pids if births[p] is not None and started(p) == births[p]]
left += [f"process {p}" for p in alive]
report["phobos"] = {
    "launch_total_s": launch_total, "launch": launch, "launch_cpu": launch_cpu, "destroy_total_s": destroy_total,
    "destroy": destroy, "destroy_batch_ms": batch_ms, "destroy_batch_n": n - one,
    "ps_ms": ps_ms, "stats_ms": stats_ms, "recover_ms": recover_ms, "host_used_per": used_per, "slab_per": slab_per,
    "left": sorted(set(left)), "load": {"launch": load_launch, "ops": load_ops, "destroy": load_destroy}, **mem}

# --- runc -----------------------------------------------------------------
if peer != "none":
    say(f"runc: launching {peer_n} containers")
    base_used = host_used()
    load_launch = load()
    t0 = time.perf_counter()
    rl = []
    for i in range(1, peer_n + 1):
        rl.append(timed(RUNC + ["run", "-d", "--bundle", f"{tmp}/bundles/r{i}", f"r{i}"]))
        if i % 1000 == 0:
            say(f"runc: {i} launched, median of the last 100 {statistics.median(rl[-100:]):.2f} ms")
    rl_total = time.perf_counter() - t0
    time.sleep(2)
    r_used_per = (host_used() - base_used) / peer_n
    rmem = measure_memory("runc", peer_n, lambda i: f"{runc_parent}/r{i}")
    load_ops = load()
    list_ms = hyper("runc-list", RUNC + ["list", "-q"])
    load_destroy = load()
    t0 = time.perf_counter()
    rd = [timed(RUNC + ["delete", "-f", f"r{i}"]) for i in range(1, peer_n + 1)]
    rd_total = time.perf_counter() - t0
    report["runc"] = {"launch_total_s": rl_total, "launch": rl, "destroy_total_s": rd_total, "destroy": rd,
                      "list_ms": list_ms, "host_used_per": r_used_per,
                      "load": {"launch": load_launch, "ops": load_ops, "destroy": load_destroy}, **rmem}

json.dump(report, open(f"{tmp}/../phobos-density-last.json", "w"))

# --- report ---------------------------------------------------------------
def mib(x):
    return "n/a" if x is None else f"{x / 1048576:.2f} MiB"
def kib(x):
    return "n/a" if x is None else f"{x / 1024:.0f} KiB"
ph = report["phobos"]
f, l, k = first_last(ph["launch"])
print(f"Phobos: {n} containers; runc: {peer_n if peer != 'none' else 'not run'}; {ncpu} CPUs; "
      f"load average (1 min) at launch / ps-stats-recover / destroy: phobos "
      f"{ph['load']['launch']:.1f} / {ph['load']['ops']:.1f} / {ph['load']['destroy']:.1f}"
      + (f", runc {report['runc']['load']['launch']:.1f} / {report['runc']['load']['ops']:.1f} / {report['runc']['load']['destroy']:.1f}" if peer != "none" else ""))
print()
print("| measure | phobos | runc | target (10,000, idle) |")
print("| --- | ---: | ---: | --- |")
rc = report.get("runc")
def peer_cell(fn):
    return fn(rc) if rc else "—"
print(f"| launch all | {ph['launch_total_s']:.1f} s | {peer_cell(lambda r: '%.1f s' % r['launch_total_s'])} | ≤ 40 s |")
rf = rc and first_last(rc["launch"])
print(f"| median launch, first {k} / last {k} | {f:.2f} / {l:.2f} ms ({l / f:.2f} ×) | "
      f"{peer_cell(lambda r: '%.2f / %.2f ms (%.2f ×)' % (rf[0], rf[1], rf[1] / rf[0]))} | last ≤ 1.5 × first |")
cf, cl, _ = first_last(ph["launch_cpu"])
print(f"| CPU of `phobos run -d` and its spawner, median first {k} / last {k} | {cf:.2f} / {cl:.2f} ms | — | reported |")
print(f"| `ps --json` / `runc list` | {ph['ps_ms']:.0f} ms | {peer_cell(lambda r: '%.0f ms' % r['list_ms'])} | ≤ 300 ms |")
print(f"| `stats --json` | {ph['stats_ms']:.0f} ms | — | ≤ 600 ms |")
print(f"| `recover` | {ph['recover_ms']:.0f} ms | — | ≤ 600 ms |")
print(f"| destroy all | {ph['destroy_total_s']:.1f} s ({len(ph['destroy'])} one by one, median {statistics.median(ph['destroy']):.2f} ms; "
      f"{ph['destroy_batch_n']} in one call, {ph['destroy_batch_ms'] / 1000:.1f} s) | "
      f"{peer_cell(lambda r: '%.1f s (median %.2f ms)' % (r['destroy_total_s'], statistics.median(r['destroy'])))} | ≤ 40 s |")
print(f"| memory cgroup per idle container (median) | {kib(ph['cgroup_median'])} | {peer_cell(lambda r: kib(r['cgroup_median']))} | reported |")
print(f"| of which Phobos's init (PSS, median) | {kib(ph.get('init_pss_median'))} | — (no supervisor) | reported |")
print(f"| Phobos's init: private pages (USS) / page tables (median) | {kib(ph.get('init_uss_median'))} / {kib(ph.get('init_pte_median'))} | — | reported |")
print(f"| host unreclaimable slab per container (its memory cgroup's shrinker maps included) | {kib(ph['slab_per'])} | — | reported |")
print(f"| host `MemTotal − MemAvailable` per container | {kib(ph['host_used_per'])} | {peer_cell(lambda r: kib(r['host_used_per']))} | reported |")
print(f"| left after destroy | {len(ph['left']) or 'nothing'} | | nothing |")
if ph["left"]:
    print("left behind:", ", ".join(ph["left"][:20]), file=sys.stderr)
    sys.exit(1)
PY
