#!/usr/bin/env bash
# Fetcher benchmark (issue 13), every peer in the same run, interleaved by
# hyperfine: a 200 MB file served by one local HTTP server (Python's
# http.server on 127.0.0.1) fetched by `phobos run --fetch URL,extract=false
# -- /bin/true` against `curl -o` and `wget -O` into a directory; the same
# URI with `cache` once it is cached; and a 100 MB .tar.gz fetched from a
# local path and extracted, against `cp` + `tar xzf`. `phobos run -- /bin/true`
# (no fetch) is measured too: the launch's own share of the phobos times.
# Prints a Markdown table of medians (for docs/benchmarks.md).
#
#   sudo bench/fetch.sh [RUNS]        # default 10 runs each
#   sudo PHOBOS=target/…/debug/phobos bench/fetch.sh 2   # a given binary, no build
#
# Needs root, hyperfine, curl, wget, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
RUNS="${1:-10}"
[ "$(id -u)" -eq 0 ] || { echo "bench/fetch.sh: must run as root" >&2; exit 1; }
if [ -z "${PHOBOS:-}" ]; then
  cargo build --release -q -p phobos-cli
  PHOBOS="$PWD/target/$(rustc --print host-tuple)/release/phobos"
  [ -x "$PHOBOS" ] || PHOBOS="$PWD/target/release/phobos"
fi
PHOBOS=$(realpath "$PHOBOS")

work=$(mktemp -d /var/tmp/phobos-bench-fetch.XXXXXX)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  "$PHOBOS" state --rm >/dev/null 2>&1 || true
  rm -rf "$work"
  bench_cgroups_root_remove "${PHOBOS_CGROUPS_ROOT:-}"
}
trap cleanup EXIT
export PHOBOS_RUNTIME_DIR="$work/run" PHOBOS_WORK_DIR="$work/work"
export PHOBOS_CGROUPS_ROOT="phobos-bench-fetch-$$"
mkdir -p "$work/srv" "$work/out"

head -c 200M /dev/urandom > "$work/srv/big.bin"
# 100 MB of tar content that compresses like real files (text + binary).
mkdir -p "$work/tree"
for i in $(seq 1 50); do
  head -c 1M /dev/urandom > "$work/tree/bin$i"
  seq 1 160000 > "$work/tree/text$i"
done
tar czf "$work/srv/tree.tar.gz" -C "$work" tree
rm -rf "$work/tree"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$work/srv" && exec python3 -m http.server --bind 127.0.0.1 "$port" >/dev/null 2>&1) &
server=$!
for _ in $(seq 1 150); do curl -sf -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.2; done
url="http://127.0.0.1:$port/big.bin"

# Each phobos run gets a fresh id; the sandboxes go with `state --rm`.
cat > "$work/prun" <<SH
#!/bin/sh
id="b\$(date +%s%N)"
"$PHOBOS" run --rm --id "\$id" "\$@" >/dev/null
rm -rf "$work/work/containers/\$id"
SH
chmod +x "$work/prun"
"$work/prun" --fetch "$url,cache,extract=false" -- /bin/true  # fill the cache

hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$work/h.json" \
  -n "phobos run -- /bin/true" "$work/prun -- /bin/true" \
  -n "phobos run --fetch (200 MB)" "$work/prun --fetch $url,extract=false -- /bin/true" \
  -n "curl -o (200 MB)" "curl -sf -o $work/out/big.bin $url" \
  -n "wget -O (200 MB)" "wget -q -O $work/out/big.bin $url" \
  -n "phobos run --fetch ,cache (hit)" "$work/prun --fetch $url,cache,extract=false -- /bin/true" \
  -n "phobos run --fetch file://…tar.gz (extract)" "$work/prun --fetch file://$work/srv/tree.tar.gz -- /bin/true" \
  -n "cp + tar xzf" "sh -c 'rm -rf $work/out/x && mkdir $work/out/x && cp $work/srv/tree.tar.gz $work/out/x/ && tar xzf $work/out/x/tree.tar.gz -C $work/out/x'" \
  >/dev/null

python3 - "$work/h.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
print("| command | median | MB/s (200 MB) |")
print("|---|---|---|")
for r in res:
    med = r["median"]
    rate = f"{200 / med:.0f}" if "200 MB" in r["command"] else ""
    print(f"| {r['command']} | {med * 1000:.0f} ms | {rate} |")
PY
