#!/usr/bin/env bash
# Makes the npm tarballs of a release: one per platform package (npm/<platform>/, with its prebuilt
# addon copied in), the root package `peipkg`, whose package.json gets the platform packages as
# optionalDependencies — as `napi pre-publish` would add them at publish time — and the thin
# packages `peipkg-build`, `peipkg-repo` and `peipkg-manager` (npm/thin/<name>/: one command each,
# running peipkg of the same version, so that `npx peipkg-build` works).
#
#   scripts/pack.sh [--out DIR] [PLATFORM…]      (after `npm run build`)
#
# PLATFORM: linux-x64-gnu, linux-arm64-gnu (default: every npm/<platform>/); each needs
# native/peipkg-native.<platform>.node. DIR defaults to .cache/pack/. Prints the tarballs' paths,
# one a line: root first, then the given platforms', then the thin packages' (the thin ones are
# always packed: they are the same on every platform). `npm publish <tarball>` publishes them
# (.github/workflows/release.yml does: platforms, then peipkg, then the thin ones, so that what a
# published package depends on is always there already).
#
# Why the checkout's package.json does not list the optional dependencies itself: until the
# platform packages are on the registry, `npm ci` refuses a package.json whose dependencies the lock
# file cannot resolve ("Missing: peipkg-linux-x64-gnu@ from lock file").
set -euo pipefail
cd "$(dirname "$0")/.."

out=.cache/pack
if [ "${1:-}" = "--out" ]; then
  out=${2:?--out needs a directory}
  shift 2
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)

all_platforms=()
for dir in npm/*/; do
  dir=${dir%/}
  [ "$dir" = npm/thin ] && continue
  all_platforms+=("${dir#npm/}")
done
thin=()
for dir in npm/thin/*/; do
  dir=${dir%/}
  thin+=("${dir#npm/thin/}")
done
if [ "$#" -eq 0 ]; then
  set -- "${all_platforms[@]}"
fi

version=$(node -p 'require("./package.json").version')
for platform in "${all_platforms[@]}"; do
  v=$(node -p "require('./npm/$platform/package.json').version")
  [ "$v" = "$version" ] || {
    echo "pack: npm/$platform is version $v, the root package $version (run: npx napi version)" >&2
    exit 1
  }
done
for name in "${thin[@]}"; do
  # shellcheck disable=SC2016 # JavaScript, not shell
  read -r v dep < <(node -p 'const p = require(process.argv[1]); `${p.version} ${p.dependencies?.peipkg}`' "./npm/thin/$name/package.json")
  [ "$v" = "$version" ] && [ "$dep" = "$version" ] || {
    echo "pack: npm/thin/$name is version $v and depends on peipkg $dep; both must be the root package's $version (run: scripts/thin-version.sh)" >&2
    exit 1
  }
done

[ -f dist/build/cli.js ] || { echo "pack: dist/ is not built (npm run build:ts)" >&2; exit 1; }

scripts/copy-artifacts.sh "$@"

# `npm pack --json` prints [{filename, …}]; the file is written to --pack-destination.
packed() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0].filename))'; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The root package: packed as npm would, then re-packed with optionalDependencies added.
root=$(npm pack --json --pack-destination "$work" 2>/dev/null | packed)
mkdir "$work/unpacked"
tar -xzf "$work/$root" -C "$work/unpacked"
# shellcheck disable=SC2016 # JavaScript, not shell
PLATFORMS="${all_platforms[*]}" VERSION="$version" node -e '
const fs = require("node:fs");
const file = process.argv[1];
const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
pkg.optionalDependencies = Object.fromEntries(
  process.env.PLATFORMS.split(/\s+/).filter(Boolean).map((p) => [`peipkg-${p}`, process.env.VERSION]));
fs.writeFileSync(file, `${JSON.stringify(pkg, null, 2)}\n`);
' "$work/unpacked/package/package.json"
root=$(cd "$work/unpacked/package" && npm pack --json --pack-destination "$out" 2>/dev/null | packed)
echo "$out/$root"

for platform in "$@"; do
  tarball=$(npm pack --json --pack-destination "$out" "./npm/$platform" 2>/dev/null | packed)
  echo "$out/$tarball"
done

for name in "${thin[@]}"; do
  tarball=$(npm pack --json --pack-destination "$out" "./npm/thin/$name" 2>/dev/null | packed)
  echo "$out/$tarball"
done
