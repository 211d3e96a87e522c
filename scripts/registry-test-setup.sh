#!/usr/bin/env bash
# Starts two real image registries (Debian's docker-registry, the
# Distribution project) on 127.0.0.1 for the image tests, with storage in
# DIR: one plain, one with htpasswd basic auth (user phobos, password
# phobos-test). Each listens on a port the kernel chooses. Pushes the local
# engine's busybox:local into both when skopeo and the engine are there.
#
#   scripts/registry-test-setup.sh DIR     # writes DIR/env, prints it
#   scripts/registry-test-teardown.sh DIR  # stops both, removes DIR
#
# DIR/env holds PHOBOS_TEST_REGISTRY=127.0.0.1:PORT,
# PHOBOS_TEST_REGISTRY_AUTH=127.0.0.1:PORT and the credentials; the tests
# read it from $PHOBOS_TEST_REGISTRY_DIR, or run this script themselves.
set -euo pipefail
dir=${1:?usage: $0 DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

if ! command -v docker-registry >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-registry apache2-utils skopeo >/dev/null
  else
    echo "docker-registry is not installed (apt-get install docker-registry)" >&2
    exit 1
  fi
fi
if ! command -v htpasswd >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q apache2-utils >/dev/null
fi

user=phobos
password=phobos-test
htpasswd -Bbn "$user" "$password" >"$dir/htpasswd"

# On any failure, stop what was started here (the caller gets no env).
trap 'status=$?; [ "$status" -eq 0 ] || "$(dirname "$0")/registry-test-teardown.sh" "$dir"' EXIT

# start NAME [AUTH-YAML]: one registry, its port into $port.
start() {
  local name=$1 auth=${2:-}
  mkdir -p "$dir/$name"
  cat >"$dir/$name/config.yml" <<YAML
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $dir/$name/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
$auth
YAML
  docker-registry serve "$dir/$name/config.yml" >"$dir/$name/log" 2>&1 &
  echo $! >"$dir/$name/pid"
  port=
  for _ in $(seq 1 100); do
    port=$(sed -n 's/.*msg="listening on 127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$dir/$name/log" | head -n1 || true)
    [ -n "$port" ] && break
    kill -0 "$(cat "$dir/$name/pid")" 2>/dev/null || { cat "$dir/$name/log" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$port" ] || { echo "registry $name did not start" >&2; cat "$dir/$name/log" >&2; exit 1; }
}

start plain
plain=127.0.0.1:$port
start basic "auth:
  htpasswd:
    realm: phobos-test
    path: $dir/htpasswd"
basic=127.0.0.1:$port

if command -v skopeo >/dev/null && docker image inspect busybox:local >/dev/null 2>&1; then
  skopeo copy -q docker-daemon:busybox:local "docker://$plain/phobos/busybox:local" --dest-tls-verify=false
  skopeo copy -q docker-daemon:busybox:local "docker://$basic/phobos/busybox:local" \
    --dest-tls-verify=false --dest-creds "$user:$password"
fi

cat >"$dir/env" <<ENV
PHOBOS_TEST_REGISTRY=$plain
PHOBOS_TEST_REGISTRY_AUTH=$basic
PHOBOS_TEST_REGISTRY_USER=$user
PHOBOS_TEST_REGISTRY_PASSWORD=$password
ENV
cat "$dir/env"
