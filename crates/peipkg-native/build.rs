//! Compiles the bundled libzstd 1.5.4 (Debian's source package, fetched by
//! `scripts/fetch-zstd-source.sh`) with multithreading, and links it statically.
//!
//! Symbols are hidden: Node 22+ carries its own zstd, and an exported `ZSTD_*` from the addon
//! could otherwise be interposed by (or interpose) the host's copy, changing output bytes.

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("zstd");
    if !root.join("zstd.h").exists() {
        panic!(
            "libzstd sources are missing at {}: run scripts/fetch-zstd-source.sh (the README's set-up does)",
            root.display()
        );
    }
    println!("cargo:rerun-if-changed=zstd");
    println!("cargo:rerun-if-changed=build.rs");

    let target_arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap();
    let mut build = cc::Build::new();
    for dir in ["common", "compress", "decompress"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().map(|x| x == "c").unwrap_or(false))
            .collect();
        files.sort();
        build.files(files);
    }
    if target_arch == "x86_64" {
        build.file(root.join("decompress/huf_decompress_amd64.S"));
    }
    build
        .include(&root)
        .include(root.join("common"))
        .define("ZSTD_MULTITHREAD", None)
        .define("XXH_NAMESPACE", "ZSTD_")
        .define("ZSTD_LEGACY_SUPPORT", "0")
        .define("ZSTDLIB_VISIBLE", "")
        .define("ZSTDERRORLIB_VISIBLE", "")
        .define("ZDICTLIB_VISIBLE", "")
        .flag_if_supported("-fvisibility=hidden")
        .flag_if_supported("-Wno-unused-function")
        .warnings(false)
        .compile("zstd_mt");
    println!("cargo:rustc-link-lib=pthread");
}
