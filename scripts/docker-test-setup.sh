#!/usr/bin/env bash
# Prepare a Docker engine and the test images for phobos-docker's real-engine tests.
#
# Idempotent; run as root before `cargo test`. Steps:
#   1. install Debian's docker.io and busybox-static when missing;
#   2. start dockerd in the background when nothing answers on the socket, and
#      record its pid so that docker-test-teardown.sh stops only that dockerd;
#   3. build the tiny images busybox:local and busybox:local-entrypoint with
#      `docker import` of a busybox-static rootfs (no registry is reachable).
#
# Environment:
#   PHOBOS_DOCKER_SOCKET     engine socket (default /var/run/docker.sock)
#   PHOBOS_DOCKER_STATE_DIR  where the pid and log of a dockerd we start go
#                            (default /run/phobos-docker-test)
#   PHOBOS_DOCKER_WAIT_SECS  how long to wait for a started engine (default 30)
#
# The Debian client /usr/bin/docker (20.10, API 1.41) matches Debian's engine.
# A newer client earlier in PATH (here /usr/local/bin/docker 28.2, API 1.50)
# was verified to negotiate down to 1.41 and work too; still, we call the
# Debian one and export DOCKER_API_VERSION=<engine's version>, so the script
# does not depend on the client's negotiation.
set -euo pipefail

SOCKET="${PHOBOS_DOCKER_SOCKET:-/var/run/docker.sock}"
STATE_DIR="${PHOBOS_DOCKER_STATE_DIR:-/run/phobos-docker-test}"
WAIT_SECS="${PHOBOS_DOCKER_WAIT_SECS:-30}"
PID_FILE="$STATE_DIR/dockerd.pid"
LOG_FILE="$STATE_DIR/dockerd.log"
IMAGE="busybox:local"
IMAGE_ENTRYPOINT="busybox:local-entrypoint"

step() { printf 'docker-test-setup: %s\n' "$*"; }
die() { printf 'docker-test-setup: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (installs packages and starts dockerd)"

# 1. Packages.
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || missing+=(busybox-static)
if [ "${#missing[@]}" -gt 0 ]; then
    step "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        step "apt-get install failed; running apt-get update first"
        apt-get update >/dev/null
        apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
            || die "apt-get install ${missing[*]} failed"
    fi
else
    step "docker.io and busybox-static already installed"
fi

BUSYBOX="$(command -v busybox || true)"
[ -n "$BUSYBOX" ] || die "busybox not found after install"
# busybox-static is a static binary; a dynamically linked busybox would not run in the image.
if command -v file >/dev/null 2>&1 && ! file -L "$BUSYBOX" | grep -q 'statically linked'; then
    die "$BUSYBOX is not statically linked; install busybox-static"
fi

# The client: prefer Debian's, which matches Debian's engine.
if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER="$(command -v docker || true)"; fi
[ -n "$DOCKER" ] || die "no docker client found"
export DOCKER_HOST="unix://$SOCKET"

engine_answers() {
    curl -fsS --max-time 2 --unix-socket "$SOCKET" http://localhost/_ping >/dev/null 2>&1
}

# 2. Engine.
if engine_answers; then
    step "engine already answers on $SOCKET"
else
    mkdir -p "$STATE_DIR"
    if [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
        step "dockerd we started earlier (pid $(cat "$PID_FILE")) is alive but not answering yet"
    else
        step "starting dockerd (log: $LOG_FILE)"
        # setsid: the engine outlives this script and is not in its process group.
        setsid dockerd --host "unix://$SOCKET" >>"$LOG_FILE" 2>&1 < /dev/null &
        echo $! >"$PID_FILE"
    fi
    pid="$(cat "$PID_FILE")"
    waited=0
    until engine_answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            tail -n 20 "$LOG_FILE" >&2 || true
            die "dockerd (pid $pid) exited before answering on $SOCKET; see $LOG_FILE"
        fi
        if [ "$waited" -ge "$WAIT_SECS" ]; then
            tail -n 20 "$LOG_FILE" >&2 || true
            die "dockerd (pid $pid) did not answer on $SOCKET within ${WAIT_SECS}s; see $LOG_FILE"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    step "dockerd (pid $pid) answers on $SOCKET after ${waited}s"
fi

api="$(curl -fsS --unix-socket "$SOCKET" http://localhost/version | sed -n 's/.*"ApiVersion":"\([0-9.]*\)".*/\1/p')"
driver="$(curl -fsS --unix-socket "$SOCKET" http://localhost/info | sed -n 's/.*"CgroupDriver":"\([a-z]*\)".*/\1/p')"
[ -n "$api" ] && export DOCKER_API_VERSION="$api"
step "engine API version ${api:-unknown}, cgroup driver ${driver:-unknown}, client $DOCKER"

# 3. Images.
build_rootfs() {
    local root="$1"
    mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/srv/phobos" "$root/root" "$root/proc" "$root/sys" "$root/dev"
    chmod 1777 "$root/tmp"
    cp "$BUSYBOX" "$root/bin/busybox"
    local applet
    for applet in $("$BUSYBOX" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
}

need_build=()
for img in "$IMAGE" "$IMAGE_ENTRYPOINT"; do
    if "$DOCKER" image inspect "$img" >/dev/null 2>&1; then
        step "image $img present"
    else
        need_build+=("$img")
    fi
done
if [ "${#need_build[@]}" -gt 0 ]; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    build_rootfs "$work/rootfs"
    tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
    for img in "${need_build[@]}"; do
        step "building $img with docker import"
        case "$img" in
            "$IMAGE")
                # CMD prints a marker and the working directory, so tests can see
                # that the image's CMD and WORKDIR were kept.
                "$DOCKER" import \
                    --change 'WORKDIR /srv/phobos' \
                    --change 'ENV PATH=/bin' \
                    --change 'CMD ["sh", "-c", "echo phobos-default-cmd; pwd"]' \
                    "$work/rootfs.tar" "$img" >/dev/null || die "docker import $img failed"
                ;;
            "$IMAGE_ENTRYPOINT")
                # ENTRYPOINT + CMD, for the "arguments replace CMD, ENTRYPOINT kept" rule.
                "$DOCKER" import \
                    --change 'WORKDIR /srv/phobos' \
                    --change 'ENV PATH=/bin' \
                    --change 'ENTRYPOINT ["echo", "phobos-entrypoint"]' \
                    --change 'CMD ["default-arg"]' \
                    "$work/rootfs.tar" "$img" >/dev/null || die "docker import $img failed"
                ;;
        esac
    done
fi
step "ready"
