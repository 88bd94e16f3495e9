//! Rolling whole transactions into archive files, exactly once across restarts.
//!
//! Transactions are buffered per table, shape and commit date, and **rolled** together — every
//! buffered table written at once, at a transaction boundary — when the buffer holds
//! [`RollSettings::max_bytes`] or its oldest change is [`RollSettings::max_age`] old. A file is
//! named by its table, commit date and LSN range:
//!
//! ```text
//! <prefix>/<schema>.<table>/__date=YYYY-MM-DD/<first commit LSN>-<last commit LSN>.parquet
//!                                                            (+ .manifest.json beside it)
//! ```
//!
//! (LSNs as 16 hex digits, so names sort by LSN; a second file of the same table and range in
//! one roll — a schema change inside a transaction — gets `-2`.)
//!
//! The **index** object `<prefix>/_walproof/index.json` lists every file's manifest and where
//! the archive stands in the ledger. A roll first records its intent in the index (`pending`:
//! the transaction it rolls through), then writes the files, then the index with the files and
//! the new position. A restart resumes the ledger after the position; when an intent is
//! pending it rolls again exactly there, so a file a crash left behind is rewritten under the
//! same name with the same rows, and no change is archived twice or lost.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use walproof_core::pg_text::civil_from_days;
use walproof_core::schema_change::{SCHEMA_CHANGE_PREFIX, Shapes};
use walproof_core::{Digest, Lsn, Op, Relation, RelationId, Transaction};

use crate::file::{EncodeError, Manifest, encode};
use crate::objects::{ObjectError, Objects};
use crate::rows::{ChangeAt, ReservedColumn, TableRows};
use crate::seal::{SealError, Sealer, is_sealed};

/// When the buffer is rolled into files.
#[derive(Debug, Clone, Copy)]
pub struct RollSettings {
    /// Roll once the buffered rows hold about this many bytes.
    pub max_bytes: usize,
    /// Roll once the oldest buffered change is this old.
    pub max_age: Duration,
}

impl Default for RollSettings {
    fn default() -> RollSettings {
        RollSettings {
            max_bytes: 64 << 20,
            max_age: Duration::from_secs(60),
        }
    }
}

/// A place in the ledger: just after a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    /// The transaction's commit LSN.
    pub commit_lsn: Lsn,
    /// The ledger offset of its last record.
    pub ledger_offset: i64,
    /// The ledger's chain hash after it.
    pub ledger_hash: Digest,
}

/// The archive's index: its files and where it stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Index {
    /// Format version: 1.
    pub version: u32,
    /// Every transaction up to this one is in `files`.
    pub position: Option<Position>,
    /// A roll through this transaction was begun and not recorded: it is rolled again there.
    pub pending: Option<Position>,
    /// Every file's manifest, in the order written.
    pub files: Vec<Manifest>,
}

/// Why archiving stopped.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// An object could not be written or read.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// A table cannot be archived.
    #[error("transaction {commit_lsn}: {source}")]
    Table {
        /// The transaction.
        commit_lsn: Lsn,
        /// Why.
        source: ReservedColumn,
    },
    /// A change that does not fit its table (a row of another width).
    #[error("transaction {commit_lsn}, change {ordinal}: {problem}")]
    Change {
        /// The transaction.
        commit_lsn: Lsn,
        /// The change.
        ordinal: u32,
        /// What is wrong.
        problem: String,
    },
    /// A schema-change message that does not parse.
    #[error("transaction {commit_lsn}: {source}")]
    SchemaChange {
        /// The transaction.
        commit_lsn: Lsn,
        /// Why.
        source: walproof_core::schema_change::SchemaChangeError,
    },
    /// A change names a relation its transaction does not describe.
    #[error("transaction {commit_lsn}, change {ordinal}: relation {relation} is not described")]
    UnknownRelation {
        /// The transaction.
        commit_lsn: Lsn,
        /// The change.
        ordinal: u32,
        /// The relation.
        relation: RelationId,
    },
    /// The ledger could not be read or failed verification.
    #[error(transparent)]
    Ledger(Box<walproof_transport::TransportError>),
    /// A file could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// An object could not be sealed or opened.
    #[error("{place}: {source}")]
    Seal {
        /// The directory or bucket.
        place: String,
        /// Why.
        source: SealError,
    },
    /// The index object is not an archive index.
    #[error("{object} in {place} is not a walproof archive index: {problem}")]
    Index {
        /// The index's name.
        object: String,
        /// The directory or bucket.
        place: String,
        /// Why.
        problem: String,
    },
    /// The ledger went past a pending roll without reaching it.
    #[error(
        "the archive's pending roll is through {pending}, but the ledger went from before it to {got}: the archive does not belong to this ledger"
    )]
    PendingMissed {
        /// The pending roll's transaction.
        pending: Lsn,
        /// The transaction the ledger gave.
        got: Lsn,
    },
}

