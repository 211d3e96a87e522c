# Shared parts of the launch benchmarks (bench/launch.sh,
# bench/images-launch.sh, bench/net.sh, bench/burst-offcpu.sh, …): tools,
# the release build, a state directory on a private tmpfs, the network
# benchmarks' state and clean-up, an OCI bundle spec for runc equivalent
# to phobos's namespaces, interleaved hyperfine rounds, and their summary
# (bench/rounds.py). Source it from a script that has `set -euo pipefail`
# and has cd'ed to the repository.

# bench_need_root SCRIPT
bench_need_root() {
  [ "$(id -u)" -eq 0 ] || { echo "$1: must run as root" >&2; exit 1; }
}

# bench_install COMMAND=PACKAGE…: installs the packages whose command is
# missing (a path is checked with -x).
bench_install() {
  local need=() pair cmd pkg
  for pair in "$@"; do
    cmd=${pair%%=*} pkg=${pair#*=}
    if [[ $cmd == /* ]]; then [ -x "$cmd" ] || need+=("$pkg"); else command -v "$cmd" >/dev/null || need+=("$pkg"); fi
  done
  if [ ${#need[@]} -gt 0 ]; then
    apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${need[@]}"; }
  fi
}

# bench_build: the release phobos in $PHOBOS (built here unless PHOBOS
# already names a binary).
bench_build() {
  if [ -z "${PHOBOS:-}" ]; then
    cargo build --release -q -p phobos-cli
    PHOBOS="$PWD/target/$(rustc --print host-tuple)/release/phobos"
  fi
  PHOBOS=$(realpath "$PHOBOS")
}

# bench_state_dir PREFIX: a fresh directory in $work for state, and $disk
# for sandboxes and bundles. STATE_FS=tmpfs (default): both on a private
# tmpfs; split: $work on the tmpfs (as /run) and $disk on disk under
# /var/tmp (as /var/lib/phobos); disk: both plain /tmp. The caller's EXIT
# trap must call bench_state_cleanup. PHOBOS_CGROUPS_ROOT (unless set) is a
# cgroups root of the run's own, removed by bench_state_cleanup: a root
# belongs to one runtime directory (docs/operations.md).
bench_state_dir() {
  export PHOBOS_CGROUPS_ROOT="${PHOBOS_CGROUPS_ROOT:-$1-$$}"
  work=$(mktemp -d "/tmp/$1.XXXXXX")
  disk=$work
  case "${STATE_FS:-tmpfs}" in
    tmpfs) mount -t tmpfs "$1" "$work" ;;
    split) mount -t tmpfs "$1" "$work"; disk=$(mktemp -d "/var/tmp/$1-disk.XXXXXX") ;;
    disk) ;;
    *) echo "the state layout must be tmpfs, split or disk, got '$STATE_FS'" >&2; exit 2 ;;
  esac
}

bench_state_cleanup() {
  bench_cgroups_root_remove "${PHOBOS_CGROUPS_ROOT:-}"
  umount -R "$work" 2>/dev/null || true
  rm -rf "$work"
  [ "$disk" = "$work" ] || rm -rf "$disk"
}

# bench_cgroups_root_remove ROOT: removes the cgroups root a run made, in
# every hierarchy (empty once its containers are gone, so rmdir is enough).
bench_cgroups_root_remove() {
  local cg
  [ -n "$1" ] || return 0
  for cg in /sys/fs/cgroup/*/"$1" /sys/fs/cgroup/"$1"; do
    [ -d "$cg" ] && rmdir "$cg" 2>/dev/null || true
  done
}

# bench_load: the 1-minute load average now.
bench_load() { cut -d' ' -f1 /proc/loadavg; }

# bench_net_state PREFIX: for the network benchmarks (bench/net.sh,
# bench/burst-offcpu.sh): a fresh $work holding the runtime directory and
# $disk the work directory (sandboxes), both exported to phobos, a cgroups
# root of the run's own, and whether the default network's bridge phobos0
# was there before (then it and its host rules stay). NET_STATE_FS=split
# (default): the runtime directory on a private tmpfs, as /run is on real
# hosts, and the sandboxes on disk under /var/tmp, as /var/lib/phobos;
# disk: both under /tmp on disk (the layout of sessions 5-10); tmpfs: both
# on the tmpfs (bench_state_dir's layouts). This
# machine's disk is ext4 without a journal, where every new inode is
# searched past the inodes deleted in the last minutes (ext4's
# recently_deleted()); a runtime directory there makes launches that create
# and remove many files together cost more CPU than on a real host's /run.
# The caller's EXIT trap must call bench_net_cleanup.
bench_net_state() {
  had_bridge=0
  [ -e /sys/class/net/phobos0 ] && had_bridge=1
  STATE_FS="${NET_STATE_FS:-split}" bench_state_dir "$1"
  export PHOBOS_RUNTIME_DIR="$work/run" PHOBOS_WORK_DIR="$disk/work"
  mkdir -p "$work/run" "$disk/work"
}

# bench_net_cleanup: what bench_net_state's run left: containers' state,
# the network state mount, the bridge phobos0 and its masquerade/forward
# rules (unless they were there before), the cgroups root, $work and $disk.
bench_net_cleanup() {
  local table rule
  if [ -n "${PHOBOS:-}" ]; then "$PHOBOS" state --rm >/dev/null 2>&1 || true; fi
  umount -l "$work/run/net" 2>/dev/null || true
  if [ "$had_bridge" = 0 ]; then
    ip link del phobos0 2>/dev/null || true
    for table in nat filter; do
      iptables-save -t "$table" | grep -F -- '--comment "phobos network phobos0"' \
        | sed 's/^-A /-D /' | while read -r rule; do
          eval "iptables -w -t $table $rule" || true
        done
    done
  fi
  bench_state_cleanup
}

# bench_runc_spec BUNDLE: `runc spec` in BUNDLE, made equivalent to a phobos
# launch with pid, mount, ipc and uts namespaces running /bin/true.
bench_runc_spec() {
  (cd "$1" && runc spec)
  python3 - "$1/config.json" <<'PY'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["process"]["args"] = ["/bin/true"]
spec["process"]["terminal"] = False
spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] in ("pid", "mount", "ipc", "uts")]
json.dump(spec, open(path, "w"), indent=2)
PY
}

# bench_rounds RUNS: hyperfine over the arrays `names` and `commands`, the
# runs spread over ROUNDS (default 5) invocations, each with the commands
# in a rotated order, so a burst of background noise on this small VM lands
# on every command alike. Results in $work/launch-R.json; the function
# `between_rounds`, when defined, runs after each round. PAUSE_MS, when
# set, leaves the machine that many milliseconds of quiet before every
# timed run (hyperfine --prepare, not timed): a launch as a cluster agent
# makes it, after a pause, rather than back to back.
bench_rounds() {
  ROUNDS="${ROUNDS:-5}"
  local per_round=$(( ($1 + ROUNDS - 1) / ROUNDS )) round i j args
  local pause=()
  if [ -n "${PAUSE_MS:-}" ]; then
    pause=(--prepare "sleep $(python3 -c "print(${PAUSE_MS} / 1000)")")
  fi
  load_before=$(bench_load)
  for ((round = 0; round < ROUNDS; round++)); do
    args=("${pause[@]}")
    for ((i = 0; i < ${#names[@]}; i++)); do
      j=$(( (i + round) % ${#names[@]} ))
      args+=(--command-name "${names[j]}" "${commands[j]}")
    done
    hyperfine -N --warmup 3 --runs "$per_round" --export-json "$work/launch-$round.json" "${args[@]}" >&2
    if declare -F between_rounds >/dev/null; then between_rounds; fi
  done
  load_after=$(bench_load)
}

# bench_state_line: what the rounds ran on, for the results.
bench_state_line() {
  echo "state: ${STATE_FS:-tmpfs}${PAUSE_MS:+; ${PAUSE_MS} ms of quiet before each launch}; load average (1 min) before $load_before, after $load_after on $(nproc) CPUs"
}
