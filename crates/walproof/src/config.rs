//! The TOML config file, and merging it under flags and environment variables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// The config file. Every field is optional; flags and `WALPROOF_*` variables win over it.
///
/// ```toml
/// [source]
/// url = "postgres://walproof@db:5432/shop"
/// slot = "walproof"
/// publication = "walproof"
/// tables = ["public.orders", "public.customers"]
///
/// [kafka]
/// brokers = "kafka-1:9092,kafka-2:9092"
/// topic_prefix = "walproof"
/// linger_ms = 5                 # producer batches: time, count and bytes bounds
/// batch_records = 10000
/// batch_bytes = 1000000
/// [kafka.properties]            # any librdkafka property, for every client
/// "security.protocol" = "SASL_SSL"
/// [kafka.producer_properties]   # for the producers only
/// "compression.type" = "zstd"
/// [kafka.consumer_properties]   # for the consumers only
/// "fetch.max.bytes" = "52428800"
///
/// [decoder]
/// max_entry_bytes = 524288
/// spill_threshold_bytes = 67108864
/// spill_dir = "/var/lib/walproof/spill"
/// status_interval_ms = 1000
/// metrics_addr = "0.0.0.0:9187"
/// progress_interval_s = 10
/// snapshot_mode = "initial"     # or "never", "initial_only"
/// snapshot_workers = 2
/// debezium = true               # per-table Debezium topics and <prefix>.transaction
/// debezium_partitions = 1
/// tombstones = true
/// heartbeat_interval_ms = 10000  # 0: no heartbeats
///
/// [committer]
/// state_dir = "/var/lib/walproof/committer"
/// sync_interval_ms = 500
/// proof_addr = "127.0.0.1:9188"  # or "off"
/// retain_roots = 100000          # proofs for the last N transactions; absent: all
/// compact_at_bytes = 268435456
///
/// [archive]
/// dir = "walproof-archive"        # or gcs_bucket = "…" (and gcs_endpoint for an emulator)
/// roll_bytes = 67108864
/// roll_interval_ms = 60000
///
/// [validator]
/// shadow_url = "postgres://walproof@shadow:5432/walproof_shadow"
/// key_file = "/run/secrets/validator.key"   # or WALPROOF_VALIDATOR_KEY
/// chain_id = 31337
/// bridge = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
/// audit_interval_ms = 60000
/// audit_rows = 10000
/// state_dir = "/var/lib/walproof/validator"   # its snapshot, written on a clean shutdown
/// snapshot_interval_ms = 300000         # and every 5 minutes while running; 0: only on shutdown
/// http_addr = "127.0.0.1:9189"
/// withdrawals_table = "public.walproof_withdrawals"   # or "off"
///
/// [relayer]
/// rpc_url = "http://127.0.0.1:8545"
/// deployment = "deployment.json"        # or bridge = "0x…"
/// sender_key_file = "/run/secrets/relayer.key"   # or WALPROOF_RELAYER_KEY
/// batch_roots = 20
/// batch_interval_ms = 5000
/// max_batch = 50
/// http_addr = "127.0.0.1:9190"
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[source]`.
    #[serde(default)]
    pub source: SourceSection,
    /// `[kafka]`.
    #[serde(default)]
    pub kafka: KafkaSection,
    /// `[decoder]`.
    #[serde(default)]
    pub decoder: DecoderSection,
    /// `[committer]`.
    #[serde(default)]
    pub committer: CommitterSection,
    /// `[archive]`.
    #[serde(default)]
    pub archive: ArchiveSection,
    /// `[validator]`.
    #[serde(default)]
    pub validator: ValidatorSection,
    /// `[relayer]`.
    #[serde(default)]
    pub relayer: RelayerSection,
}

/// `[relayer]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayerSection {
    /// The chain's JSON-RPC endpoint.
    pub rpc_url: Option<String>,
    /// The bridge's address.
    pub bridge: Option<String>,
    /// A deployment file naming the bridge.
    pub deployment: Option<PathBuf>,
    /// The file holding the transaction key (hex).
    pub sender_key_file: Option<PathBuf>,
    /// Submit as soon as this many roots are ready.
    pub batch_roots: Option<usize>,
    /// Submit what is ready at least this often (ms).
    pub batch_interval_ms: Option<u64>,
    /// At most this many roots per transaction.
    pub max_batch: Option<usize>,
    /// Roots only.
    pub no_withdrawals: Option<bool>,
    /// Validators' HTTP endpoints to poll.
    pub validator_urls: Option<Vec<String>>,
    /// Collect from the endpoints only, not the topic.
    pub no_topic: Option<bool>,
    /// The HTTP address, or "off".
    pub http_addr: Option<String>,
}

