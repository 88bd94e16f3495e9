//! The ledger writer and reader against the real broker of the local stack.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use walproof_core::{Change, Digest, Lsn, Op, Reassembled, SealedEntry, Transaction};
use walproof_testkit::Stack;
use walproof_testkit::topics::TestTopics;
use walproof_transport::ledger::{
    AHEAD_ON_THREAD, LedgerReader, LedgerWriter, OpenRun, READ_AHEAD, WriterOptions, read_tail,
};
use walproof_transport::{KafkaSettings, TransportError};

const WAIT: Duration = Duration::from_secs(20);

fn settings(test: &str) -> (Stack, TestTopics, KafkaSettings) {
    let stack = Stack::load().unwrap_or_else(|err| panic!("{err:#}"));
    let topics = TestTopics::new(&stack, test);
    let settings = KafkaSettings::new(&stack.kafka_brokers, topics.prefix());
    (stack, topics, settings)
}

/// A transaction of `changes` small messages; with a budget of 100 bytes it spans several parts.
fn transaction(lsn: u64, changes: u32) -> Transaction {
    Transaction {
        commit_lsn: Lsn::new(lsn),
        xid: lsn as u32,
        commit_time_us: 1,
        relations: BTreeMap::new(),
        changes: (0..changes)
            .map(|ordinal| Change {
                ordinal,
                op: Op::Message {
                    prefix: "t".into(),
                    content: vec![ordinal as u8; 40],
                },
            })
            .collect(),
    }
}

async fn write_whole(writer: &mut LedgerWriter, tx: &Transaction) {
    for entry in tx.split(100) {
        let confirm = entry.last.then(|| Lsn::new(tx.commit_lsn.as_u64() + 8));
        writer.append(entry, confirm).await.unwrap();
    }
}

#[tokio::test]
async fn written_transactions_read_back_whole_in_order_and_acks_confirm_the_last() {
    let (_stack, _topics, settings) = settings("ledger_roundtrip");
    let (mut writer, tail) = LedgerWriter::open(&settings, &WriterOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (tail.head, tail.last_complete, tail.open_run),
        (Digest::ZERO, None, None)
    );

    let (a, b) = (transaction(0x100, 5), transaction(0x200, 1));
    write_whole(&mut writer, &a).await;
    write_whole(&mut writer, &b).await;
    writer.flush(WAIT).await.unwrap();
    let acks = writer.acks().borrow().clone();
    assert_eq!(
        acks.confirmed,
        Some(Lsn::new(0x208)),
        "the last transaction's confirm position"
    );
    assert_eq!(acks.acknowledged, writer.appended());
    assert!(writer.appended() > 2, "a was split into parts");

    let contents = LedgerReader::from_start(&settings)
        .unwrap()
        .read_to_end(WAIT)
        .await
        .unwrap();
    assert_eq!(contents.transactions, vec![a, b]);
    assert!(contents.abandoned.is_empty());

    let tail = read_tail(&settings, WAIT).await.unwrap();
    assert_eq!(tail.last_complete, Some(Lsn::new(0x200)));
    assert_eq!(tail.head, writer.head());
}

