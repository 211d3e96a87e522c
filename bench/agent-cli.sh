#!/usr/bin/env bash
# `phobos --agent SOCKET run -- /bin/true` (the CLI through a running
# agent's v1 API: LAUNCH_CONTAINER, ATTACH_CONTAINER_OUTPUT, WAIT_CONTAINER)
# against `phobos run -- /bin/true` (the CLI on the runtime directory), N
# launches each per round, rounds alternating, in the same run. CPU is the
# launching processes' (the CLI and everything it reaped: init, the
# command) plus, for the routed side, the agent's own CPU over the round
# (utime + stime + its reaped children's, from /proc/PID/stat); wall is the
# loop's. Prints a Markdown table (for docs/benchmarks.md).
#
#   sudo bench/agent-cli.sh [N]     # default 100 launches per round, ROUNDS=3
#   PHOBOS=target/x86_64-unknown-linux-gnu/debug/phobos bench/agent-cli.sh 20
#
# Needs root and python3. State on a private tmpfs, as launch.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100}"
ROUNDS="${ROUNDS:-3}"
[ "$(id -u)" -eq 0 ] || { echo "bench/agent-cli.sh: must run as root" >&2; exit 1; }
if [ -z "${PHOBOS:-}" ]; then
  cargo build --release -q -p phobos-cli
  PHOBOS="$PWD/target/$(rustc --print host-tuple)/release/phobos"
fi
PHOBOS="$(realpath "$PHOBOS")"

work=$(mktemp -d /tmp/phobos-agent-cli-bench.XXXXXX)
agent_pid=
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  umount "$work" 2>/dev/null || true
  rm -rf "$work"
  for cg in /sys/fs/cgroup/*/phobos-agent-cli-bench-$$ /sys/fs/cgroup/phobos-agent-cli-bench-$$; do
    rmdir "$cg" 2>/dev/null || true
  done
}
trap cleanup EXIT
mount -t tmpfs phobos-agent-cli-bench "$work"
# One runtime directory, work directory and cgroups root for both sides:
# the agent serves the same directory the local CLI uses.
export PHOBOS_RUNTIME_DIR="$work/run" PHOBOS_WORK_DIR="$work/work" PHOBOS_CGROUPS_ROOT="phobos-agent-cli-bench-$$"
SOCK="$work/run/agent.sock"
"$PHOBOS" agent 2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 1 600); do
  [ -S "$SOCK" ] && "$PHOBOS" --agent "$SOCK" ps >/dev/null 2>&1 && break
  sleep 0.1
done
"$PHOBOS" --agent "$SOCK" ps >/dev/null

python3 - "$PHOBOS" "$SOCK" "$N" "$ROUNDS" "$agent_pid" <<'PY'
import os, subprocess, sys, time
phobos, sock, n, rounds, agent = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
tick = os.sysconf("SC_CLK_TCK")

def agent_cpu():
    with open(f"/proc/{agent}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime, stime, cutime, cstime: fields 14-17 (1-based) of stat.
    return sum(int(x) for x in fields[11:15]) / tick

sides = {
    "phobos run -- /bin/true": [phobos, "run", "--", "/bin/true"],
    "phobos --agent S run -- /bin/true": [phobos, "--agent", sock, "run", "--", "/bin/true"],
}
totals = {k: [0.0, 0.0, 0.0] for k in sides}  # wall, client cpu, agent cpu
for r in range(rounds):
    for name, argv in sides.items():
        t0, c0, a0 = time.monotonic(), os.times(), agent_cpu()
        for i in range(n):
            subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        t1, c1, a1 = time.monotonic(), os.times(), agent_cpu()
        totals[name][0] += t1 - t0
        totals[name][1] += (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
        totals[name][2] += a1 - a0
    # Forget this round's terminated containers (both sides).
    subprocess.run([phobos, "state", "--rm"], check=True, stdout=subprocess.DEVNULL)
total = n * rounds
print(f"| command ({total} launches, {rounds} alternating rounds) | wall ms/launch | CLI CPU ms/launch | agent CPU ms/launch | CPU ms/launch |")
print("| --- | ---: | ---: | ---: | ---: |")
for name, (wall, cpu, acpu) in totals.items():
    print(f"| `{name}` | {1000*wall/total:.1f} | {1000*cpu/total:.1f} | {1000*acpu/total:.1f} | {1000*(cpu+acpu)/total:.1f} |")
PY
