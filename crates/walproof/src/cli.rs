//! The command line: what each subcommand is for, as `walproof --help` shows it.
//!
//! Every setting can come from a flag, a `WALPROOF_*` environment variable, or the TOML config
//! file (`--config`), in that order of precedence; see `deploy/walproof.example.toml`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// walproof: change-data-capture for Postgres whose output anyone can verify.
///
/// walproof streams committed transactions from a Postgres publication into a hash-chained
/// ledger topic in Kafka. Downstream stages commit every state to a Sparse Merkle Tree root,
/// archive the stream to Parquet, and replay it into shadow databases that sign the roots they
/// reproduce.
///
/// Getting started on a source database:
///
///   walproof setup  --source-url postgres://user@host/db   # publication, DDL capture, slot
///   walproof decode --source-url postgres://user@host/db --brokers host:9092
///   walproof run    --config walproof.toml   # or every stage in one process
///
/// Settings come from flags, then WALPROOF_* environment variables, then the TOML file given
/// with --config (see deploy/walproof.example.toml), then defaults.
#[derive(Debug, Parser)]
#[command(
    name = "walproof",
    version,
    propagate_version = true,
    verbatim_doc_comment
)]
pub struct Cli {
    /// TOML config file: [source], [kafka], [decoder], [committer], [archive], [validator]
    /// (see deploy/walproof.example.toml).
    #[arg(long, global = true, env = "WALPROOF_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prepare a source database: check it, create the publication, DDL capture and the slot.
    ///
    /// Checks wal_level, slot and WAL sender limits, encoding and privileges; creates or
    /// verifies the publication (all tables, or the --table list), DDL capture (event triggers
    /// in schema `walproof` that put each DDL of a published table into the stream, with the
    /// table's rows when the DDL rewrites values; needs a superuser once) and the slot; reports how each
    /// published table's changes are keyed (primary key, replica identity index, or a multiset
    /// under REPLICA IDENTITY FULL) and refuses a table that cannot be keyed, printing the
    /// ALTER TABLE that fixes it. Idempotent: a second run changes nothing. Exits 1 when
    /// something must be fixed on the source first.
    Setup(SetupArgs),

    /// Run the decoder: stream the publication into the `<prefix>.ledger` topic.
    ///
    /// Reads pgoutput from the slot, writes each committed transaction whole, in commit order,
    /// hash-chained, to the ledger (split into parts past --max-entry-bytes, spilled to disk past
    /// --spill-threshold-bytes), and confirms the slot only as far as Kafka acknowledged.
    /// Restarts resume exactly after the last complete transaction in the ledger. Stops cleanly
    /// on SIGTERM or Ctrl-C. Serves Prometheus metrics on --metrics-addr.
    Decode(Box<DecodeArgs>),

    /// Run the committer: publish a state root per transaction to `<prefix>.roots`.
    ///
    /// Follows `<prefix>.ledger` (verifying the hash chain), applies each whole transaction to
    /// the Sparse Merkle Tree over every live row and publishes one JSON record per commit LSN
    /// (root, previous root, ledger hash, changes).
    ///
    /// The tree, every row's column hashes, the root of every LSN and the position live in a
    /// store (--state-dir): a restart reads the tree back, checks it hashes to its root, and
    /// resumes at the next transaction. Exactly once in effect: on start it compares the
    /// store with the roots already published, publishes what the topic lacks, recomputes what
    /// the store lacks and stops, naming the LSN, if a published root is not reproduced. Stops
    /// cleanly on SIGTERM or Ctrl-C (the store synced).
    Commit(CommitArgs),

    /// Run the archiver: the ledger as Parquet files per table, queryable by any engine.
    ///
    /// Follows `<prefix>.ledger` (verifying the hash chain) and writes each table's changes as
    /// Parquet (zstd), one row per change with its LSN, ordinal, op, xid and commit time, under
    /// `<prefix>/<schema>.<table>/__date=YYYY-MM-DD/<first LSN>-<last LSN>.parquet` in a local
    /// directory (--dir, the default) or a Google Cloud Storage bucket (--gcs-bucket). Files are
    /// rolled every --roll-bytes or --roll-interval-ms; each has a manifest (LSN range, rows,
    /// SHA-256, ledger hash, SMT root) inside and beside it, listed in
    /// `<prefix>/_walproof/index.json`. A restart resumes after the last roll and rewrites a
    /// roll a crash interrupted under the same names: every change is archived exactly once.
    /// Stops cleanly on SIGTERM or Ctrl-C (what is buffered is rolled).
    ///
    ///   walproof archive ls      # the files, their LSN ranges, rows and roots
    Archive(ArchiveArgs),

