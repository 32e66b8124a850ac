//! The C interface: a thin shell that converts arguments, errors and panics, one module per C
//! object family. Nothing here knows how caching or direct I/O work.

// The C names are the contract: dcache, dcache_file, dcache_result...
#![allow(non_camel_case_types)]

#[macro_use]
mod boundary;
mod args;
pub mod cache;
pub mod file;
pub mod log;
pub mod queue;
pub mod result;
pub mod version;
pub mod writer;
