//! The relayer service (`walproof relayer`): collects what validators signed — following
//! `<prefix>.attestations`, or polling the validators' HTTP endpoints (`/attestations`,
//! `/withdrawals`), or both — and submits the roots and withdrawals that a threshold of active
//! validator keys signed. Every record is checked the same way whichever way it came.
//!
//! Roots go in batches: as soon as `batch_roots` are ready, or when `batch_interval` passed
//! since the last submission and at least one is. Before every submission the relayer reads
//! the bridge's last committed LSN (and a withdrawal's `paid` flag), so a restart, a second
//! relayer or a transaction that was mined while the relayer waited never leads to a double
//! submission: what the chain has is dropped from the pool. A revert is logged with the
//! contract's custom error and retried after a back-off (the chain's state may have moved).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use tokio::sync::watch;
use walproof_core::Lsn;
use walproof_transport::KafkaSettings;
use walproof_transport::attestations::AttestationsFollower;
use walproof_validator::attestation::Domain;

use crate::chain::{Chain, ChainError};
use crate::metrics::RelayerMetrics;
use crate::pool::{Added, Pool};

/// How the relayer batches and retries.
#[derive(Debug, Clone)]
pub struct RelayerOptions {
    /// Submit as soon as this many roots are ready.
    pub batch_roots: usize,
    /// Submit what is ready at least this often.
    pub batch_interval: Duration,
    /// At most this many roots in one transaction.
    pub max_batch: usize,
    /// Submit threshold-approved withdrawals.
    pub withdrawals: bool,
    /// How long a key's registry status is trusted before it is read again.
    pub key_status_ttl: Duration,
    /// Follow `<prefix>.attestations`.
    pub follow_topic: bool,
    /// Validators' HTTP endpoints to poll (`http://host:port`, serving `/attestations` and
    /// `/withdrawals`).
    pub validator_urls: Vec<String>,
    /// Time between two polls of each endpoint.
    pub poll_interval: Duration,
}

impl Default for RelayerOptions {
    fn default() -> RelayerOptions {
        RelayerOptions {
            batch_roots: 20,
            batch_interval: Duration::from_secs(5),
            max_batch: 50,
            withdrawals: true,
            key_status_ttl: Duration::from_secs(30),
            follow_topic: true,
            validator_urls: Vec::new(),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// What the relayer shows while it runs.
#[derive(Debug, Default)]
pub struct RelayerStatus {
    /// Counters and gauges.
    pub metrics: RelayerMetrics,
    /// The last submission's error, cleared by the next success.
    pub last_error: Mutex<Option<String>>,
}

/// The relayer's means and state.
struct Relayer<'a> {
    chain: &'a Chain,
    options: &'a RelayerOptions,
    status: &'a RelayerStatus,
    pool: Pool,
    /// Registry status per key, with when it was read.
    keys: HashMap<Address, (bool, Instant)>,
    last_submission: Instant,
    /// Back-off of root submissions after a failure.
    roots_backoff: Backoff,
    /// Back-off of the withdrawals' state reads after a failure.
    withdrawals_backoff: Backoff,
    /// Back-off per withdrawal whose submission failed: one that cannot be paid (a recipient
    /// that refuses ETH, a bridge short of funds) never holds the others back.
    withdrawal_backoffs: HashMap<u64, Backoff>,
}

/// Exponential back-off after consecutive failures: 1 s, 2 s, 4 s … at most 30 s.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    until: Instant,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            failures: 0,
            until: Instant::now(),
        }
    }

    fn ready(&self) -> bool {
        Instant::now() >= self.until
    }

    /// Notes a failure; returns how long to wait.
    fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let wait = Duration::from_millis(500)
            .saturating_mul(1 << self.failures.min(6))
            .min(Duration::from_secs(30));
        self.until = Instant::now() + wait;
        wait
    }

    fn succeeded(&mut self) {
        self.failures = 0;
    }
}