    /// Run a validator: replay the ledger into a shadow Postgres, recompute every root, sign
    /// the roots it reproduced.
    ///
    /// Reads `<prefix>.ledger` from its first record (verifying the hash chain) and applies each
    /// whole transaction to the shadow database (--shadow-url; an empty database of its own:
    /// tables are created from the stream's relations and altered at each captured DDL) in one
    /// SQL transaction with a progress row (small transactions queued together share one), so
    /// a restart resumes exactly after the last transaction applied. Recomputes the Sparse
    /// Merkle Tree root of every commit LSN on its own, compares it with `<prefix>.roots`, and
    /// for each root that agrees publishes an EIP-712 root attestation signed with its
    /// secp256k1 key (--key-file or WALPROOF_VALIDATOR_KEY, hex) to `<prefix>.attestations`.
    /// Every --audit-interval-ms it reads --audit-rows rows of the shadow back and checks them
    /// against the tree.
    ///
    /// A divergence (a broken chain, a change that does not apply, a published root that
    /// differs or is missing, a shadow row changed behind its back) is logged with its LSN,
    /// table and key, counted in walproof_validator_divergences_total, recorded in the shadow's
    /// walproof_validator.divergences, and the validator signs nothing from then on.
    ///
    /// Withdrawals: each row inserted into --withdrawals-table is approved (an EIP-712
    /// WithdrawalApproval) once its transaction's root is reproduced, on the same topic.
    ///
    /// Keys: a key file (--key-file) for development, or --key-provider confidential-space:
    /// generated in memory at start, attested by the Confidential Space launcher for
    /// --registry, and registered on chain with --register-from-key-file.
    ///
    /// HTTP (--http-addr): /metrics, /status, /attestations[?after=LSN] and
    /// /withdrawals[?after=LSN] for relayers.
    /// Stops cleanly on SIGTERM or Ctrl-C.
    Validate(ValidateArgs),

    /// Run a relayer: submit the roots and withdrawals validators signed to the bridge.
    ///
    /// Follows `<prefix>.attestations`, checks every signature against the bridge's EIP-712
    /// domain (chain id and address) and groups them by what they sign. A root whose commit
    /// LSN is past the bridge's last is submitted once a threshold of keys the registry holds
    /// active signed the same root: in batches, as soon as --batch-roots are ready or every
    /// --batch-interval-ms. A withdrawal is submitted once a threshold approved it and the
    /// bridge has not paid it. The chain's state is read before every submission, so a restart
    /// or a second relayer never submits twice; a revert is logged as the contract's custom
    /// error with its values and retried with back-off.
    ///
    /// HTTP (--http-addr): /metrics, /status. Stops cleanly on SIGTERM or Ctrl-C.
    Relayer(crate::relayer::RelayerArgs),

    /// Deploy and inspect the contracts: `walproof chain deploy`, `walproof chain status`.
    #[command(subcommand)]
    Chain(crate::relayer::ChainCommand),

    /// Run the whole pipeline in one process: decoder, committer, archiver and a validator.
    ///
    /// Single-machine mode: the four stages run side by side in this process against one
    /// source and one Kafka, each exactly as its own command runs it (`walproof decode`,
    /// `commit`, `archive`, `validate`: see their --help for what each does and guarantees).
    /// Production runs each stage as its own deployment instead. Run `walproof setup` on the
    /// source first.
    ///
    /// Settings. The flags below are the ones stages share (--brokers, --topic-prefix) or
    /// cannot default (--source-url for the decoder; --shadow-url and --key-file for the
    /// validator). Every other setting of a stage comes, as for its own command, from its
    /// WALPROOF_* variable (`walproof <stage> --help` lists them), then its section of the
    /// --config file ([source] [kafka] [decoder] [committer] [archive] [validator] [relayer], see
    /// deploy/walproof.example.toml), then its default.
    ///
    /// HTTP, on addresses that must differ (`off` turns one off):
    ///   decoder    http://127.0.0.1:9187/metrics               [decoder] metrics_addr
    ///   committer  http://127.0.0.1:9188/roots/latest          [committer] proof_addr
    ///              http://127.0.0.1:9188/proof?table=s.t&key=K
    ///   validator  http://127.0.0.1:9189/metrics, /status,     [validator] http_addr
    ///              /attestations[?after=LSN], /withdrawals
    ///   relayer    http://127.0.0.1:9190/metrics, /status      [relayer] http_addr
    ///
    /// The validator needs an empty shadow database of its own and a signing key; without
    /// them walproof run refuses to start and names the setting. The relayer runs when a
    /// bridge is configured (--deployment, WALPROOF_DEPLOYMENT, or [relayer] deployment or
    /// bridge) and needs a transaction key ([relayer] sender_key_file or
    /// WALPROOF_RELAYER_KEY). --no-validator, --no-archive and --no-relayer leave a stage out.
    ///
    /// Stopping: SIGTERM or Ctrl-C stops every stage cleanly (the decoder's slot confirmed,
    /// the committer's store synced, the archive rolled). If a stage fails, the log names it,
    /// the others are stopped the same way and walproof exits 1.
    ///
    ///   bash deploy/run.sh    # the local stack, a sample workload and this command, shown working
    #[command(verbatim_doc_comment)]
    Run(RunArgs),

