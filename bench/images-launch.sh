#!/usr/bin/env bash
# Image benchmark, launch part (issue 10; bench/images.sh is the pull part): whole-process launch and exit of
# /bin/true in a Mesos container whose root filesystem is provisioned from
# a cached image (`phobos run --image busybox:local`, overlay backend,
# pid/mount/ipc/uts namespaces), against `runc run` of an OCI bundle with
# the same root filesystem (the image exported by the engine), in the same
# run (interleaved rounds, bench/lib.sh), and a plain phobos launch on the
# host's root for the image's share. Then the per-container disk cost with
# overlay: the size of the container's upper directory.
#
# State (runtime dir, work dir with the image store and the provisioner,
# runc's --root) is on a private tmpfs; STATE_FS=disk puts it under /tmp,
# STATE_FS=split puts the work dir and the bundle on disk (bench/lib.sh).
#
#   sudo bench/images-launch.sh [RUNS]        # default 60 runs each (ROUNDS=5)
#   PHOBOS=bin BASELINE=older-bin sudo bench/images-launch.sh   # no build; an earlier binary beside
#
# Needs root, a Docker engine with busybox:local (scripts/test.sh builds
# it), hyperfine and runc (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
RUNS="${1:-60}"
IMAGE="${IMAGE:-busybox:local}"
bench_need_root bench/images-launch.sh
bench_install hyperfine=hyperfine runc=runc
bench_build

bench_state_dir phobos-images-bench
export PHOBOS_RUNTIME_DIR="$work/run" PHOBOS_WORK_DIR="$disk/work" PHOBOS_CGROUPS_ROOT="phobos-images-bench-$$"
cid=""
cleanup() {
  [ -n "$cid" ] && docker rm -f "$cid" >/dev/null 2>&1 || true
  "$PHOBOS" recover >/dev/null 2>&1 || true
  bench_cgroups_root_remove "$PHOBOS_CGROUPS_ROOT"
  bench_state_cleanup
}
trap cleanup EXIT

# The cached image, in phobos's store.
docker save -o "$work/image.tar" "$IMAGE"
"$PHOBOS" image load "$work/image.tar" >&2
# The same root filesystem as an OCI bundle for runc.
mkdir -p "$disk/bundle/rootfs"
cid=$(docker create "$IMAGE" /bin/true)
docker export "$cid" | tar -x -C "$disk/bundle/rootfs"
bench_runc_spec "$disk/bundle"

ISOLATION=filesystem/linux,namespaces/pid,namespaces/ipc,namespaces/uts
names=("phobos --image" "runc" "phobos (host root)")
commands=(
  "$PHOBOS run --image $IMAGE --isolation $ISOLATION -- /bin/true"
  "runc --root $work/runc run --bundle $disk/bundle phobos-images-bench"
  "$PHOBOS run --isolation $ISOLATION -- /bin/true"
)
# BASELINE=/path/to/phobos adds an earlier build, in the same rounds.
if [ -n "${BASELINE:-}" ]; then
  names+=("phobos --image (baseline)")
  commands+=("$BASELINE run --image $IMAGE --isolation $ISOLATION -- /bin/true")
fi
# Terminated containers' records are cleared between rounds, as an
# agent's garbage collection would.
between_rounds() { "$PHOBOS" state --rm >/dev/null; }
bench_rounds "$RUNS"
bench_state_line

# Per-container disk cost: a running container's provisioner directory
# (the overlay's upper and work directories; the layers are shared).
"$PHOBOS" run -d --id disk-probe --image "$IMAGE" -- sleep 600 >/dev/null
upper="$disk/work/provisioner/disk-probe/upper"
upper_bytes=$(du -sb "$upper" | cut -f1)
upper_files=$(find "$upper" | wc -l)
layers_bytes=$(du -sb "$disk/work/store/layers" | cut -f1)
"$PHOBOS" destroy disk-probe >/dev/null

baseline=()
[ -n "${BASELINE:-}" ] && baseline=(--ratio "phobos --image (baseline)/runc" --ratio "phobos --image/phobos --image (baseline)")
python3 bench/rounds.py "$work" "$ROUNDS" "${names[@]}" \
  --ratio "phobos --image/runc@0.3" "${baseline[@]}" \
  --diff "phobos --image|phobos (host root)@the image's root filesystem per launch"
echo "- per-container disk (overlay upper dir of a running container): $upper_bytes bytes in $((upper_files - 1)) entries; the image's layers ($layers_bytes bytes) are shared"
