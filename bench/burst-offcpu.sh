#!/usr/bin/env bash
# Where 20 launches at once wait (issue 11): `perf sched record -g` of a
# burst of N `phobos run --network NET -- true` started together, then the
# off-CPU time of every phobos/true task summed by the kernel stack it
# slept in (the stack at its switch-out, weighted by the wait before its
# next switch-in), with the time spent runnable but not running (run-queue
# delay) and running. Lock waits show as __mutex_lock / rwsem / percpu
# rwsem frames under the syscall that took them; waiting for a child
# (vfork's clone, poll, pipe reads) is the launch's own sequence.
#
# The state layout is bench/lib.sh's NET_STATE_FS (default split: the
# runtime directory on a tmpfs, sandboxes on disk). Tasks are told apart
# by command name, so a PHOBOS binary must be named `phobos` (a copy
# named otherwise is counted as nothing).
#
#   sudo bench/burst-offcpu.sh [NET] [N]     # default: phobos 20
#   PHOBOS=/path/to/phobos sudo bench/burst-offcpu.sh host
set -euo pipefail
cd "$(dirname "$0")/.."
NET="${1:-phobos}"
N="${2:-20}"
. bench/lib.sh
bench_need_root bench/burst-offcpu.sh
bench_install perf=linux-perf
bench_net_state phobos-burst-offcpu
trap bench_net_cleanup EXIT
bench_build
"$PHOBOS" run --network "$NET" -- true   # the bridge and host rules, once
cat >"$work/burst" <<SH
#!/bin/sh
for i in \$(seq $N); do "$PHOBOS" run --network "$NET" -- true & done
wait
SH
chmod +x "$work/burst"
perf sched record -g -o "$work/sched.data" -- "$work/burst" >/dev/null 2>&1
perf sched timehist -i "$work/sched.data" --state -g 2>/dev/null >"$work/timehist"
python3 - "$work/timehist" "$N" "$NET" <<'PY'
import collections, re, sys
line_re = re.compile(r'^\s*[\d.]+\s+\[\d+\]\s+(\S+)\[(\d+)(?:/\d+)?\]\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\S)\s*(.*)$')
last, wait, count = {}, collections.Counter(), collections.Counter()
delay = run = 0.0
for line in open(sys.argv[1]):
    m = line_re.match(line)
    if not m or not re.match(r'(phobos|true)', m.group(1)):
        continue
    tid, w, d, r, state, stack = m.group(2), *map(float, m.group(3, 4, 5)), m.group(6), m.group(7)
    delay += d
    run += r
    if tid in last:
        wait[last[tid]] += w
        count[last[tid]] += 1
    last[tid] = state + " " + " <- ".join(f.strip() for f in stack.split("<-")[:6])
n = int(sys.argv[2])
print(f"{n} launches on --network {sys.argv[3]}: running {run:.1f} ms, run-queue delay {delay:.1f} ms, "
      f"off CPU {sum(wait.values()):.1f} ms (all tasks summed)")
print()
print("| off CPU (ms) | per launch (ms) | times | state and kernel stack |")
print("| ---: | ---: | ---: | --- |")
for key, ms in wait.most_common(20):
    print(f"| {ms:.1f} | {ms / n:.2f} | {count[key]} | `{key[:200]}` |")
PY
