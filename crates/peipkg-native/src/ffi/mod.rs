//! The foreign-function boundary: the only code allowed to use `unsafe`.
//! `napi` talks to Node, `zstd` to the bundled libzstd, `sys` to the two Linux calls std lacks.

pub mod napi;
pub mod sys;
pub mod zstd;
