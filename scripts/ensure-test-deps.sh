#!/usr/bin/env bash
# Installs what the test suite starts by itself (DESIGN.md section 8), when
# missing: redis-server (unless TEST_REDIS_URL points at a running Redis),
# nginx (the load balancer of the cluster tests) and chromium (the web
# client's browser tests). Runs before the tests (npm `pretest`); does
# nothing, fast, when everything is there.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" ]]; }

missing=()
if [[ -z "${TEST_REDIS_URL:-}" ]] && ! have redis-server; then missing+=(redis-server); fi
if ! have nginx; then missing+=(nginx); fi
if ! have chromium; then missing+=(chromium); fi
[[ ${#missing[@]} -eq 0 ]] && exit 0

fail() {
  echo "ensure-test-deps: $1" >&2
  echo "ensure-test-deps: install ${missing[*]} yourself (apt-get install ${missing[*]})," >&2
  echo "ensure-test-deps: or set TEST_REDIS_URL=redis://host:port to use a running Redis." >&2
  exit 1
}

command -v apt-get >/dev/null 2>&1 || fail "${missing[*]} missing and apt-get is not available to install them."

# apt-get needs root; use sudo only when it can run without a password prompt,
# since this runs unattended from npm test.
SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    fail "installing ${missing[*]} needs root (no passwordless sudo)."
  fi
fi
run() { ${SUDO[@]+"${SUDO[@]}"} "$@"; }

echo "ensure-test-deps: installing ${missing[*]} with apt-get..." >&2
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
# Packages must not start their services (nginx would take port 80): tests run their own instances.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [[ ! -e $policy ]]; then
  run sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy" && added_policy=1
fi
cleanup() {
  rm -f "$log"
  if [[ $added_policy -eq 1 ]]; then run rm -f "$policy"; fi
}
trap cleanup EXIT
if ! run apt-get update -qq >"$log" 2>&1; then
  cat "$log" >&2
  fail "apt-get update failed."
fi
# --no-install-recommends keeps it to the binaries and their libraries.
if ! run apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
  cat "$log" >&2
  fail "apt-get install ${missing[*]} failed."
fi
for bin in "${missing[@]}"; do have "$bin" || fail "$bin was installed but cannot be found."; done
echo "ensure-test-deps: installed ${missing[*]}" >&2
