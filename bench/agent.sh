#!/usr/bin/env bash
# Agent benchmark (issue 12): LAUNCH_CONTAINER + WAIT_CONTAINER of
# /bin/true through `phobos agent`, N pairs over one keep-alive connection
# (one curl process, `--next` between requests), against `phobos run --
# /bin/true` in a shell loop, N times, in the same run (alternating rounds);
# and the agent's RSS idle and with 1000 WAIT_CONTAINER requests held open
# at once (10 sleeping containers, 100 waits each, from one python3
# process), all of which must be answered once the containers are killed.
# Prints a Markdown table (for docs/benchmarks.md).
#
#   sudo bench/agent.sh [N]        # default 200 launches per round, ROUNDS=3
#
# Then SPACED (default 20) launches each way after PAUSE_MS (default 300)
# of quiet, as an agent gets them: the LAUNCH_CONTAINER answer's latency,
# the LAUNCH + WAIT pair, and `phobos run -- /bin/true`, medians. On a v1
# or hybrid host a quiet moment makes the kernel's first cgroup move of a
# launch wait an RCU grace period (docs/operations.md); back-to-back
# rounds never show it. SPACED=0 skips this part.
#
# Needs root, curl and python3. State on a private tmpfs, as launch.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-200}"
ROUNDS="${ROUNDS:-3}"
WAITS=1000
[ "$(id -u)" -eq 0 ] || { echo "bench/agent.sh: must run as root" >&2; exit 1; }
command -v curl >/dev/null || { apt-get install -y -qq curl >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq curl; }; }
# PHOBOS=/path/to/phobos measures that binary instead of a fresh release build.
if [ -z "${PHOBOS:-}" ]; then
  cargo build --release -q -p phobos-cli
  PHOBOS="$PWD/target/$(rustc --print host-tuple)/release/phobos"
fi