    /// Recompute every state root from the ledger alone (the offline rebuild).
    ///
    /// Reads `<prefix>.ledger` from its first record to its end, verifying the hash chain,
    /// applies each whole transaction to a Sparse Merkle Tree over every live row (keys and
    /// leaves as design.md says; monotree, SHA-256) and prints one line per transaction:
    /// commit LSN, root, changes. The root depends only on the rows live after the
    /// transaction, so anyone holding the ledger gets the same roots. Exits non-zero, naming the
    /// offset or LSN, on a broken chain or a transaction that does not apply.
    Roots(RootsArgs),

    /// Print the proof of a row at the latest root (or at --at), recomputed from the ledger.
    ///
    /// For a keyed table, by its key columns' text (--key, once per key column, in attribute
    /// order); for a table without a key (a multiset), by every column's value (--values), with
    /// how many identical rows there are: whether the row exists, its column hashes and the
    /// path of tree nodes from the root down the row's key. Prints the proof as JSON; check it
    /// with `walproof verify`.
    Prove(ProveArgs),

    /// Check a row proof offline against a root you trust.
    ///
    /// Recomputes the row's key and leaf, walks the proof's nodes from --root with SHA-256 and
    /// says whether the row exists. With --values (a JSON object of column name to text or
    /// null) it also checks the row holds exactly those values. Exits 1, saying why, when the
    /// proof does not hold.
    ///
    /// A row of a table without a key (a multiset) is named by all its values, and its key
    /// hashes them in the table's column order: to check that such a row is absent, give
    /// --values and --columns.
    Verify {
        /// The trusted root, 64 hex digits.
        #[arg(long)]
        root: String,
        /// The row's values to check, e.g. '{"id": "7", "name": "ann", "note": null}'.
        #[arg(long)]
        values: Option<String>,
        /// The table's columns in attribute order, e.g. `kind,n`: the proof's must be these.
        #[arg(long, value_delimiter = ',')]
        columns: Vec<String>,
        /// The proof file (`-` reads standard input).
        proof: PathBuf,
    },

    /// Validator keys: generate, attest (dev attester or Confidential Space), register in the
    /// KeyRegistry contract, show their status.
    Keys(crate::keys::KeysArgs),

    /// Verify and print one ledger record (a `<prefix>.ledger` Kafka value).
    ///
    /// Reads a walproof.ledger.v1.Envelope, checks that its hash matches its content, decodes
    /// the entry and prints it. Exits non-zero with the reason when the record is not valid.
    Inspect {
        /// File with the record's bytes; `-` reads standard input.
        record: PathBuf,
        /// The input is hex text rather than raw bytes.
        #[arg(long)]
        hex: bool,
    },
}

/// Where the source is and which slot and publication walproof uses.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Source database URL, e.g. postgres://walproof:secret@db:5432/shop [default from file]
    #[arg(
        long,
        env = "WALPROOF_SOURCE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub source_url: Option<String>,
    /// Logical replication slot name [default: walproof]
    #[arg(long, env = "WALPROOF_SLOT")]
    pub slot: Option<String>,
    /// Publication name [default: walproof]
    #[arg(long, env = "WALPROOF_PUBLICATION")]
    pub publication: Option<String>,
}