/// Runs the relayer until `shutdown` turns true. Fails only when its means fail (the broker);
/// a chain that is unreachable or refuses is logged and retried.
pub async fn run(
    settings: &KafkaSettings,
    chain: &Chain,
    options: &RelayerOptions,
    status: &RelayerStatus,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), walproof_transport::TransportError> {
    let chain_id = loop {
        match chain.chain_id().await {
            Ok(id) => break id,
            Err(err) => {
                tracing::warn!(%err, "cannot read the chain id yet; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
            }
        }
    };
    let domain = Domain::new(chain_id, chain.bridge());
    tracing::info!(
        bridge = %chain.bridge(),
        registry = %chain.registry(),
        chain_id,
        topic = options.follow_topic,
        validators = ?options.validator_urls,
        "relayer starting: collecting signatures from the attestations topic's first record and the validators' endpoints"
    );
    let mut follower = if options.follow_topic {
        Some(AttestationsFollower::from_start(settings, Duration::from_secs(30)).await?)
    } else {
        None
    };
    let mut endpoints: Vec<Endpoint> = options
        .validator_urls
        .iter()
        .map(|url| Endpoint::new(url))
        .collect();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let mut next_poll = Instant::now();
    let now = Instant::now();
    let mut relayer = Relayer {
        chain,
        options,
        status,
        pool: Pool::new(domain),
        keys: HashMap::new(),
        last_submission: now,
        roots_backoff: Backoff::new(),
        withdrawals_backoff: Backoff::new(),
        withdrawal_backoffs: HashMap::new(),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => {}
            record = next_record(&mut follower) => {
                if let Some((offset, key, value)) = record? {
                    relayer.add(offset, &key, &value);
                    // Drain what has arrived before deciding anything.
                    continue;
                }
            }
            _ = tick.tick() => {}
        }
        if *shutdown.borrow() {
            tracing::info!("relayer stopped");
            return Ok(());
        }
        if !endpoints.is_empty() && Instant::now() >= next_poll {
            for endpoint in &mut endpoints {
                endpoint.poll(&http, &mut relayer).await;
            }
            next_poll = Instant::now() + options.poll_interval;
        }
        relayer.submit().await;
    }
}

/// The next record of the topic; never, without a follower.
async fn next_record(
    follower: &mut Option<AttestationsFollower>,
) -> Result<Option<(i64, String, Vec<u8>)>, walproof_transport::TransportError> {
    match follower {
        Some(follower) => follower.next(Duration::from_millis(200)).await,
        None => std::future::pending().await,
    }
}

/// A validator's HTTP endpoint, polled for what it signed since the last poll.
struct Endpoint {
    url: String,
    /// The last commit LSN seen, per path.
    after: [Option<Lsn>; 2],
    failing: bool,
}

