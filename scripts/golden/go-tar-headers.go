// Writes crates/peipkg-native/tests/fixtures/go-tar-headers.{tar,txt}: header edge cases encoded
// by Go's archive/tar with the reference producer's header values (mode 0777, uid/gid 0, owner
// root, whole-second mtime). The Rust tar writer must reproduce these bytes (tests/tar_golden.rs).
//
// Regenerate: go run scripts/golden/go-tar-headers.go crates/peipkg-native/tests/fixtures
package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type entry struct {
	name, link string
	flag       byte
	size       int64
}

func main() {
	r := strings.Repeat
	cases := []entry{
		{"usr/share/hello/MESSAGE", "", tar.TypeReg, 14},
		{"usr/", "", tar.TypeDir, 0},
		{r("a", 100), "", tar.TypeReg, 1},                                // exactly 100 bytes
		{"usr/" + r("b", 97), "", tar.TypeReg, 0},                        // 101 bytes, splittable
		{"usr/share/edge/" + r("d", 60) + "/" + r("e", 60) + "/", "", tar.TypeDir, 0},
		{"usr/share/edge/t/" + r("x", 120), "", tar.TypeReg, 5},           // last component > 100
		{r("p", 150) + "/" + r("q", 20), "", tar.TypeReg, 0},              // prefix 150
		{r("p", 160) + "/" + r("q", 20), "", tar.TypeReg, 0},              // prefix too long
		{"usr/share/edge/café/", "", tar.TypeDir, 0},
		{"usr/share/edge/café/über.txt", "", tar.TypeReg, 3},
		{"usr/share/edge/t/longtarget", "../" + r("d", 60) + "/" + r("e", 60) + "/f.txt", tar.TypeSymlink, 0},
		{"usr/share/edge/t/" + r("y", 110), r("x", 120), tar.TypeSymlink, 0},
		{"usr/share/edge/" + r("d", 60) + "/" + r("s", 40), r("z", 101), tar.TypeSymlink, 0}, // splittable name + long target
		{"usr/lib/link", "tärget", tar.TypeSymlink, 0},                                        // non-ASCII target only
		{r("x", 98) + "/é/yyyy", "", tar.TypeReg, 0},                                           // filtered name has '/' at 99
		{"é/" + r("m", 120) + "/", "", tar.TypeDir, 0},
		{r("c", 99) + "/", "", tar.TypeDir, 0},                                                 // 100 bytes with slash
		{r("c", 100) + "/", "", tar.TypeDir, 0},                                                // 101 bytes with slash
		{"usr/share/" + r("n", 120), "", tar.TypeReg, 8589934591},                             // largest size
	}
	var buf bytes.Buffer
	var index strings.Builder
	tw := tar.NewWriter(&buf)
	for _, c := range cases {
		start := buf.Len()
		hdr := &tar.Header{Name: c.name, Linkname: c.link, Typeflag: c.flag, Mode: 0o777,
			Uname: "root", Gname: "root", ModTime: time.Unix(1778068800, 0), Size: c.size}
		if err := tw.WriteHeader(hdr); err != nil {
			panic(fmt.Sprintf("%q: %v", c.name, err))
		}
		if err := tw.Flush(); err != nil && c.size == 0 {
			panic(err)
		}
		// Header bytes only: content is never written (Flush fails for unwritten content; the
		// header is already in buf).
		fmt.Fprintf(&index, "%d\t%d\t%c\t%d\t%s\t%s\n", start, buf.Len()-start, c.flag, c.size, c.name, c.link)
		tw = tar.NewWriter(&buf) // a fresh writer: each case stands alone
	}
	dir := os.Args[1]
	must(os.WriteFile(filepath.Join(dir, "go-tar-headers.bin"), buf.Bytes(), 0o644))
	must(os.WriteFile(filepath.Join(dir, "go-tar-headers.txt"), []byte(index.String()), 0o644))
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
