//! Converts JavaScript arguments into core types, calls the core, and converts results back.
//! The shapes here are mirrored by the TypeScript declarations in `ts/native.ts`.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::durable::{self, DirLock};
use crate::ed25519::{self, SigningKey};
use crate::error::{Error, Result};
use crate::ffi::napi::{export, Env, TypeTag, Value};
use crate::hash::{self, FileDigest};
use crate::index::{self, Header as IndexHeader};
use crate::index_store::{Group, Kind, Store};
use crate::pack::{self, Content, Entry, EntryKind, Spec};
use crate::progress::Progress;
use crate::read::{self, EntryFact, Limits, PackageFacts, ReadOptions};
use crate::tar;
use crate::zstd::{self, Encoder, Params, Totals};

// Random constants: they only have to differ from each other and from other addons' tags.
static KEY_TAG: TypeTag = TypeTag::new(0x7065_6970_6b67_6b65, 0x9c1f_53a2_0d4b_e771);
static LOCK_TAG: TypeTag = TypeTag::new(0x7065_6970_6b67_6c6b, 0x41d2_a7e3_66c0_19b5);
static PROGRESS_TAG: TypeTag = TypeTag::new(0x7065_6970_6b67_7072, 0xe86b_0f3c_52aa_d104);
static ENCODER_TAG: TypeTag = TypeTag::new(0x7065_6970_6b67_7a65, 0x2b7e_c90d_88f1_364a);
static INDEX_TAG: TypeTag = TypeTag::new(0x7065_6970_6b67_6978, 0x5c3a_91e0_7bd2_4f16);

pub fn register(env: Env, exports: Value) -> Result<()> {
    let functions: &[(&str, crate::ffi::napi::Callback)] = &[
        ("zstdVersion", zstd_version),
        ("sha256", sha256),
        ("sha256File", sha256_file),
        ("sha256Files", sha256_files),
        ("progressCreate", progress_create),
        ("progressRead", progress_read),
        ("zstdCompressFile", zstd_compress_file),
        ("zstdEncoderOpen", zstd_encoder_open),
        ("zstdEncoderWrite", zstd_encoder_write),
        ("zstdEncoderFinish", zstd_encoder_finish),
        ("zstdDecompressFile", zstd_decompress_file),
        ("zstdDecompress", zstd_decompress),
        ("tarEntryHeader", tar_entry_header),
        ("pack", pack),
        ("readPackage", read_package),
        ("appendSignature", append_signature),
        ("indexStoreCreate", index_store_create),
        ("indexRelease", index_release),
        ("indexLoad", index_load),
        ("indexInspect", index_inspect),
        ("indexKeys", index_keys),
        ("indexDocumentKeys", index_document_keys),
        ("indexNamed", index_named),
        ("indexUrlHolders", index_url_holders),
        ("indexAddPackages", index_add_packages),
        ("indexCheckActive", index_check_active),
        ("indexArrange", index_arrange),
        ("indexArrangeMerged", index_arrange_merged),
        ("indexWrite", index_write),
        ("indexWriteSiteScript", index_write_site_script),
        ("indexSiteRows", index_site_rows),
        ("signingKeyLoad", signing_key_load),
        ("signingKeyFromBytes", signing_key_from_bytes),
        ("signingKeyInfo", signing_key_info),
        ("ed25519Sign", ed25519_sign),
        ("ed25519Verify", ed25519_verify),
        ("elfSign", elf_sign),
        ("elfVerify", elf_verify),
        ("publicKeyParse", public_key_parse),
        ("dirLockTry", dir_lock_try),
        ("dirLockWait", dir_lock_wait),
        ("dirLockRelease", dir_lock_release),
        ("dirLockHeld", dir_lock_held),
        ("renameExchange", rename_exchange),
        ("fsyncPath", fsync_path),
        ("removeTree", remove_tree),
        ("removeTreeSync", remove_tree_sync),
        ("swappedOwnerView", swapped_owner_view),
    ];
    for (name, f) in functions {
        export(env, exports, name, *f)?;
    }
    Ok(())
}

fn arg(args: &[Value], i: usize, what: &str) -> Result<Value> {
    args.get(i).copied().ok_or_else(|| Error::argument(format!("{what} is required")))
}

fn opt_arg(env: Env, args: &[Value], i: usize) -> Result<Option<Value>> {
    match args.get(i) {
        Some(v) if !env.is_nullish(*v)? => Ok(Some(*v)),
        _ => Ok(None),
    }
}

fn path_arg(env: Env, args: &[Value], i: usize, what: &str) -> Result<PathBuf> {
    let s = env.get_string(arg(args, i, what)?, what)?;
    if s.is_empty() {
        return Err(Error::argument(format!("{what} must not be empty")));
    }
    Ok(PathBuf::from(s))
}

fn opt_prop(env: Env, obj: Value, key: &str, what: &str) -> Result<Option<Value>> {
    match env.get(obj, key, what)? {
        Some(v) if !env.is_nullish(v)? => Ok(Some(v)),
        _ => Ok(None),
    }
}

fn parse_hex32(s: &str, what: &str) -> Result<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 || !bytes.iter().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        return Err(Error::argument(format!("{what} must be 64 lowercase hex digits")));
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("checked hex");
    }
    Ok(out)
}

