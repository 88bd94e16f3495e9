//! pgoutput (protocol version 1) messages, parsed without copying from XLogData payloads.

pub mod message;
pub mod parse;

pub use message::{Message, OldTuple, RelationColumn, RelationMessage, TupleColumn, TupleData};
pub use parse::{POSTGRES_EPOCH_OFFSET_US, ParseError, parse_message, pg_time_to_unix_us};
