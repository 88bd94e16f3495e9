//! The validator's snapshot: what it holds at a transaction the shadow database has applied,
//! written on a clean shutdown, so that a restart reads the ledger from there instead of from
//! its first record.
//!
//! ```text
//! <state dir>/snapshot/            the tree, the rows and the shapes: a committer store
//!                                  (`CommitState::save`) whose one root is the snapshot's
//!                                  transaction, with where it ends in the ledger
//! <state dir>/snapshot/validator.json
//!                                  the rest, at that transaction: the tables the shadow holds,
//!                                  the roots verified and not attested yet, the withdrawals
//!                                  waiting for them, the last root read from the roots topic,
//!                                  the last root attested; and the SHA-256 of each of the
//!                                  store's files. A second line holds the SHA-256 of the first.
//! ```
//!
//! A snapshot is written aside (`snapshot.new`) and synced; the one it replaces is renamed to
//! `snapshot.old`, the new one into place, and only then is the old one removed. A crash
//! leaves the old snapshot (in place, or as `snapshot.old`, which [`Snapshot::read`] falls
//! back to) or the new one — either a state the validator really held.
//!
//! **What a restart checks before it uses one** ([`Snapshot::usable`]): its transaction is at
//! or before the shadow's progress row — the shadow has applied it, and a validator never
//! plans a transaction twice — and where they are the same transaction, the ledger hash and
//! the root are the row's. Every file must hash to what `validator.json` says, and the store's
//! tree to its root (read back like the committer's store). Reading the ledger resumes after the snapshot's last record, which must
//! still hash to the snapshot's ledger hash, and every record after it must extend that
//! chain; every root computed from there is matched with the published one as before. A
//! snapshot that fails any of this is set aside with a warning, and the ledger is read from
//! its first record: a snapshot only ever saves time.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use walproof_committer::CommitState;
use walproof_committer::store::KeptRoot;
use walproof_core::{Digest, Lsn, RelationId};
use walproof_transport::roots::RootRecord;

use crate::replay::Replay;
use crate::shadow::Progress;
use crate::withdrawal::Withdrawal;

/// The snapshot's file format version.
const VERSION: u32 = 1;

/// A root this validator computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Computed {
    /// The transaction's commit LSN.
    pub commit_lsn: Lsn,
    /// The root after it.
    pub root: Digest,
    /// The hash of its last ledger record.
    pub ledger_hash: Digest,
    /// Its commit time at the source, microseconds since the Unix epoch.
    pub commit_time_us: i64,
}

/// What the validator holds at a transaction.
#[derive(Debug)]
pub struct Snapshot {
    /// The tree and the rows behind it, after the transaction.
    pub state: CommitState,
    /// The transaction: commit LSN, root, and where it ends in the ledger.
    pub at: KeptRoot,
    /// The replay: the stream's shapes and the tables the shadow holds.
    pub replay: Replay,
    /// Roots verified and not attested yet, in LSN order.
    pub verified: Vec<Computed>,
    /// Withdrawals requested by transactions whose roots are not attested yet.
    pub withdrawals: Vec<Withdrawal>,
    /// The last record read from the roots topic and matched (or passed over), with its offset.
    pub roots_read: Option<(i64, RootRecord)>,
    /// The last commit LSN this validator had attested.
    pub attested: Option<Lsn>,
    /// The ledger's topic.
    pub ledger_topic: String,
}

/// `validator.json`.
#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    ledger_topic: String,
    commit_lsn: String,
    shadow_tables: Vec<RelationId>,
    verified: Vec<FileVerified>,
    withdrawals: Vec<FileWithdrawal>,
    roots_read: Option<FileRoot>,
    attested: Option<String>,
    /// The SHA-256 of each of the store's files, by name.
    files: std::collections::BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct FileVerified {
    commit_lsn: String,
    root: String,
    ledger_hash: String,
    commit_time_us: i64,
}

#[derive(Serialize, Deserialize)]
struct FileWithdrawal {
    id: u64,
    recipient: String,
    amount: String,
    commit_lsn: String,
}

