#!/usr/bin/env bash
# How long `peipkg-build build` makes its caller wait when its scratch tree is large, and how long
# the scratch takes to disappear after that (see bench/README.md). Prints numbers; it never fails
# on a threshold, only when a command it runs fails.
#
#   bench/scratch.sh          about 5 minutes on 2 cores
#
# Each round builds the same tree twice: with PEIPKG_SCRATCH_REMOVAL=wait (the scratch removed before
# the command returns, as before the background removal) and with the default, background. Medians.
#
# Knobs (environment):
#   BENCH_RUNS=5              rounds
#   BENCH_MIB=200             size of the generated tree (files of 4–28 KiB in 100 directories)
#   BENCH_ZSTD_LEVEL=3        compression level of the build (low, so that removal is a visible share)
#   BENCH_DIR=/tmp            where the work directory goes (needs about 4 × BENCH_MIB free)
#   BENCH_FLAGS=              more flags for the build, e.g. "--sandbox off" (then the scratch also
#                             holds a private copy of the source: twice the tree)
#   BENCH_BEFORE_CLI=         another checkout's bin/peipkg-build.js, measured too as "before"
#                             (a build from before PEIPKG_SCRATCH_REMOVAL existed)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLI="$ROOT/bin/peipkg-build.js"
RUNS=${BENCH_RUNS:-5}
MIB=${BENCH_MIB:-200}
LEVEL=${BENCH_ZSTD_LEVEL:-3}
read -r -a FLAGS <<<"${BENCH_FLAGS-}"
command -v strace >/dev/null || { echo "bench: needs strace (apt-get install strace)" >&2; exit 1; }

say() { printf '%s\n' "$*" >&2; }

WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/peipkg-bench-scratch.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# build.sh runs as the build user when this runs as root: it must reach the source and recipe.
chmod 755 "$WORK"
mkdir -m 755 "$WORK/src" "$WORK/recipe" "$WORK/tmp"

say "generating $MIB MiB of files in $WORK/src"
node -e '
const fs = require("node:fs");
const [dir, mib] = [process.argv[1], Number(process.argv[2])];
const words = "package build recipe source version stanza manifest payload library shared object symbol".split(" ");
let seed = 0x9e3779b9, left = mib * 1024 * 1024, n = 0;
const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8);
while (left > 0) {
  const size = Math.min(left, 4096 + (rand() % 24577));
  const parts = [];
  for (let len = 0; len < size; ) { const w = `${words[rand() % words.length]}${rand() % 1000} `; parts.push(w); len += w.length; }
  const sub = `${dir}/d${String(n % 100).padStart(2, "0")}`;
  if (n < 100) fs.mkdirSync(sub, { mode: 0o755 });
  fs.writeFileSync(`${sub}/f${n}.txt`, parts.join("").slice(0, size));
  left -= size; n++;
}
console.error(`${n} files`);
' "$WORK/src" "$MIB"

cat >"$WORK/recipe/peipkg.toml" <<'EOF'
[meta]
license = "MIT"
homepage = "https://peios.org"
build_script = "build.sh"

[[package]]
name = "bench-scratch"
architecture = "noarch"
description = "Benchmark tree: generated text files."
files = ["usr/**"]
EOF
cat >"$WORK/recipe/build.sh" <<'EOF'
#!/bin/sh
set -eu
mkdir -p "$DESTDIR/usr/share/bench"
cp -a "$SOURCE_DIR/." "$DESTDIR/usr/share/bench/"
EOF
chmod 755 "$WORK/recipe/build.sh"
find "$WORK/src" -type f -print0 | xargs -0 -r cat >/dev/null

now() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }
PKG=bench-scratch_1.0-1_noarch.peipkg

# build MODE: one build with PEIPKG_SCRATCH_REMOVAL=MODE, under strace (seccomp-filtered to three
# system calls, so it barely slows the build). Appends to $WORK/MODE.{wall,tail,gone}: the command's
# wall time, from its execve to its exit_group; its tail, from the rename that puts the finished
# package into --out (it was fsync'd before) to that exit_group, which is where the scratch removal
# was; and the time until TMPDIR is empty again. (Not the time strace returns: strace -f waits for
# the background remover too.)
build() {
  local mode=$1 start gone cli=$CLI pid started renamed exited
  [ "$mode" = before ] && cli=$BENCH_BEFORE_CLI
  rm -rf "$WORK/out"
  start=$(now)
  PEIPKG_SCRATCH_REMOVAL=$mode TMPDIR="$WORK/tmp" strace -f --seccomp-bpf -qq -ttt -e trace=execve,rename,exit_group -o "$WORK/trace" \
    node "$cli" build --recipe "$WORK/recipe/peipkg.toml" --source "$WORK/src" --version 1.0-1 --source-ref bench --farm-id bench \
    --timestamp 2026-05-06T12:00:00Z --out "$WORK/out" --zstd-level "$LEVEL" "${FLAGS[@]}" >/dev/null
  # The scratch (or its renamed remains) may still be in TMPDIR while a background remover works.
  while [ -n "$(ls -A "$WORK/tmp")" ]; do sleep 0.01; done
  gone=$(now)
  read -r pid started _ <"$WORK/trace"
  renamed=$(grep -F "\"$WORK/out/$PKG\")" "$WORK/trace" | awk '{ print $2 }')
  exited=$(awk -v pid="$pid" '$1 == pid && $3 ~ /^exit_group/ { print $2 }' "$WORK/trace")
  sub "$started" "$exited" >>"$WORK/$mode.wall"
  sub "$renamed" "$exited" >>"$WORK/$mode.tail"
  sub "$start" "$gone" >>"$WORK/$mode.gone"
  say "$mode: exited after $(tail -n 1 "$WORK/$mode.wall") s (package → exit $(tail -n 1 "$WORK/$mode.tail") s), scratch gone after $(tail -n 1 "$WORK/$mode.gone") s"
}

say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
MODES=(wait background)
[ -n "${BENCH_BEFORE_CLI:-}" ] && MODES=(before "${MODES[@]}")
# Rounds of one build per mode, so that a change in the machine's load hits both alike.
for ((i = 1; i <= RUNS; i++)); do
  for mode in "${MODES[@]}"; do build "$mode"; done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

echo "tree: $(du -sm "$WORK/src" | cut -f1) MiB, $(find "$WORK/src" -type f | wc -l) files; zstd level $LEVEL; $RUNS rounds; load average at end $LOAD_END"
printf '%-28s %12s %22s %22s\n' PEIPKG_SCRATCH_REMOVAL 'wall (s)' 'package → exit (s)' 'until scratch gone (s)'
for mode in "${MODES[@]}"; do
  printf '%-28s %12s %22s %22s\n' "$mode" "$(median <"$WORK/$mode.wall")" "$(median <"$WORK/$mode.tail")" "$(median <"$WORK/$mode.gone")"
done
