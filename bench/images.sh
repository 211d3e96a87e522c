#!/usr/bin/env bash
# Image pull benchmark (issue "Images for the Mesos containerizer"): a cold
# pull of a 64 MB image of 4 incompressible 16 MB layers from a local
# registry (Debian's docker-registry on 127.0.0.1) by `phobos image pull`
# against `docker pull` of the same image, interleaved in the same run;
# then a second image sharing 3 of those layers, pulled after the first:
# how many layers and bytes each fetches. Prints Markdown for
# docs/benchmarks.md.
#
#   sudo bench/images.sh [ROUNDS]      # default 5 rounds, each cold
#   sudo PHOBOS=path/to/phobos bench/images.sh   # without building
#
# "Cold" means an empty phobos store and, for Docker, the image and its
# layers removed (`docker rmi`) before every pull. Only the images this
# script pushed are removed from the engine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-5}"
[ "$(id -u)" -eq 0 ] || { echo "bench/images.sh: must run as root" >&2; exit 1; }
# An engine that already answers is used and left alone (other people's
# work may depend on it); otherwise the test set-up starts one and the
# teardown stops exactly that one.
started_docker=0
if ! docker info >/dev/null 2>&1; then
  scripts/docker-test-setup.sh >&2
  started_docker=1
fi
work=$(mktemp -d /tmp/phobos-images-bench.XXXXXX)
regdir="$work/registry"
tag="bench-$$"
cleanup() {
  docker rmi -f "$plain/phobos-bench/a:$tag" "$plain/phobos-bench/b:$tag" >/dev/null 2>&1 || true
  scripts/registry-test-teardown.sh "$regdir" >&2 || true
  [ "$started_docker" = 1 ] && { scripts/docker-test-teardown.sh >&2 || true; }
  rm -rf "$work"
}
trap cleanup EXIT
scripts/registry-test-setup.sh "$regdir" >/dev/null
plain=$(sed -n 's/^PHOBOS_TEST_REGISTRY=//p' "$regdir/env")
if [ -z "${PHOBOS:-}" ]; then # PHOBOS=path uses a binary already built
  cargo build --release -q -p phobos-cli
  PHOBOS="$PWD/target/$(rustc --print host-tuple)/release/phobos"
fi

# layer NAME: a 16 MB file of random bytes in a gzip'd tar (stays ~16 MB).
layer() {
  mkdir -p "$work/l/$1"
  head -c $((16 << 20)) /dev/urandom >"$work/l/$1/data-$1"
  tar -C "$work/l/$1" -cf "$work/$1.tar" "data-$1"
  gzip -1 -c "$work/$1.tar" >"$work/$1.tar.gz"
}
blob() { # FILE -> its digest hex, stored in the layout
  local hex
  hex=$(sha256sum "$1" | cut -d' ' -f1)
  cp "$1" "$layout/blobs/sha256/$hex"
  echo "$hex"
}
# image NAME LAYER...: an OCI layout in $work/NAME pushed as phobos-bench/NAME:$tag.
image() {
  local name=$1; shift
  layout="$work/$name"
  mkdir -p "$layout/blobs/sha256"
  local diffs="" layers="" sep=""
  for l in "$@"; do
    diffs+="$sep\"sha256:$(sha256sum "$work/$l.tar" | cut -d' ' -f1)\""
    layers+="$sep{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$(blob "$work/$l.tar.gz")\",\"size\":$(stat -c %s "$work/$l.tar.gz")}"
    sep=,
  done
  printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/data-a"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$diffs" >"$work/$name.config"
  local config manifest
  config=$(blob "$work/$name.config")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
    "$config" "$(stat -c %s "$work/$name.config")" "$layers" >"$work/$name.manifest"
  manifest=$(blob "$work/$name.manifest")
  echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest" "$(stat -c %s "$work/$name.manifest")" "$tag" >"$layout/index.json"
  skopeo copy -q "oci:$layout:$tag" "docker://$plain/phobos-bench/$name:$tag" --dest-tls-verify=false
}
for l in l1 l2 l3 l4 l5; do layer "$l"; done
image a l1 l2 l3 l4
image b l1 l2 l3 l5

A="$plain/phobos-bench/a:$tag"
B="$plain/phobos-bench/b:$tag"
now() { date +%s.%N; }
phobos_pull() { # REF STORE-WORK-DIR
  "$PHOBOS" --config /dev/null --work-dir "$2" image pull "$1" >/dev/null 2>"$work/phobos.err"
}
declare -a P D
for round in $(seq 1 "$ROUNDS"); do
  rm -rf "$work/w"
  docker rmi -f "$A" >/dev/null 2>&1 || true
  sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  if [ $((round % 2)) -eq 1 ]; then order="phobos docker"; else order="docker phobos"; fi
  for who in $order; do
    t0=$(now)
    if [ "$who" = phobos ]; then phobos_pull "$A" "$work/w"; else docker pull -q "$A" >/dev/null; fi
    t1=$(now)
    ms=$(echo "($t1 - $t0) * 1000" | bc)
    if [ "$who" = phobos ]; then P+=("$ms"); else D+=("$ms"); fi
    echo "round $round $who ${ms%.*} ms" >&2
  done
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
mp=$(median "${P[@]}"); md=$(median "${D[@]}")

# Shared layers: B after A, each starting from A alone.
rm -rf "$work/w"; phobos_pull "$A" "$work/w"
t0=$(now); RUST_LOG=info "$PHOBOS" --config /dev/null --work-dir "$work/w" image pull "$B" >/dev/null 2>"$work/b.err"; t1=$(now)
pb=$(echo "($t1 - $t0) * 1000" | bc)
fetched=$(grep -c 'fetched=true' "$work/b.err" || true)
docker rmi -f "$B" >/dev/null 2>&1 || true
docker pull -q "$A" >/dev/null
t0=$(now); docker pull "$B" >"$work/docker-b.out"; t1=$(now)
db=$(echo "($t1 - $t0) * 1000" | bc)
dfetched=$(grep -c 'Pull complete' "$work/docker-b.out" || true)

echo "| cold pull, 64 MB in 4 layers | median (ms) | rounds |"
echo "| --- | ---: | ---: |"
printf '| phobos image pull | %.0f | %s |\n' "$mp" "$ROUNDS"
printf '| docker pull | %.0f | %s |\n' "$md" "$ROUNDS"
echo
printf -- '- phobos / docker pull = %.2f (target ≤ 0.7); by round: phobos %s; docker %s\n' \
  "$(echo "$mp / $md" | bc -l)" "$(printf '%.0f ' "${P[@]}")" "$(printf '%.0f ' "${D[@]}")"
printf -- '- second image sharing 3 of 4 layers, after the first: phobos fetched %s layer(s) in %.0f ms; docker pulled %s layer(s) in %.0f ms\n' \
  "$fetched" "$pb" "$dfetched" "$db"
