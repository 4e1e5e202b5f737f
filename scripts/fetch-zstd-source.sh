#!/usr/bin/env bash
# Fetches libzstd 1.5.4 from Debian's source package (orig tarball + Debian patches), checks both
# against pinned SHA-256 sums, and unpacks lib/ into crates/peipkg-native/zstd/ for build.rs.
#
# Why not Debian's libzstd.a: it is built without ZSTD_MULTITHREAD, so worker threads (and with them
# worker-count-independent output) are unavailable. Why not the shared library: output would then
# depend on the user's libzstd version. See DECISIONS.md "zstd".
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
dest="$here/crates/peipkg-native/zstd"
version="1.5.4+dfsg2"
debian_rev="5"
orig="libzstd_${version}.orig.tar.xz"
deb="libzstd_${version}-${debian_rev}.debian.tar.xz"
orig_sha256="8cf4bbb65e77ec348d052c8d6230eba66d435bddf64c8b5be2fcb16880c19953"
deb_sha256="82ce911445772861d0838bd4545f93bc50658bc7f3cefdb17a307dfb8ffca5d8"
stamp="$dest/.source-${version}-${debian_rev}"

if [ -f "$stamp" ]; then
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -n "${PEIPKG_ZSTD_SOURCE_DIR:-}" ]; then
  # Offline: the two tarballs were downloaded before (e.g. a CI cache).
  cp "$PEIPKG_ZSTD_SOURCE_DIR/$orig" "$PEIPKG_ZSTD_SOURCE_DIR/$deb" "$work/"
else
  # Ask apt for Debian's source package without touching the system's apt sources: a private
  # sources list pointing at the archive this machine already uses, with deb-src added.
  mkdir -p "$work/lists/partial"
  uri=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' | awk '$2=="bookworm"{print $1; exit}')
  uri=${uri:-http://deb.debian.org/debian/}
  echo "deb-src $uri bookworm main" > "$work/sources.list"
  opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$work/lists" -o APT::Sandbox::User=root -qq)
  apt-get "${opts[@]}" update
  (cd "$work" && apt-get "${opts[@]}" source --download-only "libzstd=${version}-${debian_rev}")
fi

check() {
  local got
  got=$(sha256sum "$work/$1" | cut -d' ' -f1)
  if [ "$got" != "$2" ]; then
    echo "fetch-zstd-source: $1 has sha256 $got, expected $2; refusing to build from it" >&2
    exit 1
  fi
}
check "$orig" "$orig_sha256"
check "$deb" "$deb_sha256"

mkdir -p "$work/src"
tar -xf "$work/$orig" -C "$work/src"
tar -xf "$work/$deb" -C "$work/src/zstd-1.5.4"
# Apply Debian's patch series, as Debian's own build does (one of them fixes the block splitter).
(cd "$work/src/zstd-1.5.4" && while read -r p; do
  case "$p" in ''|'#'*) continue ;; esac
  patch -s -p1 < "debian/patches/$p"
done < debian/patches/series)

rm -rf "$dest"
mkdir -p "$dest"
cp -a "$work/src/zstd-1.5.4/lib/common" "$work/src/zstd-1.5.4/lib/compress" \
      "$work/src/zstd-1.5.4/lib/decompress" "$work/src/zstd-1.5.4/lib/zstd.h" \
      "$work/src/zstd-1.5.4/lib/zstd_errors.h" "$dest/"
cp "$work/src/zstd-1.5.4/LICENSE" "$dest/LICENSE"
touch "$stamp"
echo "fetch-zstd-source: libzstd ${version}-${debian_rev} unpacked into ${dest#"$here"/}" >&2
