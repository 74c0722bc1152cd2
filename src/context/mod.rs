//! The build context: `.dockerignore`, walking without escape, COPY/ADD source
//! resolution, content hashing for cache keys, and tar streams for `put_archive`.
//!
//! Filesystem only: no engine, no network. Nothing outside the context root is ever
//! read, and no symlink is followed out of it.

mod error;
mod glob;
pub mod ignore;

pub use error::{ContextError, Result};
pub use glob::clean_path;
pub use ignore::Ignore;
