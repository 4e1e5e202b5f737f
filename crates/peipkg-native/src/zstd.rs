//! Streaming zstd compression with worker threads, and bounded decompression.
//!
//! Output is a pure function of (input bytes, level, overlap log, job size, pledged size): libzstd's
//! multithreaded mode cuts jobs at fixed input offsets, so the number of workers and the sizes of
//! the writes do not change the bytes, as long as there is at least one worker (`nbWorkers = 0`
//! is a different, single-threaded encoder). There is never a content checksum.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Code, Error, Result};
use crate::ffi::zstd::{self as sys, CCtx, CParam, DCtx, EndDirective};
use crate::progress::Progress;

/// Writes smaller than this are gathered before they reach libzstd (tar headers are 512 bytes).
const STAGE: usize = 1 << 20;
/// zstd's own default decoder limit (128 MiB windows); the format recommends ≤ 8 MiB.
pub const DEFAULT_WINDOW_LOG_MAX: i32 = 27;

pub fn version() -> String {
    sys::version_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub level: i32,
    /// 0 lets libzstd choose; 1–9 sets `ZSTD_c_overlapLog`.
    pub overlap_log: i32,
    /// Bytes of input per job (`ZSTD_c_jobSize`): 0 lets libzstd choose (4 windows), else
    /// `JOB_SIZE_MIN..=JOB_SIZE_MAX`.
    pub job_size: u32,
    pub workers: u32,
}

pub const JOB_SIZE_MIN: u32 = 1 << 20;
pub const JOB_SIZE_MAX: u32 = 1 << 30;

impl Params {
    pub fn validate(&self) -> Result<()> {
        if !(1..=22).contains(&self.level) {
            return Err(Error::argument(format!("zstd level must be 1–22, got {}", self.level)));
        }
        if !(0..=9).contains(&self.overlap_log) {
            return Err(Error::argument(format!("zstd overlap log must be 0–9, got {}", self.overlap_log)));
        }
        if self.job_size != 0 && !(JOB_SIZE_MIN..=JOB_SIZE_MAX).contains(&self.job_size) {
            return Err(Error::argument(format!(
                "zstd job size must be 0 or {JOB_SIZE_MIN}–{JOB_SIZE_MAX} bytes, got {}",
                self.job_size
            )));
        }
        if !(1..=200).contains(&self.workers) {
            return Err(Error::argument(format!("zstd workers must be 1–200, got {}", self.workers)));
        }
        Ok(())
    }
}

/// A zstd frame written to `out` as data arrives.
pub struct Encoder<W: Write> {
    cctx: CCtx,
    out: W,
    out_path: PathBuf,
    out_buf: Vec<u8>,
    stage: Vec<u8>,
    bytes_in: u64,
    bytes_out: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Totals {
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl<W: Write> Encoder<W> {
    /// `out_path` names the destination in error messages. `pledged` is the exact input size when
    /// known: it is written into the frame header and lets libzstd size its tables.
    pub fn new(out: W, out_path: &Path, params: &Params, pledged: Option<u64>) -> Result<Self> {
        params.validate()?;
        let mut cctx = CCtx::new()?;
        cctx.set(CParam::CompressionLevel, params.level)?;
        cctx.set(CParam::ChecksumFlag, 0)?;
        cctx.set(CParam::ContentSizeFlag, 1)?;
        cctx.set(CParam::NbWorkers, params.workers as i32)?;
        if params.overlap_log != 0 {
            cctx.set(CParam::OverlapLog, params.overlap_log)?;
        }
        if params.job_size != 0 {
            cctx.set(CParam::JobSize, params.job_size as i32)?;
        }
        if let Some(size) = pledged {
            cctx.set_pledged_src_size(size)?;
        }
        Ok(Encoder {
            cctx,
            out,
            out_path: out_path.to_path_buf(),
            out_buf: vec![0u8; sys::compress_out_size()],
            stage: Vec::with_capacity(STAGE),
            bytes_in: 0,
            bytes_out: 0,
        })
    }

    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        if self.stage.len() + data.len() <= STAGE {
            self.stage.extend_from_slice(data);
            return Ok(());
        }
        self.flush_stage()?;
        if data.len() >= STAGE {
            self.compress(data, EndDirective::Continue)
        } else {
            self.stage.extend_from_slice(data);
            Ok(())
        }
    }

    fn flush_stage(&mut self) -> Result<()> {
        let stage = std::mem::take(&mut self.stage);
        let r = self.compress(&stage, EndDirective::Continue);
        self.stage = stage;
        self.stage.clear();
        r
    }

    fn compress(&mut self, data: &[u8], end: EndDirective) -> Result<()> {
        let mut in_pos = 0;
        loop {
            let mut out_pos = 0;
            let remaining = self.cctx.compress_stream2(&mut self.out_buf, &mut out_pos, data, &mut in_pos, end)?;
            if out_pos > 0 {
                self.out.write_all(&self.out_buf[..out_pos]).map_err(|e| Error::io("write", &self.out_path, e))?;
                self.bytes_out += out_pos as u64;
            }
            let done = match end {
                EndDirective::Continue => in_pos == data.len(),
                EndDirective::End => remaining == 0,
            };
            if done {
                break;
            }
        }
        self.bytes_in += data.len() as u64;
        Ok(())
    }

    /// Ends the frame and flushes `out`. The last staged bytes go in with `ZSTD_e_continue` and
    /// the frame is ended with no input: given input with `ZSTD_e_end` that its buffer cannot take
    /// at once, libzstd flushes what it holds as a short job, which moves the job boundaries with
    /// the write sizes and the timing of the workers, and so changes the output bytes.
    pub fn finish(mut self) -> Result<(W, Totals)> {
        self.flush_stage()?;
        self.compress(&[], EndDirective::End)?;
        self.out.flush().map_err(|e| Error::io("write", &self.out_path, e))?;
        Ok((self.out, Totals { bytes_in: self.bytes_in, bytes_out: self.bytes_out }))
    }
}

fn create_output(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| Error::io("create", path, e))
}

