//! The `<prefix>.attestations` topic: validators' signed root attestations, one partition.
//!
//! Every validator appends to the same topic with its own idempotent producer, so records of
//! different validators interleave in no particular order; a reader groups them by key.
//!
//! A record's key is `<validator address>/<commit lsn>` ([`attestation_key`]), e.g.
//! `0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266/16/B374D848`, with the address exactly as in the
//! value (EIP-55 checksummed). Its value is JSON (version 1), written and verified by
//! `walproof_validator::attestation::SignedAttestation`:
//!
//! ```json
//! {"version": 1, "validator": "0x<40 hex, EIP-55>", "commit_lsn": "16/B374D848",
//!  "root": "<64 hex>", "ledger_hash": "<64 hex>", "chain_id": 31337,
//!  "bridge": "0x<40 hex, EIP-55>", "signature": "0x<130 hex>"}
//! ```
//!
//! `root` and `ledger_hash` are as on `<prefix>.roots` for the same `commit_lsn`. `signature`
//! is 65 bytes `r ‖ s ‖ v` (`v` 27 or 28, low `s`) over the EIP-712 hash of
//! `RootAttestation(uint64 commitLsn,bytes32 root,bytes32 ledgerHash)` in the domain
//! `{name "walproof", version "1", chainId: chain_id, verifyingContract: bridge}`.
//!
//! This layer moves keys and bytes only: it neither parses nor trusts a value. The key is a
//! routing hint; a reader trusts only what the value's signature proves.

use std::time::Duration;

use walproof_core::Lsn;

use rdkafka::{Message, Offset};

use crate::error::{Result, TransportError};
use crate::kafka::{KafkaSettings, ReaderContext};
use crate::topic::{Topic, TopicWriter, Until};

/// The attestations topic's name: `<prefix>.attestations`.
pub fn attestations_topic(settings: &KafkaSettings) -> String {
    format!("{}.attestations", settings.topic_prefix)
}

/// The record key of `validator`'s attestation of `commit_lsn`: `<validator>/<commit lsn>`.
pub fn attestation_key(validator: &str, commit_lsn: Lsn) -> String {
    format!("{validator}/{commit_lsn}")
}

/// Splits a record key into the validator and the commit LSN; `None` when it is not of the
/// form [`attestation_key`] writes.
pub fn parse_attestation_key(key: &str) -> Option<(&str, Lsn)> {
    // The address holds no '/', the LSN exactly one: split at the first.
    let (validator, lsn) = key.split_once('/')?;
    if validator.is_empty() {
        return None;
    }
    Some((validator, lsn.parse().ok()?))
}

fn topic(settings: &KafkaSettings) -> Topic {
    Topic {
        name: attestations_topic(settings),
        records: "attestations",
        a_record: "an attestation",
    }
}

/// Makes sure `<prefix>.attestations` exists (one partition), creating it if absent. Returns
/// its name.
pub async fn ensure_attestations_topic(
    settings: &KafkaSettings,
    timeout: Duration,
) -> Result<String> {
    let topic = topic(settings);
    topic.ensure(settings, timeout).await?;
    Ok(topic.name)
}

/// Every record of the attestations topic, in offset order, as `(offset, key, value)`
/// (creating the topic if it does not exist), read until the broker reports the end of the
/// partition. A key that is absent reads as empty, one that is not UTF-8 with replacement
/// characters: keys are hints, values carry the proof.
pub async fn read_attestations(
    settings: &KafkaSettings,
    timeout: Duration,
) -> Result<Vec<(i64, String, Vec<u8>)>> {
    topic(settings)
        .read(settings, None, Until::EndReported, timeout)
        .await
}