impl ArchiveError {
    /// Wraps a ledger error.
    pub fn ledger(error: walproof_transport::TransportError) -> ArchiveError {
        ArchiveError::Ledger(Box::new(error))
    }
}

/// One table's rows of one shape and commit date, being buffered.
#[derive(Debug)]
struct Segment {
    date: i64,
    rows: TableRows,
    /// The ledger's hash after the transaction of the segment's last change.
    ledger_hash: Digest,
}

/// The archiver: see the module comment.
#[derive(Debug)]
pub struct Archiver {
    objects: Objects,
    /// Each table's shape as the ledger goes by.
    shapes: Shapes,
    /// Seals every object written and opens every object read (encryption at rest).
    sealer: Option<Sealer>,
    prefix: String,
    settings: RollSettings,
    index: Index,
    segments: Vec<Segment>,
    /// The segment each (table, date) appends to.
    open: HashMap<(RelationId, i64), usize>,
    /// The last transaction buffered.
    buffered: Option<Position>,
    oldest: Option<Instant>,
}

/// What a roll wrote.
#[derive(Debug, Clone)]
pub struct Rolled {
    /// The transaction rolled through.
    pub through: Position,
    /// The files written.
    pub files: Vec<Manifest>,
}

impl Archiver {
    /// The archive under `prefix` in `objects`, from its index (empty when there is none);
    /// with a `sealer`, every object is sealed (encryption at rest).
    pub async fn open(
        objects: Objects,
        prefix: &str,
        settings: RollSettings,
        sealer: Option<Sealer>,
    ) -> Result<Archiver, ArchiveError> {
        let name = index_name(prefix);
        let mut archiver = Archiver {
            objects,
            shapes: Shapes::default(),
            sealer,
            prefix: prefix.to_owned(),
            settings,
            index: Index {
                version: 1,
                ..Index::default()
            },
            segments: Vec::new(),
            open: HashMap::new(),
            buffered: None,
            oldest: None,
        };
        if let Some(bytes) = archiver.get(&name).await? {
            archiver.index = serde_json::from_slice(&bytes).map_err(|err| ArchiveError::Index {
                object: name.clone(),
                place: archiver.objects.place(),
                problem: err.to_string(),
            })?;
        }
        Ok(archiver)
    }

