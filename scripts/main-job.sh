#!/usr/bin/env bash
# The main job on the embedded example: build examples/recipes/hello-peios from
# examples/upstream/hello-peios into signed packages with a generated key, verify them, and print
# their paths. Outputs go to .demo/ in the checkout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
demo="$root/.demo"
mkdir -p "$demo"
key="$demo/farm.ed25519"
if [ ! -f "$key" ]; then
  (umask 077 && openssl genpkey -algorithm ed25519 -out "$key")
  openssl pkey -in "$key" -pubout -out "$demo/farm.pub"
fi
chmod 600 "$key"

out="$demo/packages"
"$root/bin/peipkg-build.js" build \
  --recipe "$root/examples/recipes/hello-peios/peipkg.toml" \
  --source "$root/examples/upstream/hello-peios" \
  --version 1.0.0-1 \
  --source-ref "git+https://example.invalid/hello-peios.git#refs/tags/v1.0.0" \
  --farm-id demo-farm \
  --timestamp 2026-01-01T00:00:00Z \
  --out "$out" \
  --sign-key "$key" > "$demo/built.txt"

"$root/bin/peipkg-build.js" verify --public-key "$demo/farm.pub" $(cat "$demo/built.txt") | grep -E '^/' >&2
echo "Built and verified:" >&2
cat "$demo/built.txt"