/// Which Kafka and which topics.
#[derive(Debug, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers [default: 127.0.0.1:9092]
    #[arg(long, env = "WALPROOF_KAFKA_BROKERS", value_name = "HOST:PORT,...")]
    pub brokers: Option<String>,
    /// Topic prefix: <prefix>.ledger, <prefix>.roots, … [default: walproof]
    #[arg(long, env = "WALPROOF_TOPIC_PREFIX")]
    pub topic_prefix: Option<String>,
}

impl KafkaArgs {
    /// Brokers and topic prefix (flags first, then the config file's `[kafka]`, then
    /// defaults), with the file's `[kafka.properties]`, which every Kafka client of every
    /// command applies, and its `[kafka.producer_properties]` and `[kafka.consumer_properties]`,
    /// which only producers or only consumers apply.
    pub fn settings(self, file: &crate::config::FileConfig) -> walproof_transport::KafkaSettings {
        use crate::config::pick;
        let kafka = &file.kafka;
        let mut settings = walproof_transport::KafkaSettings::new(
            pick(self.brokers, kafka.brokers.clone(), || {
                "127.0.0.1:9092".into()
            }),
            pick(self.topic_prefix, kafka.topic_prefix.clone(), || {
                "walproof".into()
            }),
        );
        settings.properties = kafka.properties.clone().into_iter().collect();
        settings.producer_properties = kafka.producer_properties.clone().into_iter().collect();
        settings.consumer_properties = kafka.consumer_properties.clone().into_iter().collect();
        settings
    }
}

/// `walproof commit`.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Kafka and topics.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The store's directory (created if missing) [default: ./walproof-state/committer]
    #[arg(long, env = "WALPROOF_COMMITTER_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<std::path::PathBuf>,
    /// Keep no store: the state lives in memory and is recomputed from the ledger's first
    /// record on every start.
    #[arg(long, conflicts_with = "state_dir")]
    pub in_memory: bool,
    /// Longest time between two syncs of the store while transactions arrive, milliseconds
    /// (a restart redoes at most this much from the ledger) [default: 500]
    #[arg(long, env = "WALPROOF_COMMITTER_SYNC_INTERVAL_MS", value_name = "MS")]
    pub sync_interval_ms: Option<u64>,
    /// Where to serve proofs over HTTP (`GET /proof?table=s.t&key=K[&at=LSN][&compact=true]`,
    /// `GET /roots/latest`), or `off` [default: 127.0.0.1:9188]
    #[arg(long, env = "WALPROOF_PROOF_ADDR", value_name = "HOST:PORT")]
    pub proof_addr: Option<String>,
    /// Keep proofs for the last N transactions only: the store's trees of older roots are
    /// pruned (their root records stay) [default: keep everything]
    #[arg(long, env = "WALPROOF_COMMITTER_RETAIN_ROOTS", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub retain_roots: Option<u64>,
    /// With --retain-roots: compact the store once it holds this many bytes, and after that
    /// whenever it has doubled since the last compaction [default: 268435456]
    #[arg(
        long,
        env = "WALPROOF_COMMITTER_COMPACT_AT_BYTES",
        value_name = "BYTES"
    )]
    pub compact_at_bytes: Option<u64>,
}

impl CommitArgs {
    /// The proof API's address, `None` when off.
    pub fn proof_addr(&self, file: &crate::config::FileConfig) -> Option<String> {
        let addr = crate::config::pick(
            self.proof_addr.clone(),
            file.committer.proof_addr.clone(),
            || "127.0.0.1:9188".into(),
        );
        (addr != "off").then_some(addr)
    }

    /// The committer's options, flags first, then the config file, then defaults.
    pub fn options(
        &self,
        file: &crate::config::FileConfig,
    ) -> walproof_committer::run::CommitOptions {
        use crate::config::pick;
        let state_dir = pick(
            self.state_dir.clone(),
            file.committer.state_dir.clone(),
            || "walproof-state/committer".into(),
        );
        walproof_committer::run::CommitOptions {
            state_dir: (!self.in_memory).then_some(state_dir),
            sync_every: std::time::Duration::from_millis(pick(
                self.sync_interval_ms,
                file.committer.sync_interval_ms,
                || 500,
            )),
            retain_roots: self.retain_roots.or(file.committer.retain_roots),
            compact_at_bytes: pick(
                self.compact_at_bytes,
                file.committer.compact_at_bytes,
                || 256 << 20,
            ),
        }
    }
}

