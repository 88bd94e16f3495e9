//! The Kafka records a transaction becomes.

/// One Kafka record, ready to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The topic.
    pub topic: String,
    /// The partition; produce to exactly this one (see [`super::partition_for`]).
    pub partition: i32,
    /// The key's bytes; `None` for a table without key columns and for truncate events.
    pub key: Option<Vec<u8>>,
    /// The value's bytes; `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

/// Every record of one committed transaction, in the order to produce them.
///
/// `begin` and `end` go to `<prefix>.transaction`; `changes` are the data change events and
/// tombstones, in change order, each on its table's topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRecords {
    /// The BEGIN record.
    pub begin: Record,
    /// Change events and tombstones.
    pub changes: Vec<Record>,
    /// The END record, with the event counts.
    pub end: Record,
}

impl TransactionRecords {
    /// All records in production order: BEGIN, the changes, END.
    pub fn into_records(self) -> Vec<Record> {
        let mut records = Vec::with_capacity(self.changes.len() + 2);
        records.push(self.begin);
        records.extend(self.changes);
        records.push(self.end);
        records
    }
}
