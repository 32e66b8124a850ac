//! The direct-I/O layer. It knows nothing of caches: it reads and writes files and block
//! devices with O_DIRECT at any offset and length, with the alignment each one asks for.

pub mod align;
pub mod buffer;
pub mod fault;
pub mod file;
mod range_lock;
pub mod sys;
pub mod whole;

pub use align::Alignment;
pub use buffer::AlignedBuf;
pub use file::{DirectFile, IoMode, OpenOptions};
pub use whole::{read_all, write_all};

#[cfg(test)]
mod tests;