/// `walproof validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Kafka and topics.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The shadow database, e.g. postgres://postgres@127.0.0.1/walproof_shadow: a database of
    /// its own, empty before the first start
    #[arg(
        long,
        env = "WALPROOF_SHADOW_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub shadow_url: Option<String>,
    /// File holding the validator's secp256k1 private key as hex; else the key is read from
    /// the WALPROOF_VALIDATOR_KEY environment variable. Never logged.
    #[arg(long, env = "WALPROOF_VALIDATOR_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// The EIP-712 domain's chain id [default: 31337, anvil]
    #[arg(long, env = "WALPROOF_CHAIN_ID")]
    pub chain_id: Option<u64>,
    /// The bridge contract's address, the EIP-712 domain's verifyingContract
    /// [default: 0x0000000000000000000000000000000000000000]
    #[arg(long, env = "WALPROOF_BRIDGE_ADDRESS", value_name = "0x…")]
    pub bridge: Option<String>,
    /// Where the validator writes its snapshot (its tree, rows and position, at a transaction
    /// the shadow holds), every --snapshot-interval-ms and on a clean shutdown; the next start
    /// resumes from it instead of reading the ledger from its first record. One directory per
    /// validator [default: ./walproof-state/validator]
    #[arg(long, env = "WALPROOF_VALIDATOR_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Write no snapshot and read none: every start reads the ledger from its first record.
    #[arg(long, conflicts_with_all = ["state_dir", "snapshot_interval_ms"])]
    pub no_snapshot: bool,
    /// Milliseconds between two snapshots while running (one is written only when the ledger
    /// moved on; the tree is copied, then written beside the running validator); 0: only on
    /// a clean shutdown. Bounds what a start after a crash reads again [default: 300000]
    #[arg(
        long,
        env = "WALPROOF_VALIDATOR_SNAPSHOT_INTERVAL_MS",
        value_name = "MS"
    )]
    pub snapshot_interval_ms: Option<u64>,
    /// Milliseconds between two deep audits of the shadow database; 0 turns them off
    /// [default: 60000]
    #[arg(long, env = "WALPROOF_AUDIT_INTERVAL_MS", value_name = "MS")]
    pub audit_interval_ms: Option<u64>,
    /// Shadow rows one audit reads back and checks against the tree [default: 10000]
    #[arg(long, env = "WALPROOF_AUDIT_ROWS", value_name = "N")]
    pub audit_rows: Option<usize>,
    /// Where to serve /metrics, /status, /attestations and /withdrawals, or `off`
    /// [default: 127.0.0.1:9189]
    #[arg(long, env = "WALPROOF_VALIDATOR_HTTP_ADDR", value_name = "HOST:PORT")]
    pub http_addr: Option<String>,
    /// Where the signing key comes from: `file` (--key-file or WALPROOF_VALIDATOR_KEY), or
    /// `confidential-space`: generated in this process, never written, and attested by the GCP
    /// Confidential Space launcher for --registry (its evidence written to --evidence-out and,
    /// with --register-from-key-file, registered on chain before anything is signed). A new
    /// key each start; it signs from where the shadow stands [default: file]
    #[arg(long, env = "WALPROOF_VALIDATOR_KEY_PROVIDER", value_name = "PROVIDER")]
    pub key_provider: Option<String>,
    /// confidential-space: the token's audience (the verifier contract's)
    #[arg(long, env = "WALPROOF_TEE_AUDIENCE", value_name = "AUDIENCE")]
    pub tee_audience: Option<String>,
    /// confidential-space: the launcher's socket
    /// [default: /run/container_launcher/teeserver.sock]
    #[arg(long, env = "WALPROOF_LAUNCHER_SOCKET", value_name = "PATH")]
    pub launcher_socket: Option<PathBuf>,
    /// confidential-space: the KeyRegistry the key is bound to
    #[arg(long, env = "WALPROOF_KEY_REGISTRY", value_name = "0x…")]
    pub registry: Option<String>,
    /// confidential-space: the ConfidentialSpaceVerifier the registry asks
    #[arg(long, env = "WALPROOF_KEY_VERIFIER", value_name = "0x…")]
    pub verifier: Option<String>,
    /// confidential-space: where to write the key's evidence (`walproof keys register
    /// --evidence` takes it)
    #[arg(long, env = "WALPROOF_EVIDENCE_OUT", value_name = "FILE")]
    pub evidence_out: Option<PathBuf>,
    /// confidential-space: register the key on chain with this transaction key before signing
    #[arg(long, env = "WALPROOF_REGISTER_FROM_KEY_FILE", value_name = "FILE")]
    pub register_from_key_file: Option<PathBuf>,
    /// confidential-space: the chain's JSON-RPC endpoint for --register-from-key-file
    #[arg(long, env = "WALPROOF_ETH_RPC_URL", value_name = "URL")]
    pub rpc_url: Option<String>,
    /// The outbound table whose inserted rows are withdrawal requests this validator approves
    /// once it reproduced their transaction's root (layout: id bigint, recipient text, amount
    /// numeric; see README "Withdrawals"), or `off` [default: public.walproof_withdrawals]
    #[arg(long, env = "WALPROOF_WITHDRAWALS_TABLE", value_name = "SCHEMA.TABLE")]
    pub withdrawals_table: Option<String>,
}

