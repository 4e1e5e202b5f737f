#!/bin/sh
# Installs the program and its documentation into $DESTDIR. Runs with cwd = an empty work
# directory, SOURCE_DIR = the upstream checkout, and SOURCE_DATE_EPOCH for reproducible output.
set -eu
install -D -m 0755 "$SOURCE_DIR/hello-peios.sh" "$DESTDIR/usr/bin/hello-peios"
mkdir -p "$DESTDIR/usr/share/man/man1" "$DESTDIR/usr/share/doc/hello-peios"
gzip -9 -n -c "$SOURCE_DIR/hello-peios.1" > "$DESTDIR/usr/share/man/man1/hello-peios.1.gz"
cp "$SOURCE_DIR/README" "$DESTDIR/usr/share/doc/hello-peios/README"
