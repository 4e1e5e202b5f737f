#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine to build, test and run peipkg from this checkout, then runs
# the main job on the embedded example (scripts/main-job.sh). Safe to run again.
#
#   ./setup.sh            as root (or a user with sudo)
#   SKIP_MAIN_JOB=1 ./setup.sh   set up only
#   PEIPKG_ARM64=0 ./setup.sh    without the arm64 cross build and its qemu test (saves about 2 minutes)
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else die "run as root or install sudo"; fi
command -v apt-get >/dev/null || die "this set-up expects Debian 12 (apt-get not found)"

# Node.js: peipkg needs 20.19+ (22 or 24 LTS recommended). Debian 12's own nodejs is 18.
node_ok() {
  command -v node >/dev/null || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=12)||(a===20&&b>=19)?0:1)'
}
if ! node_ok; then
  die "Node.js $(node --version 2>/dev/null || echo 'is missing'); peipkg needs Node 20.19 or newer (22 or 24 LTS recommended).
Install it from https://nodejs.org or NodeSource (Debian 12 ships Node 18, which is too old), then run ./setup.sh again."
fi

# The linux-arm64-gnu addon is cross-built here and tested under qemu (docs/distribution.md). Its
# Rust standard library comes from Debian's arm64 packages, hence dpkg's second architecture.
arm64=${PEIPKG_ARM64:-1}
[ "$(dpkg --print-architecture)" = amd64 ] || arm64=0
if [ "$arm64" = 1 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  say "adding arm64 to dpkg's architectures (for the arm64 cross build)"
  $SUDO dpkg --add-architecture arm64
fi

say "installing Debian packages (toolchain, crate sources, test tools)"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  ca-certificates gcc libc6-dev make patch xz-utils tar zstd openssl git strace rclone procps chromium bubblewrap util-linux curl redis-server prometheus \
  librust-sha2-dev librust-ring-dev librust-libc-dev librust-cc-dev librust-base64-dev \
  librust-serde-json-dev librust-serde-derive-dev >/dev/null

# Rust: rustup's toolchain when present (it is on these machines), otherwise Debian's rustc-web.
# The addon needs Rust 1.89+ (std's File::lock).
rust_ok() {
  command -v cargo >/dev/null && command -v rustc >/dev/null || return 1
  rustc --version | awk '{split($2,v,"."); exit !(v[1]>1 || (v[1]==1 && v[2]>=89))}'
}
if ! rust_ok; then
  say "installing Debian's rustc-web and cargo-web"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rustc-web cargo-web rustfmt-web rust-web-clippy >/dev/null
  rust_ok || die "no Rust 1.89+ toolchain available"
fi

if [ "$arm64" = 1 ]; then
  say "installing the arm64 cross toolchain (Debian's rustc-web with its arm64 std, gcc-aarch64-linux-gnu) and qemu"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user >/dev/null
fi

# Build scripts run as this unprivileged user when peipkg runs as root (DECISIONS.md).
if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
  if ! getent passwd peipkg-build >/dev/null; then
    say "creating the unprivileged build user peipkg-build"
    $SUDO useradd --system --user-group --home-dir /nonexistent --shell /usr/sbin/nologin peipkg-build
  fi
fi

say "installing npm dependencies"
npm ci --no-audit --no-fund --loglevel=error

say "building the native addon and the TypeScript (npm run build)"
npm run build --silent

if [ "$arm64" = 1 ]; then
  say "cross-building the arm64 addon; fetching Debian's arm64 Node for its qemu test"
  scripts/build-arm64.sh
  scripts/fetch-arm64-node.sh
fi

# For the tests, which reach no registry: the npm cache an offline install of the packed tarballs
# needs, and actionlint for the release workflow.
say "filling the npm cache for the offline-install test; fetching actionlint"
scripts/prime-offline-cache.sh
scripts/fetch-actionlint.sh

if [ -z "${SKIP_MAIN_JOB:-}" ]; then
  say "running the main job"
  scripts/main-job.sh
fi
