//! peipkg-native: the byte-level core of peipkg as a Node-API addon.
//!
//! The core modules (`hash`, `zstd`, `tar`, `pack`, `deferred`, `ed25519`, `durable`, `remove`) know nothing of
//! JavaScript and are tested with `cargo test`; `bindings` converts between them and JS values;
//! `ffi` is the only place with `unsafe`.

#![deny(unsafe_code)]

mod bindings;
pub mod deferred;
pub mod durable;
pub mod ed25519;
pub mod elf;
pub mod error;
#[allow(unsafe_code)]
mod ffi;
pub mod hash;
pub mod idmap;
pub mod index;
pub mod index_store;
pub mod open;
pub mod pack;
pub mod progress;
pub mod read;
pub mod remove;
pub mod tar;
pub mod zstd;

/// Node-API module entry point.
///
/// # Safety
/// Called once per environment by Node with valid handles.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn napi_register_module_v1(
    env: ffi::napi::raw::Env,
    exports: ffi::napi::raw::Value,
) -> ffi::napi::raw::Value {
    // SAFETY: forwarded unchanged from Node.
    unsafe { ffi::napi::init(env, exports, bindings::register) }
}

/// The Node-API version the addon needs: 8 for object type tags.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn node_api_module_get_api_version_v1() -> i32 {
    8
}