/// `walproof run`: the settings the stages share or cannot default; the rest as each stage's
/// own command reads them (see [`crate::run`]).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Source connection, slot and publication (the decoder).
    #[command(flatten)]
    pub source: SourceArgs,
    /// Kafka and topics (every stage).
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The committer's store [default: ./walproof-state/committer]
    #[arg(long, env = "WALPROOF_COMMITTER_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The archive's local directory [default: ./walproof-archive]
    #[arg(long = "archive-dir", env = "WALPROOF_ARCHIVE_DIR", value_name = "DIR")]
    pub archive_dir: Option<PathBuf>,
    /// The validator's shadow database: a database of its own, empty before the first start
    #[arg(
        long,
        env = "WALPROOF_SHADOW_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub shadow_url: Option<String>,
    /// File holding the validator's secp256k1 private key as hex; else the key is read from
    /// the WALPROOF_VALIDATOR_KEY environment variable. Never logged.
    #[arg(long, env = "WALPROOF_VALIDATOR_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Run without the archiver
    #[arg(long, env = "WALPROOF_NO_ARCHIVE")]
    pub no_archive: bool,
    /// Run without the validator (no shadow database or key needed)
    #[arg(long, env = "WALPROOF_NO_VALIDATOR")]
    pub no_validator: bool,
    /// The contracts' deployment (`walproof chain deploy --out`): runs the relayer against its
    /// bridge, and signs the validator's attestations for that bridge and chain
    #[arg(long, env = "WALPROOF_DEPLOYMENT", value_name = "FILE")]
    pub deployment: Option<PathBuf>,
    /// Run without the relayer even when a bridge is configured
    #[arg(long, env = "WALPROOF_NO_RELAYER")]
    pub no_relayer: bool,
}

/// `walproof prove`.
#[derive(Debug, Args)]
pub struct ProveArgs {
    /// Kafka and topics.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The table, `schema.table`.
    #[arg(long)]
    pub table: String,
    /// A key column's text, once per key column in attribute order (a keyed table).
    #[arg(
        long = "key",
        required_unless_present = "values",
        conflicts_with = "values"
    )]
    pub key: Vec<String>,
    /// A row of a table without a key (a multiset, REPLICA IDENTITY FULL), by every column's
    /// value: a JSON object of column name to text or null, e.g. '{"kind":"tick","n":"3"}'.
    /// The proof says how many identical rows there are.
    #[arg(long, value_name = "JSON")]
    pub values: Option<String>,
    /// Prove at this commit LSN (default: the latest).
    #[arg(long)]
    pub at: Option<String>,
    /// Give the path in the compact encoding (`"compact"`: only what the key does not say;
    /// under 1 KB at 10M rows) instead of monotree's nodes (`"nodes"`).
    #[arg(long)]
    pub compact: bool,
}

/// `walproof archive`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = false)]
pub struct ArchiveArgs {
    /// `ls` lists the archive's files instead of running the archiver.
    #[command(subcommand)]
    pub command: Option<ArchiveCommand>,
    /// Kafka and topics.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Where the archive is kept.
    #[command(flatten)]
    pub place: ArchivePlace,
    /// Roll files once the buffered changes hold about this many bytes [default: 67108864]
    #[arg(long, env = "WALPROOF_ARCHIVE_ROLL_BYTES", value_name = "BYTES")]
    pub roll_bytes: Option<usize>,
    /// Roll files once the oldest buffered change is this old, milliseconds [default: 60000]
    #[arg(long, env = "WALPROOF_ARCHIVE_ROLL_INTERVAL_MS", value_name = "MS")]
    pub roll_interval_ms: Option<u64>,
}

