//! PLACEHOLDER written by the parser helper only so that `pub mod expand;`
//! compiles on the `parser` branch. The real module (shell-word expansion) is
//! written on the `expand` branch: on merge, take that branch's version of
//! this file and delete this placeholder text.