    /// Object `name`, opened when the archive is sealed; an error names a sealed object read
    /// without the secret.
    pub async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        let Some(bytes) = self.objects.get(name).await? else {
            return Ok(None);
        };
        let sealed = |source| ArchiveError::Seal {
            place: self.objects.place(),
            source,
        };
        match &self.sealer {
            Some(sealer) => sealer.open(name, &bytes).map(Some).map_err(sealed),
            None if is_sealed(&bytes) => Err(sealed(SealError::NoSecret(name.to_owned()))),
            None => Ok(Some(bytes)),
        }
    }

    /// Writes object `name`, sealed when the archive is.
    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), ArchiveError> {
        let bytes = match &self.sealer {
            Some(sealer) => sealer
                .seal(name, bytes)
                .map_err(|source| ArchiveError::Seal {
                    place: self.objects.place(),
                    source,
                })?,
            None => bytes,
        };
        Ok(self.objects.put(name, bytes).await?)
    }

    /// The index as last written.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Where to resume the ledger: after this transaction (`None`: from its start).
    pub fn position(&self) -> Option<Position> {
        self.index.position
    }

    /// Buffers `transaction`, which ends at `position` in the ledger.
    pub fn add(
        &mut self,
        transaction: &Transaction,
        position: Position,
    ) -> Result<(), ArchiveError> {
        let commit_lsn = transaction.commit_lsn;
        if let Some(pending) = self.index.pending
            && commit_lsn > pending.commit_lsn
            && self
                .buffered
                .is_none_or(|b| b.commit_lsn < pending.commit_lsn)
        {
            return Err(ArchiveError::PendingMissed {
                pending: pending.commit_lsn,
                got: commit_lsn,
            });
        }
        let date = transaction.commit_time_us.div_euclid(86_400_000_000);
        // A schema change inside the transaction reshapes its table from that change on: the
        // rows before it are archived in the shape they had.
        let mut shapes = std::mem::take(&mut self.shapes);
        let schema_changes = shapes
            .begin(transaction)
            .map_err(|source| ArchiveError::SchemaChange { commit_lsn, source })?;
        let mut schema_changes = schema_changes.into_iter();
        // The segment each table's changes go to, found once per table and schema change (a
        // shape comparison per change would compare every column name).
        let mut resolved: HashMap<RelationId, usize> = HashMap::new();
        let added = transaction
            .changes
            .iter()
            .try_for_each(|change| -> Result<(), ArchiveError> {
                if let Op::Message { prefix, .. } = &change.op {
                    if prefix == SCHEMA_CHANGE_PREFIX
                        && let Some(schema_change) = schema_changes.next()
                    {
                        shapes.follow(&schema_change);
                        resolved.clear();
                    }
                    return Ok(());
                }
                for id in change.op.relations() {
                    let at = match resolved.get(id) {
                        Some(&at) => at,
                        None => {
                            let relation =
                                shapes.get(*id).ok_or(ArchiveError::UnknownRelation {
                                    commit_lsn,
                                    ordinal: change.ordinal,
                                    relation: *id,
                                })?;
                            let at = self.segment(relation, date, commit_lsn)?;
                            // The chain's hash after this transaction, its last in the segment.
                            self.segments[at].ledger_hash = position.ledger_hash;
                            resolved.insert(*id, at);
                            at
                        }
                    };
                    let at_change = ChangeAt {
                        commit_lsn,
                        ordinal: change.ordinal,
                        xid: transaction.xid,
                        commit_time_us: transaction.commit_time_us,
                    };
                    self.segments[at]
                        .rows
                        .push(at_change, &change.op)
                        .map_err(|problem| ArchiveError::Change {
                            commit_lsn,
                            ordinal: change.ordinal,
                            problem,
                        })?;
                }
                Ok(())
            });
        shapes.end();
        self.shapes = shapes;
        added?;
        self.buffered = Some(position);
        self.oldest.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// The segment `relation`'s rows of `date` go to: the open one, or a new one when there is
    /// none or the table's shape changed.
    fn segment(
        &mut self,
        relation: &Relation,
        date: i64,
        commit_lsn: Lsn,
    ) -> Result<usize, ArchiveError> {
        if let Some(&at) = self.open.get(&(relation.id, date))
            && self.segments[at].rows.relation() == relation
        {
            return Ok(at);
        }
        let rows = TableRows::new(relation)
            .map_err(|source| ArchiveError::Table { commit_lsn, source })?;
        self.segments.push(Segment {
            date,
            rows,
            ledger_hash: Digest::ZERO,
        });
        let at = self.segments.len() - 1;
        self.open.insert((relation.id, date), at);
        Ok(at)
    }

    /// Bytes buffered (about).
    pub fn buffered_bytes(&self) -> usize {
        self.segments.iter().map(|s| s.rows.bytes()).sum()
    }

    /// Whether the buffer is due to roll: a pending roll's transaction is buffered, or
    /// (without one) the buffer is big or old enough.
    pub fn due(&self) -> bool {
        let Some(buffered) = self.buffered else {
            return false;
        };
        match self.index.pending {
            Some(pending) => buffered.commit_lsn >= pending.commit_lsn,
            None => {
                self.buffered_bytes() >= self.settings.max_bytes
                    || self
                        .oldest
                        .is_some_and(|t| t.elapsed() >= self.settings.max_age)
            }
        }
    }

    /// Whether a roll may happen now (on shutdown): not before a pending roll's transaction.
    pub fn may_roll(&self) -> bool {
        self.buffered.is_some()
            && self
                .index
                .pending
                .is_none_or(|p| self.buffered.is_some_and(|b| b.commit_lsn >= p.commit_lsn))
    }

    /// Writes every buffered segment as a file, then the index; `root` gives the committed root
    /// of an LSN when known. Nothing when nothing is buffered.
    pub async fn roll(
        &mut self,
        root: impl Fn(Lsn) -> Option<Digest>,
    ) -> Result<Option<Rolled>, ArchiveError> {
        let Some(through) = self.buffered else {
            return Ok(None);
        };
        let mut files = Vec::with_capacity(self.segments.len());
        let mut used: HashMap<String, u32> = HashMap::new();
        for segment in &mut self.segments {
            let Some(((first_lsn, _), (last_lsn, _))) = segment.rows.range() else {
                continue;
            };
            let relation = segment.rows.relation();
            let table = format!("{}.{}", relation.schema, relation.name);
            let (year, month, day) = civil_from_days(segment.date);
            let base = format!(
                "{}/{}.{}/__date={year:04}-{month:02}-{day:02}/{:016X}-{:016X}",
                self.prefix,
                path_segment(&relation.schema),
                path_segment(&relation.name),
                first_lsn.as_u64(),
                last_lsn.as_u64()
            );
            let seen = used.entry(base.clone()).or_insert(0);
            *seen += 1;
            let object = match *seen {
                1 => format!("{base}.parquet"),
                n => format!("{base}-{n}.parquet"),
            };
            let rows = segment.rows.rows() as u64;
            let batch = segment.rows.finish();
            let mut manifest = Manifest {
                version: 1,
                object,
                table,
                first_lsn,
                last_lsn,
                rows,
                ledger_hash: segment.ledger_hash,
                root: root(last_lsn),
                sha256: None,
            };
            let bytes = encode(&batch, &mut manifest)?;
            files.push((manifest, bytes));
        }
        let name = index_name(&self.prefix);
        if self.index.pending.is_none() {
            self.index.pending = Some(through);
            self.put(&name, index_bytes(&self.index)).await?;
        }
        let mut manifests = Vec::with_capacity(files.len());
        for (manifest, bytes) in files {
            self.put(&manifest.object, bytes).await?;
            let beside = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
            self.put(&format!("{}.manifest.json", manifest.object), beside)
                .await?;
            manifests.push(manifest);
        }
        self.index.files.extend(manifests.iter().cloned());
        self.index.position = Some(through);
        self.index.pending = None;
        self.put(&name, index_bytes(&self.index)).await?;
        self.segments.clear();
        self.open.clear();
        self.buffered = None;
        self.oldest = None;
        Ok(Some(Rolled {
            through,
            files: manifests,
        }))
    }
}

