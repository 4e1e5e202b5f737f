#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine to build, test and run peipkg from this checkout, then runs
# the main job on the embedded example (scripts/main-job.sh). Safe to run again.
#
#   ./setup.sh            as root (or a user with sudo)
#   SKIP_MAIN_JOB=1 ./setup.sh   set up only
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

say "installing Debian packages (toolchain, crate sources, test tools)"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  ca-certificates gcc libc6-dev make patch xz-utils tar zstd openssl git strace rclone procps chromium \
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

if [ -z "${SKIP_MAIN_JOB:-}" ]; then
  say "running the main job"
  scripts/main-job.sh
fi
