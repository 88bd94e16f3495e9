//! The `<prefix>.ledger` topic: its single writer, its tail, and its readers.

mod reader;
mod tail;
mod topic;
mod writer;

pub use reader::{AHEAD_ON_THREAD, Ahead, LedgerContents, LedgerReader, READ_AHEAD, ReadAhead};
pub use tail::{LedgerTail, OpenRun, read_tail};
pub(crate) use topic::create_topic;
pub use topic::{ensure_ledger_topic, ledger_topic_exists};
pub use writer::{AckState, LedgerWriter, WriterOptions};