fn totals(env: Env, t: Totals) -> Result<Value> {
    let o = env.object()?;
    env.set(o, "bytesIn", env.number(t.bytes_in as f64)?)?;
    env.set(o, "bytesOut", env.number(t.bytes_out as f64)?)?;
    Ok(o)
}

fn digest_value(env: Env, d: FileDigest) -> Result<Value> {
    let o = env.object()?;
    env.set(o, "sha256", env.string(&hash::to_hex(&d.sha256))?)?;
    env.set(o, "size", env.number(d.size as f64)?)?;
    Ok(o)
}

fn error_object(env: Env, e: &Error) -> Result<Value> {
    let o = env.object()?;
    env.set(o, "code", env.string(e.code.as_str())?)?;
    env.set(o, "message", env.string(&e.message)?)?;
    if let Some(p) = &e.path {
        env.set(o, "path", env.string(p)?)?;
    }
    if let Some(errno) = e.errno {
        env.set(o, "osError", env.string(errno)?)?;
    }
    Ok(o)
}

fn progress_prop(env: Env, obj: Value, what: &str) -> Result<Option<Arc<Progress>>> {
    opt_prop(env, obj, "progress", what)?
        .map(|v| env.get_external::<Progress>(v, &PROGRESS_TAG, &format!("{what}.progress"), "a Progress handle"))
        .transpose()
}

// --- hashing -------------------------------------------------------------------------------

fn zstd_version(env: Env, _args: &[Value]) -> Result<Value> {
    env.string(&zstd::version())
}

fn sha256(env: Env, args: &[Value]) -> Result<Value> {
    let bytes = env.get_bytes(arg(args, 0, "data")?, "data")?;
    env.string(&hash::to_hex(&hash::sha256(&bytes)))
}

fn sha256_file(env: Env, args: &[Value]) -> Result<Value> {
    let path = path_arg(env, args, 0, "path")?;
    env.promise("peipkg.sha256File", move || hash::sha256_file(&path), digest_value)
}

