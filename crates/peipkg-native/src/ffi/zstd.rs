//! Safe handles over the bundled libzstd's streaming API (the few functions the core needs,
//! declared by hand instead of through bindgen). Values are from `zstd.h` 1.5.4.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::NonNull;

use crate::error::{Code, Error, Result};

#[repr(C)]
struct InBuffer {
    src: *const c_void,
    size: usize,
    pos: usize,
}

#[repr(C)]
struct OutBuffer {
    dst: *mut c_void,
    size: usize,
    pos: usize,
}

extern "C" {
    fn ZSTD_versionString() -> *const c_char;
    fn ZSTD_isError(code: usize) -> u32;
    fn ZSTD_getErrorName(code: usize) -> *const c_char;
    fn ZSTD_CStreamOutSize() -> usize;
    fn ZSTD_DStreamOutSize() -> usize;
    fn ZSTD_createCCtx() -> *mut c_void;
    fn ZSTD_freeCCtx(cctx: *mut c_void) -> usize;
    fn ZSTD_CCtx_setParameter(cctx: *mut c_void, param: c_int, value: c_int) -> usize;
    fn ZSTD_CCtx_setPledgedSrcSize(cctx: *mut c_void, size: u64) -> usize;
    fn ZSTD_compressStream2(cctx: *mut c_void, out: *mut OutBuffer, input: *mut InBuffer, end: c_int) -> usize;
    fn ZSTD_createDCtx() -> *mut c_void;
    fn ZSTD_freeDCtx(dctx: *mut c_void) -> usize;
    fn ZSTD_DCtx_setParameter(dctx: *mut c_void, param: c_int, value: c_int) -> usize;
    fn ZSTD_decompressStream(dctx: *mut c_void, out: *mut OutBuffer, input: *mut InBuffer) -> usize;
}

/// `ZSTD_cParameter` values used by the core.
#[derive(Clone, Copy, Debug)]
pub enum CParam {
    CompressionLevel = 100,
    ContentSizeFlag = 200,
    ChecksumFlag = 201,
    NbWorkers = 400,
    JobSize = 401,
    OverlapLog = 402,
}

const D_WINDOW_LOG_MAX: c_int = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndDirective {
    Continue = 0,
    End = 2,
}

pub fn version_string() -> String {
    // SAFETY: returns a pointer to a static NUL-terminated string inside the library.
    unsafe { CStr::from_ptr(ZSTD_versionString()) }.to_string_lossy().into_owned()
}

pub fn compress_out_size() -> usize {
    // SAFETY: pure function without arguments.
    unsafe { ZSTD_CStreamOutSize() }
}

pub fn decompress_out_size() -> usize {
    // SAFETY: pure function without arguments.
    unsafe { ZSTD_DStreamOutSize() }
}

fn check(ret: usize, what: &str) -> Result<usize> {
    // SAFETY: ZSTD_isError/ZSTD_getErrorName accept any value and return a static string.
    if unsafe { ZSTD_isError(ret) } != 0 {
        let name = unsafe { CStr::from_ptr(ZSTD_getErrorName(ret)) }.to_string_lossy();
        return Err(Error::new(Code::Zstd, format!("{what}: {name}")));
    }
    Ok(ret)
}

/// A compression context. Owned by one thread at a time; libzstd's own workers are internal to it.
pub struct CCtx(NonNull<c_void>);

// SAFETY: a ZSTD_CCtx may be used from any thread as long as calls are not concurrent; `&mut self`
// on every call guarantees that.
unsafe impl Send for CCtx {}

impl CCtx {
    pub fn new() -> Result<CCtx> {
        // SAFETY: allocation only; null means out of memory.
        NonNull::new(unsafe { ZSTD_createCCtx() })
            .map(CCtx)
            .ok_or_else(|| Error::new(Code::Zstd, "zstd: cannot allocate a compression context"))
    }

    pub fn set(&mut self, param: CParam, value: i32) -> Result<()> {
        // SAFETY: self.0 is a live context; parameters are validated by libzstd.
        let ret = unsafe { ZSTD_CCtx_setParameter(self.0.as_ptr(), param as c_int, value) };
        check(ret, &format!("zstd parameter {param:?}={value}")).map(|_| ())
    }

    pub fn set_pledged_src_size(&mut self, size: u64) -> Result<()> {
        // SAFETY: self.0 is a live context.
        check(unsafe { ZSTD_CCtx_setPledgedSrcSize(self.0.as_ptr(), size) }, "zstd pledged size").map(|_| ())
    }

    /// One `ZSTD_compressStream2` step. Advances `*in_pos` and `*out_pos`; returns the hint
    /// libzstd gives (0 once a frame is completely flushed with `End`).
    pub fn compress_stream2(
        &mut self,
        out: &mut [u8],
        out_pos: &mut usize,
        input: &[u8],
        in_pos: &mut usize,
        end: EndDirective,
    ) -> Result<usize> {
        let mut ob = OutBuffer { dst: out.as_mut_ptr().cast(), size: out.len(), pos: *out_pos };
        let mut ib = InBuffer { src: input.as_ptr().cast(), size: input.len(), pos: *in_pos };
        // SAFETY: both buffers describe live slices for the duration of the call; libzstd keeps
        // pos <= size and copies input it needs later into its own buffers.
        let ret = unsafe { ZSTD_compressStream2(self.0.as_ptr(), &mut ob, &mut ib, end as c_int) };
        *out_pos = ob.pos;
        *in_pos = ib.pos;
        check(ret, "zstd compression")
    }
}

impl Drop for CCtx {
    fn drop(&mut self) {
        // SAFETY: created by ZSTD_createCCtx and freed exactly once.
        unsafe { ZSTD_freeCCtx(self.0.as_ptr()) };
    }
}

/// A decompression context.
pub struct DCtx(NonNull<c_void>);

// SAFETY: as for CCtx.
unsafe impl Send for DCtx {}

impl DCtx {
    pub fn new(window_log_max: i32) -> Result<DCtx> {
        // SAFETY: allocation only.
        let d = NonNull::new(unsafe { ZSTD_createDCtx() })
            .map(DCtx)
            .ok_or_else(|| Error::new(Code::Zstd, "zstd: cannot allocate a decompression context"))?;
        // SAFETY: live context.
        check(unsafe { ZSTD_DCtx_setParameter(d.0.as_ptr(), D_WINDOW_LOG_MAX, window_log_max) }, "zstd windowLogMax")?;
        Ok(d)
    }

    /// One `ZSTD_decompressStream` step; returns 0 when a frame is complete.
    pub fn decompress_stream(
        &mut self,
        out: &mut [u8],
        out_pos: &mut usize,
        input: &[u8],
        in_pos: &mut usize,
    ) -> Result<usize> {
        let mut ob = OutBuffer { dst: out.as_mut_ptr().cast(), size: out.len(), pos: *out_pos };
        let mut ib = InBuffer { src: input.as_ptr().cast(), size: input.len(), pos: *in_pos };
        // SAFETY: as in CCtx::compress_stream2.
        let ret = unsafe { ZSTD_decompressStream(self.0.as_ptr(), &mut ob, &mut ib) };
        *out_pos = ob.pos;
        *in_pos = ib.pos;
        check(ret, "zstd decompression")
    }
}

impl Drop for DCtx {
    fn drop(&mut self) {
        // SAFETY: created by ZSTD_createDCtx and freed exactly once.
        unsafe { ZSTD_freeDCtx(self.0.as_ptr()) };
    }
}