/// `[validator]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorSection {
    /// The shadow database's URL.
    pub shadow_url: Option<String>,
    /// The file holding the signing key (hex).
    pub key_file: Option<PathBuf>,
    /// The EIP-712 domain's chain id.
    pub chain_id: Option<u64>,
    /// The bridge contract's address.
    pub bridge: Option<String>,
    /// Milliseconds between two deep audits; 0 turns them off.
    pub audit_interval_ms: Option<u64>,
    /// Shadow rows one audit checks.
    pub audit_rows: Option<usize>,
    /// Where the snapshot is written.
    pub state_dir: Option<PathBuf>,
    /// Milliseconds between two snapshots while running; 0: only on a clean shutdown.
    pub snapshot_interval_ms: Option<u64>,
    /// The HTTP address, or "off".
    pub http_addr: Option<String>,
    /// The outbound withdrawal table (`schema.table`), or "off".
    pub withdrawals_table: Option<String>,
    /// Where the signing key comes from: "file" or "confidential-space".
    pub key_provider: Option<String>,
    /// confidential-space: the token's audience.
    pub tee_audience: Option<String>,
    /// confidential-space: the launcher's socket.
    pub launcher_socket: Option<PathBuf>,
    /// confidential-space: the KeyRegistry.
    pub registry: Option<String>,
    /// confidential-space: the attestation verifier.
    pub verifier: Option<String>,
    /// confidential-space: where the evidence is written.
    pub evidence_out: Option<PathBuf>,
    /// confidential-space: the transaction key that registers the key.
    pub register_from_key_file: Option<PathBuf>,
    /// confidential-space: the chain's JSON-RPC endpoint.
    pub rpc_url: Option<String>,
}

/// `[archive]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSection {
    /// The local directory of the archive.
    pub dir: Option<PathBuf>,
    /// A Google Cloud Storage bucket instead.
    pub gcs_bucket: Option<String>,
    /// The GCS endpoint (an emulator).
    pub gcs_endpoint: Option<String>,
    /// Roll at about this many buffered bytes.
    pub roll_bytes: Option<usize>,
    /// Roll when the oldest buffered change is this old, milliseconds.
    pub roll_interval_ms: Option<u64>,
    /// The file holding the secret objects are sealed with.
    pub key_file: Option<PathBuf>,
}

/// `[committer]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitterSection {
    /// The store's directory.
    pub state_dir: Option<PathBuf>,
    /// Longest time between two syncs of the store, milliseconds.
    pub sync_interval_ms: Option<u64>,
    /// The proof API's address, or "off".
    pub proof_addr: Option<String>,
    /// Proofs are kept for the last this many transactions.
    pub retain_roots: Option<u64>,
    /// Store size that starts a compaction (and the first doubling after).
    pub compact_at_bytes: Option<u64>,
}

/// `[source]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    /// Source database URL.
    pub url: Option<String>,
    /// Slot name.
    pub slot: Option<String>,
    /// Publication name.
    pub publication: Option<String>,
    /// Tables to publish (setup).
    pub tables: Option<Vec<String>>,
}

/// `[kafka]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSection {
    /// Bootstrap servers.
    pub brokers: Option<String>,
    /// Topic prefix.
    pub topic_prefix: Option<String>,
    /// Producer linger, milliseconds.
    pub linger_ms: Option<u64>,
    /// Most records per producer batch.
    pub batch_records: Option<u32>,
    /// Most bytes per producer batch.
    pub batch_bytes: Option<u32>,
    /// Extra librdkafka properties of every client.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Extra librdkafka properties of the producers only.
    #[serde(default)]
    pub producer_properties: BTreeMap<String, String>,
    /// Extra librdkafka properties of the consumers only.
    #[serde(default)]
    pub consumer_properties: BTreeMap<String, String>,
}

/// `[decoder]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoderSection {
    /// Most bytes of changes per ledger record.
    pub max_entry_bytes: Option<usize>,
    /// In-memory bytes per transaction before spilling.
    pub spill_threshold_bytes: Option<usize>,
    /// Spill directory.
    pub spill_dir: Option<PathBuf>,
    /// Status interval, milliseconds.
    pub status_interval_ms: Option<u64>,
    /// Metrics endpoint address, or `off`.
    pub metrics_addr: Option<String>,
    /// Seconds between progress log lines.
    pub progress_interval_s: Option<u64>,
    /// Snapshot mode: initial, never, initial_only.
    pub snapshot_mode: Option<String>,
    /// Sessions copying tables in parallel during the snapshot.
    pub snapshot_workers: Option<usize>,
    /// Publish Debezium change events (default true).
    pub debezium: Option<bool>,
    /// Partitions of each per-table Debezium topic.
    pub debezium_partitions: Option<u32>,
    /// Tombstones after Debezium delete events (default true).
    pub tombstones: Option<bool>,
    /// Milliseconds between Debezium heartbeats; 0 turns them off.
    pub heartbeat_interval_ms: Option<u64>,
}

impl FileConfig {
    /// Reads the file, or an empty config when no file is given.
    pub fn load(path: Option<&Path>) -> anyhow::Result<FileConfig> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
    }
}

/// The first value present: flag or environment (clap merged those), then file, then default.
pub fn pick<T>(flag_or_env: Option<T>, file: Option<T>, default: impl FnOnce() -> T) -> T {
    flag_or_env.or(file).unwrap_or_else(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses_and_unknown_keys_are_refused() {
        let example = include_str!("../../../deploy/walproof.example.toml");
        let config: FileConfig = toml::from_str(example).unwrap();
        assert_eq!(config.source.slot.as_deref(), Some("walproof"));
        assert_eq!(config.decoder.max_entry_bytes, Some(524_288));
        let err = toml::from_str::<FileConfig>("[source]\nslott = 'x'\n").unwrap_err();
        assert!(err.to_string().contains("slott"), "{err}");
    }

    #[test]
    fn flags_and_environment_win_over_the_file() {
        assert_eq!(pick(Some(1), Some(2), || 3), 1);
        assert_eq!(pick(None, Some(2), || 3), 2);
        assert_eq!(pick(None::<i32>, None, || 3), 3);
    }
}
