//! The hash chain detects an edited, dropped, inserted or reordered ledger entry.

use walproof_core::{
    Chain, DecodeError, Digest, EntryBody, LedgerEntry, Lsn, SealedEntry, Transaction,
};

/// A chain of `n` sealed entries: small transactions at increasing commit LSNs.
fn sealed_chain(n: u64) -> Vec<SealedEntry> {
    let mut prev = Digest::ZERO;
    (1..=n)
        .map(|i| {
            let tx = Transaction {
                commit_lsn: Lsn::new(i * 0x100),
                xid: i as u32,
                commit_time_us: 0,
                relations: Default::default(),
                changes: vec![walproof_core::Change {
                    ordinal: 0,
                    op: walproof_core::Op::Message {
                        prefix: "t".into(),
                        content: vec![i as u8],
                    },
                }],
            };
            let sealed = SealedEntry::seal(prev, tx.split(usize::MAX).remove(0).bytes);
            prev = sealed.hash;
            sealed
        })
        .collect()
}

/// Feeds envelopes (as bytes, the way a consumer reads them) into a fresh chain and returns the
/// index and error of the first rejected one.
fn first_rejection(records: &[Vec<u8>]) -> Option<(usize, String)> {
    let mut chain = Chain::genesis();
    for (i, bytes) in records.iter().enumerate() {
        let sealed = match SealedEntry::from_bytes(bytes) {
            Ok(sealed) => sealed,
            Err(err) => return Some((i, err.to_string())),
        };
        if let Err(err) = chain.extend(&sealed) {
            return Some((i, err.to_string()));
        }
    }
    None
}

fn as_records(entries: &[SealedEntry]) -> Vec<Vec<u8>> {
    entries.iter().map(SealedEntry::to_bytes).collect()
}

#[test]
fn an_intact_chain_is_accepted_and_round_trips() {
    let entries = sealed_chain(5);
    assert_eq!(first_rejection(&as_records(&entries)), None);
    for sealed in &entries {
        assert_eq!(
            SealedEntry::from_bytes(&sealed.to_bytes()).unwrap(),
            *sealed
        );
        assert!(matches!(
            sealed.decode_entry().unwrap().body,
            EntryBody::Transaction(_)
        ));
    }
    assert_eq!(entries[0].prev_hash, Digest::ZERO);
}

#[test]
fn an_edited_entry_fails_its_own_hash() {
    let mut entries = sealed_chain(5);
    let mut edited = entries[2].decode_entry().unwrap();
    edited.commit_lsn = Lsn::new(0xdead);
    entries[2].entry = edited.encode(); // the old hash stays: the edit is visible
    let (at, message) = first_rejection(&as_records(&entries)).unwrap();
    assert_eq!(at, 2);
    assert!(message.starts_with("entry hash mismatch"), "{message}");
}

#[test]
fn an_edited_entry_with_a_recomputed_hash_breaks_the_next_link() {
    let mut entries = sealed_chain(5);
    let mut edited: LedgerEntry = entries[2].decode_entry().unwrap();
    edited.commit_lsn = Lsn::new(0xdead);
    entries[2] = SealedEntry::seal(entries[2].prev_hash, edited.encode());
    let (at, message) = first_rejection(&as_records(&entries)).unwrap();
    assert_eq!(at, 3);
    assert!(message.starts_with("chain broken"), "{message}");
}

#[test]
fn a_dropped_entry_breaks_the_chain() {
    let mut entries = sealed_chain(5);
    entries.remove(1);
    let (at, message) = first_rejection(&as_records(&entries)).unwrap();
    assert_eq!(at, 1);
    assert!(
        message.contains(&entries[0].hash.to_string()),
        "names the expected head: {message}"
    );
}

#[test]
fn reordered_entries_break_the_chain() {
    let mut entries = sealed_chain(5);
    entries.swap(3, 4);
    assert_eq!(first_rejection(&as_records(&entries)).unwrap().0, 3);
}

#[test]
fn every_single_bit_flip_of_an_envelope_is_rejected() {
    let record = sealed_chain(1)[0].to_bytes();
    for byte in 0..record.len() {
        for bit in 0..8 {
            let mut flipped = record.clone();
            flipped[byte] ^= 1 << bit;
            let accepted = SealedEntry::from_bytes(&flipped)
                .ok()
                .filter(|sealed| Chain::genesis().extend(sealed).is_ok());
            assert!(
                accepted.is_none(),
                "flip of bit {bit} in byte {byte} went unnoticed"
            );
        }
    }
}

#[test]
fn an_unknown_version_is_refused_with_its_number() {
    let mut envelope = walproof_core::ledger::wire::Envelope {
        version: 2,
        prev_hash: vec![0; 32],
        hash: vec![0; 32],
        entry: vec![],
    };
    let bytes = prost::Message::encode_to_vec(&envelope);
    assert_eq!(
        SealedEntry::from_bytes(&bytes).unwrap_err(),
        DecodeError::UnsupportedVersion { version: 2 }
    );
    envelope.version = 1;
    envelope.hash = vec![0; 31];
    let bytes = prost::Message::encode_to_vec(&envelope);
    assert_eq!(
        SealedEntry::from_bytes(&bytes).unwrap_err(),
        DecodeError::HashLength {
            field: "Envelope.hash",
            len: 31
        }
    );
}