/// Compresses the file `input` into a new file `output` (which must not exist).
pub fn compress_file(input: &Path, output: &Path, params: &Params, progress: Option<&Progress>) -> Result<Totals> {
    let mut src = File::open(input).map_err(|e| Error::io("open", input, e))?;
    let size = src.metadata().map_err(|e| Error::io("stat", input, e))?.len();
    let dst = create_output(output)?;
    let result = (|| {
        let mut enc = Encoder::new(std::io::BufWriter::new(dst), output, params, Some(size))?;
        let mut buf = vec![0u8; STAGE];
        loop {
            let n = src.read(&mut buf).map_err(|e| Error::io("read", input, e))?;
            if n == 0 {
                break;
            }
            enc.write(&buf[..n])?;
            if let Some(p) = progress {
                p.add_bytes(n as u64);
            }
        }
        let (_, totals) = enc.finish()?;
        if totals.bytes_in != size {
            return Err(Error::at(
                Code::Changed,
                input,
                format!("{} changed size while it was compressed", input.display()),
            ));
        }
        Ok(totals)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(output);
    }
    result
}

/// A reader that decompresses every zstd frame of `input` and refuses (with `Code::Limit`) to
/// produce more than `max_out` bytes: the bound is checked on every chunk, before it is returned.
pub struct Decoder<R: Read> {
    dctx: DCtx,
    input: R,
    label: PathBuf,
    in_buf: Vec<u8>,
    in_pos: usize,
    in_len: usize,
    input_done: bool,
    frame_open: bool,
    max_out: u64,
    produced: u64,
    consumed: u64,
}

/// Wraps a core error so it can travel through `std::io::Read`; `unwrap_io` takes it out again.
fn wrap(e: Error) -> io::Error {
    io::Error::other(e)
}

/// The core error inside an I/O error from a `Decoder` (or a plain I/O error, described as `action path`).
pub fn unwrap_io(e: io::Error, action: &str, path: &Path) -> Error {
    if e.get_ref().map(|inner| inner.is::<Error>()).unwrap_or(false) {
        return *e.into_inner().expect("checked above").downcast::<Error>().expect("checked above");
    }
    Error::io(action, path, e)
}

impl<R: Read> Decoder<R> {
    pub fn new(input: R, max_out: u64, window_log_max: i32, label: &Path) -> Result<Self> {
        Ok(Decoder {
            dctx: DCtx::new(window_log_max)?,
            input,
            label: label.to_path_buf(),
            in_buf: vec![0u8; 1 << 17],
            in_pos: 0,
            in_len: 0,
            input_done: false,
            frame_open: false,
            max_out,
            produced: 0,
            consumed: 0,
        })
    }

    pub fn totals(&self) -> Totals {
        Totals { bytes_in: self.consumed, bytes_out: self.produced }
    }

    fn account(&mut self, n: usize) -> io::Result<usize> {
        self.produced += n as u64;
        if self.produced > self.max_out {
            return Err(wrap(Error::new(
                Code::Limit,
                format!("{}: decompressed data exceeds the limit of {} bytes", self.label.display(), self.max_out),
            )));
        }
        Ok(n)
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.in_pos == self.in_len && !self.input_done {
                let n = loop {
                    match self.input.read(&mut self.in_buf) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        other => break other?,
                    }
                };
                self.in_pos = 0;
                self.in_len = n;
                self.consumed += n as u64;
                self.input_done = n == 0;
            }
            let mut out_pos = 0;
            let mut used = 0;
            let hint = self
                .dctx
                .decompress_stream(buf, &mut out_pos, &self.in_buf[self.in_pos..self.in_len], &mut used)
                .map_err(|e| wrap(Error::new(e.code, format!("{}: {}", self.label.display(), e.message))))?;
            self.in_pos += used;
            if out_pos > 0 || used > 0 {
                self.frame_open = hint != 0;
            }
            if out_pos > 0 {
                return self.account(out_pos);
            }
            if self.input_done && self.in_pos == self.in_len {
                let problem = if self.consumed == 0 {
                    "empty input is not a zstd frame"
                } else if self.frame_open {
                    "truncated zstd frame"
                } else {
                    return Ok(0);
                };
                return Err(wrap(Error::new(Code::Zstd, format!("{}: {problem}", self.label.display()))));
            }
        }
    }
}

