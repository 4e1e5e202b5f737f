#!/usr/bin/env bash
# Sets the version of the thin command packages (npm/thin/<name>/) and their exact dependency on
# peipkg to the root package's version: `npx napi version` does that for the platform packages only.
#
#   scripts/thin-version.sh      (after `npm version <x.y.z> --no-git-tag-version`)
set -euo pipefail
cd "$(dirname "$0")/.."

for manifest in npm/thin/*/package.json; do
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e '
const fs = require("node:fs");
const [file, version] = process.argv.slice(1);
const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
pkg.version = version;
pkg.dependencies = { ...pkg.dependencies, peipkg: version };
fs.writeFileSync(file, `${JSON.stringify(pkg, null, 2)}\n`);
' "$manifest" "$(node -p 'require("./package.json").version')"
  echo "thin-version: $manifest" >&2
done
