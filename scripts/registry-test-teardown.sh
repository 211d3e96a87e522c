#!/usr/bin/env bash
# Stops the registries scripts/registry-test-setup.sh started in DIR (only
# those, by their pid files) and removes DIR.
set -uo pipefail
dir=${1:?usage: $0 DIR}
for pidfile in "$dir"/*/pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
done
rm -rf "$dir"
