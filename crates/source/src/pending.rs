//! A source transaction being assembled: its changes are cut into encoded ledger entries as
//! they arrive, kept in memory up to a threshold and spilled to a local file past it, and
//! released to the ledger only once the transaction's Commit has arrived.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use walproof_core::{Change, EncodedEntry, Lsn, Op, PartSplitter, Relation};

/// Failure to spill to or read back from the local disk.
#[derive(Debug, thiserror::Error)]
#[error("spill file {path}: {source}")]
pub struct SpillError {
    /// The spill file.
    pub path: PathBuf,
    /// The I/O error.
    pub source: std::io::Error,
}

/// Where and when transactions spill.
#[derive(Debug, Clone)]
pub struct SpillOptions {
    /// Encoded bytes a transaction may hold in memory before it spills to disk.
    pub threshold_bytes: usize,
    /// Directory of spill files.
    pub directory: PathBuf,
}

/// One source transaction between its Begin and its Commit.
///
/// Memory stays below `threshold_bytes` plus one entry whatever the transaction's size: past
/// the threshold, finished entries go to a spill file, deleted when the transaction is released
/// or dropped.
#[derive(Debug)]
pub struct PendingTransaction {
    commit_lsn: Lsn,
    splitter: PartSplitter,
    next_ordinal: u32,
    memory: Vec<EncodedEntry>,
    memory_bytes: usize,
    spill: Option<Spill>,
    options: SpillOptions,
}

#[derive(Debug)]
struct Spill {
    path: PathBuf,
    writer: BufWriter<File>,
    entries: usize,
}

