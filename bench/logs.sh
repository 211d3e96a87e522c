#!/usr/bin/env bash
# Log rotation benchmark (issue 13): a container writing 100 MB to stdout
# through the `logrotate` logger (init pumps it through pipes with splice
# into 10 MB rotated files, the defaults) against the `sandbox` logger (the
# command writes its sandbox file directly), in the same run; the launch of
# `/bin/true` with each logger; and init's memory (VmRSS, VmHWM) with each.
# Both loggers go through the same `phobos run` (foreground, whose follower
# copies the output to hyperfine's /dev/null, and `--rm`).
#
#   sudo bench/logs.sh [RUNS]      # default 10 runs of the 100 MB write, 40 of /bin/true
#   PHOBOS=target/x86_64-unknown-linux-gnu/debug/phobos sudo -E bench/logs.sh 3   # a quick check
#
# STATE_FS (bench/lib.sh): tmpfs (default), split or disk. Needs root and
# hyperfine.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
RUNS="${1:-10}"
TRUE_RUNS="${TRUE_RUNS:-40}"
MB=100
bench_need_root bench/logs.sh
bench_install hyperfine=hyperfine
bench_build
bench_state_dir phobos-logs-bench
cleanup() {
  bench_state_cleanup
}
trap cleanup EXIT

for logger in logrotate sandbox; do
  printf 'runtime_dir = "%s/run"\nwork_dir = "%s/work"\ncgroups_root = \"%s\"\ncontainer_logger = "%s"\n' \
    "$work" "$disk" "$PHOBOS_CGROUPS_ROOT" "$logger" > "$work/$logger.toml"
done
write="head -c $((MB << 20)) /dev/zero"
run() { echo "$PHOBOS --config $work/$1.toml run --rm -- $2"; }

names=("logrotate: ${MB} MB to stdout" "sandbox: ${MB} MB to stdout")
commands=("$(run logrotate "$write")" "$(run sandbox "$write")")
bench_rounds "$RUNS"
for ((r = 0; r < ${ROUNDS:-5}; r++)); do mv "$work/launch-$r.json" "$work/write-$r.json"; done

names=("logrotate: /bin/true" "sandbox: /bin/true")
commands=("$(run logrotate /bin/true)" "$(run sandbox /bin/true)")
bench_rounds "$TRUE_RUNS"

# Init's memory while its command sleeps, with each logger.
memory=()
for logger in logrotate sandbox; do
  id="mem-$logger"
  $PHOBOS --config "$work/$logger.toml" run -d --id "$id" -- sh -c 'echo ready; sleep 100' >/dev/null
  pid=$($PHOBOS --config "$work/$logger.toml" status --json "$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
  sleep 0.5
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
  memory+=("$logger $rss $hwm")
  $PHOBOS --config "$work/$logger.toml" destroy "$id" >/dev/null
  $PHOBOS --config "$work/$logger.toml" state --rm >/dev/null
done

python3 - "$work" "${ROUNDS:-5}" "$MB" "${memory[@]}" <<'PY'
import json, statistics, sys
work, rounds, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def times(files):
    out = {}
    for f in files:
        for r in json.load(open(f))["results"]:
            out.setdefault(r["command"], []).extend(r["times"])
    return out
write = times([f"{work}/write-{r}.json" for r in range(rounds)])
launch = times([f"{work}/launch-{r}.json" for r in range(rounds)])
print("| command | median (ms) | runs |")
print("| --- | ---: | ---: |")
for t in (write, launch):
    for name, v in t.items():
        print(f"| {name} | {statistics.median(v) * 1000:.1f} | {len(v)} |")
med = lambda t, k: statistics.median(t[k]) * 1000
w_l, w_s = med(write, f"logrotate: {mb} MB to stdout"), med(write, f"sandbox: {mb} MB to stdout")
t_l, t_s = med(launch, "logrotate: /bin/true"), med(launch, "sandbox: /bin/true")
print()
print(f"- {mb} MB: logrotate / sandbox = {w_l / w_s:.3f} (target <= 1.2); logrotate {mb / (w_l / 1000):.0f} MB/s, sandbox {mb / (w_s / 1000):.0f} MB/s")
print(f"- /bin/true: logrotate / sandbox = {t_l / t_s:.3f} ({t_l - t_s:+.2f} ms)")
for m in sys.argv[4:]:
    logger, rss, hwm = m.split()
    print(f"- init's memory with {logger}: VmRSS {int(rss)} KiB, VmHWM {int(hwm)} KiB")
PY
bench_state_line
