//! A thin, hand-written Node-API layer (the `napi` crate is not packaged in Debian).
//!
//! Everything JavaScript-facing goes through `Env`: argument conversion that checks types before
//! touching them (Node 18 aborts on `napi_get_buffer_info` with a non-Buffer), typed externals
//! guarded by type tags, Promises backed by libuv's pool, and errors that become JS `Error`s with
//! `code`, `path` and `osError`. Every entry point runs inside `catch_unwind`, so a Rust panic
//! becomes an exception instead of killing the process.

#![allow(non_camel_case_types)]

use std::any::Any;
use std::ffi::{c_char, c_int, c_void};
use std::panic::{self, AssertUnwindSafe};
use std::ptr::null_mut;
use std::sync::{Arc, Once};

use crate::error::{Code, Error, Result};

type napi_env = *mut c_void;
type napi_value = *mut c_void;
type napi_callback_info = *mut c_void;
type napi_deferred = *mut c_void;
type napi_async_work = *mut c_void;
type napi_status = c_int;
type napi_callback = unsafe extern "C" fn(napi_env, napi_callback_info) -> napi_value;
type napi_finalize = unsafe extern "C" fn(napi_env, *mut c_void, *mut c_void);
type napi_async_execute = unsafe extern "C" fn(napi_env, *mut c_void);
type napi_async_complete = unsafe extern "C" fn(napi_env, napi_status, *mut c_void);

const NAPI_OK: napi_status = 0;
const NAPI_PENDING_EXCEPTION: napi_status = 10;

#[repr(C)]
pub struct TypeTag {
    lower: u64,
    upper: u64,
}

