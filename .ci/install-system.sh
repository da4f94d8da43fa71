#!/usr/bin/env bash
# System packages the test suite needs: PostgreSQL server binaries (cluster-store
# test) and headless Chromium (report test), from Debian's packages. Idempotent.
# Without root (or apt), it says what is missing and goes on: those two tests then
# skip with a reason naming the missing binary; everything else runs.
set -uo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}" && exit 0
  echo "install-system: apt-get could not install ${need[*]}" >&2
  [ "${CI:-}" = "true" ] && exit 1
else
  echo "install-system: not root (or no apt-get): install ${need[*]} yourself to run the report/PostgreSQL tests" >&2
fi
exit 0
