#!/usr/bin/env bash
# Terminal benchmark (issue 12): `phobos run -it -- /bin/true` against
# `docker run --rm -it busybox:local true` and `runc run` of a bundle with
# `"terminal": true`, and the throughput of `cat` of a 100 MB text file
# through the container's terminal, for phobos and Docker, in the same run.
# Every command runs under `script -qec CMD /dev/null`, which gives it a real
# terminal (util-linux script holds the outer terminal's master); the cost of
# `script` itself is measured as its own line and is in every other line.
# `phobos run -- /bin/true` without a terminal is there for the terminal's
# own cost.
#
#   sudo bench/tty.sh [RUNS]     # default 30 runs each for the launch, 5 for cat
#
# Needs root, hyperfine, runc, busybox-static, a running dockerd with
# busybox:local (scripts/test.sh loads it).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-30}"
CAT_RUNS="${CAT_RUNS:-5}"
[ "$(id -u)" -eq 0 ] || { echo "bench/tty.sh: must run as root" >&2; exit 1; }
# PHOBOS=path/to/phobos skips the build (a binary built already).
if [ -z "${PHOBOS:-}" ]; then
  cargo build --release -q -p phobos-cli
  PHOBOS="$PWD/target/$(rustc --print host-tuple)/release/phobos"
fi
docker image inspect busybox:local >/dev/null

work=$(mktemp -d /tmp/phobos-tty-bench.XXXXXX)
# A cgroups root of the run's own (one runtime directory per root).
export PHOBOS_CGROUPS_ROOT="phobos-tty-bench-$$"
trap 'umount "$work" 2>/dev/null || true; rm -rf "$work"; for cg in /sys/fs/cgroup/*/"$PHOBOS_CGROUPS_ROOT" /sys/fs/cgroup/"$PHOBOS_CGROUPS_ROOT"; do rmdir "$cg" 2>/dev/null || true; done' EXIT
mount -t tmpfs phobos-tty-bench "$work"
export PHOBOS_RUNTIME_DIR="$work/run" PHOBOS_WORK_DIR="$work/work"

# 100 MB of text (base64 lines of 76 characters), on the tmpfs.
head -c 75000000 /dev/urandom | base64 > "$work/data.txt"
size=$(stat -c %s "$work/data.txt")

# runc: busybox rootfs, /bin/true, the same namespaces as phobos's default,
# and a terminal runc allocates and proxies in the foreground.
mkdir -p "$work/bundle/rootfs/bin" "$work/bundle/rootfs/proc" "$work/bundle/rootfs/dev"
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
ln -s busybox "$work/bundle/rootfs/bin/true"
(cd "$work/bundle" && runc spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["process"]["args"] = ["/bin/true"]
spec["process"]["terminal"] = True
spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] in ("pid", "mount", "ipc", "uts")]
json.dump(spec, open(path, "w"), indent=2)
PY

tty() { printf 'script -qec %q /dev/null' "$1"; }
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/launch.json" \
  --command-name "script (no container)" "$(tty /bin/true)" \
  --command-name "phobos run -- /bin/true (no terminal)" "$(tty "$PHOBOS run -- /bin/true")" \
  --command-name "phobos run -it -- /bin/true" "$(tty "$PHOBOS run -it -- /bin/true")" \
  --command-name "runc run (terminal)" "$(tty "runc --root $work/runc run --bundle $work/bundle phobos-tty-bench")" \
  --command-name "docker run --rm -it" "$(tty "docker run --rm -it busybox:local true")" >&2

hyperfine -N --warmup 1 --runs "$CAT_RUNS" --export-json "$work/cat.json" \
  --command-name "phobos run -it -- cat" "$(tty "$PHOBOS run -it -- cat $work/data.txt")" \
  --command-name "docker run --rm -it cat" "$(tty "docker run --rm -it -v $work/data.txt:/data.txt:ro busybox:local cat /data.txt")" >&2

python3 - "$work" "$size" <<'PY'
import json, statistics, sys
work, size = sys.argv[1], int(sys.argv[2])
def load(name):
    return {r["command"]: r["times"] for r in json.load(open(f"{work}/{name}.json"))["results"]}
launch, cat = load("launch"), load("cat")
print("| command (under `script`) | median (ms) | runs |")
print("| --- | ---: | ---: |")
for name, t in launch.items():
    print(f"| {name} | {statistics.median(t) * 1000:.1f} | {len(t)} |")
med = {n: statistics.median(t) * 1000 for n, t in launch.items()}
p, d = med["phobos run -it -- /bin/true"], med["docker run --rm -it"]
print()
print(f"- phobos run -it / docker run -it = {p / d:.3f}; / runc run (terminal) = {p / med['runc run (terminal)']:.3f}")
print(f"- the terminal's cost in phobos (run -it minus run without one) = {p - med['phobos run -- /bin/true (no terminal)']:+.1f} ms")
print()
print(f"| cat of {size / 1e6:.0f} MB through the terminal | median (s) | MB/s | runs |")
print("| --- | ---: | ---: | ---: |")
for name, t in cat.items():
    m = statistics.median(t)
    print(f"| {name} | {m:.2f} | {size / 1e6 / m:.0f} | {len(t)} |")
PY
