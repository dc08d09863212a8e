#!/usr/bin/env bash
# Makes sure the test suite can start its own redis-server (DESIGN.md section 8).
# Run before the tests (npm `pretest`); does nothing when redis-server is already
# on PATH or when TEST_REDIS_URL points the tests at an existing server.
set -euo pipefail

if [[ -n "${TEST_REDIS_URL:-}" ]]; then
  exit 0
fi
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi

fail() {
  echo "ensure-redis: $1" >&2
  echo "ensure-redis: install redis-server yourself (e.g. 'apt-get install redis-server')," >&2
  echo "ensure-redis: or set TEST_REDIS_URL=redis://host:port to use a running server." >&2
  exit 1
}

if ! command -v apt-get >/dev/null 2>&1; then
  fail "redis-server is not installed and apt-get is not available to install it."
fi

# apt-get needs root; use sudo only when it can run without a password prompt,
# since this runs unattended from npm test.
SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    fail "redis-server is not installed and installing it needs root (no passwordless sudo)."
  fi
fi

echo "ensure-redis: redis-server not found; installing it with apt-get..." >&2
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! ${SUDO[@]+"${SUDO[@]}"} apt-get update -qq >"$log" 2>&1; then
  cat "$log" >&2
  fail "apt-get update failed."
fi
# --no-install-recommends keeps it to the server binary and its few libraries;
# the package's service is not started here (tests run their own instances).
if ! ${SUDO[@]+"${SUDO[@]}"} apt-get install -y -qq --no-install-recommends redis-server >"$log" 2>&1; then
  cat "$log" >&2
  fail "apt-get install redis-server failed."
fi
if ! command -v redis-server >/dev/null 2>&1; then
  fail "redis-server was installed but is not on PATH."
fi
echo "ensure-redis: $(redis-server --version)" >&2