/// `walproof archive` subcommands.
#[derive(Debug, Subcommand)]
pub enum ArchiveCommand {
    /// List the archive's files: table, LSN range, rows, SMT root, object name.
    Ls,
    /// Print one object of the archive (a file, a manifest, the index), decrypted when the
    /// archive is sealed: e.g. to query a sealed or remote file locally.
    Get {
        /// The object's name, as `ls` prints it.
        object: String,
        /// Write it to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// Where an archive is kept: a local directory, or a bucket.
#[derive(Debug, Args)]
pub struct ArchivePlace {
    /// The local directory of the archive [default: ./walproof-archive]
    #[arg(long, env = "WALPROOF_ARCHIVE_DIR", value_name = "DIR", global = true)]
    pub dir: Option<PathBuf>,
    /// A Google Cloud Storage bucket instead of a directory (standard credentials)
    #[arg(
        long,
        env = "WALPROOF_ARCHIVE_GCS_BUCKET",
        value_name = "BUCKET",
        global = true,
        conflicts_with = "dir"
    )]
    pub gcs_bucket: Option<String>,
    /// The GCS endpoint, for an emulator (no credentials are sent then)
    #[arg(
        long,
        env = "WALPROOF_ARCHIVE_GCS_ENDPOINT",
        value_name = "URL",
        global = true
    )]
    pub gcs_endpoint: Option<String>,
    /// Seal every object with AES-256-GCM under keys derived (HKDF-SHA256) from the secret in
    /// this file (at least 32 bytes, e.g. `head -c 32 /dev/urandom`); reading a sealed archive
    /// needs the same file
    #[arg(
        long,
        env = "WALPROOF_ARCHIVE_KEY_FILE",
        value_name = "FILE",
        global = true
    )]
    pub key_file: Option<PathBuf>,
}

impl ArchivePlace {
    /// The sealer of the secret in `--key-file` (or the config file's `key_file`), if any.
    pub fn sealer(
        &self,
        file: &crate::config::FileConfig,
    ) -> anyhow::Result<Option<walproof_archive::seal::Sealer>> {
        let Some(path) = self.key_file.clone().or(file.archive.key_file.clone()) else {
            return Ok(None);
        };
        let secret = std::fs::read(&path)
            .map_err(|err| anyhow::anyhow!("--key-file {}: {err}", path.display()))?;
        let sealer = walproof_archive::seal::Sealer::new(&secret)
            .map_err(|err| anyhow::anyhow!("--key-file {}: {err}", path.display()))?;
        Ok(Some(sealer))
    }

    /// The objects, flags first, then the config file, then the default directory.
    pub async fn objects(
        &self,
        file: &crate::config::FileConfig,
    ) -> anyhow::Result<walproof_archive::objects::Objects> {
        use walproof_archive::objects::Objects;
        // Flags as a pair first (--dir and --gcs-bucket exclude each other), then the file,
        // where setting both is refused rather than one silently winning.
        let (dir, bucket) = match (&self.dir, &self.gcs_bucket) {
            (None, None) => match (&file.archive.dir, &file.archive.gcs_bucket) {
                (Some(_), Some(_)) => anyhow::bail!(
                    "[archive] sets both dir and gcs_bucket: the archive is in one place, keep one"
                ),
                (dir, bucket) => (dir.clone(), bucket.clone()),
            },
            (dir, bucket) => (dir.clone(), bucket.clone()),
        };
        Ok(match (dir, bucket) {
            (None, Some(bucket)) => {
                let endpoint = self
                    .gcs_endpoint
                    .clone()
                    .or(file.archive.gcs_endpoint.clone());
                Objects::gcs(&bucket, endpoint.as_deref()).await?
            }
            (dir, _) => Objects::local(dir.unwrap_or_else(|| "walproof-archive".into())),
        })
    }
}

impl ArchiveArgs {
    /// When to roll, flags first, then the config file, then defaults.
    pub fn roll(
        &self,
        file: &crate::config::FileConfig,
    ) -> walproof_archive::archiver::RollSettings {
        use crate::config::pick;
        walproof_archive::archiver::RollSettings {
            max_bytes: pick(self.roll_bytes, file.archive.roll_bytes, || 64 << 20),
            max_age: std::time::Duration::from_millis(pick(
                self.roll_interval_ms,
                file.archive.roll_interval_ms,
                || 60_000,
            )),
        }
    }
}

