#!/usr/bin/env bash
# Copies built addons into their npm platform packages (what `napi artifacts` does, without its
# requirement that every configured target is present):
#
#   scripts/copy-artifacts.sh [--from DIR] [PLATFORM…]
#
# PLATFORM is a directory name under npm/ (linux-x64-gnu, linux-arm64-gnu); default: all of them
# (npm/thin/ holds the thin command packages, which have no addon).
# Each needs DIR/peipkg-native.<PLATFORM>.node (DIR defaults to native/, where `npm run build:native`
# and scripts/build-arm64.sh write). The .node files under npm/ are build outputs and gitignored.
set -euo pipefail
cd "$(dirname "$0")/.."

from=native
if [ "${1:-}" = "--from" ]; then
  from=${2:?--from needs a directory}
  shift 2
fi
if [ "$#" -eq 0 ]; then
  for dir in npm/*/; do
    dir=${dir%/}
    [ "$dir" = npm/thin ] && continue
    set -- "$@" "${dir#npm/}"
  done
fi

for platform in "$@"; do
  [ -f "npm/$platform/package.json" ] || { echo "copy-artifacts: no platform package npm/$platform" >&2; exit 1; }
  file="peipkg-native.$platform.node"
  [ -f "$from/$file" ] || { echo "copy-artifacts: $from/$file is missing (build it first)" >&2; exit 1; }
  cp "$from/$file" "npm/$platform/$file.tmp"
  mv "npm/$platform/$file.tmp" "npm/$platform/$file"
  echo "copy-artifacts: $from/$file -> npm/$platform/" >&2
done
