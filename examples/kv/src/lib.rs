//! stepraft-kv (work in progress)
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod command;
pub mod storage;