work=$(mktemp -d /tmp/phobos-agent-bench.XXXXXX)
agent_pid=
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  for d in "$work"/run*; do
    [ -d "$d" ] || continue
    for id in $("$PHOBOS" --runtime-dir "$d" --work-dir "$work/work" ps --json 2>/dev/null | python3 -c 'import json,sys; [print(c["id"]) for c in json.load(sys.stdin) if c["state"]!="TERMINATED"]' 2>/dev/null); do
      "$PHOBOS" --runtime-dir "$d" --work-dir "$work/work" destroy "$id" >/dev/null 2>&1 || true
    done
  done
  umount "$work" 2>/dev/null || true
  rm -rf "$work"
  for cg in /sys/fs/cgroup/*/phobos-agent-bench-$$* /sys/fs/cgroup/phobos-agent-bench-$$*; do
    rmdir "$cg" 2>/dev/null || true
  done
}
trap cleanup EXIT
mount -t tmpfs phobos-agent-bench "$work"
export PHOBOS_WORK_DIR="$work/work"
SOCK="$work/run-agent/agent.sock"

# A cgroups root per runtime directory (docs/operations.md).
"$PHOBOS" --runtime-dir "$work/run-agent" --cgroups-root "phobos-agent-bench-$$" agent 2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 1 600); do
  curl -sf --unix-socket "$SOCK" http://agent/health >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf --unix-socket "$SOCK" http://agent/health >/dev/null
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$agent_pid/status"; }

# One curl config: N (LAUNCH, WAIT) pairs, every request on the connection
# the first one opened.
config() { # round
  local r=$1 i
  for i in $(seq 1 "$N"); do
    cat <<CFG
url = "http://agent/api/v1"
unix-socket = "$SOCK"
header = "Content-Type: application/json"
data = "{\"type\":\"LAUNCH_CONTAINER\",\"launch_container\":{\"container_id\":{\"value\":\"b$r-$i\"},\"command\":{\"shell\":false,\"value\":\"/bin/true\",\"arguments\":[\"true\"]}}}"
output = "/dev/null"
write-out = "%{http_code} %{num_connects}\\n"
next
url = "http://agent/api/v1"
unix-socket = "$SOCK"
header = "Content-Type: application/json"
data = "{\"type\":\"WAIT_CONTAINER\",\"wait_container\":{\"container_id\":{\"value\":\"b$r-$i\"}}}"
output = "/dev/null"
write-out = "%{http_code} %{num_connects}\\n"
next
CFG
  done
}

now() { date +%s.%N; }
agent_rates=(); run_rates=()
for r in $(seq 1 "$ROUNDS"); do
  config "$r" | sed '$d' >"$work/curl-$r.cfg"
  t0=$(now)
  curl -s -K "$work/curl-$r.cfg" >"$work/curl-$r.out"
  t1=$(now)
  # Every answer 200, and one connection for the whole round.
  bad=$(grep -vc '^200 ' "$work/curl-$r.out" || true)
  conns=$(awk '{s+=$2} END {print s}' "$work/curl-$r.out")
  [ "$bad" -eq 0 ] || { echo "round $r: $bad requests not answered 200" >&2; head "$work/curl-$r.out" >&2; exit 1; }
  [ "$conns" -eq 1 ] || { echo "round $r: $conns connections, expected 1 (no keep-alive?)" >&2; exit 1; }
  agent_rates+=("$(echo "$N / ($t1 - $t0)" | bc -l)")

  t0=$(now)
  for i in $(seq 1 "$N"); do
    "$PHOBOS" --runtime-dir "$work/run-cli-$r" --cgroups-root "phobos-agent-bench-$$-cli-$r" run -- /bin/true
  done
  t1=$(now)
  run_rates+=("$(echo "$N / ($t1 - $t0)" | bc -l)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
agent_rate=$(median "${agent_rates[@]}")
run_rate=$(median "${run_rates[@]}")

# Launches after a quiet moment, alternating agent and run.
SPACED="${SPACED:-20}"
PAUSE_MS="${PAUSE_MS:-300}"
pause=$(echo "$PAUSE_MS / 1000" | bc -l)
spaced_launch=(); spaced_pair=(); spaced_run=()
for i in $(seq 1 "$SPACED"); do
  sleep "$pause"
  t0=$(now)
  answer=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --unix-socket "$SOCK" -H 'Content-Type: application/json' \
    -d "{\"type\":\"LAUNCH_CONTAINER\",\"launch_container\":{\"container_id\":{\"value\":\"q$i\"},\"command\":{\"shell\":false,\"value\":\"/bin/true\",\"arguments\":[\"true\"]}}}" \
    http://agent/api/v1)
  curl -sf -o /dev/null --unix-socket "$SOCK" -H 'Content-Type: application/json' \
    -d "{\"type\":\"WAIT_CONTAINER\",\"wait_container\":{\"container_id\":{\"value\":\"q$i\"}}}" http://agent/api/v1
  t1=$(now)
  [ "${answer%% *}" = 200 ] || { echo "spaced launch q$i answered ${answer%% *}" >&2; exit 1; }
  spaced_launch+=("$(echo "${answer#* } * 1000" | bc -l)")
  spaced_pair+=("$(echo "($t1 - $t0) * 1000" | bc -l)")
  sleep "$pause"
  t0=$(now)
  "$PHOBOS" --runtime-dir "$work/run-cli-q" --cgroups-root "phobos-agent-bench-$$-cli-q" run -- /bin/true
  t1=$(now)
  spaced_run+=("$(echo "($t1 - $t0) * 1000" | bc -l)")
done

# RSS: idle (after the launches, their containers ended), then with WAITS
# open waits.
sleep 1
rss_idle=$(rss)
for i in $(seq 0 9); do
  curl -sf --unix-socket "$SOCK" -H 'Content-Type: application/json' \
    -d "{\"type\":\"LAUNCH_CONTAINER\",\"launch_container\":{\"container_id\":{\"value\":\"w$i\"},\"command\":{\"value\":\"exec sleep 600\"}}}" \
    http://agent/api/v1 >/dev/null
done
python3 - "$SOCK" "$WAITS" "$agent_pid" "$work/rss-waits" <<'PY' &
import json, socket, sys, time
sock_path, n, agent_pid, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
conns = []
for k in range(n):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    body = json.dumps({"type": "WAIT_CONTAINER", "wait_container": {"container_id": {"value": f"w{k % 10}"}}}).encode()
    s.sendall(b"POST /api/v1 HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    conns.append(s)
with open(out + ".ready", "w") as f:
    f.write("ready")
ok = 0
for s in conns:
    s.settimeout(300)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    if data.startswith(b"HTTP/1.1 200"):
        ok += 1
    s.close()
with open(out, "w") as f:
    f.write(str(ok))
PY
waiters=$!
# grep reads the whole scrape (no -q): quitting at the match would leave
# curl a broken pipe, which pipefail counts as a failure.
for _ in $(seq 1 1200); do
  [ -e "$work/rss-waits.ready" ] && curl -s --unix-socket "$SOCK" http://agent/metrics | grep -x "phobos_agent_open_waits $WAITS" >/dev/null && break
  sleep 0.1
done
curl -s --unix-socket "$SOCK" http://agent/metrics | grep -x "phobos_agent_open_waits $WAITS" >/dev/null || { echo "the waits were not all held" >&2; exit 1; }
rss_waits=$(rss)
for i in $(seq 0 9); do
  curl -sf --unix-socket "$SOCK" -H 'Content-Type: application/json' \
    -d "{\"type\":\"KILL_CONTAINER\",\"kill_container\":{\"container_id\":{\"value\":\"w$i\"}}}" http://agent/api/v1 >/dev/null
done
wait "$waiters"
answered=$(cat "$work/rss-waits")

cat <<EOF2
| measure | value |
| --- | --- |
| agent: LAUNCH_CONTAINER + WAIT_CONTAINER of /bin/true, one keep-alive connection | $(printf '%.1f' "$agent_rate") launches/s |
| \`phobos run -- /bin/true\` in a shell loop | $(printf '%.1f' "$run_rate") launches/s |
| agent / run | $(echo "$agent_rate / $run_rate" | bc -l | xargs printf '%.2f')× |
$(if [ "$SPACED" -gt 0 ]; then
  printf '| after %s ms of quiet (%s each, medians): LAUNCH_CONTAINER answered | %.1f ms |\n' "$PAUSE_MS" "$SPACED" "$(median "${spaced_launch[@]}")"
  printf '| after %s ms of quiet: LAUNCH + WAIT of /bin/true (two curl processes) | %.1f ms |\n' "$PAUSE_MS" "$(median "${spaced_pair[@]}")"
  printf '| after %s ms of quiet: `phobos run -- /bin/true` | %.1f ms |\n' "$PAUSE_MS" "$(median "${spaced_run[@]}")"
fi)
| agent RSS, idle | $((rss_idle / 1024)).$(( (rss_idle % 1024) * 10 / 1024 )) MB |
| agent RSS, $WAITS open WAIT_CONTAINER | $((rss_waits / 1024)).$(( (rss_waits % 1024) * 10 / 1024 )) MB ($answered of $WAITS answered after the kills) |

rounds of $N launches each ($ROUNDS rounds, medians): agent ${agent_rates[*]}; run ${run_rates[*]}
EOF2