/// What `read_ahead_with` computes comes with its own transaction, for small transactions
/// (computed on the reading task) and big ones (on a blocking thread) alike, and nothing comes
/// with a record that completes no transaction.
#[tokio::test]
async fn read_ahead_hands_over_what_it_computed_with_each_whole_transaction() {
    let (_stack, _topics, settings) = settings("ledger_read_ahead");
    let (mut writer, _) = LedgerWriter::open(&settings, &WriterOptions::default())
        .await
        .unwrap();
    let big = AHEAD_ON_THREAD as u32 + 10;
    let written = [
        transaction(0x100, 5),
        transaction(0x200, big),
        transaction(0x300, 1),
    ];
    for tx in &written {
        write_whole(&mut writer, tx).await;
    }
    writer.flush(WAIT).await.unwrap();

    let mut reader = LedgerReader::from_start(&settings)
        .unwrap()
        .read_ahead_with(READ_AHEAD, Duration::from_secs(2), |tx: &Transaction| {
            (tx.commit_lsn, tx.changes.len())
        });
    let (mut whole, mut parts) = (Vec::new(), 0);
    while whole.len() < written.len() {
        let ahead = reader
            .next()
            .await
            .unwrap()
            .expect("a record before the end");
        match ahead.outcome {
            Reassembled::Complete(tx) => {
                assert_eq!(
                    ahead.computed,
                    Some((tx.commit_lsn, tx.changes.len())),
                    "{}",
                    tx.commit_lsn
                );
                whole.push(tx);
                if whole.len() == written.len() {
                    assert_eq!(ahead.head, writer.head());
                }
            }
            _ => {
                assert_eq!(ahead.computed, None);
                parts += 1;
            }
        }
    }
    assert_eq!(whole, written);
    assert!(parts > 0, "the transactions were split into parts");
    // The reading task (and its consumer) ends before the test's topics are deleted.
    drop(reader);
    tokio::time::sleep(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_writer_that_stopped_inside_a_transaction_is_voided_by_an_abandon_marker_on_reopen() {
    let (_stack, _topics, settings) = settings("ledger_abandon");
    let (mut writer, _) = LedgerWriter::open(&settings, &WriterOptions::default())
        .await
        .unwrap();
    let (a, b) = (transaction(0x100, 1), transaction(0x200, 6));
    write_whole(&mut writer, &a).await;
    // Only the first two parts of b reach the ledger, then the writer dies.
    let parts = b.split(100);
    assert!(parts.len() > 2);
    for entry in parts.into_iter().take(2) {
        writer.append(entry, None).await.unwrap();
    }
    writer.flush(WAIT).await.unwrap();
    drop(writer);

    let (mut writer, tail) = LedgerWriter::open(&settings, &WriterOptions::default())
        .await
        .unwrap();
    assert_eq!(tail.last_complete, Some(Lsn::new(0x100)));
    assert_eq!(
        tail.open_run,
        Some(OpenRun {
            commit_lsn: Lsn::new(0x200),
            parts_written: 2
        })
    );
    assert_eq!(
        writer.last_complete(),
        Some(Lsn::new(0x100)),
        "b may be written again"
    );
    write_whole(&mut writer, &b).await;
    writer.flush(WAIT).await.unwrap();

    // A repeat of an already complete transaction is refused.
    let repeat = a.split(100).remove(0);
    let err = writer.append(repeat, None).await.unwrap_err();
    assert!(matches!(err, TransportError::NotAfterTail { .. }), "{err}");
    drop(writer);

    let contents = LedgerReader::from_start(&settings)
        .unwrap()
        .read_to_end(WAIT)
        .await
        .unwrap();
    assert_eq!(contents.transactions, vec![a, b], "b counts once");
    assert_eq!(contents.abandoned, vec![Lsn::new(0x200)]);

    // Reopening right after the marker and the complete b needs no new marker.
    let (_, tail) = LedgerWriter::open(&settings, &WriterOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (tail.last_complete, tail.open_run),
        (Some(Lsn::new(0x200)), None)
    );
}

#[tokio::test]
async fn a_record_from_a_foreign_writer_breaks_the_chain_for_readers_and_the_writer() {
    let (_stack, topics, settings) = settings("ledger_foreign");
    let (mut writer, _) = LedgerWriter::open(&settings, &WriterOptions::default())
        .await
        .unwrap();
    write_whole(&mut writer, &transaction(0x100, 1)).await;
    writer.flush(WAIT).await.unwrap();
    drop(writer);

    // Someone else appends a well-formed record that does not link to the head.
    let stranger = transaction(0x300, 1).split(usize::MAX).remove(0);
    let forged = SealedEntry::seal(Digest([7; 32]), stranger.bytes);
    let producer: FutureProducer = topics.client_config().create().unwrap();
    producer
        .send(
            FutureRecord::to(&settings.ledger_topic())
                .key("x")
                .payload(&forged.to_bytes()),
            WAIT,
        )
        .await
        .map_err(|(err, _)| err)
        .unwrap();

    let err = LedgerReader::from_start(&settings)
        .unwrap()
        .read_to_end(WAIT)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::ChainBroken { offset: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("offset 1"), "{err}");
    let err = LedgerWriter::open(&settings, &WriterOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::ChainBroken { offset: 1, .. }),
        "{err}"
    );
}
