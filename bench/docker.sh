#!/usr/bin/env bash
# Docker benchmark (issue "Docker containerizer"): launch + wait of `true`
# through `phobos run --docker-image` against `docker run --rm` of the same
# image, in the same hyperfine run. Prints a Markdown table of medians and
# the ratio (for docs/benchmarks.md).
#
#   sudo bench/docker.sh [RUNS]        # default 30 runs each, 3 warm-ups
#
# Uses scripts/docker-test-setup.sh for the engine and the busybox:local
# image, and stops only a dockerd that it started.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-30}"
[ "$(id -u)" -eq 0 ] || { echo "bench/docker.sh: must run as root" >&2; exit 1; }
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null 2>&1 \
  || { apt-get update -qq && apt-get install -y -qq hyperfine; }
scripts/docker-test-setup.sh >&2
trap 'scripts/docker-test-teardown.sh >&2 || true; rm -rf "$work"' EXIT
cargo build --release -q -p phobos-cli
PHOBOS="$PWD/target/$(rustc --print host-tuple)/release/phobos"
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=docker
work=$(mktemp -d /tmp/phobos-docker-bench.XXXXXX)
export PHOBOS_RUNTIME_DIR="$work/run" PHOBOS_WORK_DIR="$work/work"

hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/docker.json" \
  --command-name phobos "$PHOBOS run --docker-image busybox:local -- true" \
  --command-name "docker run --rm" "$DOCKER run --rm busybox:local true" >&2

python3 - "$work/docker.json" <<'PY'
import json, statistics, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
med = {name: statistics.median(r["times"]) * 1000 for name, r in results.items()}
print("| command | median (ms) | runs |")
print("| --- | ---: | ---: |")
for name in ("phobos", "docker run --rm"):
    print(f"| {name} | {med[name]:.1f} | {len(results[name]['times'])} |")
print()
print(f"- phobos / docker run --rm = {med['phobos'] / med['docker run --rm']:.2f} (target ≤ 1.0)")
PY
