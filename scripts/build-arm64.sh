#!/usr/bin/env bash
# Cross-builds the native addon for linux-arm64-gnu on Debian 12 x86_64 with Debian's own Rust
# (rustc-web, whose arm64 standard library comes as libstd-rust-web-dev:arm64) and GNU cross gcc,
# and writes native/peipkg-native.linux-arm64-gnu.node next to the x64 one.
#
#   apt-get install rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross
#   (after dpkg --add-architecture arm64; setup.sh does this)
#
# rustup cannot add the target here (its download host is unreachable), and Debian's arm64 rlibs only
# work with the rustc they were built for, so this uses /usr/bin/{rustc,cargo} explicitly. The linker
# (aarch64-linux-gnu-gcc) is set in .cargo/config.toml; the cc crate finds the same gcc for libzstd.
# The result needs glibc 2.34 (Debian 12's); scripts/build-release.sh builds against glibc 2.17.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in /usr/bin/rustc /usr/bin/cargo aarch64-linux-gnu-gcc; do
  command -v "$tool" >/dev/null || { echo "build-arm64: $tool is missing; see the comment at the top of this script" >&2; exit 1; }
done
[ -d /usr/lib/rustlib/aarch64-unknown-linux-gnu ] || {
  echo "build-arm64: libstd-rust-web-dev:arm64 is not installed (no /usr/lib/rustlib/aarch64-unknown-linux-gnu)" >&2
  exit 1
}

scripts/fetch-zstd-source.sh

target=aarch64-unknown-linux-gnu
# A target dir of its own: these artifacts come from a different rustc than the host build's.
export CARGO_TARGET_DIR=target/debian-rustc
RUSTC=/usr/bin/rustc /usr/bin/cargo build --release --locked --target "$target" -p peipkg-native

mkdir -p native
cp "$CARGO_TARGET_DIR/$target/release/libpeipkg_native.so" native/peipkg-native.linux-arm64-gnu.node.tmp
mv native/peipkg-native.linux-arm64-gnu.node.tmp native/peipkg-native.linux-arm64-gnu.node
echo "build-arm64: wrote native/peipkg-native.linux-arm64-gnu.node" >&2