#[derive(Serialize, Deserialize)]
struct FileRoot {
    offset: i64,
    record: serde_json::Value,
}

/// Where the snapshot lives in `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("snapshot")
}

/// Where the snapshot being replaced waits until its successor is in place.
fn previous(state_dir: &Path) -> PathBuf {
    state_dir.join("snapshot.old")
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> String {
    let what = format!("{what} {}", path.display());
    move |err| format!("{what}: {err}")
}

const JSON: &str = "validator.json";

/// The SHA-256 of each file in `dir` but `validator.json`, by name.
fn file_hashes(dir: &Path) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut hashes = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(io("listing", dir))? {
        let path = entry.map_err(io("listing", dir))?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name == JSON {
            continue;
        }
        let mut hasher = sha2::Sha256::new();
        let mut file = std::fs::File::open(&path).map_err(io("reading", &path))?;
        std::io::copy(&mut file, &mut hasher).map_err(io("reading", &path))?;
        hashes.insert(name, hex::encode(hasher.finalize()));
    }
    Ok(hashes)
}

impl Snapshot {
    /// Writes `state` (after the transaction that ends at `ledger_offset` with hash
    /// `ledger_hash`) and the rest of the snapshot into `state_dir`, replacing the snapshot
    /// there. Blocking: it writes and syncs every row of the state.
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        state_dir: &Path,
        ledger_topic: &str,
        state: &mut CommitState,
        ledger_hash: Digest,
        ledger_offset: i64,
        replay: &Replay,
        verified: &[Computed],
        withdrawals: &[Withdrawal],
        roots_read: Option<(i64, RootRecord)>,
        attested: Option<Lsn>,
    ) -> Result<KeptRoot, String> {
        let aside = state_dir.join("snapshot.new");
        if aside.exists() {
            std::fs::remove_dir_all(&aside).map_err(io("removing", &aside))?;
        }
        std::fs::create_dir_all(state_dir).map_err(io("creating", state_dir))?;
        let at = state
            .save(&aside, ledger_hash, ledger_offset)
            .map_err(|err| err.to_string())?;
        let file = File {
            version: VERSION,
            ledger_topic: ledger_topic.to_owned(),
            commit_lsn: at.commit_lsn.to_string(),
            shadow_tables: replay.shadow().iter().map(|rel| rel.id).collect(),
            verified: verified
                .iter()
                .map(|v| FileVerified {
                    commit_lsn: v.commit_lsn.to_string(),
                    root: v.root.to_string(),
                    ledger_hash: v.ledger_hash.to_string(),
                    commit_time_us: v.commit_time_us,
                })
                .collect(),
            withdrawals: withdrawals
                .iter()
                .map(|w| FileWithdrawal {
                    id: w.id,
                    recipient: w.recipient.to_string(),
                    amount: w.amount.to_string(),
                    commit_lsn: w.commit_lsn.to_string(),
                })
                .collect(),
            roots_read: roots_read.map(|(offset, record)| FileRoot {
                offset,
                record: serde_json::from_str(&record.to_json()).expect("a root's JSON parses"),
            }),
            attested: attested.map(|lsn| lsn.to_string()),
            files: file_hashes(&aside)?,
        };
        let json = aside.join(JSON);
        let mut bytes = serde_json::to_vec(&file).expect("the snapshot's JSON serializes");
        let checksum = hex::encode(sha2::Sha256::digest(&bytes));
        bytes.push(b'\n');
        bytes.extend_from_slice(checksum.as_bytes());
        bytes.push(b'\n');
        let mut out = std::fs::File::create(&json).map_err(io("creating", &json))?;
        std::io::Write::write_all(&mut out, &bytes).map_err(io("writing", &json))?;
        out.sync_all().map_err(io("syncing", &json))?;
        let current = path(state_dir);
        let old = previous(state_dir);
        // An old snapshot goes only once a current one takes its place: when a crash left the
        // old one alone, it stays until the new one is in place.
        if current.exists() {
            if old.exists() {
                std::fs::remove_dir_all(&old).map_err(io("removing", &old))?;
            }
            std::fs::rename(&current, &old).map_err(io("renaming", &current))?;
        }
        std::fs::rename(&aside, &current).map_err(io("renaming", &aside))?;
        std::fs::File::open(state_dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io("syncing", state_dir))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io("removing", &old))?;
        }
        Ok(at)
    }

    /// The snapshot in `state_dir` (or the one a crash left as `snapshot.old` while it was
    /// being replaced); `Ok(None)` when there is none. An error names what is wrong with it.
    pub fn read(state_dir: &Path) -> Result<Option<Snapshot>, String> {
        let Some(dir) = [path(state_dir), previous(state_dir)]
            .into_iter()
            .find(|dir| dir.join(JSON).exists())
        else {
            return Ok(None);
        };
        let json = dir.join(JSON);
        let bytes = std::fs::read(&json).map_err(io("reading", &json))?;
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = text.lines();
        let (body, checksum) = (lines.next().unwrap_or_default(), lines.next());
        if checksum != Some(hex::encode(sha2::Sha256::digest(body.as_bytes())).as_str()) {
            return Err(format!(
                "{}: damaged (its checksum does not match)",
                json.display()
            ));
        }
        let file: File = serde_json::from_str(body)
            .map_err(|err| format!("{}: not a snapshot: {err}", json.display()))?;
        if file.version != VERSION {
            return Err(format!(
                "{}: version {}, this build reads {VERSION}",
                json.display(),
                file.version
            ));
        }
        let bad = |field: &str, err: &dyn std::fmt::Display| {
            format!("{}: {field}: {err}", json.display())
        };
        let lsn = |field: &str, text: &str| -> Result<Lsn, String> {
            text.parse().map_err(|err| bad(field, &err))
        };
        let digest = |field: &str, text: &str| -> Result<Digest, String> {
            text.parse().map_err(|err| bad(field, &err))
        };
        let hashes = file_hashes(&dir)?;
        if hashes != file.files {
            let named = |files: &std::collections::BTreeMap<String, String>| {
                files.keys().cloned().collect::<Vec<_>>().join(", ")
            };
            let damaged = file
                .files
                .iter()
                .find(|(name, hash)| hashes.get(*name) != Some(*hash))
                .map_or_else(
                    || format!("holds {}, not {}", named(&hashes), named(&file.files)),
                    |(name, _)| format!("{name} does not hash to what {JSON} says"),
                );
            return Err(format!("{}: damaged: {damaged}", dir.display()));
        }
        let Some((state, at)) = CommitState::read_saved(&dir).map_err(|err| err.to_string())?
        else {
            return Err(format!(
                "{}: no saved state beside validator.json",
                dir.display()
            ));
        };
        if lsn("commit_lsn", &file.commit_lsn)? != at.commit_lsn {
            return Err(bad(
                "commit_lsn",
                &format!(
                    "{}, but the saved state is at {}",
                    file.commit_lsn, at.commit_lsn
                ),
            ));
        }
        let shadow_tables = file
            .shadow_tables
            .iter()
            .map(|id| {
                state
                    .relations()
                    .find(|rel| rel.id == *id)
                    .cloned()
                    .ok_or_else(|| bad("shadow_tables", &format!("relation {id} has no shape")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let replay = Replay::resume(state.relations().cloned(), shadow_tables);
        let verified = file
            .verified
            .iter()
            .map(|v| {
                Ok(Computed {
                    commit_lsn: lsn("verified", &v.commit_lsn)?,
                    root: digest("verified", &v.root)?,
                    ledger_hash: digest("verified", &v.ledger_hash)?,
                    commit_time_us: v.commit_time_us,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let withdrawals = file
            .withdrawals
            .iter()
            .map(|w| {
                Ok(Withdrawal {
                    id: w.id,
                    recipient: w.recipient.parse().map_err(|err| bad("recipient", &err))?,
                    amount: w.amount.parse().map_err(|err| bad("amount", &err))?,
                    commit_lsn: lsn("withdrawals", &w.commit_lsn)?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let roots_read = match file.roots_read {
            Some(FileRoot { offset, record }) => Some((
                offset,
                RootRecord::from_json(record.to_string().as_bytes())
                    .map_err(|err| bad("roots_read", &err))?,
            )),
            None => None,
        };
        let attested = match &file.attested {
            Some(text) => Some(lsn("attested", text)?),
            None => None,
        };
        Ok(Some(Snapshot {
            state,
            at,
            replay,
            verified,
            withdrawals,
            roots_read,
            attested,
            ledger_topic: file.ledger_topic,
        }))
    }

    /// Whether a validator whose shadow database stands at `progress` can resume from this
    /// snapshot: `Err` says why not.
    pub fn usable(&self, progress: Option<&Progress>, ledger_topic: &str) -> Result<(), String> {
        if self.ledger_topic != ledger_topic {
            return Err(format!(
                "it was taken from ledger {}, this validator reads {ledger_topic}",
                self.ledger_topic
            ));
        }
        let Some(progress) = progress else {
            return Err(format!(
                "it is at {}, and the shadow database holds no transaction",
                self.at.commit_lsn
            ));
        };
        if self.at.commit_lsn > progress.commit_lsn {
            return Err(format!(
                "it is at {}, after the shadow database's last transaction {}",
                self.at.commit_lsn, progress.commit_lsn
            ));
        }
        if self.at.commit_lsn == progress.commit_lsn
            && (self.at.ledger_hash, self.at.root) != (progress.ledger_hash, progress.root)
        {
            return Err(format!(
                "at {} it has ledger hash {} and root {}, the shadow database's progress row {} and {}",
                self.at.commit_lsn,
                self.at.ledger_hash,
                self.at.root,
                progress.ledger_hash,
                progress.root
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use alloy::primitives::{Address, U256};
    use walproof_core::{Change, Column, Op, Relation, ReplicaIdentity, Row, Transaction, Value};

    use super::*;

    fn accounts() -> Relation {
        Relation {
            id: 7,
            schema: "public".into(),
            name: "accounts".into(),
            replica_identity: ReplicaIdentity::Default,
            columns: ["id", "name"]
                .iter()
                .enumerate()
                .map(|(i, name)| Column {
                    name: (*name).into(),
                    type_oid: 25,
                    type_modifier: -1,
                    key: i == 0,
                })
                .collect(),
        }
    }

    fn inserts(lsn: u64, ids: std::ops::Range<u32>) -> Transaction {
        let rel = accounts();
        Transaction {
            commit_lsn: Lsn::new(lsn),
            xid: 1,
            commit_time_us: 0,
            relations: BTreeMap::from([(rel.id, rel.clone())]),
            changes: ids
                .enumerate()
                .map(|(ordinal, id)| Change {
                    ordinal: ordinal as u32,
                    op: Op::Insert {
                        relation: rel.id,
                        new: Row(vec![Value::Text(id.to_string()), Value::Text("a".into())]),
                    },
                })
                .collect(),
        }
    }

    fn dir(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("walproof-snapshot-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// A snapshot as the validator writes it on a clean stop: state at LSN 200 (offset 41).
    fn written(dir: &Path) -> (Digest, Computed, Withdrawal, RootRecord) {
        let mut state = CommitState::default();
        state.apply(&inserts(100, 0..50)).unwrap();
        let root = state.apply(&inserts(200, 50..60)).unwrap().root;
        let replay = Replay::resume(state.relations().cloned(), [accounts()]);
        let verified = Computed {
            commit_lsn: Lsn::new(200),
            root,
            ledger_hash: Digest([2; 32]),
            commit_time_us: 123,
        };
        let withdrawal = Withdrawal {
            id: 9,
            recipient: Address::repeat_byte(0x11),
            amount: U256::from(10_u64.pow(18)),
            commit_lsn: Lsn::new(200),
        };
        let read = RootRecord {
            commit_lsn: Lsn::new(100),
            root: Digest([1; 32]),
            previous_root: Digest::ZERO,
            ledger_hash: Digest([3; 32]),
            changes: 50,
        };
        let at = Snapshot::write(
            dir,
            "p.ledger",
            &mut state,
            Digest([2; 32]),
            41,
            &replay,
            &[verified],
            &[withdrawal],
            Some((5, read)),
            Some(Lsn::new(100)),
        )
        .unwrap();
        assert_eq!(
            (at.commit_lsn, at.root, at.ledger_offset),
            (Lsn::new(200), root, 41)
        );
        (root, verified, withdrawal, read)
    }

    #[test]
    fn a_snapshot_reads_back_as_written_and_replaces_the_one_before() {
        let dir = dir("roundtrip");
        assert!(Snapshot::read(&dir).unwrap().is_none(), "none yet");
        written(&dir);
        // Written again: the new one replaces it, nothing is left aside.
        let (root, verified, withdrawal, read) = written(&dir);
        assert!(!dir.join("snapshot.new").exists());
        let snapshot = Snapshot::read(&dir).unwrap().unwrap();
        assert_eq!(snapshot.state.root(), root);
        assert_eq!(snapshot.state.keys(), 60);
        assert_eq!(snapshot.at.ledger_hash, Digest([2; 32]));
        assert_eq!(snapshot.verified, vec![verified]);
        assert_eq!(snapshot.withdrawals, vec![withdrawal]);
        assert_eq!(snapshot.roots_read, Some((5, read)));
        assert_eq!(snapshot.attested, Some(Lsn::new(100)));
        assert_eq!(snapshot.replay.shadow().get(7), Some(&accounts()));
        assert!(!dir.join("snapshot.old").exists());
        // A crash between moving the old snapshot aside and renaming the new one into place
        // leaves the old one as snapshot.old: it is read from there.
        std::fs::rename(dir.join("snapshot"), dir.join("snapshot.old")).unwrap();
        let snapshot = Snapshot::read(&dir).unwrap().unwrap();
        assert_eq!(snapshot.state.root(), root);
        // The next write replaces it as well.
        written(&dir);
        assert!(!dir.join("snapshot.old").exists() && dir.join("snapshot").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_snapshot_after_the_shadow_or_of_another_ledger_is_not_usable() {
        let dir = dir("usable");
        let (root, ..) = written(&dir);
        let snapshot = Snapshot::read(&dir).unwrap().unwrap();
        let progress = |lsn: u64, hash: u8, root: Digest| Progress {
            commit_lsn: Lsn::new(lsn),
            ledger_offset: 0,
            ledger_hash: Digest([hash; 32]),
            root,
            attested: None,
        };
        assert_eq!(
            snapshot.usable(Some(&progress(200, 2, root)), "p.ledger"),
            Ok(())
        );
        assert_eq!(
            snapshot.usable(Some(&progress(300, 9, root)), "p.ledger"),
            Ok(())
        );
        for (progress, ledger, why) in [
            (None, "p.ledger", "holds no transaction"),
            (
                Some(progress(150, 2, root)),
                "p.ledger",
                "after the shadow database's last",
            ),
            (Some(progress(200, 8, root)), "p.ledger", "progress row"),
            (
                Some(progress(200, 2, Digest::ZERO)),
                "p.ledger",
                "progress row",
            ),
            (
                Some(progress(200, 2, root)),
                "q.ledger",
                "this validator reads q.ledger",
            ),
        ] {
            let refused = snapshot.usable(progress.as_ref(), ledger).unwrap_err();
            assert!(refused.contains(why), "{refused}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_snapshot_is_refused_naming_what_is_damaged() {
        let dir = dir("damaged");
        written(&dir);
        let json = path(&dir).join(JSON);
        let text = std::fs::read_to_string(&json).unwrap();
        std::fs::write(&json, text.replacen("p.ledger", "x.ledger", 1)).unwrap();
        let refused = Snapshot::read(&dir).unwrap_err();
        assert!(refused.contains("its checksum does not match"), "{refused}");

        written(&dir);
        let nodes = std::fs::read_dir(path(&dir))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| path.to_str().unwrap().contains("nodes."))
            .unwrap();
        let mut bytes = std::fs::read(&nodes).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&nodes, bytes).unwrap();
        let refused = Snapshot::read(&dir).unwrap_err();
        assert!(
            refused.contains("does not hash to what validator.json says"),
            "{refused}"
        );
        assert!(refused.contains("nodes."), "{refused}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