impl TypeTag {
    pub const fn new(lower: u64, upper: u64) -> TypeTag {
        TypeTag { lower, upper }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    Undefined,
    Null,
    Boolean,
    Number,
    String,
    Symbol,
    Object,
    Function,
    External,
    BigInt,
}

impl ValueType {
    fn from_raw(raw: c_int) -> ValueType {
        match raw {
            0 => ValueType::Undefined,
            1 => ValueType::Null,
            2 => ValueType::Boolean,
            3 => ValueType::Number,
            4 => ValueType::String,
            5 => ValueType::Symbol,
            6 => ValueType::Object,
            7 => ValueType::Function,
            8 => ValueType::External,
            _ => ValueType::BigInt,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            ValueType::Undefined => "undefined",
            ValueType::Null => "null",
            ValueType::Boolean => "a boolean",
            ValueType::Number => "a number",
            ValueType::String => "a string",
            ValueType::Symbol => "a symbol",
            ValueType::Object => "an object",
            ValueType::Function => "a function",
            ValueType::External => "a native handle",
            ValueType::BigInt => "a bigint",
        }
    }
}

extern "C" {
    fn napi_get_cb_info(
        env: napi_env,
        info: napi_callback_info,
        argc: *mut usize,
        argv: *mut napi_value,
        this: *mut napi_value,
        data: *mut *mut c_void,
    ) -> napi_status;
    fn napi_create_function(
        env: napi_env,
        name: *const c_char,
        len: usize,
        cb: napi_callback,
        data: *mut c_void,
        result: *mut napi_value,
    ) -> napi_status;
    fn napi_set_named_property(
        env: napi_env,
        object: napi_value,
        name: *const c_char,
        value: napi_value,
    ) -> napi_status;
    fn napi_get_named_property(
        env: napi_env,
        object: napi_value,
        name: *const c_char,
        result: *mut napi_value,
    ) -> napi_status;
    fn napi_create_object(env: napi_env, result: *mut napi_value) -> napi_status;
    fn napi_create_array_with_length(env: napi_env, len: usize, result: *mut napi_value) -> napi_status;
    fn napi_set_element(env: napi_env, array: napi_value, index: u32, value: napi_value) -> napi_status;
    fn napi_get_element(env: napi_env, array: napi_value, index: u32, result: *mut napi_value) -> napi_status;
    fn napi_get_array_length(env: napi_env, array: napi_value, result: *mut u32) -> napi_status;
    fn napi_is_array(env: napi_env, value: napi_value, result: *mut bool) -> napi_status;
    fn napi_typeof(env: napi_env, value: napi_value, result: *mut c_int) -> napi_status;
    fn napi_get_value_string_utf8(
        env: napi_env,
        value: napi_value,
        buf: *mut c_char,
        bufsize: usize,
        result: *mut usize,
    ) -> napi_status;
    fn napi_create_string_utf8(env: napi_env, s: *const c_char, len: usize, result: *mut napi_value) -> napi_status;
    fn napi_get_value_double(env: napi_env, value: napi_value, result: *mut f64) -> napi_status;
    fn napi_create_double(env: napi_env, value: f64, result: *mut napi_value) -> napi_status;
    fn napi_get_value_bool(env: napi_env, value: napi_value, result: *mut bool) -> napi_status;
    fn napi_get_boolean(env: napi_env, value: bool, result: *mut napi_value) -> napi_status;
    fn napi_get_undefined(env: napi_env, result: *mut napi_value) -> napi_status;
    fn napi_is_buffer(env: napi_env, value: napi_value, result: *mut bool) -> napi_status;
    fn napi_is_typedarray(env: napi_env, value: napi_value, result: *mut bool) -> napi_status;
    fn napi_get_typedarray_info(
        env: napi_env,
        value: napi_value,
        kind: *mut c_int,
        length: *mut usize,
        data: *mut *mut c_void,
        buffer: *mut napi_value,
        offset: *mut usize,
    ) -> napi_status;
    fn napi_get_buffer_info(env: napi_env, value: napi_value, data: *mut *mut c_void, len: *mut usize) -> napi_status;
    fn napi_create_buffer_copy(
        env: napi_env,
        len: usize,
        data: *const c_void,
        result_data: *mut *mut c_void,
        result: *mut napi_value,
    ) -> napi_status;
    fn napi_create_external(
        env: napi_env,
        data: *mut c_void,
        finalize: napi_finalize,
        hint: *mut c_void,
        result: *mut napi_value,
    ) -> napi_status;
    fn napi_get_value_external(env: napi_env, value: napi_value, result: *mut *mut c_void) -> napi_status;
    fn napi_type_tag_object(env: napi_env, value: napi_value, tag: *const TypeTag) -> napi_status;
    fn napi_check_object_type_tag(
        env: napi_env,
        value: napi_value,
        tag: *const TypeTag,
        result: *mut bool,
    ) -> napi_status;
    fn napi_create_error(env: napi_env, code: napi_value, msg: napi_value, result: *mut napi_value) -> napi_status;
    fn napi_throw(env: napi_env, error: napi_value) -> napi_status;
    fn napi_is_exception_pending(env: napi_env, result: *mut bool) -> napi_status;
    fn napi_get_and_clear_last_exception(env: napi_env, result: *mut napi_value) -> napi_status;
    fn napi_create_promise(env: napi_env, deferred: *mut napi_deferred, promise: *mut napi_value) -> napi_status;
    fn napi_resolve_deferred(env: napi_env, deferred: napi_deferred, value: napi_value) -> napi_status;
    fn napi_reject_deferred(env: napi_env, deferred: napi_deferred, value: napi_value) -> napi_status;
    fn napi_create_async_work(
        env: napi_env,
        resource: napi_value,
        name: napi_value,
        execute: napi_async_execute,
        complete: napi_async_complete,
        data: *mut c_void,
        result: *mut napi_async_work,
    ) -> napi_status;
    fn napi_queue_async_work(env: napi_env, work: napi_async_work) -> napi_status;
    fn napi_delete_async_work(env: napi_env, work: napi_async_work) -> napi_status;
}

/// A JavaScript value, valid only during the call (or completion) that produced it.
#[derive(Clone, Copy)]
pub struct Value(napi_value);

/// The Node-API environment of the current call.
#[derive(Clone, Copy)]
pub struct Env(napi_env);

/// An exported function: receives the call's arguments, returns a value or an error to throw.
pub type Callback = fn(Env, &[Value]) -> Result<Value>;

const MAX_ARGS: usize = 8;

fn status(s: napi_status, what: &str) -> Result<()> {
    if s == NAPI_OK {
        Ok(())
    } else if s == NAPI_PENDING_EXCEPTION {
        Err(Error::new(Code::Argument, format!("{what}: a JavaScript exception is pending")))
    } else {
        Err(Error::new(Code::Argument, format!("{what}: Node-API status {s}")))
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> Error {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    Error::new(Code::Panic, format!("internal error in peipkg-native (this is a bug): {text}"))
}

impl Env {
    pub fn type_of(self, v: Value) -> Result<ValueType> {
        let mut t: c_int = 0;
        // SAFETY: env and value come from the current call.
        status(unsafe { napi_typeof(self.0, v.0, &mut t) }, "typeof")?;
        Ok(ValueType::from_raw(t))
    }

    fn expect(self, v: Value, want: ValueType, what: &str, described: &str) -> Result<()> {
        let got = self.type_of(v)?;
        if got != want {
            return Err(Error::argument(format!("{what} must be {described}, got {}", got.describe())));
        }
        Ok(())
    }

    pub fn is_nullish(self, v: Value) -> Result<bool> {
        Ok(matches!(self.type_of(v)?, ValueType::Undefined | ValueType::Null))
    }

    pub fn get_string(self, v: Value, what: &str) -> Result<String> {
        self.expect(v, ValueType::String, what, "a string")?;
        let mut len = 0usize;
        // SAFETY: a null buffer asks for the length in bytes.
        status(unsafe { napi_get_value_string_utf8(self.0, v.0, null_mut(), 0, &mut len) }, what)?;
        let mut buf = vec![0u8; len + 1];
        let mut written = 0usize;
        // SAFETY: buf has len + 1 bytes, room for the NUL terminator napi writes.
        status(
            unsafe { napi_get_value_string_utf8(self.0, v.0, buf.as_mut_ptr().cast(), buf.len(), &mut written) },
            what,
        )?;
        buf.truncate(written);
        String::from_utf8(buf).map_err(|_| Error::argument(format!("{what} is not valid UTF-8")))
    }

    pub fn get_f64(self, v: Value, what: &str) -> Result<f64> {
        self.expect(v, ValueType::Number, what, "a number")?;
        let mut n = 0f64;
        // SAFETY: v is a number (checked above).
        status(unsafe { napi_get_value_double(self.0, v.0, &mut n) }, what)?;
        Ok(n)
    }

    /// A non-negative integer that a double represents exactly (≤ 2^53).
    pub fn get_u64(self, v: Value, what: &str) -> Result<u64> {
        let n = self.get_f64(v, what)?;
        if !(n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_992.0) {
            return Err(Error::argument(format!("{what} must be a non-negative integer, got {n}")));
        }
        Ok(n as u64)
    }

    pub fn get_bool(self, v: Value, what: &str) -> Result<bool> {
        self.expect(v, ValueType::Boolean, what, "a boolean")?;
        let mut b = false;
        // SAFETY: v is a boolean (checked above).
        status(unsafe { napi_get_value_bool(self.0, v.0, &mut b) }, what)?;
        Ok(b)
    }

    /// Copies a Buffer (or any ArrayBufferView) into Rust memory, so async work never touches JS memory.
    pub fn get_bytes(self, v: Value, what: &str) -> Result<Vec<u8>> {
        let mut is_buf = false;
        // SAFETY: napi_is_buffer accepts any value.
        status(unsafe { napi_is_buffer(self.0, v.0, &mut is_buf) }, what)?;
        if !is_buf {
            return Err(Error::argument(format!("{what} must be a Buffer, got {}", self.type_of(v)?.describe())));
        }
        let (mut data, mut len) = (null_mut::<c_void>(), 0usize);
        // SAFETY: v is a buffer (checked above); data/len describe its bytes for this call.
        status(unsafe { napi_get_buffer_info(self.0, v.0, &mut data, &mut len) }, what)?;
        if len == 0 || data.is_null() {
            return Ok(Vec::new());
        }
        // SAFETY: data points at len readable bytes while this call runs.
        Ok(unsafe { std::slice::from_raw_parts(data as *const u8, len) }.to_vec())
    }

    /// Copies a `Uint32Array`.
    pub fn get_u32_array(self, v: Value, what: &str) -> Result<Vec<u32>> {
        const UINT32_ARRAY: c_int = 6;
        let mut is_typed = false;
        // SAFETY: napi_is_typedarray accepts any value.
        status(unsafe { napi_is_typedarray(self.0, v.0, &mut is_typed) }, what)?;
        let (mut kind, mut len, mut data, mut buffer, mut offset) =
            (0, 0usize, null_mut::<c_void>(), null_mut(), 0usize);
        if is_typed {
            // SAFETY: v is a typed array (checked above); the out-pointers are valid.
            status(
                unsafe {
                    napi_get_typedarray_info(self.0, v.0, &mut kind, &mut len, &mut data, &mut buffer, &mut offset)
                },
                what,
            )?;
        }
        if !is_typed || kind != UINT32_ARRAY {
            return Err(Error::argument(format!("{what} must be a Uint32Array")));
        }
        if len == 0 || data.is_null() {
            return Ok(Vec::new());
        }
        // SAFETY: data points at `len` u32 elements of the array's buffer during this call.
        Ok(unsafe { std::slice::from_raw_parts(data as *const u32, len) }.to_vec())
    }

    /// A property of an object; `None` when it is `undefined` (absent).
    pub fn get(self, obj: Value, key: &str, what: &str) -> Result<Option<Value>> {
        self.expect(obj, ValueType::Object, what, "an object")?;
        let name = std::ffi::CString::new(key).map_err(|_| Error::argument("property name contains NUL"))?;
        let mut out = null_mut();
        // SAFETY: obj is an object; name is a valid C string.
        status(unsafe { napi_get_named_property(self.0, obj.0, name.as_ptr(), &mut out) }, what)?;
        let v = Value(out);
        Ok(if self.type_of(v)? == ValueType::Undefined { None } else { Some(v) })
    }

    /// A required property.
    pub fn need(self, obj: Value, key: &str, what: &str) -> Result<Value> {
        self.get(obj, key, what)?.ok_or_else(|| Error::argument(format!("{what}.{key} is required")))
    }

    pub fn get_array(self, v: Value, what: &str) -> Result<Vec<Value>> {
        let mut is_array = false;
        // SAFETY: napi_is_array accepts any value.
        status(unsafe { napi_is_array(self.0, v.0, &mut is_array) }, what)?;
        if !is_array {
            return Err(Error::argument(format!("{what} must be an array, got {}", self.type_of(v)?.describe())));
        }
        let mut len = 0u32;
        // SAFETY: v is an array.
        status(unsafe { napi_get_array_length(self.0, v.0, &mut len) }, what)?;
        (0..len)
            .map(|i| {
                let mut out = null_mut();
                // SAFETY: v is an array and i < its length.
                status(unsafe { napi_get_element(self.0, v.0, i, &mut out) }, what)?;
                Ok(Value(out))
            })
            .collect()
    }

    pub fn string(self, s: &str) -> Result<Value> {
        let mut out = null_mut();
        // SAFETY: s is valid UTF-8 of the given length.
        status(unsafe { napi_create_string_utf8(self.0, s.as_ptr().cast(), s.len(), &mut out) }, "create string")?;
        Ok(Value(out))
    }

    pub fn number(self, n: f64) -> Result<Value> {
        let mut out = null_mut();
        // SAFETY: plain value creation.
        status(unsafe { napi_create_double(self.0, n, &mut out) }, "create number")?;
        Ok(Value(out))
    }

    pub fn boolean(self, b: bool) -> Result<Value> {
        let mut out = null_mut();
        // SAFETY: plain value creation.
        status(unsafe { napi_get_boolean(self.0, b, &mut out) }, "create boolean")?;
        Ok(Value(out))
    }

    pub fn undefined(self) -> Result<Value> {
        let mut out = null_mut();
        // SAFETY: plain value lookup.
        status(unsafe { napi_get_undefined(self.0, &mut out) }, "undefined")?;
        Ok(Value(out))
    }

    pub fn buffer(self, bytes: &[u8]) -> Result<Value> {
        let (mut out, mut data) = (null_mut(), null_mut());
        // SAFETY: napi copies len bytes from the slice into a new Buffer.
        status(
            unsafe { napi_create_buffer_copy(self.0, bytes.len(), bytes.as_ptr().cast(), &mut data, &mut out) },
            "create buffer",
        )?;
        Ok(Value(out))
    }

    pub fn object(self) -> Result<Value> {
        let mut out = null_mut();
        // SAFETY: plain value creation.
        status(unsafe { napi_create_object(self.0, &mut out) }, "create object")?;
        Ok(Value(out))
    }

    pub fn set(self, obj: Value, key: &str, value: Value) -> Result<()> {
        let name = std::ffi::CString::new(key).map_err(|_| Error::argument("property name contains NUL"))?;
        // SAFETY: obj is an object created or received in this call; name is a valid C string.
        status(unsafe { napi_set_named_property(self.0, obj.0, name.as_ptr(), value.0) }, "set property")
    }

    pub fn array(self, items: &[Value]) -> Result<Value> {
        let mut out = null_mut();
        // SAFETY: plain value creation; elements are set within bounds.
        status(unsafe { napi_create_array_with_length(self.0, items.len(), &mut out) }, "create array")?;
        for (i, item) in items.iter().enumerate() {
            status(unsafe { napi_set_element(self.0, out, i as u32, item.0) }, "set element")?;
        }
        Ok(Value(out))
    }

    /// Wraps shared Rust state in a JS external tagged with `tag`; the Arc is dropped when JS
    /// garbage-collects the handle.
    pub fn external<T: Send + Sync + 'static>(self, value: Arc<T>, tag: &'static TypeTag) -> Result<Value> {
        unsafe extern "C" fn finalize<T>(_env: napi_env, data: *mut c_void, _hint: *mut c_void) {
            // SAFETY: data is the Box<Arc<T>> leaked below, finalized exactly once by Node.
            drop(unsafe { Box::from_raw(data as *mut Arc<T>) });
        }
        let raw = Box::into_raw(Box::new(value)) as *mut c_void;
        let mut out = null_mut();
        // SAFETY: raw stays valid until finalize runs.
        let s = unsafe { napi_create_external(self.0, raw, finalize::<T>, null_mut(), &mut out) };
        if s != NAPI_OK {
            // SAFETY: napi did not take ownership; reclaim it.
            drop(unsafe { Box::from_raw(raw as *mut Arc<T>) });
            return status(s, "create external").map(|_| Value(null_mut()));
        }
        // SAFETY: out is the external just created.
        status(unsafe { napi_type_tag_object(self.0, out, tag) }, "tag external")?;
        Ok(Value(out))
    }

    /// The Rust state behind an external made by `external` with the same tag.
    pub fn get_external<T: Send + Sync + 'static>(
        self,
        v: Value,
        tag: &'static TypeTag,
        what: &str,
        kind: &str,
    ) -> Result<Arc<T>> {
        let wrong = || Error::argument(format!("{what} must be {kind}"));
        if self.type_of(v)? != ValueType::External {
            return Err(wrong());
        }
        let mut ok = false;
        // SAFETY: v is an external; the tag pointer is static.
        status(unsafe { napi_check_object_type_tag(self.0, v.0, tag, &mut ok) }, what)?;
        if !ok {
            return Err(wrong());
        }
        let mut raw = null_mut();
        // SAFETY: v is an external carrying our tag, so its data is a Box<Arc<T>> from `external`.
        status(unsafe { napi_get_value_external(self.0, v.0, &mut raw) }, what)?;
        let arc = unsafe { &*(raw as *const Arc<T>) };
        Ok(Arc::clone(arc))
    }

    /// A JS `Error` carrying `code`, and `path` / `osError` when known.
    fn error_value(self, e: &Error) -> Result<Value> {
        let code = self.string(e.code.as_str())?;
        let msg = self.string(&e.message)?;
        let mut out = null_mut();
        // SAFETY: code and msg are strings created above.
        status(unsafe { napi_create_error(self.0, code.0, msg.0, &mut out) }, "create error")?;
        let err = Value(out);
        if let Some(p) = &e.path {
            self.set(err, "path", self.string(p)?)?;
        }
        if let Some(errno) = e.errno {
            self.set(err, "osError", self.string(errno)?)?;
        }
        Ok(err)
    }

    fn exception_pending(self) -> bool {
        let mut pending = false;
        // SAFETY: plain query.
        unsafe { napi_is_exception_pending(self.0, &mut pending) };
        pending
    }

    fn throw(self, e: &Error) {
        if self.exception_pending() {
            return; // a JS exception (e.g. from a getter) is already on its way; keep it
        }
        if let Ok(v) = self.error_value(e) {
            // SAFETY: v is an Error object.
            unsafe { napi_throw(self.0, v.0) };
        }
    }

    /// Runs `work` on libuv's thread pool and returns a Promise that `finish` settles on the JS
    /// thread. `work` must not touch JS values; `finish` converts its result.
    pub fn promise<T: Send + 'static>(
        self,
        name: &str,
        work: impl FnOnce() -> Result<T> + Send + 'static,
        finish: fn(Env, T) -> Result<Value>,
    ) -> Result<Value> {
        struct Task<T> {
            work: Option<Box<dyn FnOnce() -> Result<T> + Send>>,
            result: Option<std::thread::Result<Result<T>>>,
            finish: fn(Env, T) -> Result<Value>,
            deferred: napi_deferred,
            handle: napi_async_work,
        }
        unsafe extern "C" fn execute<T>(_env: napi_env, data: *mut c_void) {
            // SAFETY: data is the Task<T> boxed below; only this worker touches it until complete.
            let task = unsafe { &mut *(data as *mut Task<T>) };
            if let Some(work) = task.work.take() {
                task.result = Some(panic::catch_unwind(AssertUnwindSafe(work)));
            }
        }
        unsafe extern "C" fn complete<T>(env: napi_env, st: napi_status, data: *mut c_void) {
            // SAFETY: data is the Task<T> boxed below; complete runs once, after execute.
            let task = unsafe { Box::from_raw(data as *mut Task<T>) };
            let env = Env(env);
            let finish = task.finish;
            let outcome: Result<Value> = match (st, task.result) {
                (NAPI_OK, Some(Ok(Ok(v)))) => {
                    panic::catch_unwind(AssertUnwindSafe(|| finish(env, v))).unwrap_or_else(|p| Err(panic_message(p)))
                }
                (NAPI_OK, Some(Ok(Err(e)))) => Err(e),
                (NAPI_OK, Some(Err(p))) => Err(panic_message(p)),
                _ => Err(Error::new(Code::Panic, "native work was cancelled")),
            };
            // SAFETY: deferred and handle belong to this task and are used exactly once.
            unsafe {
                match outcome {
                    Ok(v) => {
                        napi_resolve_deferred(env.0, task.deferred, v.0);
                    }
                    Err(e) => {
                        let mut reason = null_mut();
                        if env.exception_pending() {
                            napi_get_and_clear_last_exception(env.0, &mut reason);
                        } else if let Ok(v) = env.error_value(&e) {
                            reason = v.0;
                        }
                        napi_reject_deferred(env.0, task.deferred, reason);
                    }
                }
                napi_delete_async_work(env.0, task.handle);
            }
        }

        let (mut deferred, mut promise) = (null_mut(), null_mut());
        // SAFETY: creates a promise and its deferred for this env.
        status(unsafe { napi_create_promise(self.0, &mut deferred, &mut promise) }, "create promise")?;
        let task = Box::new(Task { work: Some(Box::new(work)), result: None, finish, deferred, handle: null_mut() });
        let raw = Box::into_raw(task);
        let resource_name = self.string(name)?;
        let mut handle = null_mut();
        // SAFETY: raw stays alive until complete reclaims it; callbacks match Task<T>.
        let s = unsafe {
            napi_create_async_work(
                self.0,
                null_mut(),
                resource_name.0,
                execute::<T>,
                complete::<T>,
                raw.cast(),
                &mut handle,
            )
        };
        if s != NAPI_OK {
            drop(unsafe { Box::from_raw(raw) });
            return status(s, "create async work").map(|_| Value(null_mut()));
        }
        // SAFETY: raw is still exclusively ours until the work is queued.
        unsafe { (*raw).handle = handle };
        let s = unsafe { napi_queue_async_work(self.0, handle) };
        if s != NAPI_OK {
            unsafe {
                napi_delete_async_work(self.0, handle);
                drop(Box::from_raw(raw));
            }
            return status(s, "queue async work").map(|_| Value(null_mut()));
        }
        Ok(Value(promise))
    }
}

