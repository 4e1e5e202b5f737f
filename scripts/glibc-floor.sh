#!/usr/bin/env bash
# Reports the glibc an addon needs:
#
#   scripts/glibc-floor.sh FILE.node…       prints "<file>: GLIBC_<max> [+ unversioned: <symbols>]"
#
# The first number is the highest GLIBC_ symbol version it references (`objdump -T`), the usual
# measure. The second part lists libc functions it references *without* a version: that happens when
# the sysroot it was linked against lacks them (e.g. renameat2, added in glibc 2.28, against a 2.17
# sysroot). Strong ones among them must be present at load time, so they raise the real floor
# (renameat2 → 2.28). Node-API (napi_*), libgcc (_Unwind_*) and weak references are left out.
# Exits 1 if a file is not an ELF shared object.
set -euo pipefail

status=0
for file in "$@"; do
  if ! table=$(objdump -T "$file" 2>/dev/null); then
    echo "$file: not an ELF shared object" >&2
    status=1
    continue
  fi
  max=$(grep -o 'GLIBC_[0-9][0-9.]*' <<<"$table" | sort -uV | tail -1)
  # Columns of `objdump -T`: value, flags (l/g/w …), D, section, [version], name. Undefined strong
  # symbols with no "(…)" version column:
  unversioned=$(awk '$NF !~ /^(napi_|_Unwind_|node_api_)/ && / \*UND\*/ && !/\(/ && $2 != "w" { print $NF }' <<<"$table" | sort -u | tr '\n' ' ')
  line="$file: ${max:-no GLIBC_ versions}"
  [ -n "$unversioned" ] && line="$line + unversioned: ${unversioned% }"
  echo "$line"
done
exit $status