/// Decompresses `input` into `out` under the `max_out` bound.
pub fn decompress(
    input: impl Read,
    out: &mut impl Write,
    max_out: u64,
    window_log_max: i32,
    label: &Path,
) -> Result<Totals> {
    let mut decoder = Decoder::new(input, max_out, window_log_max, label)?;
    let mut buf = vec![0u8; sys::decompress_out_size()];
    loop {
        let n = decoder.read(&mut buf).map_err(|e| unwrap_io(e, "read", label))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(|e| Error::io("write", label, e))?;
    }
    out.flush().map_err(|e| Error::io("write", label, e))?;
    Ok(decoder.totals())
}

pub fn decompress_file(input: &Path, output: &Path, max_out: u64, window_log_max: i32) -> Result<Totals> {
    let src = File::open(input).map_err(|e| Error::io("open", input, e))?;
    let mut dst = std::io::BufWriter::new(create_output(output)?);
    let result = decompress(src, &mut dst, max_out, window_log_max, input);
    drop(dst);
    if result.is_err() {
        let _ = std::fs::remove_file(output);
    }
    result
}

pub fn decompress_bytes(input: &[u8], max_out: u64, window_log_max: i32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decompress(input, &mut out, max_out, window_log_max, Path::new("<buffer>"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivial: a xorshift stream over a small alphabet.
        let mut x: u64 = 0x9e3779b97f4a7c15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"abcdefgh \n"[(x % 10) as usize]
            })
            .collect()
    }

    fn compress_with(data: &[u8], workers: u32, chunk: usize) -> Vec<u8> {
        compress_jobs(data, 0, workers, chunk)
    }

    fn compress_jobs(data: &[u8], job_size: u32, workers: u32, chunk: usize) -> Vec<u8> {
        let params = Params { level: 10, overlap_log: 9, job_size, workers };
        let mut enc = Encoder::new(Vec::new(), Path::new("<mem>"), &params, Some(data.len() as u64)).unwrap();
        for c in data.chunks(chunk) {
            enc.write(c).unwrap();
        }
        enc.finish().unwrap().0
    }

    #[test]
    fn bytes_do_not_depend_on_workers_or_write_sizes() {
        // Level 10 cuts 16 MiB jobs: 40 MiB makes three, so workers really run in parallel.
        let data = sample(40 << 20);
        let reference = compress_with(&data, 1, 1 << 20);
        for (workers, chunk) in [(2, 512), (4, 3 << 20), (3, 65_537)] {
            assert_eq!(compress_with(&data, workers, chunk), reference, "workers={workers} chunk={chunk}");
        }
        assert_eq!(decompress_bytes(&reference, data.len() as u64, DEFAULT_WINDOW_LOG_MAX).unwrap(), data);
    }

    #[test]
    fn a_set_job_size_cuts_other_jobs_and_still_does_not_depend_on_workers() {
        let data = sample(40 << 20);
        let reference = compress_jobs(&data, 8 << 20, 1, 1 << 20);
        for workers in [2, 3] {
            assert_eq!(compress_jobs(&data, 8 << 20, workers, 65_537), reference, "workers={workers}");
        }
        assert_ne!(compress_with(&data, 2, 1 << 20), reference, "the job size took effect");
        assert_eq!(decompress_bytes(&reference, u64::MAX, DEFAULT_WINDOW_LOG_MAX).unwrap(), data);
    }

    #[test]
    fn job_sizes_outside_libzstds_range_are_refused() {
        for job_size in [1, JOB_SIZE_MIN - 1, JOB_SIZE_MAX + 1] {
            let params = Params { level: 10, overlap_log: 9, job_size, workers: 1 };
            assert!(params.validate().is_err(), "{job_size}");
        }
    }

    #[test]
    fn bounded_decompression_refuses_more() {
        let data = sample(1 << 20);
        let z = compress_with(&data, 1, 4096);
        let e = decompress_bytes(&z, (1 << 20) - 1, DEFAULT_WINDOW_LOG_MAX).unwrap_err();
        assert_eq!(e.code, Code::Limit);
        assert!(decompress_bytes(&z[..z.len() - 3], 1 << 21, DEFAULT_WINDOW_LOG_MAX).is_err());
        assert!(decompress_bytes(b"not zstd at all", 1 << 21, DEFAULT_WINDOW_LOG_MAX).is_err());
    }

    #[test]
    fn no_checksum_and_content_size_present() {
        let z = compress_with(b"hello", 1, 4096);
        assert_eq!(&z[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        let fhd = z[4];
        assert_eq!(fhd & 0x04, 0, "checksum flag must be off");
        let single_segment = fhd & 0x20 != 0;
        assert!(fhd >> 6 != 0 || single_segment, "content size must be present when pledged");
    }
}