/// A schema or table name as one segment of an object name: letters, digits, `_`, `-` and
/// `$` as they are, every other byte (`/`, `.`, `%`, spaces, non-ASCII…) percent-encoded — so
/// no name can climb out of the archive's directory or read as two.
pub fn path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'$') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The index object's name under `prefix`.
pub fn index_name(prefix: &str) -> String {
    format!("{prefix}/_walproof/index.json")
}

fn index_bytes(index: &Index) -> Vec<u8> {
    serde_json::to_vec(index).expect("an index serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use walproof_core::{Change, Column, ReplicaIdentity, Row, Value};

    fn relation(id: RelationId, name: &str, columns: &[&str]) -> Relation {
        Relation {
            id,
            schema: "public".into(),
            name: name.into(),
            replica_identity: ReplicaIdentity::Default,
            columns: columns
                .iter()
                .enumerate()
                .map(|(i, c)| Column {
                    name: (*c).into(),
                    type_oid: 20,
                    type_modifier: -1,
                    key: i == 0,
                })
                .collect(),
        }
    }

    /// Transaction `n`: an insert into `a` and one into `b`; `a` gains a column at 5; day 2
    /// from 7 on.
    fn transaction(n: u64) -> (Transaction, Position) {
        let a = if n < 5 {
            relation(1, "a", &["id"])
        } else {
            relation(1, "a", &["id", "extra"])
        };
        let b = relation(2, "b", &["id"]);
        let values = |width: usize| Row((0..width).map(|_| Value::Text(n.to_string())).collect());
        let changes = vec![
            Change {
                ordinal: 0,
                op: Op::Insert {
                    relation: 1,
                    new: values(a.columns.len()),
                },
            },
            Change {
                ordinal: 1,
                op: Op::Insert {
                    relation: 2,
                    new: values(1),
                },
            },
        ];
        let day = if n < 7 { 0 } else { 1 };
        let transaction = Transaction {
            commit_lsn: Lsn::new(0x100 + n),
            xid: n as u32,
            commit_time_us: day * 86_400_000_000 + n as i64,
            relations: BTreeMap::from([(1, a), (2, b)]),
            changes,
        };
        let position = Position {
            commit_lsn: transaction.commit_lsn,
            ledger_offset: n as i64,
            ledger_hash: Digest([n as u8; 32]),
        };
        (transaction, position)
    }

    fn dir(test: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("walproof-archiver-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn never(_: Lsn) -> Option<Digest> {
        None
    }

    #[tokio::test]
    async fn files_are_split_by_table_shape_and_date_and_named_by_lsn_range() {
        let dir = dir("names");
        let mut archiver =
            Archiver::open(Objects::local(&dir), "wp", RollSettings::default(), None)
                .await
                .unwrap();
        for n in 0..10 {
            let (t, p) = transaction(n);
            archiver.add(&t, p).unwrap();
        }
        assert!(!archiver.due(), "neither big nor old");
        let rolled = archiver
            .roll(|lsn| Some(Digest([lsn.as_u64() as u8; 32])))
            .await
            .unwrap()
            .unwrap();
        let names: Vec<&str> = rolled.files.iter().map(|m| m.object.as_str()).collect();
        assert_eq!(
            names,
            [
                "wp/public.a/__date=1970-01-01/0000000000000100-0000000000000104.parquet",
                "wp/public.b/__date=1970-01-01/0000000000000100-0000000000000106.parquet",
                "wp/public.a/__date=1970-01-01/0000000000000105-0000000000000106.parquet",
                "wp/public.a/__date=1970-01-02/0000000000000107-0000000000000109.parquet",
                "wp/public.b/__date=1970-01-02/0000000000000107-0000000000000109.parquet",
            ]
        );
        let last = &rolled.files[4];
        assert_eq!(last.rows, 3);
        assert_eq!(last.ledger_hash, Digest([9; 32]));
        assert_eq!(last.root, Some(Digest([0x09; 32])));
        // Every object and the index are there; the manifest beside a file has its digest.
        for manifest in &rolled.files {
            let bytes = std::fs::read(dir.join(&manifest.object)).unwrap();
            let beside: Manifest = serde_json::from_slice(
                &std::fs::read(dir.join(format!("{}.manifest.json", manifest.object))).unwrap(),
            )
            .unwrap();
            assert_eq!(&beside, manifest);
            assert_eq!(
                crate::file::manifest_inside(&bytes).unwrap().rows,
                manifest.rows
            );
        }
        let reopened = Archiver::open(Objects::local(&dir), "wp", RollSettings::default(), None)
            .await
            .unwrap();
        assert_eq!(reopened.index().files, rolled.files);
        assert_eq!(reopened.position(), Some(transaction(9).1));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_roll_interrupted_after_its_intent_is_rolled_again_at_the_same_transaction() {
        let dir = dir("pending");
        let settings = RollSettings {
            max_bytes: 1,
            max_age: Duration::from_secs(3600),
        };
        let mut archiver = Archiver::open(Objects::local(&dir), "wp", settings, None)
            .await
            .unwrap();
        for n in 0..3 {
            let (t, p) = transaction(n);
            archiver.add(&t, p).unwrap();
        }
        archiver.roll(never).await.unwrap().unwrap();
        // A crash mid-roll: the intent through transaction 6 is in the index, one file of it
        // was written with other contents (the crash came mid-write of another).
        let mut index = archiver.index().clone();
        index.pending = Some(transaction(6).1);
        let objects = Objects::local(&dir);
        objects
            .put(&index_name("wp"), index_bytes(&index))
            .await
            .unwrap();
        let stale = "wp/public.b/__date=1970-01-01/0000000000000103-0000000000000106.parquet";
        objects.put(stale, b"half".to_vec()).await.unwrap();

        let mut archiver = Archiver::open(objects, "wp", settings, None).await.unwrap();
        assert_eq!(archiver.position(), Some(transaction(2).1));
        for n in 3..=6 {
            let (t, p) = transaction(n);
            archiver.add(&t, p).unwrap();
            // Big enough from the first, but it rolls only where the intent said.
            assert_eq!(archiver.due(), n == 6, "{n}");
            assert_eq!(archiver.may_roll(), n == 6, "{n}");
        }
        let rolled = archiver.roll(never).await.unwrap().unwrap();
        assert!(rolled.files.iter().any(|m| m.object == stale));
        assert_ne!(std::fs::read(dir.join(stale)).unwrap(), b"half");
        assert_eq!(archiver.index().pending, None);
        // Each change is in exactly one file of the index.
        let rows: u64 = archiver.index().files.iter().map(|m| m.rows).sum();
        assert_eq!(rows, 2 * 7);
        // A ledger that skips the pending transaction is refused.
        let mut index = archiver.index().clone();
        index.pending = Some(Position {
            commit_lsn: Lsn::new(0x1000),
            ..transaction(7).1
        });
        let objects = Objects::local(&dir);
        objects
            .put(&index_name("wp"), index_bytes(&index))
            .await
            .unwrap();
        let mut archiver = Archiver::open(objects, "wp", settings, None).await.unwrap();
        let (t, mut p) = transaction(7);
        p.commit_lsn = Lsn::new(0x2000);
        let t = Transaction {
            commit_lsn: p.commit_lsn,
            ..t
        };
        let err = archiver.add(&t, p).unwrap_err().to_string();
        assert!(err.contains("pending roll is through 0/1000"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_damaged_index_is_refused_naming_it() {
        let dir = dir("damaged");
        let objects = Objects::local(&dir);
        objects.put(&index_name("wp"), b"{".to_vec()).await.unwrap();
        let err = Archiver::open(objects, "wp", RollSettings::default(), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("wp/_walproof/index.json") && err.contains("not a walproof archive index"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_sealed_archive_opens_with_its_secret_only() {
        let dir = dir("sealed");
        let sealer = || Some(Sealer::new(&[42; 32]).unwrap());
        let mut archiver = Archiver::open(
            Objects::local(&dir),
            "wp",
            RollSettings::default(),
            sealer(),
        )
        .await
        .unwrap();
        for n in 0..3 {
            let (t, p) = transaction(n);
            archiver.add(&t, p).unwrap();
        }
        let rolled = archiver.roll(never).await.unwrap().unwrap();
        let file = &rolled.files[0];
        let on_disk = std::fs::read(dir.join(&file.object)).unwrap();
        assert!(is_sealed(&on_disk));
        assert!(
            crate::file::manifest_inside(&on_disk).is_err(),
            "not readable as Parquet"
        );
        // With the secret: the index, and the file matching its manifest's digest.
        let reopened = Archiver::open(
            Objects::local(&dir),
            "wp",
            RollSettings::default(),
            sealer(),
        )
        .await
        .unwrap();
        assert_eq!(reopened.index().files, rolled.files);
        let bytes = reopened.get(&file.object).await.unwrap().unwrap();
        use sha2::Digest as _;
        assert_eq!(
            file.sha256,
            Some(Digest(sha2::Sha256::digest(&bytes).into()))
        );
        assert_eq!(
            crate::file::manifest_inside(&bytes).unwrap().rows,
            file.rows
        );
        // Without it, or with another, nothing opens.
        let err = Archiver::open(Objects::local(&dir), "wp", RollSettings::default(), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sealed: give the archive's encryption secret"),
            "{err}"
        );
        let other = Some(Sealer::new(&[43; 32]).unwrap());
        let err = Archiver::open(Objects::local(&dir), "wp", RollSettings::default(), other)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("wp/_walproof/index.json does not open with this secret"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A column added inside a transaction: the rows before the change keep the old shape,
    /// the rows after it go to a file of the new one; a row of the wrong width is refused.
    #[tokio::test]
    async fn a_schema_change_inside_a_transaction_splits_its_table_there() {
        use walproof_core::schema_change::{
            ColumnChange, SchemaChange, TableChange, TableChangeKind,
        };
        let dir = dir("ddl");
        let mut archiver =
            Archiver::open(Objects::local(&dir), "wp", RollSettings::default(), None)
                .await
                .unwrap();
        let column = |name: &str, was: Option<u32>| ColumnChange {
            name: name.into(),
            type_oid: 20,
            type_modifier: -1,
            key: name == "id",
            was,
        };
        let ddl = SchemaChange {
            publication: "p".into(),
            tag: "ALTER TABLE".into(),
            statement: "ALTER TABLE a ADD COLUMN extra int8".into(),
            tables: vec![TableChange {
                oid: 1,
                schema: "public".into(),
                name: "a".into(),
                change: TableChangeKind::Altered,
                replica_identity: "d".into(),
                columns: vec![column("id", Some(0)), column("extra", None)],
                rows_follow: false,
            }],
        };
        let one = |v: &str| Row(vec![Value::Text(v.into())]);
        let two = |v: &str| Row(vec![Value::Text(v.into()), Value::Text(v.into())]);
        let old = relation(1, "a", &["id"]);
        let new = relation(1, "a", &["id", "extra"]);
        // The shape before the transaction is known from an earlier one.
        let (first, p) = transaction(0);
        archiver.add(&first, p).unwrap();
        assert_eq!(first.relations[&1], old);
        let mut t = Transaction {
            commit_lsn: Lsn::new(0x200),
            xid: 9,
            commit_time_us: 0,
            relations: BTreeMap::from([(1, new.clone())]),
            changes: vec![
                Change {
                    ordinal: 0,
                    op: Op::Insert {
                        relation: 1,
                        new: one("7"),
                    },
                },
                Change {
                    ordinal: 1,
                    op: Op::Message {
                        prefix: SCHEMA_CHANGE_PREFIX.into(),
                        content: serde_json::to_vec(&ddl).unwrap(),
                    },
                },
                Change {
                    ordinal: 2,
                    op: Op::Insert {
                        relation: 1,
                        new: two("8"),
                    },
                },
            ],
        };
        let position = Position {
            commit_lsn: t.commit_lsn,
            ledger_offset: 9,
            ledger_hash: Digest([9; 32]),
        };
        archiver.add(&t, position).unwrap();
        let rolled = archiver.roll(never).await.unwrap().unwrap();
        let a: Vec<_> = rolled
            .files
            .iter()
            .filter(|m| m.table == "public.a")
            .map(|m| (m.object.as_str(), m.rows))
            .collect();
        assert_eq!(
            a,
            [
                (
                    "wp/public.a/__date=1970-01-01/0000000000000100-0000000000000200.parquet",
                    2
                ),
                (
                    "wp/public.a/__date=1970-01-01/0000000000000200-0000000000000200.parquet",
                    1
                ),
            ]
        );
        // A row that fits no shape is refused, naming the change.
        t.commit_lsn = Lsn::new(0x300);
        t.changes.truncate(1);
        let err = archiver
            .add(
                &t,
                Position {
                    commit_lsn: t.commit_lsn,
                    ..position
                },
            )
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "transaction 0/300, change 0: a row of 1 values for the 2 columns of public.a"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_become_one_safe_path_segment_each() {
        assert_eq!(path_segment("accounts_2024"), "accounts_2024");
        assert_eq!(path_segment("../../etc"), "%2E%2E%2F%2E%2E%2Fetc");
        assert_eq!(
            path_segment("a.b"),
            "a%2Eb",
            "schema a.b + table c ≠ schema a + table b.c"
        );
        assert_eq!(
            path_segment("Crème brûlée"),
            "Cr%C3%A8me%20br%C3%BBl%C3%A9e"
        );
    }
}