/// `walproof roots`.
#[derive(Debug, Args)]
pub struct RootsArgs {
    /// Kafka and topics.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Print only the last root (and the count of transactions).
    #[arg(long)]
    pub last: bool,
}

/// `walproof setup`.
#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Source connection, slot and publication.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Publish only these tables (`schema.table`, or `table` for public); repeat or separate
    /// with commas. Default: all tables.
    #[arg(
        long = "table",
        env = "WALPROOF_TABLES",
        value_delimiter = ',',
        value_name = "TABLE"
    )]
    pub tables: Vec<String>,
    /// Print the checks and the SQL that would run, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `walproof decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Source connection, slot and publication.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Kafka and topics.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// How long the producer waits to fill a batch, in milliseconds [default: 5]
    #[arg(long, env = "WALPROOF_LINGER_MS")]
    pub linger_ms: Option<u64>,
    /// Most records per producer batch [default: 10000]
    #[arg(long, env = "WALPROOF_BATCH_RECORDS")]
    pub batch_records: Option<u32>,
    /// Most bytes per producer batch [default: 1000000]
    #[arg(long, env = "WALPROOF_BATCH_BYTES")]
    pub batch_bytes: Option<u32>,
    /// Most bytes of changes per ledger record; bigger transactions span several [default: 524288]
    #[arg(long, env = "WALPROOF_MAX_ENTRY_BYTES")]
    pub max_entry_bytes: Option<usize>,
    /// Bytes a transaction may hold in memory before spilling to disk [default: 67108864]
    #[arg(long, env = "WALPROOF_SPILL_THRESHOLD_BYTES")]
    pub spill_threshold_bytes: Option<usize>,
    /// Directory for spill files [default: <temp dir>/walproof-spill]
    #[arg(long, env = "WALPROOF_SPILL_DIR")]
    pub spill_dir: Option<PathBuf>,
    /// How often progress is reported to the source, in milliseconds [default: 1000]
    #[arg(long, env = "WALPROOF_STATUS_INTERVAL_MS")]
    pub status_interval_ms: Option<u64>,
    /// Initial snapshot: `initial` (on first start, then stream), `never`, or `initial_only`
    /// (snapshot, then stop) [default: initial]
    #[arg(long, env = "WALPROOF_SNAPSHOT_MODE")]
    pub snapshot_mode: Option<String>,
    /// Sessions copying tables in parallel during the snapshot [default: 2]
    #[arg(long, env = "WALPROOF_SNAPSHOT_WORKERS")]
    pub snapshot_workers: Option<usize>,
    /// Do not publish Debezium change events to `<prefix>.<schema>.<table>` and
    /// `<prefix>.transaction` (they are published by default)
    #[arg(long, env = "WALPROOF_NO_DEBEZIUM")]
    pub no_debezium: bool,
    /// Partitions of each per-table Debezium topic (events are partitioned by key) [default: 1]
    #[arg(long, env = "WALPROOF_DEBEZIUM_PARTITIONS")]
    pub debezium_partitions: Option<u32>,
    /// Milliseconds between Debezium heartbeats on `__debezium-heartbeat.<prefix>`; 0 turns
    /// them off [default: 10000]
    #[arg(long, env = "WALPROOF_HEARTBEAT_INTERVAL_MS")]
    pub heartbeat_interval_ms: Option<u64>,
    /// Do not follow each Debezium delete event with a tombstone
    #[arg(long, env = "WALPROOF_NO_TOMBSTONES")]
    pub no_tombstones: bool,
    /// Address of the Prometheus /metrics endpoint; `off` disables it [default: 127.0.0.1:9187]
    #[arg(long, env = "WALPROOF_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Seconds between progress lines in the log [default: 10]
    #[arg(long, env = "WALPROOF_PROGRESS_INTERVAL_S")]
    pub progress_interval_s: Option<u64>,
}

impl DecodeArgs {
    /// The metrics endpoint's address, `None` when off.
    pub fn metrics_addr(&self, file: &crate::config::FileConfig) -> Option<String> {
        let addr = crate::config::pick(
            self.metrics_addr.clone(),
            file.decoder.metrics_addr.clone(),
            || "127.0.0.1:9187".into(),
        );
        (addr != "off").then_some(addr)
    }
}
