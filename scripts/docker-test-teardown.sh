#!/usr/bin/env bash
# Stop the dockerd that docker-test-setup.sh started, and only that one.
#
# An engine that was already running before setup (no pid file) is left alone.
# Test containers are removed by the tests themselves; this script additionally
# removes leftover containers labelled org.phobos.test=true from a crashed run
# before stopping an engine it owns.
set -euo pipefail

SOCKET="${PHOBOS_DOCKER_SOCKET:-/var/run/docker.sock}"
STATE_DIR="${PHOBOS_DOCKER_STATE_DIR:-/run/phobos-docker-test}"
PID_FILE="$STATE_DIR/dockerd.pid"

step() { printf 'docker-test-teardown: %s\n' "$*"; }

if [ ! -f "$PID_FILE" ]; then
    step "no dockerd was started by setup; leaving the engine alone"
    exit 0
fi
pid="$(cat "$PID_FILE")"
if ! kill -0 "$pid" 2>/dev/null; then
    step "dockerd pid $pid already gone"
    rm -f "$PID_FILE"
    exit 0
fi
# Make sure the pid still belongs to a dockerd before signalling it.
if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "dockerd" ]; then
    step "pid $pid is not dockerd any more; not signalling it"
    rm -f "$PID_FILE"
    exit 0
fi
if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER="$(command -v docker || true)"; fi
if [ -n "$DOCKER" ]; then
    leftovers="$(DOCKER_HOST="unix://$SOCKET" "$DOCKER" ps -aq --filter label=org.phobos.test=true 2>/dev/null || true)"
    if [ -n "$leftovers" ]; then
        step "removing leftover test containers: $(echo $leftovers)"
        # shellcheck disable=SC2086
        DOCKER_HOST="unix://$SOCKET" "$DOCKER" rm -f $leftovers >/dev/null 2>&1 || true
    fi
fi
step "stopping dockerd pid $pid"
kill -TERM "$pid"
for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
done
if kill -0 "$pid" 2>/dev/null; then
    step "dockerd pid $pid still alive after 30s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
fi
rm -f "$PID_FILE"
step "done (socket was $SOCKET)"
