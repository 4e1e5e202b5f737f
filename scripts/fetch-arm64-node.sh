#!/usr/bin/env bash
# Fetches Debian 12's arm64 Node.js (18.x) and the arm64 libraries it needs with `apt-get download`
# (no installation) and unpacks them into .cache/arm64-node/root/, a sysroot for
#   qemu-aarch64 -L .cache/arm64-node/root .cache/arm64-node/root/usr/bin/node …
# The arm64 smoke test (__test__/dist/arm64.test.ts) uses it. Needs `dpkg --add-architecture arm64`
# and an `apt-get update` after it (setup.sh does both). Safe to run again: it does nothing when the
# sysroot is complete.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=.cache/arm64-node
root=$dir/root
stamp=$dir/.complete

if [ -f "$stamp" ] && [ -x "$root/usr/bin/node" ]; then
  exit 0
fi

# Debian's node is split: nodejs + libnode108 and their shared libraries, plus arch-all packages of
# builtins that Debian links from outside the binary (without them node aborts with "Cannot load
# externalized builtin").
packages=(
  nodejs:arm64 libnode108:arm64 libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64 libuv1:arm64
  libbrotli1:arm64 libc-ares2:arm64 libicu72:arm64 libnghttp2-14:arm64 libssl3:arm64 zlib1g:arm64
  node-cjs-module-lexer node-undici node-acorn
)

mkdir -p "$dir/debs"
rm -rf "$root" "$stamp"
(cd "$dir/debs" && rm -f ./*.deb && apt-get download -qq -o APT::Sandbox::User=root "${packages[@]}")
mkdir -p "$root"
for deb in "$dir"/debs/*.deb; do
  dpkg -x "$deb" "$root"
done
touch "$stamp"
echo "fetch-arm64-node: ${#packages[@]} packages unpacked into $root" >&2
