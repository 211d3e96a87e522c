#!/usr/bin/env bash
# Resource metering and isolation benchmarks (hyperfine; run as root):
#
#  1. `phobos stats --json` for N running containers in one call (default
#     N=1000), with the cgroups isolators (linux launcher, default
#     isolation: cgroups/cpu,mem,pids + namespaces) and with the posix
#     isolators (posix launcher, posix/cpu,posix/mem). Target: <= 100 ms.
#  2. One foreground launch (`phobos run -- true`, launch to exit) with all
#     cgroups isolators vs none (both with the linux launcher and namespaces).
#
# Usage: bench/stats.sh [N]   (PHOBOS=path/to/phobos to skip the build)
# Prints the medians and ratios as a Markdown table; every container and
# cgroup the script made is destroyed on exit, whatever happens.
set -euo pipefail

N=${1:-1000}
RUNS=${RUNS:-20}
cd "$(dirname "$0")/.."
if [[ -z "${PHOBOS:-}" ]]; then
    cargo build --release -q -p phobos-cli
    PHOBOS="${CARGO_TARGET_DIR:-target}/$(rustc --print host-tuple)/release/phobos"
fi
PHOBOS=$(realpath "$PHOBOS")
command -v hyperfine >/dev/null || { echo "bench/stats.sh: needs hyperfine" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "bench/stats.sh: needs root (cgroups)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/phobos-bench.XXXXXX)
ROOT="phobos-bench-$$"
# A cgroups root per runtime directory (docs/operations.md).
CG=(--runtime-dir "$TMP/cg/run" --work-dir "$TMP/cg/work" --cgroups-root "$ROOT-cg")
PX=(--runtime-dir "$TMP/px/run" --work-dir "$TMP/px/work" --cgroups-root "$ROOT-px")
LA=(--runtime-dir "$TMP/la/run" --work-dir "$TMP/la/work" --cgroups-root "$ROOT-la")

cleanup() {
    set +e
    for g in CG PX LA; do
        local -n args=$g
        local dir="${args[1]}/containers"
        [[ -d $dir ]] || continue
        for c in "$dir"/*; do
            [[ -e $c ]] && "$PHOBOS" "${args[@]}" destroy "$(basename "$c")" >/dev/null 2>&1
        done
    done
    for m in /sys/fs/cgroup/*/"$ROOT"-* /sys/fs/cgroup/"$ROOT"-*; do
        [[ -d $m ]] && rmdir "$m" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

launch_many() { # <args-array-name> <extra run options...>
    local -n args=$1
    shift
    for i in $(seq "$N"); do
        "$PHOBOS" "${args[@]}" run -d --id "c$i" "$@" -- sleep 600 >/dev/null
    done
}

median() { # hyperfine json -> median in ms
    python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$1"
}

echo "launching $N containers with cgroups isolators..." >&2
start=$(date +%s.%N)
launch_many CG --cpus 0.01 --mem 32
echo "  took $(python3 -c "print('%.1f' % ($(date +%s.%N) - $start))") s" >&2
count=$("$PHOBOS" "${CG[@]}" stats --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[[ $count == "$N" ]] || { echo "expected $N containers in stats, got $count" >&2; exit 1; }
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$TMP/stats-cg.json" \
    "$PHOBOS ${CG[*]} stats --json" >&2
"$PHOBOS" "${CG[@]}" ps >/dev/null
hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$TMP/ps-cg.json" \
    "$PHOBOS ${CG[*]} ps" >&2
for i in $(seq "$N"); do "$PHOBOS" "${CG[@]}" destroy "c$i" >/dev/null; done

echo "launching $N containers with posix isolators..." >&2
launch_many PX --launcher posix --isolation posix/cpu,posix/mem
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$TMP/stats-px.json" \
    "$PHOBOS ${PX[*]} stats --json" >&2
for i in $(seq "$N"); do "$PHOBOS" "${PX[@]}" destroy "c$i" >/dev/null; done

NS=filesystem/linux,namespaces/pid,namespaces/ipc,namespaces/uts
hyperfine -N --warmup 5 --runs "$((RUNS * 5))" --export-json "$TMP/launch.json" \
    "$PHOBOS ${LA[*]} run --isolation $NS -- true" \
    "$PHOBOS ${LA[*]} run --isolation cgroups/all,$NS --cpus 0.5 --mem 64 -- true" >&2
"$PHOBOS" "${LA[@]}" state --rm >/dev/null

python3 - "$TMP" "$N" <<'PY'
import json, sys
tmp, n = sys.argv[1], sys.argv[2]
def med(name, i=0):
    return json.load(open(f"{tmp}/{name}.json"))["results"][i]["median"] * 1000
cg, px, ps = med("stats-cg"), med("stats-px"), med("ps-cg")
plain, full = med("launch", 0), med("launch", 1)
print(f"| measurement | median | ratio |")
print(f"| --- | --- | --- |")
print(f"| `phobos stats --json`, {n} containers, cgroups/cpu,mem,pids | {cg:.1f} ms | {cg/100:.2f} × the 100 ms target |")
print(f"| `phobos stats --json`, {n} containers, posix/cpu,mem | {px:.1f} ms | {px/100:.2f} × the 100 ms target |")
print(f"| `phobos ps`, {n} containers, cgroups | {ps:.1f} ms | |")
print(f"| `phobos run -- true`, namespaces only | {plain:.1f} ms | 1.00 |")
print(f"| `phobos run -- true`, + cgroups/all (--cpus 0.5 --mem 64) | {full:.1f} ms | {full/plain:.2f} |")
PY
