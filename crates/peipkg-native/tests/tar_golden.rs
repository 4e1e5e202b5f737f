//! Header bytes from the core equal Go's archive/tar (the reference producer's tar writer) for
//! every edge case in `fixtures/go-tar-headers.*` (made by scripts/golden/go-tar-headers.go).

use peipkg_native::tar::{entry_header, Kind};

const MTIME: u64 = 1_778_068_800;

#[test]
fn headers_match_go_archive_tar() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let bin = std::fs::read(dir.join("go-tar-headers.bin")).unwrap();
    let index = std::fs::read_to_string(dir.join("go-tar-headers.txt")).unwrap();
    let mut cases = 0;
    for line in index.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (start, len): (usize, usize) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        let kind = match f[2] {
            "0" => Kind::File,
            "5" => Kind::Directory,
            "2" => Kind::Symlink,
            other => panic!("unexpected type {other}"),
        };
        let size: u64 = f[3].parse().unwrap();
        let ours = entry_header(f[4].as_bytes(), kind, size, f[5].as_bytes(), MTIME).unwrap();
        assert_eq!(ours, &bin[start..start + len], "header bytes differ for {:?} -> {:?}", f[4], f[5]);
        cases += 1;
    }
    assert_eq!(cases, 19);
}
