// Stand-in for @napi-rs/wasm-tools, which @napi-rs/cli loads only when building a wasm target.
// The real package's platform packages are missing from the registry the build machines reach,
// so `npm ci` could not verify the lock file. peipkg builds no wasm target.
'use strict';
throw new Error('@napi-rs/wasm-tools is not installed in this project: peipkg builds no wasm target');
