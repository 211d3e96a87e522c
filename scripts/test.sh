#!/usr/bin/env bash
# Runs every Phobos test with its set-up: the README's test command.
#
#   sudo scripts/test.sh            # all tests (privileged ones need root)
#
# Set-up, as root: installs the Debian packages the tests use when missing
# (docker.io, busybox-static, containernetworking-plugins, iptables), starts dockerd when none answers (and stops
# only that one afterwards), and builds the tiny docker test images from a
# busybox-static rootfs (no registry is reachable). Then it checks formatting
# and lints, runs the privileged cgroup tests again on a pure cgroup v2 kernel
# under qemu (scripts/v2-lane.sh), and runs the whole workspace's tests with
# cargo-nextest (or cargo test when nextest is missing). Exits non-zero on any
# failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '== %s\n' "$*"; }

if [ "$(id -u)" -eq 0 ]; then
  step "CNI plugins and iptables"
  cni_missing=()
  [ -x /usr/lib/cni/bridge ] || cni_missing+=(containernetworking-plugins)
  command -v iptables >/dev/null 2>&1 || cni_missing+=(iptables)
  if [ "${#cni_missing[@]}" -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${cni_missing[@]}"
  fi
  step "docker engine and test images"
  scripts/docker-test-setup.sh
  trap 'scripts/docker-test-teardown.sh || true' EXIT
  step "image registries on 127.0.0.1 (plain and basic auth)"
  registry_dir=$(mktemp -d /tmp/phobos-registry.XXXXXX)
  scripts/registry-test-setup.sh "$registry_dir" >/dev/null
  export PHOBOS_TEST_REGISTRY_DIR=$registry_dir
  trap 'scripts/registry-test-teardown.sh "$registry_dir" || true; scripts/docker-test-teardown.sh || true' EXIT
else
  step "not root: privileged tests will print 'skipping' and docker tests will not run"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

# Before the main run, so that its summary stays the last line.
step "pure cgroup v2 lane (Debian kernel under qemu, scripts/v2-lane.sh)"
scripts/v2-lane.sh

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  profile=default
  [ "${CI:-}" = "true" ] && profile=ci
  # nextest does not run doctests: they run first, so that the last
  # summary CI prints is nextest's, which counts every other test.
  doctests=0
  cargo test --workspace --locked --doc -q || doctests=$?
  cargo nextest run --workspace --locked --profile "$profile" --no-fail-fast
  if [ "$doctests" != 0 ]; then
    echo "doctests failed (see above)" >&2
    exit "$doctests"
  fi
else
  doctests=0
  cargo test --workspace --locked --doc -q || doctests=$?
  cargo test --workspace --locked --all-targets --no-fail-fast
  if [ "$doctests" != 0 ]; then
    echo "doctests failed (see above)" >&2
    exit "$doctests"
  fi
fi
