#!/usr/bin/env bash
# Release builds of the native addon against glibc 2.17, with napi-rs's cross toolchains (GCC 4.8.5
# and a glibc-2.17 sysroot, published on npm), instead of Debian 12's glibc 2.36 that the
# development builds link against (those need glibc 2.34).
#
#   scripts/build-release.sh [TARGET…]       TARGET: x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu
#                                            (default: both); writes native/peipkg-native.<platform>.node
#
# Needs the npm registry (once; the toolchains are cached in .cache/napi-cross/), Debian's crate
# sources (setup.sh), and for aarch64 Debian's rustc-web with libstd-rust-web-dev:arm64 (setup.sh,
# see scripts/build-arm64.sh). napi's own `--use-napi-cross` is not used: @napi-rs/cross-toolchain is
# a stand-in here (scripts/stubs) and its download step asks for versions that were never published;
# the toolchain packages themselves are fine, so this unpacks them and points cargo at them.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=.cache/napi-cross
mkdir -p "$cache"

# name@version and the npm integrity of each toolchain package (checked before unpacking).
toolchain_package() {
  case "$1" in
    aarch64-unknown-linux-gnu) echo "@napi-rs/cross-toolchain-x64-target-aarch64@1.0.3 sha512-EMFcy/ahFsmCY3BI1tMC3wRUYZ+cDuILg7nP1micaKXW1tO1+RvUB1CC6QYe+cv2W4Tuz9wr3qcFExWyjgWf2w==" ;;
    x86_64-unknown-linux-gnu) echo "@napi-rs/cross-toolchain-x64-target-x86_64@1.0.0 sha512-lecoghCfoTAX9MLFcIx9/nL9M8xdkZ9n8Pki8qjKUNzjiq1zbECdEbzIZAMMHRtrXxifK9dAyYuh8gSxNbr2og==" ;;
    *) echo "build-release: unknown target $1" >&2; exit 2 ;;
  esac
}

platform_of() {
  case "$1" in
    aarch64-unknown-linux-gnu) echo linux-arm64-gnu ;;
    x86_64-unknown-linux-gnu) echo linux-x64-gnu ;;
  esac
}

# Unpacks the toolchain for $1 into $cache/$1 (once) and prints that directory.
toolchain() {
  local target=$1 dir="$cache/$1"
  if [ ! -f "$dir/.complete" ]; then
    read -r spec integrity < <(toolchain_package "$target")
    local work
    work=$(mktemp -d)
    echo "build-release: fetching $spec" >&2
    (cd "$work" && npm pack --silent "$spec" >/dev/null)
    local tgz got
    tgz=$(ls "$work"/*.tgz)
    got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
    if [ "$got" != "$integrity" ]; then
      echo "build-release: $spec has integrity $got, expected $integrity; refusing it" >&2
      rm -rf "$work"
      exit 1
    fi
    tar -xzf "$tgz" -C "$work"
    rm -rf "$dir"
    mkdir -p "$dir"
    tar -xJf "$work/package/$target.tar.xz" -C "$dir"
    rm -rf "$work"
    touch "$dir/.complete"
  fi
  echo "$dir"
}

if [ "$#" -eq 0 ]; then
  set -- x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu
fi

scripts/fetch-zstd-source.sh
export CARGO_TARGET_DIR=target/release-glibc217
mkdir -p native
for target in "$@"; do
  toolchain_package "$target" >/dev/null
  dir=$(cd "$(toolchain "$target")" && pwd)
  gcc="$dir/bin/$target-gcc"
  var=$(tr 'a-z-' 'A-Z_' <<<"$target")
  lower=${target//-/_}
  if [ "$target" = aarch64-unknown-linux-gnu ]; then
    # Debian's arm64 standard library only works with Debian's rustc (see build-arm64.sh).
    cargo=(env RUSTC=/usr/bin/rustc /usr/bin/cargo)
  else
    cargo=(cargo)
  fi
  echo "build-release: building $target with $gcc" >&2
  env "CARGO_TARGET_${var}_LINKER=$gcc" "CC_${lower}=$gcc" "AR_${lower}=$dir/bin/$target-ar" \
    "${cargo[@]}" build --release --locked --target "$target" -p peipkg-native
  out="native/peipkg-native.$(platform_of "$target").node"
  cp "$CARGO_TARGET_DIR/$target/release/libpeipkg_native.so" "$out.tmp"
  mv "$out.tmp" "$out"
  scripts/glibc-floor.sh "$out"
done
