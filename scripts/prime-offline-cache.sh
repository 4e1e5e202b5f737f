#!/usr/bin/env bash
# Fills an npm cache with everything a global install of the packed peipkg needs, so that
#   npm install -g --offline --cache .cache/npm-offline --prefix <dir> peipkg-0.1.0.tgz peipkg-linux-x64-gnu-0.1.0.tgz
# (and `npx --offline --cache …`) work with no registry. __test__/dist/install.test.ts relies on it.
#
#   scripts/prime-offline-cache.sh [CACHE_DIR]      (online; after `npm run build`; default .cache/npm-offline)
#
# How: the same global install, done once online into a throwaway prefix with that cache. The cache
# `npm ci` leaves behind is not enough: npm ci asks the registry for abbreviated metadata
# (application/vnd.npm.install-v1+json), while `npm install -g <tarball>` and npx ask for the full
# documents (application/json), and an offline run only accepts a cached response to the same request
# (ENOTCACHED otherwise). The cache is keyed to the runtime dependencies in package.json: when they
# change, running this again refreshes it (setup.sh does; it is a no-op when they have not changed).
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${1:-.cache/npm-offline}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

key=$(node -e 'const p=require("./package.json"); process.stdout.write(JSON.stringify([p.version, p.dependencies]))' | sha256sum | cut -d' ' -f1)
if [ "$(cat "$cache/.primed-for" 2>/dev/null)" = "$key" ]; then
  exit 0
fi

case "$(node -p 'process.arch')" in
  x64) platform=linux-x64-gnu ;;
  arm64) platform=linux-arm64-gnu ;;
  *) echo "prime-offline-cache: no platform package for $(node -p 'process.arch')" >&2; exit 1 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mapfile -t tarballs < <(scripts/pack.sh --out "$work/pack" "$platform")
npm install --global --prefix "$work/prefix" --cache "$cache" --no-audit --no-fund --loglevel=error "${tarballs[@]}"
echo "$key" > "$cache/.primed-for"
echo "prime-offline-cache: $(du -sh "$cache" | cut -f1) in ${cache#"$PWD"/}" >&2