fn sha256_files(env: Env, args: &[Value]) -> Result<Value> {
    let list = env.get_array(arg(args, 0, "paths")?, "paths")?;
    let paths = list
        .iter()
        .enumerate()
        .map(|(i, v)| env.get_string(*v, &format!("paths[{i}]")).map(PathBuf::from))
        .collect::<Result<Vec<_>>>()?;
    let (mut threads, mut progress) = (hash::available_threads(), None);
    if let Some(opts) = opt_arg(env, args, 1)? {
        if let Some(t) = opt_prop(env, opts, "threads", "options")? {
            threads = env.get_u64(t, "options.threads")?.max(1) as usize;
        }
        progress = progress_prop(env, opts, "options")?;
    }
    env.promise(
        "peipkg.sha256Files",
        move || Ok(hash::sha256_files(&paths, threads, progress.as_deref())),
        |env, results| {
            let items = results
                .iter()
                .map(|r| match r {
                    Ok(d) => digest_value(env, *d),
                    Err(e) => {
                        let o = env.object()?;
                        env.set(o, "error", error_object(env, e)?)?;
                        Ok(o)
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            env.array(&items)
        },
    )
}

fn progress_create(env: Env, _args: &[Value]) -> Result<Value> {
    env.external(Arc::new(Progress::default()), &PROGRESS_TAG)
}

fn progress_read(env: Env, args: &[Value]) -> Result<Value> {
    let p = env.get_external::<Progress>(arg(args, 0, "progress")?, &PROGRESS_TAG, "progress", "a Progress handle")?;
    let o = env.object()?;
    env.set(o, "bytes", env.number(p.bytes() as f64)?)?;
    env.set(o, "items", env.number(p.items() as f64)?)?;
    env.set(o, "total", env.number(p.total() as f64)?)?;
    Ok(o)
}

// --- zstd ----------------------------------------------------------------------------------

fn zstd_params(env: Env, v: Value, what: &str) -> Result<Params> {
    let level = env.get_f64(env.need(v, "level", what)?, &format!("{what}.level"))?;
    if level.fract() != 0.0 {
        return Err(Error::argument(format!("{what}.level must be an integer")));
    }
    let overlap_log = match opt_prop(env, v, "overlapLog", what)? {
        Some(x) => env.get_u64(x, &format!("{what}.overlapLog"))? as i32,
        None => 0,
    };
    let job_size = match opt_prop(env, v, "jobSize", what)? {
        Some(x) => u32::try_from(env.get_u64(x, &format!("{what}.jobSize"))?)
            .map_err(|_| Error::argument(format!("{what}.jobSize is too large")))?,
        None => 0,
    };
    let workers = match opt_prop(env, v, "workers", what)? {
        Some(x) => env.get_u64(x, &format!("{what}.workers"))? as u32,
        None => hash::available_threads() as u32,
    };
    let p = Params { level: level as i32, overlap_log, job_size, workers };
    p.validate()?;
    Ok(p)
}

fn zstd_compress_file(env: Env, args: &[Value]) -> Result<Value> {
    let input = path_arg(env, args, 0, "input")?;
    let output = path_arg(env, args, 1, "output")?;
    let params = zstd_params(env, arg(args, 2, "params")?, "params")?;
    let progress = match opt_arg(env, args, 3)? {
        Some(o) => progress_prop(env, o, "options")?,
        None => None,
    };
    env.promise(
        "peipkg.zstdCompressFile",
        move || zstd::compress_file(&input, &output, &params, progress.as_deref()),
        totals,
    )
}

struct EncoderHandle {
    path: PathBuf,
    encoder: Mutex<Option<Encoder<BufWriter<File>>>>,
}

impl EncoderHandle {
    fn take(&self) -> Result<Encoder<BufWriter<File>>> {
        self.encoder.lock().ok().and_then(|mut e| e.take()).ok_or_else(|| {
            Error::argument("the zstd encoder is finished, failed, or busy with another write (await each write)")
        })
    }

    fn fail(&self, e: Error) -> Error {
        let _ = std::fs::remove_file(&self.path);
        e
    }
}

fn zstd_encoder_open(env: Env, args: &[Value]) -> Result<Value> {
    let output = path_arg(env, args, 0, "output")?;
    let params = zstd_params(env, arg(args, 1, "params")?, "params")?;
    let pledged = opt_arg(env, args, 2)?.map(|v| env.get_u64(v, "pledgedSize")).transpose()?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&output)
        .map_err(|e| Error::io("create", &output, e))?;
    let encoder = Encoder::new(BufWriter::new(file), &output, &params, pledged).inspect_err(|_| {
        let _ = std::fs::remove_file(&output);
    })?;
    env.external(Arc::new(EncoderHandle { path: output, encoder: Mutex::new(Some(encoder)) }), &ENCODER_TAG)
}

fn encoder_arg(env: Env, args: &[Value]) -> Result<Arc<EncoderHandle>> {
    env.get_external::<EncoderHandle>(arg(args, 0, "encoder")?, &ENCODER_TAG, "encoder", "a zstd encoder handle")
}

fn zstd_encoder_write(env: Env, args: &[Value]) -> Result<Value> {
    let handle = encoder_arg(env, args)?;
    let data = env.get_bytes(arg(args, 1, "data")?, "data")?;
    let mut encoder = handle.take()?;
    env.promise(
        "peipkg.zstdEncoderWrite",
        move || match encoder.write(&data) {
            Ok(()) => {
                *handle.encoder.lock().expect("encoder mutex") = Some(encoder);
                Ok(())
            }
            Err(e) => Err(handle.fail(e)),
        },
        |env, ()| env.undefined(),
    )
}

fn zstd_encoder_finish(env: Env, args: &[Value]) -> Result<Value> {
    let handle = encoder_arg(env, args)?;
    let encoder = handle.take()?;
    env.promise(
        "peipkg.zstdEncoderFinish",
        move || encoder.finish().map(|(_, t)| t).map_err(|e| handle.fail(e)),
        totals,
    )
}

fn limits(env: Env, v: Value) -> Result<(u64, i32)> {
    let max = env.get_u64(env.need(v, "maxBytes", "options")?, "options.maxBytes")?;
    let window = match opt_prop(env, v, "windowLogMax", "options")? {
        Some(w) => env.get_u64(w, "options.windowLogMax")? as i32,
        None => zstd::DEFAULT_WINDOW_LOG_MAX,
    };
    if !(10..=31).contains(&window) {
        return Err(Error::argument("options.windowLogMax must be 10–31"));
    }
    Ok((max, window))
}

fn zstd_decompress_file(env: Env, args: &[Value]) -> Result<Value> {
    let input = path_arg(env, args, 0, "input")?;
    let output = path_arg(env, args, 1, "output")?;
    let (max, window) = limits(env, arg(args, 2, "options")?)?;
    env.promise("peipkg.zstdDecompressFile", move || zstd::decompress_file(&input, &output, max, window), totals)
}

fn zstd_decompress(env: Env, args: &[Value]) -> Result<Value> {
    let data = env.get_bytes(arg(args, 0, "data")?, "data")?;
    let (max, window) = limits(env, arg(args, 1, "options")?)?;
    env.buffer(&zstd::decompress_bytes(&data, max, window)?)
}

// --- tar and pack --------------------------------------------------------------------------

fn entry(env: Env, v: Value, what: &str) -> Result<Entry> {
    let name = env.get_string(env.need(v, "name", what)?, &format!("{what}.name"))?;
    let ty = env.get_string(env.need(v, "type", what)?, &format!("{what}.type"))?;
    let kind = match ty.as_str() {
        "file" => {
            let sha256 = opt_prop(env, v, "sha256", what)?
                .map(|h| {
                    env.get_string(h, &format!("{what}.sha256"))
                        .and_then(|s| parse_hex32(&s, &format!("{what}.sha256")))
                })
                .transpose()?;
            match (opt_prop(env, v, "data", what)?, opt_prop(env, v, "source", what)?) {
                (Some(d), None) => {
                    let bytes = env.get_bytes(d, &format!("{what}.data"))?;
                    EntryKind::File { size: bytes.len() as u64, content: Content::Inline(bytes), sha256 }
                }
                (None, Some(s)) => EntryKind::File {
                    content: Content::Staged(env.get_string(s, &format!("{what}.source"))?),
                    size: env.get_u64(env.need(v, "size", what)?, &format!("{what}.size"))?,
                    sha256,
                },
                _ => return Err(Error::argument(format!("{what} needs exactly one of data and source"))),
            }
        }
        "directory" => EntryKind::Directory,
        "symlink" => {
            EntryKind::Symlink { target: env.get_string(env.need(v, "target", what)?, &format!("{what}.target"))? }
        }
        other => {
            return Err(Error::argument(format!(
                "{what}.type must be \"file\", \"directory\" or \"symlink\", got \"{other}\""
            )))
        }
    };
    Ok(Entry { name, kind })
}

fn tar_entry_header(env: Env, args: &[Value]) -> Result<Value> {
    let v = arg(args, 0, "entry")?;
    let name = env.get_string(env.need(v, "name", "entry")?, "entry.name")?;
    let ty = env.get_string(env.need(v, "type", "entry")?, "entry.type")?;
    let mtime = env.get_u64(arg(args, 1, "mtime")?, "mtime")?;
    let (kind, size, link) = match ty.as_str() {
        "file" => (tar::Kind::File, env.get_u64(env.need(v, "size", "entry")?, "entry.size")?, String::new()),
        "directory" => (tar::Kind::Directory, 0, String::new()),
        "symlink" => (tar::Kind::Symlink, 0, env.get_string(env.need(v, "target", "entry")?, "entry.target")?),
        other => {
            return Err(Error::argument(format!(
                "entry.type must be \"file\", \"directory\" or \"symlink\", got \"{other}\""
            )))
        }
    };
    env.buffer(&tar::entry_header(name.as_bytes(), kind, size, link.as_bytes(), mtime)?)
}

fn pack(env: Env, args: &[Value]) -> Result<Value> {
    let s = arg(args, 0, "spec")?;
    let list = env.get_array(env.need(s, "entries", "spec")?, "spec.entries")?;
    let entries = list
        .iter()
        .enumerate()
        .map(|(i, v)| entry(env, *v, &format!("spec.entries[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    let key = opt_prop(env, s, "signingKey", "spec")?
        .map(|k| env.get_external::<SigningKey>(k, &KEY_TAG, "spec.signingKey", "a SigningKey"))
        .transpose()?;
    let compression =
        opt_prop(env, s, "compression", "spec")?.map(|c| zstd_params(env, c, "spec.compression")).transpose()?;
    let fsync = opt_prop(env, s, "fsync", "spec")?.map(|f| env.get_bool(f, "spec.fsync")).transpose()?.unwrap_or(false);
    let root =
        opt_prop(env, s, "root", "spec")?.map(|r| env.get_string(r, "spec.root").map(PathBuf::from)).transpose()?;
    let split_trailer = opt_prop(env, s, "deferredSignature", "spec")?
        .map(|f| env.get_bool(f, "spec.deferredSignature"))
        .transpose()?
        .unwrap_or(false);
    let spec = Spec {
        output: PathBuf::from(env.get_string(env.need(s, "output", "spec")?, "spec.output")?),
        mtime: env.get_u64(env.need(s, "mtime", "spec")?, "spec.mtime")?,
        root,
        entries,
        key,
        compression,
        fsync,
        split_trailer,
    };
    let progress = progress_prop(env, s, "spec")?;
    env.promise(
        "peipkg.pack",
        move || pack::pack(&spec, progress.as_deref()),
        |env, out| {
            let o = env.object()?;
            env.set(o, "tarSize", env.number(out.tar_size as f64)?)?;
            env.set(o, "outputSize", env.number(out.output_size as f64)?)?;
            env.set(o, "signedDigest", env.string(&hash::to_hex(&out.signed_digest))?)?;
            if let (Some(sig), Some(fp)) = (out.signature, out.fingerprint) {
                env.set(o, "signature", env.buffer(&sig)?)?;
                env.set(o, "fingerprint", env.string(&fp)?)?;
            }
            Ok(o)
        },
    )
}

fn read_options(env: Env, v: Option<Value>) -> Result<ReadOptions> {
    let mut opts = ReadOptions { limits: Limits::default(), compressed: true, metadata_only: false };
    let Some(v) = v else { return Ok(opts) };
    let flag = |key: &str| -> Result<Option<bool>> {
        opt_prop(env, v, key, "options")?.map(|b| env.get_bool(b, &format!("options.{key}"))).transpose()
    };
    let count = |key: &str| -> Result<Option<u64>> {
        opt_prop(env, v, key, "options")?.map(|n| env.get_u64(n, &format!("options.{key}"))).transpose()
    };
    if let Some(b) = flag("compressed")? {
        opts.compressed = b;
    }
    if let Some(b) = flag("metadataOnly")? {
        opts.metadata_only = b;
    }
    if let Some(n) = count("maxBytes")? {
        opts.limits.max_bytes = n;
    }
    if let Some(n) = count("maxEntries")? {
        opts.limits.max_entries = n as usize;
    }
    Ok(opts)
}

/// Bytes as a JS string; `None` when they are not UTF-8 (the caller marks the entry).
fn utf8_value(env: Env, bytes: &[u8]) -> Result<(Value, bool)> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok((env.string(s)?, true)),
        Err(_) => Ok((env.string(&String::from_utf8_lossy(bytes))?, false)),
    }
}

fn entry_fact_value(env: Env, e: &EntryFact) -> Result<Value> {
    let o = env.object()?;
    let (name, name_ok) = utf8_value(env, &e.name)?;
    let (link, link_ok) = utf8_value(env, &e.linkname)?;
    let (uname, _) = utf8_value(env, &e.uname)?;
    let (gname, _) = utf8_value(env, &e.gname)?;
    env.set(o, "name", name)?;
    env.set(o, "type", env.string(&(e.typeflag as char).to_string())?)?;
    env.set(o, "size", env.number(e.size as f64)?)?;
    env.set(o, "linkname", link)?;
    env.set(o, "validUtf8", env.boolean(name_ok && link_ok)?)?;
    for (key, n) in [
        ("mode", e.mode),
        ("uid", e.uid),
        ("gid", e.gid),
        ("mtime", e.mtime),
        ("devmajor", e.devmajor),
        ("devminor", e.devminor),
        ("offset", e.offset),
    ] {
        env.set(o, key, env.number(n as f64)?)?;
    }
    env.set(o, "uname", uname)?;
    env.set(o, "gname", gname)?;
    env.set(o, "ustar", env.boolean(e.ustar)?)?;
    let keys = e.pax_keys.iter().map(|k| env.string(k)).collect::<Result<Vec<_>>>()?;
    env.set(o, "paxKeys", env.array(&keys)?)?;
    if let Some(h) = &e.sha256 {
        env.set(o, "sha256", env.string(&hash::to_hex(h))?)?;
    }
    Ok(o)
}

fn package_facts_value(env: Env, f: PackageFacts) -> Result<Value> {
    let o = env.object()?;
    let entries = f.entries.iter().map(|e| entry_fact_value(env, e)).collect::<Result<Vec<_>>>()?;
    env.set(o, "entries", env.array(&entries)?)?;
    for (key, bytes) in [("manifest", &f.manifest), ("filesJson", &f.files_json), ("signature", &f.signature)] {
        if let Some(b) = bytes {
            env.set(o, key, env.buffer(b)?)?;
        }
    }
    if let Some(d) = &f.signed_digest {
        env.set(o, "signedDigest", env.string(&hash::to_hex(d))?)?;
    }
    if let Some(d) = &f.signable_digest {
        env.set(o, "signableDigest", env.string(&hash::to_hex(d))?)?;
    }
    env.set(o, "zeroBlocks", env.number(f.zero_blocks as f64)?)?;
    env.set(o, "trailingData", env.boolean(f.trailing_data)?)?;
    env.set(o, "truncated", env.boolean(f.truncated)?)?;
    env.set(o, "tarSize", env.number(f.tar_size as f64)?)?;
    env.set(o, "compressedSize", env.number(f.compressed_size as f64)?)?;
    env.set(o, "partial", env.boolean(f.partial)?)?;
    Ok(o)
}

fn read_package(env: Env, args: &[Value]) -> Result<Value> {
    let path = path_arg(env, args, 0, "path")?;
    let opts = read_options(env, opt_arg(env, args, 1)?)?;
    env.promise("peipkg.readPackage", move || read::read_package(&path, &opts), package_facts_value)
}

fn append_signature(env: Env, args: &[Value]) -> Result<Value> {
    let path = path_arg(env, args, 0, "path")?;
    let key = env.get_external::<SigningKey>(arg(args, 1, "key")?, &KEY_TAG, "key", "a SigningKey")?;
    let digest = parse_hex32(&env.get_string(arg(args, 2, "signableDigest")?, "signableDigest")?, "signableDigest")?;
    let mtime = env.get_u64(arg(args, 3, "mtime")?, "mtime")?;
    let expected = opt_arg(env, args, 4)?.map(|v| env.get_u64(v, "expectedSize")).transpose()?;
    env.promise(
        "peipkg.appendSignature",
        move || crate::deferred::append_signature(&path, &key, &digest, mtime, expected),
        |env, out| {
            let o = env.object()?;
            env.set(o, "signature", env.buffer(&out.signature)?)?;
            env.set(o, "fingerprint", env.string(&out.fingerprint)?)?;
            env.set(o, "outputSize", env.number(out.output_size as f64)?)?;
            Ok(o)
        },
    )
}

// --- repository indexes ----------------------------------------------------------------------

/// A command's repository indexes (`index_store.rs`); JavaScript addresses entries by id.
/// Write-locked only to add documents, entries or an order; documents are parsed, checked and
/// encoded on the pool's threads under the read lock (the two indexes of a publish at once).
#[derive(Default)]
struct IndexStore(RwLock<Store>);

impl IndexStore {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        self.0.read().expect("index store lock")
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Store> {
        self.0.write().expect("index store lock")
    }
}

fn store_arg(env: Env, args: &[Value]) -> Result<Arc<IndexStore>> {
    env.get_external::<IndexStore>(arg(args, 0, "store")?, &INDEX_TAG, "store", "an index store")
}

fn index_store_create(env: Env, _args: &[Value]) -> Result<Value> {
    env.external(Arc::new(IndexStore::default()), &INDEX_TAG)
}

/// Drops every document the store holds (unmapping them) now rather than when the garbage collector
/// gets to the store: a long-lived process (the manager) would otherwise keep a replaced archive
/// mapped, in its memory and open to a foreign truncation, for as long as the collector waits.
fn index_release(env: Env, args: &[Value]) -> Result<Value> {
    *store_arg(env, args)?.write() = Store::default();
    env.undefined()
}

fn header_value(env: Env, h: &IndexHeader) -> Result<Value> {
    let o = env.object()?;
    env.set(o, "schemaVersion", env.number(h.schema_version as f64)?)?;
    env.set(o, "repo", env.string(&h.repo)?)?;
    env.set(o, "kind", env.string(&h.kind)?)?;
    env.set(o, "indexVersion", env.number(h.index_version as f64)?)?;
    env.set(o, "generatedAt", env.string(&h.generated_at)?)?;
    Ok(o)
}

fn header_arg(env: Env, h: Value) -> Result<IndexHeader> {
    let int =
        |key: &str| -> Result<i64> { Ok(env.get_u64(env.need(h, key, "header")?, &format!("header.{key}"))? as i64) };
    let text = |key: &str| -> Result<String> { env.get_string(env.need(h, key, "header")?, &format!("header.{key}")) };
    Ok(IndexHeader {
        schema_version: int("schemaVersion")?,
        repo: text("repo")?,
        kind: text("kind")?,
        index_version: int("indexVersion")?,
        generated_at: text("generatedAt")?,
    })
}

fn strings_arg(env: Env, v: Value, what: &str) -> Result<Vec<String>> {
    env.get_array(v, what)?.into_iter().map(|s| env.get_string(s, what)).collect()
}

fn doc_arg(env: Env, args: &[Value], i: usize, what: &str) -> Result<usize> {
    Ok(env.get_u64(arg(args, i, what)?, what)? as usize)
}

fn ids_value(env: Env, ids: impl IntoIterator<Item = u32>) -> Result<Value> {
    let values = ids.into_iter().map(|id| env.number(f64::from(id))).collect::<Result<Vec<_>>>()?;
    env.array(&values)
}

/// Name, version, architecture, hash and url of each entry, NUL-separated: one string crosses
/// the boundary instead of five per entry.
fn keys_text(store: &Store, ids: impl Iterator<Item = u32>) -> Result<String> {
    let mut text = String::new();
    for id in ids {
        let k = store.keys(id)?;
        for field in [k.name, k.version, k.architecture, k.hash, k.url] {
            // A NUL inside a value would shift every later field; no valid value holds one.
            if field.contains('\0') {
                text.push_str(&field.replace('\0', "\u{fffd}"));
            } else {
                text.push_str(field);
            }
            text.push('\0');
        }
    }
    Ok(text)
}

/// What loading or inspecting a document tells JavaScript: its header, SHA-256 and size.
fn document_value(env: Env, header: &IndexHeader, sha256: &[u8; 32], size: usize) -> Result<Value> {
    let o = env.object()?;
    env.set(o, "header", header_value(env, header)?)?;
    env.set(o, "sha256", env.string(&hash::to_hex(sha256))?)?;
    env.set(o, "size", env.number(size as f64)?)?;
    Ok(o)
}

fn index_load(env: Env, args: &[Value]) -> Result<Value> {
    let store = store_arg(env, args)?;
    let path = path_arg(env, args, 1, "path")?;
    env.promise(
        "peipkg.indexLoad",
        move || {
            let loaded = index::load(&path)?;
            let (header, sha256, size) = (loaded.header.clone(), loaded.sha256, loaded.bytes.len());
            let ids = store.write().add_document(loaded);
            Ok((header, sha256, size, ids))
        },
        |env, (header, sha256, size, ids)| {
            let o = document_value(env, &header, &sha256, size)?;
            env.set(o, "doc", env.number(ids.doc as f64)?)?;
            env.set(o, "first", env.number(ids.first as f64)?)?;
            env.set(o, "count", env.number(ids.count as f64)?)?;
            Ok(o)
        },
    )
}

fn index_inspect(env: Env, args: &[Value]) -> Result<Value> {
    let path = path_arg(env, args, 0, "path")?;
    env.promise(
        "peipkg.indexInspect",
        move || index::inspect(&path),
        |env, (header, sha256, size)| document_value(env, &header, &sha256, size as usize),
    )
}

fn index_keys(env: Env, args: &[Value]) -> Result<Value> {
    let store = store_arg(env, args)?;
    let ids = env.get_u32_array(arg(args, 1, "ids")?, "ids")?;
    let text = keys_text(&store.read(), ids.into_iter())?;
    env.string(&text)
}

fn index_document_keys(env: Env, args: &[Value]) -> Result<Value> {
    let store = store_arg(env, args)?;
    let doc = doc_arg(env, args, 1, "doc")?;
    env.promise(
        "peipkg.indexDocumentKeys",
        move || {
            let store = store.read();
            let ids = store.document_ids(doc)?;
            keys_text(&store, ids.map(|i| i as u32))
        },
        |env, text| env.string(&text),
    )
}

fn index_named(env: Env, args: &[Value]) -> Result<Value> {
    let store = store_arg(env, args)?;
    let doc = doc_arg(env, args, 1, "doc")?;
    let names = strings_arg(env, arg(args, 2, "names")?, "names")?;
    let ids = store.read().named(doc, &names)?;
    ids_value(env, ids)
}

fn index_url_holders(env: Env, args: &[Value]) -> Result<Value> {
    let store = store_arg(env, args)?;
    let doc = doc_arg(env, args, 1, "doc")?;
    let urls = strings_arg(env, arg(args, 2, "urls")?, "urls")?;
    let holders = store.read().url_holders(doc, &urls)?;
    let values = holders
        .into_iter()
        .map(|h| h.map_or_else(|| env.number(-1.0), |id| env.number(f64::from(id))))
        .collect::<Result<Vec<_>>>()?;
    env.array(&values)
}

fn index_add_packages(env: Env, args: &[Value]) -> Result<Value> {
    let store = store_arg(env, args)?;
    let packages = env
        .get_array(arg(args, 1, "packages")?, "packages")?
        .into_iter()
        .map(|p| {
            Ok(index::NewPackage {
                manifest: env.get_bytes(env.need(p, "manifest", "package")?, "package.manifest")?,
                size: env.get_u64(env.need(p, "size", "package")?, "package.size")?,
                sha256: env.get_string(env.need(p, "sha256", "package")?, "package.sha256")?,
                url: env.get_string(env.need(p, "url", "package")?, "package.url")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let first = store.write().add_packages(&packages)?;
    env.number(first as f64)
}

fn index_check_active(env: Env, args: &[Value]) -> Result<Value> {
    let store = store_arg(env, args)?;
    let active = doc_arg(env, args, 1, "activeDoc")?;
    let archive = doc_arg(env, args, 2, "archiveDoc")?;
    env.promise(
        "peipkg.indexCheckActive",
        move || store.read().check_active(active, archive),
        |env, problems| {
            let values = problems.iter().map(|p| env.string(p)).collect::<Result<Vec<_>>>()?;
            env.array(&values)
        },
    )
}

fn index_arrange(env: Env, args: &[Value]) -> Result<Value> {
    let store = store_arg(env, args)?;
    let archive = env.get_u32_array(arg(args, 1, "archive")?, "archive")?;
    let active = env.get_u32_array(arg(args, 2, "active")?, "active")?;
    store.write().arrange(archive, active)?;
    env.undefined()
}

fn index_arrange_merged(env: Env, args: &[Value]) -> Result<Value> {
    let store = store_arg(env, args)?;
    let doc = opt_arg(env, args, 1)?.map(|v| env.get_u64(v, "doc")).transpose()?.map(|d| d as usize);
    let names = strings_arg(env, arg(args, 2, "names")?, "names")?;
    let ids = env.get_u32_array(arg(args, 3, "ids")?, "ids")?;
    let lengths = env.get_u32_array(arg(args, 4, "lengths")?, "lengths")?;
    if names.len() != lengths.len() || lengths.iter().map(|&l| l as usize).sum::<usize>() != ids.len() {
        return Err(Error::argument("names, ids and lengths do not describe the same groups"));
    }
    let mut rest = ids.as_slice();
    let groups = names
        .into_iter()
        .zip(lengths)
        .map(|(name, len)| {
            let (group, tail) = rest.split_at(len as usize);
            rest = tail;
            Group { name, ids: group.to_vec() }
        })
        .collect();
    let merged = store.write().arrange_merged(doc, groups)?;
    env.boolean(merged)
}

fn kind_arg(env: Env, v: Value) -> Result<Kind> {
    match env.get_string(v, "kind")?.as_str() {
        "active" => Ok(Kind::Active),
        "archive" => Ok(Kind::Archive),
        other => Err(Error::argument(format!("kind must be \"active\" or \"archive\", not {other:?}"))),
    }
}

fn index_write(env: Env, args: &[Value]) -> Result<Value> {
    let store = store_arg(env, args)?;
    let path = path_arg(env, args, 1, "path")?;
    let header = header_arg(env, arg(args, 2, "header")?)?;
    let kind = kind_arg(env, arg(args, 3, "kind")?)?;
    env.promise(
        "peipkg.indexWrite",
        move || store.read().write(&path, &header, kind),
        |env, (sha256, size)| {
            let o = env.object()?;
            env.set(o, "sha256", env.string(&hash::to_hex(&sha256))?)?;
            env.set(o, "size", env.number(size as f64)?)?;
            Ok(o)
        },
    )
}

fn index_write_site_script(env: Env, args: &[Value]) -> Result<Value> {
    let store = store_arg(env, args)?;
    let path = path_arg(env, args, 1, "path")?;
    let index_version = env.get_u64(arg(args, 2, "indexVersion")?, "indexVersion")? as i64;
    let generated_at = env.get_string(arg(args, 3, "generatedAt")?, "generatedAt")?;
    env.promise(
        "peipkg.indexWriteSiteScript",
        move || store.read().write_site_script(&path, index_version, &generated_at),
        |env, ()| env.undefined(),
    )
}

fn index_site_rows(env: Env, args: &[Value]) -> Result<Value> {
    let store = store_arg(env, args)?;
    let ids = env.get_u32_array(arg(args, 1, "ids")?, "ids")?;
    let active: std::collections::HashSet<u32> =
        env.get_u32_array(arg(args, 2, "activeIds")?, "activeIds")?.into_iter().collect();
    env.promise(
        "peipkg.indexSiteRows",
        move || {
            let rows = store.read().site_rows(&ids, &active)?;
            let columns = serde_json::to_string(&index::SITE_COLUMNS).map_err(|e| Error::argument(e.to_string()))?;
            let rows = String::from_utf8(rows).map_err(|_| Error::argument("site rows are not UTF-8"))?;
            Ok(format!("{{\"columns\":{columns},\"rows\":{rows}}}"))
        },
        |env, rows| env.string(&rows),
    )
}

// --- Ed25519 -------------------------------------------------------------------------------

fn signing_key_load(env: Env, args: &[Value]) -> Result<Value> {
    let path = path_arg(env, args, 0, "path")?;
    env.external(Arc::new(SigningKey::from_file(&path)?), &KEY_TAG)
}

fn signing_key_from_bytes(env: Env, args: &[Value]) -> Result<Value> {
    let bytes = env.get_bytes(arg(args, 0, "bytes")?, "bytes")?;
    env.external(Arc::new(SigningKey::from_bytes(&bytes, "key bytes")?), &KEY_TAG)
}

fn key_arg(env: Env, args: &[Value]) -> Result<Arc<SigningKey>> {
    env.get_external::<SigningKey>(arg(args, 0, "key")?, &KEY_TAG, "key", "a SigningKey")
}

fn public_key_value(env: Env, public: &[u8; 32]) -> Result<Value> {
    let o = env.object()?;
    env.set(o, "publicKey", env.buffer(public)?)?;
    env.set(o, "publicKeyPem", env.string(&ed25519::public_key_pem(public))?)?;
    env.set(o, "fingerprint", env.string(&ed25519::fingerprint(public))?)?;
    Ok(o)
}

fn signing_key_info(env: Env, args: &[Value]) -> Result<Value> {
    public_key_value(env, &key_arg(env, args)?.public_key())
}

fn ed25519_sign(env: Env, args: &[Value]) -> Result<Value> {
    let key = key_arg(env, args)?;
    let message = env.get_bytes(arg(args, 1, "message")?, "message")?;
    env.buffer(&key.sign(&message))
}

fn ed25519_verify(env: Env, args: &[Value]) -> Result<Value> {
    let public = ed25519::parse_public_key(&env.get_bytes(arg(args, 0, "publicKey")?, "publicKey")?, "publicKey")?;
    let message = env.get_bytes(arg(args, 1, "message")?, "message")?;
    let signature = env.get_bytes(arg(args, 2, "signature")?, "signature")?;
    env.boolean(ed25519::verify(&public, &message, &signature))
}

fn elf_sign(env: Env, args: &[Value]) -> Result<Value> {
    let path = path_arg(env, args, 0, "path")?;
    let key = env.get_external::<SigningKey>(arg(args, 1, "key")?, &KEY_TAG, "key", "a SigningKey")?;
    env.promise("peipkg.elfSign", move || crate::elf::sign(&path, &key), |env, ()| env.undefined())
}

fn elf_verify(env: Env, args: &[Value]) -> Result<Value> {
    let path = path_arg(env, args, 0, "path")?;
    let public = ed25519::parse_public_key(&env.get_bytes(arg(args, 1, "publicKey")?, "publicKey")?, "publicKey")?;
    env.promise("peipkg.elfVerify", move || crate::elf::verify(&path, &public), |env, ok| env.boolean(ok))
}

fn public_key_parse(env: Env, args: &[Value]) -> Result<Value> {
    let public = ed25519::parse_public_key(&env.get_bytes(arg(args, 0, "bytes")?, "bytes")?, "public key")?;
    public_key_value(env, &public)
}

// --- durable state -------------------------------------------------------------------------

fn dir_lock_try(env: Env, args: &[Value]) -> Result<Value> {
    let path = path_arg(env, args, 0, "path")?;
    env.external(Arc::new(DirLock::try_lock(&path)?), &LOCK_TAG)
}

fn dir_lock_wait(env: Env, args: &[Value]) -> Result<Value> {
    let path = path_arg(env, args, 0, "path")?;
    let timeout = Duration::from_millis(env.get_u64(arg(args, 1, "timeoutMs")?, "timeoutMs")?);
    env.promise(
        "peipkg.dirLockWait",
        move || DirLock::lock_within(&path, timeout),
        |env, lock| env.external(Arc::new(lock), &LOCK_TAG),
    )
}

fn lock_arg(env: Env, args: &[Value]) -> Result<Arc<DirLock>> {
    env.get_external::<DirLock>(arg(args, 0, "lock")?, &LOCK_TAG, "lock", "a DirLock")
}

fn dir_lock_release(env: Env, args: &[Value]) -> Result<Value> {
    lock_arg(env, args)?.release();
    env.undefined()
}

fn dir_lock_held(env: Env, args: &[Value]) -> Result<Value> {
    env.boolean(lock_arg(env, args)?.is_held())
}

fn rename_exchange(env: Env, args: &[Value]) -> Result<Value> {
    durable::exchange(&path_arg(env, args, 0, "a")?, &path_arg(env, args, 1, "b")?)?;
    env.undefined()
}

fn fsync_path(env: Env, args: &[Value]) -> Result<Value> {
    durable::fsync(Path::new(&path_arg(env, args, 0, "path")?))?;
    env.undefined()
}

fn remove_tree(env: Env, args: &[Value]) -> Result<Value> {
    let path = path_arg(env, args, 0, "path")?;
    env.promise("peipkg.removeTree", move || crate::remove::remove_tree(&path), |env, ()| env.undefined())
}

fn remove_tree_sync(env: Env, args: &[Value]) -> Result<Value> {
    crate::remove::remove_tree(&path_arg(env, args, 0, "path")?)?;
    env.undefined()
}

fn swapped_owner_view(env: Env, args: &[Value]) -> Result<Value> {
    let path = path_arg(env, args, 0, "path")?;
    let id = |i: usize, what: &str| -> Result<u32> {
        let v = env.get_u64(arg(args, i, what)?, what)?;
        u32::try_from(v).map_err(|_| Error::argument(format!("{what} is out of range")))
    };
    let view = crate::idmap::swapped_owner_view(&path, id(1, "uid")?, id(2, "gid")?)?;
    env.number(crate::ffi::sys::into_raw(view) as f64)
}