impl Endpoint {
    const PATHS: [&'static str; 2] = ["/attestations", "/withdrawals"];

    fn new(url: &str) -> Endpoint {
        Endpoint {
            url: url.trim_end_matches('/').to_owned(),
            after: [None, None],
            failing: false,
        }
    }

    /// Fetches both lists and adds every record; a failure is logged once per streak.
    async fn poll(&mut self, http: &reqwest::Client, relayer: &mut Relayer<'_>) {
        for (i, path) in Self::PATHS.iter().enumerate() {
            // From the last LSN seen, inclusive: a validator publishes a transaction's
            // approvals one by one, and a poll may have come in between (the pool drops
            // what it holds already).
            let url = match self.after[i].and_then(|lsn| lsn.as_u64().checked_sub(1)) {
                Some(after) => format!("{}{path}?after={}", self.url, Lsn::new(after)),
                None => format!("{}{path}", self.url),
            };
            match fetch(http, &url).await {
                Ok(records) => {
                    if self.failing {
                        tracing::info!(%url, "the validator's endpoint answers again");
                        self.failing = false;
                    }
                    for record in records {
                        // Only a record whose signature checks out moves the cursor.
                        if relayer.add(-1, &url, record.to_string().as_bytes()) {
                            let lsn = record["commit_lsn"].as_str().and_then(|l| l.parse().ok());
                            self.after[i] = self.after[i].max(lsn);
                        }
                    }
                }
                Err(reason) => {
                    if !self.failing {
                        tracing::warn!(%url, %reason, "cannot poll the validator's endpoint; retrying");
                        self.failing = true;
                    }
                    return;
                }
            }
        }
    }
}

/// The JSON array at `url`.
async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<serde_json::Value>, String> {
    let response = http.get(url).send().await.map_err(|err| err.to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let body = response.bytes().await.map_err(|err| err.to_string())?;
    serde_json::from_slice(&body).map_err(|err| format!("not a JSON array: {err}"))
}

impl Relayer<'_> {
    /// Adds a record to the pool; whether its signature checked out.
    fn add(&mut self, offset: i64, key: &str, value: &[u8]) -> bool {
        let metrics = &self.status.metrics;
        match self.pool.add(offset, key, value) {
            Ok(Added::Root { .. }) => {
                metrics.root_signatures.fetch_add(1, Relaxed);
                true
            }
            Ok(Added::Withdrawal { .. }) => {
                metrics.withdrawal_signatures.fetch_add(1, Relaxed);
                true
            }
            Ok(Added::Repeated) => true,
            Err(rejected) => {
                metrics.rejected_records.fetch_add(1, Relaxed);
                tracing::warn!(%rejected, "not counted");
                false
            }
        }
    }

    /// Submits what is ready: roots and withdrawals independently, each failure logged and
    /// backed off on its own.
    async fn submit(&mut self) {
        if self.roots_backoff.ready() {
            match self.submit_roots().await {
                Ok(()) => self.roots_backoff.succeeded(),
                Err(err) => {
                    let wait = self.roots_backoff.failed();
                    self.failed("roots", &err, wait);
                }
            }
        }
        if self.options.withdrawals && self.withdrawals_backoff.ready() {
            match self.submit_withdrawals().await {
                Ok(()) => self.withdrawals_backoff.succeeded(),
                Err(err) => {
                    let wait = self.withdrawals_backoff.failed();
                    self.failed("withdrawals", &err, wait);
                }
            }
        }
    }

    fn failed(&self, what: &str, err: &ChainError, wait: Duration) {
        self.status.metrics.failures.fetch_add(1, Relaxed);
        tracing::error!(%err, retry_in_ms = wait.as_millis() as u64, "submitting {what} failed");
        if let Ok(mut last) = self.status.last_error.lock() {
            *last = Some(err.to_string());
        }
    }

    /// Reads the registry status of every signer whose status is older than the TTL.
    async fn refresh_keys(&mut self) -> Result<(), ChainError> {
        let now = Instant::now();
        for signer in self.pool.signers() {
            let fresh = self
                .keys
                .get(&signer)
                .is_some_and(|(_, read)| now.duration_since(*read) < self.options.key_status_ttl);
            if !fresh {
                let active = self.chain.is_active(signer).await?;
                if self.keys.get(&signer).map(|(was, _)| *was) != Some(active) {
                    tracing::info!(validator = %signer, active, "validator key status on the registry");
                }
                self.keys.insert(signer, (active, now));
            }
        }
        Ok(())
    }

    fn is_active(&self, key: &Address) -> bool {
        self.keys.get(key).is_some_and(|(active, _)| *active)
    }

    async fn submit_roots(&mut self) -> Result<(), ChainError> {
        let state = self.chain.state().await?;
        let metrics = &self.status.metrics;
        metrics
            .committed_lsn
            .store(state.last_commit_lsn.as_u64(), Relaxed);
        self.pool.forget_roots_through(state.last_commit_lsn);
        self.refresh_keys().await?;
        let ready = self.pool.ready_roots(
            state.last_commit_lsn,
            state.threshold,
            self.options.max_batch,
            |key| self.is_active(key),
        );
        let due = self.last_submission.elapsed() >= self.options.batch_interval;
        if ready.is_empty() || (ready.len() < self.options.batch_roots && !due) {
            return Ok(());
        }
        let mined = self.chain.commit_roots(&ready).await?;
        self.last_submission = Instant::now();
        let last = ready.last().map_or(Lsn::ZERO, |r| r.commit_lsn);
        metrics
            .roots_committed
            .fetch_add(ready.len() as u64, Relaxed);
        metrics.committed_lsn.store(last.as_u64(), Relaxed);
        metrics.gas_used.fetch_add(mined.gas_used, Relaxed);
        if let Ok(mut error) = self.status.last_error.lock() {
            *error = None;
        }
        tracing::info!(
            roots = ready.len(),
            first = %ready[0].commit_lsn,
            last = %last,
            tx = %mined.tx,
            block = ?mined.block,
            gas = mined.gas_used,
            "roots committed on chain"
        );
        self.pool.forget_roots_through(last);
        Ok(())
    }

    async fn submit_withdrawals(&mut self) -> Result<(), ChainError> {
        let state = self.chain.state().await?;
        let ready = self
            .pool
            .ready_withdrawals(state.threshold, |key| self.is_active(key));
        for withdrawal in ready {
            let id = withdrawal.withdrawal.id;
            if !self.withdrawal_backoffs.get(&id).is_none_or(Backoff::ready) {
                continue;
            }
            if self.chain.paid(id).await? {
                tracing::info!(id, "withdrawal already paid on chain; not submitted");
                self.pool.forget_withdrawal(id);
                self.withdrawal_backoffs.remove(&id);
                continue;
            }
            match self.chain.withdraw(&withdrawal).await {
                Ok(mined) => {
                    let metrics = &self.status.metrics;
                    metrics.withdrawals_paid.fetch_add(1, Relaxed);
                    metrics.gas_used.fetch_add(mined.gas_used, Relaxed);
                    tracing::info!(
                        id,
                        recipient = %withdrawal.withdrawal.recipient,
                        amount = %withdrawal.withdrawal.amount,
                        tx = %mined.tx,
                        gas = mined.gas_used,
                        "withdrawal paid"
                    );
                    self.pool.forget_withdrawal(id);
                    self.withdrawal_backoffs.remove(&id);
                }
                // Paid meanwhile (another relayer, or by proof): nothing more to do.
                Err(err) if err.revert_name() == Some("AlreadyPaid") => {
                    tracing::info!(id, "withdrawal was paid meanwhile; not submitted again");
                    self.pool.forget_withdrawal(id);
                    self.withdrawal_backoffs.remove(&id);
                }
                // This one cannot be paid now: the others go on; it is retried after a back-off.
                Err(err) => {
                    let wait = self
                        .withdrawal_backoffs
                        .entry(id)
                        .or_insert_with(Backoff::new)
                        .failed();
                    self.failed(&format!("withdrawal {id}"), &err, wait);
                }
            }
        }
        Ok(())
    }
}