/// The highest commit LSN `validator` (its address, in any case) attested on the topic, found
/// in its tail: the last [`TAIL_WINDOW`] records, then four times as many, and so on until one
/// of the validator's root attestations is among them or the whole topic was read. A validator
/// attests roots in LSN order, so its newest record holds its highest LSN, and a restart reads
/// what was published since then instead of the whole topic. Creates the topic if absent.
pub async fn last_attested(
    settings: &KafkaSettings,
    validator: &str,
    timeout: Duration,
) -> Result<Option<Lsn>> {
    let validator = validator.to_owned();
    topic(settings)
        .find_in_tail(settings, TAIL_WINDOW, timeout, move |records| {
            records
                .iter()
                .filter_map(|(_, key, _)| parse_attestation_key(key))
                .filter(|(by, _)| by.eq_ignore_ascii_case(&validator))
                .map(|(_, lsn)| lsn)
                .max()
        })
        .await
}

/// Records of the attestations topic [`last_attested`] reads first.
pub const TAIL_WINDOW: i64 = 4096;

/// Publishes attestations: idempotent, `acks=all`, in the order given, to partition 0.
///
/// [`AttestationsWriter::publish`] only queues; a record is durable once
/// [`AttestationsWriter::flush`] returned (every 1000 queued records, `publish` flushes on its
/// own). The writer does not create the topic: call [`ensure_attestations_topic`] (or
/// [`read_attestations`]) first.
#[derive(Debug)]
pub struct AttestationsWriter(TopicWriter);

impl AttestationsWriter {
    /// A writer for `<prefix>.attestations`.
    pub fn new(settings: &KafkaSettings) -> Result<AttestationsWriter> {
        TopicWriter::new(settings, topic(settings)).map(AttestationsWriter)
    }

    /// Queues one attestation: `key` from [`attestation_key`], `json` its JSON value.
    pub async fn publish(&mut self, key: &str, json: &str) -> Result<()> {
        self.0
            .publish(key, json, || format!("producing the attestation {key}"))
            .await
    }

    /// Waits until the broker acknowledged every attestation queued.
    pub async fn flush(&mut self) -> Result<()> {
        self.0.flush().await
    }
}

/// Follows `<prefix>.attestations` from its first record as validators publish: each record as
/// `(offset, key, value)`, unparsed (a relayer trusts only what a value's signature proves).
pub struct AttestationsFollower {
    consumer: rdkafka::consumer::StreamConsumer<ReaderContext>,
    topic: String,
}

impl std::fmt::Debug for AttestationsFollower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestationsFollower")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl AttestationsFollower {
    /// A follower from the topic's first record (creating the topic if it does not exist).
    pub async fn from_start(
        settings: &KafkaSettings,
        timeout: Duration,
    ) -> Result<AttestationsFollower> {
        let topic = topic(settings);
        let consumer = topic
            .follower(
                settings,
                "attestations-follower",
                Offset::Beginning,
                timeout,
            )
            .await?;
        let topic = topic.name;
        Ok(AttestationsFollower { consumer, topic })
    }

    /// The next record as `(offset, key, value)`; `Ok(None)` when none arrives within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Result<Option<(i64, String, Vec<u8>)>> {
        let message = match tokio::time::timeout(wait, self.consumer.recv()).await {
            Err(_) => return Ok(None),
            Ok(message) => {
                message.map_err(TransportError::kafka(format!("reading {}", self.topic)))?
            }
        };
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        Ok(Some((
            message.offset(),
            key,
            message.payload().unwrap_or_default().to_vec(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validator_slash_lsn_and_parse_back() {
        let validator = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
        let lsn = Lsn::new(0x16_B374_D848);
        let key = attestation_key(validator, lsn);
        assert_eq!(
            key,
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266/16/B374D848"
        );
        assert_eq!(parse_attestation_key(&key), Some((validator, lsn)));
        for bad in [
            "",
            "0xabc",
            "/16/B374D848",
            "0xabc/16",
            "0xabc/16/B374D848/1",
        ] {
            assert_eq!(parse_attestation_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn topic_is_named_after_the_prefix() {
        let settings = KafkaSettings::new("127.0.0.1:9092", "shop");
        assert_eq!(attestations_topic(&settings), "shop.attestations");
    }
}
