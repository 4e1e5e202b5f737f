// Command go-reference compresses stdin to stdout the way the reference peipkg producer does:
// klauspost/compress zstd at "best compression", an 8 MiB window, no content checksum, one
// streamed frame (package-format.md §2.1). bench/build.sh builds it offline against Debian's
// golang-github-klauspost-compress-dev (GO111MODULE=off, GOPATH=/usr/share/gocode) and compares
// its output size with ours on the same tar.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
)

func main() {
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	enc, err := zstd.NewWriter(out,
		zstd.WithEncoderLevel(zstd.SpeedBestCompression),
		zstd.WithWindowSize(8<<20),
		zstd.WithEncoderCRC(false))
	if err == nil {
		_, err = io.Copy(enc, bufio.NewReaderSize(os.Stdin, 1<<20))
	}
	if err == nil {
		err = enc.Close()
	}
	if err == nil {
		err = out.Flush()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-reference:", err)
		os.Exit(1)
	}
}
