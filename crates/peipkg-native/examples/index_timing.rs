use std::time::Instant;
fn main() {
    let p = std::path::Path::new("/tmp/big-archive.json");
    let t = Instant::now();
    let l = peipkg_native::index::load(p).unwrap();
    println!("load {:?}", t.elapsed());
    let t = Instant::now();
    let b = peipkg_native::index::encode(&l.header, &l.entries.iter().collect::<Vec<_>>()).unwrap();
    println!("encode {:?} {}", t.elapsed(), b.len());
    let t = Instant::now();
    let _ = std::fs::remove_file("/tmp/big-out2.json");
    peipkg_native::index::write_new(std::path::Path::new("/tmp/big-out2.json"), &b).unwrap();
    println!("write+fsync {:?}", t.elapsed());
}