unsafe extern "C" fn trampoline(env: napi_env, info: napi_callback_info) -> napi_value {
    let env_ = Env(env);
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| -> Result<Value> {
        let mut argc = MAX_ARGS;
        let mut argv = [null_mut(); MAX_ARGS];
        let mut data = null_mut();
        // SAFETY: argv has room for argc values; data receives the pointer given at registration.
        status(
            unsafe { napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), null_mut(), &mut data) },
            "arguments",
        )?;
        // SAFETY: data is the Callback registered with this function in `export`.
        let f: Callback = unsafe { std::mem::transmute::<*mut c_void, Callback>(data) };
        let args: Vec<Value> = argv[..argc.min(MAX_ARGS)].iter().map(|v| Value(*v)).collect();
        f(env_, &args)
    }));
    match outcome {
        Ok(Ok(v)) => v.0,
        Ok(Err(e)) => {
            env_.throw(&e);
            null_mut()
        }
        Err(p) => {
            env_.throw(&panic_message(p));
            null_mut()
        }
    }
}

/// Adds `f` to `exports` as `name`.
pub fn export(env: Env, exports: Value, name: &str, f: Callback) -> Result<()> {
    let mut func = null_mut();
    // SAFETY: the callback pointer is passed as data and read back by `trampoline`.
    status(
        unsafe {
            napi_create_function(env.0, name.as_ptr().cast(), name.len(), trampoline, f as *mut c_void, &mut func)
        },
        "create function",
    )?;
    env.set(exports, name, Value(func))
}

static QUIET_PANICS: Once = Once::new();

/// Module entry: silences the default panic printer (panics become JS errors instead) and lets
/// `register` add the exports.
///
/// # Safety
/// Called by Node with a valid env and exports object.
pub unsafe fn init(env: napi_env, exports: napi_value, register: fn(Env, Value) -> Result<()>) -> napi_value {
    QUIET_PANICS.call_once(|| panic::set_hook(Box::new(|_| {})));
    let env_ = Env(env);
    match panic::catch_unwind(AssertUnwindSafe(|| register(env_, Value(exports)))) {
        Ok(Ok(())) => exports,
        Ok(Err(e)) => {
            env_.throw(&e);
            null_mut()
        }
        Err(p) => {
            env_.throw(&panic_message(p));
            null_mut()
        }
    }
}

/// The raw handle types `lib.rs` needs for the exported entry symbol.
pub mod raw {
    pub type Env = super::napi_env;
    pub type Value = super::napi_value;
}
