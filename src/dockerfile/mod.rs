//! The Dockerfile front end: text → typed, unexpanded instructions. Pure: no
//! I/O, no environment; it never touches the engine or the filesystem.
//!
//! Two levels, as in BuildKit:
//! - raw ([`raw`], [`node`]): BuildKit's line assembler and node tree, whose
//!   [`Node::dump`] matches BuildKit's golden `result` files byte for byte;
//! - typed ([`parse()`], [`instruction`]): stages and [`Instruction`]s with
//!   checked flags, which is all the planner reads.
//!
//! Variable expansion lives in [`expand`] and is applied later by the planner.

pub mod error;
pub mod expand;
mod flags;
pub mod instruction;
pub mod node;
mod parse;
pub mod raw;
mod split;

pub use error::{render_diagnostic, Location, ParseError};
pub use instruction::*;
pub use node::Node;
pub use parse::{decode, parse, parse_all, parse_bytes, parse_trigger, KEYWORDS};
pub use raw::{parse_raw, CheckOptionError, RawDockerfile, MAX_LINE_BYTES};
pub use split::parse_words;
