#!/usr/bin/env bash
# CPU time of one launch of `phobos run -- /bin/true` (perf stat task-clock
# of every process the launch starts, summed) with the default isolation
# (cgroups cpu, mem, pids and devices, capabilities, seccomp, rlimits) and
# bare (pid, mount, ipc and uts namespaces and the kill cgroup), for two
# builds in the same run: BEFORE and AFTER, in interleaved rounds with a
# rotated order, so load changes hit every cell alike. Prints a Markdown
# table of the medians over rounds (each round the mean of RUNS launches),
# the cost of the default isolation over bare for each build, and
# AFTER ÷ BEFORE. State on a private tmpfs (STATE_FS as bench/launch.sh).
#
#   sudo BEFORE=old/phobos AFTER=new/phobos bench/isolation-cpu.sh [RUNS]
#   (default RUNS=20, ROUNDS=5; AFTER defaults to a release build of this tree)
#
# Needs root and perf. Run it on an idle machine for figures of record.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
RUNS="${1:-20}"
ROUNDS="${ROUNDS:-5}"
bench_need_root bench/isolation-cpu.sh
command -v perf >/dev/null || bench_install perf=linux-perf
[ -n "${BEFORE:-}" ] || { echo "bench/isolation-cpu.sh: set BEFORE=path/to/phobos (the build to compare with)" >&2; exit 2; }
BEFORE=$(realpath "$BEFORE")
PHOBOS="${AFTER:-}"
bench_build
AFTER=$PHOBOS

bench_state_dir phobos-isocpu
trap bench_state_cleanup EXIT
export PHOBOS_RUNTIME_DIR="$work/run" PHOBOS_WORK_DIR="$disk/work"
BARE=filesystem/linux,namespaces/pid,namespaces/ipc,namespaces/uts

# cpu_of BINARY ISOLATION: mean task-clock (ms) of RUNS launches.
cpu_of() {
  local iso=()
  [ "$2" = default ] || iso=(--isolation "$2")
  perf stat -x, -e task-clock -r "$RUNS" -- "$1" run "${iso[@]}" -- /bin/true 2>&1 >/dev/null \
    | awk -F, '/task-clock/ { print $1 }'
}

cells=("before default" "before bare" "after default" "after bare")
load_before=$(bench_load)
for ((round = 0; round < ROUNDS; round++)); do
  for ((i = 0; i < 4; i++)); do
    cell=${cells[(i + round) % 4]}
    bin=$BEFORE; [ "${cell%% *}" = after ] && bin=$AFTER
    iso=default; [ "${cell#* }" = bare ] && iso=$BARE
    echo "$round,$cell,$(cpu_of "$bin" "$iso")" >>"$work/cpu.csv"
  done
done
load_after=$(bench_load)
echo "state: ${STATE_FS:-tmpfs}; load average (1 min) before $load_before, after $load_after on $(nproc) CPUs; $ROUNDS rounds of $RUNS launches per cell"
echo "before: $BEFORE"
echo "after: $AFTER"
python3 - "$work/cpu.csv" <<'PY'
import csv, statistics, sys
cells = {}
for rnd, cell, ms in csv.reader(open(sys.argv[1])):
    cells.setdefault(cell, []).append(float(ms))
med = {c: statistics.median(v) for c, v in cells.items()}
print()
print("| build | default isolation (ms CPU) | bare (ms CPU) | default − bare |")
print("| --- | ---: | ---: | ---: |")
for b in ("before", "after"):
    d, n = med[f"{b} default"], med[f"{b} bare"]
    print(f"| {b} | {d:.2f} | {n:.2f} | {d - n:+.2f} |")
print()
for c in ("default", "bare"):
    rounds = [a / b for a, b in zip(cells[f"after {c}"], cells[f"before {c}"])]
    print(f"- after ÷ before, {c}: {med[f'after {c}'] / med[f'before {c}']:.3f} "
          f"(by round: {', '.join(f'{r:.3f}' for r in rounds)})")
d = [(a - b) - (c - e) for a, b, c, e in zip(cells["before default"], cells["before bare"],
                                            cells["after default"], cells["after bare"])]
print(f"- the default isolation's cost over bare, before − after: {statistics.median(d):+.2f} ms "
      f"(by round: {', '.join(f'{x:+.2f}' for x in d)})")
PY