impl Drop for Spill {
    fn drop(&mut self) {
        // A spill file lives only as long as its transaction.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl PendingTransaction {
    /// Starts the transaction whose Begin announced `commit_lsn`.
    pub fn begin(
        commit_lsn: Lsn,
        xid: u32,
        commit_time_us: i64,
        max_entry_bytes: usize,
        options: SpillOptions,
    ) -> PendingTransaction {
        PendingTransaction {
            commit_lsn,
            splitter: PartSplitter::new(commit_lsn, xid, commit_time_us, [], max_entry_bytes),
            next_ordinal: 0,
            memory: Vec::new(),
            memory_bytes: 0,
            spill: None,
            options,
        }
    }

    /// The commit LSN its Begin announced.
    pub fn commit_lsn(&self) -> Lsn {
        self.commit_lsn
    }

    /// Changes so far.
    pub fn changes(&self) -> u32 {
        self.next_ordinal
    }

    /// Whether it has spilled to disk.
    pub fn spilled(&self) -> bool {
        self.spill.is_some()
    }

    /// Describes a relation the next changes refer to.
    pub fn add_relation(&mut self, relation: &Relation) -> Result<(), SpillError> {
        match self.splitter.add_relation(relation) {
            Some(entry) => self.keep(entry),
            None => Ok(()),
        }
    }

    /// Appends the next change; it gets the next ordinal.
    pub fn push(&mut self, op: Op) -> Result<(), SpillError> {
        let change = Change {
            ordinal: self.next_ordinal,
            op,
        };
        self.next_ordinal += 1;
        match self.splitter.push(change) {
            Some(entry) => self.keep(entry),
            None => Ok(()),
        }
    }

    fn keep(&mut self, entry: EncodedEntry) -> Result<(), SpillError> {
        if self.spill.is_none()
            && self.memory_bytes + entry.bytes.len() <= self.options.threshold_bytes
        {
            self.memory_bytes += entry.bytes.len();
            self.memory.push(entry);
            return Ok(());
        }
        let spill = match &mut self.spill {
            Some(spill) => spill,
            None => {
                let spill = Spill::create(&self.options.directory, self.commit_lsn)?;
                tracing::info!(
                    commit_lsn = %self.commit_lsn,
                    path = %spill.path.display(),
                    "transaction passed the spill threshold; spilling to disk"
                );
                self.spill.insert(spill)
            }
        };
        for earlier in self.memory.drain(..) {
            spill.write(&earlier)?;
        }
        self.memory_bytes = 0;
        spill.write(&entry)
    }

    /// The Commit arrived: the entries in order, the last one marked.
    pub fn commit(mut self) -> Result<CommittedEntries, SpillError> {
        let last = self.splitter.finish();
        match self.spill.take() {
            None => {
                let mut entries = std::mem::take(&mut self.memory);
                entries.push(last);
                Ok(CommittedEntries(Entries::Memory(entries.into_iter())))
            }
            Some(mut spill) => {
                spill.write(&last)?;
                spill.writer.flush().map_err(|source| spill.error(source))?;
                let file = File::open(&spill.path).map_err(|source| spill.error(source))?;
                let reader = BufReader::new(file);
                let remaining = spill.entries;
                Ok(CommittedEntries(Entries::Spilled {
                    reader,
                    remaining,
                    spill,
                }))
            }
        }
    }
}

impl Spill {
    fn create(directory: &Path, commit_lsn: Lsn) -> Result<Spill, SpillError> {
        let path = directory.join(format!(
            "walproof-spill-{:016X}-{}.bin",
            commit_lsn.as_u64(),
            std::process::id()
        ));
        let error = |source| SpillError {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(directory).map_err(error)?;
        let file = File::create(&path).map_err(error)?;
        Ok(Spill {
            path,
            writer: BufWriter::new(file),
            entries: 0,
        })
    }

    fn error(&self, source: std::io::Error) -> SpillError {
        SpillError {
            path: self.path.clone(),
            source,
        }
    }

    /// Record: commit LSN u64 | part u32 | last u8 | changes u32 | length u32 | bytes.
    fn write(&mut self, entry: &EncodedEntry) -> Result<(), SpillError> {
        let len = u32::try_from(entry.bytes.len()).unwrap_or(u32::MAX);
        let changes = u32::try_from(entry.changes).unwrap_or(u32::MAX);
        let mut header = Vec::with_capacity(21);
        header.extend_from_slice(&entry.commit_lsn.as_u64().to_be_bytes());
        header.extend_from_slice(&entry.part.to_be_bytes());
        header.push(u8::from(entry.last));
        header.extend_from_slice(&changes.to_be_bytes());
        header.extend_from_slice(&len.to_be_bytes());
        let result = self
            .writer
            .write_all(&header)
            .and_then(|()| self.writer.write_all(&entry.bytes));
        result.map_err(|source| self.error(source))?;
        self.entries += 1;
        Ok(())
    }
}

/// A committed transaction's entries, from memory or streamed back from its spill file (which
/// is removed when this is dropped).
#[derive(Debug)]
pub struct CommittedEntries(Entries);

#[derive(Debug)]
enum Entries {
    Memory(std::vec::IntoIter<EncodedEntry>),
    Spilled {
        spill: Spill,
        reader: BufReader<File>,
        remaining: usize,
    },
}

impl CommittedEntries {
    /// The next entry, in order.
    pub fn next_entry(&mut self) -> Result<Option<EncodedEntry>, SpillError> {
        match &mut self.0 {
            Entries::Memory(entries) => Ok(entries.next()),
            Entries::Spilled {
                spill,
                reader,
                remaining,
            } => {
                if *remaining == 0 {
                    return Ok(None);
                }
                let mut header = [0u8; 21];
                reader
                    .read_exact(&mut header)
                    .map_err(|source| spill.error(source))?;
                let field = |range: std::ops::Range<usize>| -> [u8; 8] {
                    let mut out = [0u8; 8];
                    let bytes = &header[range];
                    out[8 - bytes.len()..].copy_from_slice(bytes);
                    out
                };
                let commit_lsn = Lsn::new(u64::from_be_bytes(field(0..8)));
                let part = u64::from_be_bytes(field(8..12)) as u32;
                let last = header[12] == 1;
                let changes = u64::from_be_bytes(field(13..17)) as usize;
                let len = u64::from_be_bytes(field(17..21)) as usize;
                let mut bytes = vec![0u8; len];
                reader
                    .read_exact(&mut bytes)
                    .map_err(|source| spill.error(source))?;
                *remaining -= 1;
                Ok(Some(EncodedEntry {
                    commit_lsn,
                    part,
                    last,
                    bytes,
                    changes,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use walproof_core::LedgerEntry;

    fn message(n: u32) -> Op {
        Op::Message {
            prefix: "t".into(),
            content: n.to_be_bytes().repeat(25),
        }
    }

    fn drain(mut entries: CommittedEntries) -> Vec<EncodedEntry> {
        let mut out = Vec::new();
        while let Some(entry) = entries.next_entry().unwrap() {
            out.push(entry);
        }
        out
    }

    fn options(threshold_bytes: usize, directory: &Path) -> SpillOptions {
        SpillOptions {
            threshold_bytes,
            directory: directory.to_owned(),
        }
    }

    #[test]
    fn a_transaction_past_the_threshold_spills_and_reads_back_identically() {
        let dir = std::env::temp_dir().join(format!("walproof-spill-test-{}", std::process::id()));
        let run = |threshold| {
            let mut tx =
                PendingTransaction::begin(Lsn::new(0x500), 9, 1, 300, options(threshold, &dir));
            for n in 0..200 {
                tx.push(message(n)).unwrap();
            }
            let spilled = tx.spilled();
            (spilled, drain(tx.commit().unwrap()))
        };
        let (in_memory_spilled, in_memory) = run(usize::MAX);
        let (spilled, from_disk) = run(1_000);
        assert!(!in_memory_spilled && spilled);
        assert_eq!(in_memory, from_disk);
        assert!(from_disk.len() > 10);
        assert!(from_disk.last().unwrap().last);
        // Every ordinal once, in order, across the parts.
        let ordinals: Vec<u32> = from_disk
            .iter()
            .flat_map(|e| match LedgerEntry::decode(&e.bytes).unwrap().body {
                walproof_core::EntryBody::Transaction(p) => {
                    p.changes.into_iter().map(|c| c.ordinal).collect()
                }
                walproof_core::EntryBody::Abandon { .. } => vec![],
            })
            .collect();
        assert_eq!(ordinals, (0..200).collect::<Vec<_>>());
        // The spill file is gone once the entries are released.
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        let _ = std::fs::remove_dir(&dir);
    }
}
