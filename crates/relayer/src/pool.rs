//! The signatures a relayer has collected, grouped by what they sign, and what is ready to
//! submit.
//!
//! Every record of `<prefix>.attestations` is parsed and its signature checked against this
//! relayer's domain (chain id and bridge) before it counts; what does not check out is
//! rejected with the reason, never submitted. Signatures are grouped by the exact content
//! they sign: two validators that disagree on a root never add up to a threshold.
//!
//! A root is ready when at least `threshold` keys the registry holds active signed the same
//! `(root, ledger hash)` for its commit LSN; a withdrawal when `threshold` active keys signed
//! the same approval. The signatures of a ready item are the `threshold` lowest signer
//! addresses, ascending, as the bridge requires (and no more: every extra one costs gas).

use std::collections::{BTreeMap, HashMap};

use alloy::primitives::{Address, Signature};
use walproof_core::{Digest, Lsn};
use walproof_validator::attestation::{Domain, SignedAttestation};
use walproof_validator::withdrawal::{Signed, SignedApproval, Withdrawal};

/// Signer → signature, ordered by signer address (the order the bridge checks).
type Signers = BTreeMap<Address, Signature>;

/// What one record added to the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// A root attestation's signature.
    Root {
        /// Its commit LSN.
        commit_lsn: Lsn,
        /// The validator that signed.
        validator: Address,
    },
    /// A withdrawal approval's signature.
    Withdrawal {
        /// The withdrawal id.
        id: u64,
        /// The validator that signed.
        validator: Address,
    },
    /// A signature the pool already held (a validator that signed again after a restart).
    Repeated,
}

/// A record that does not count, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is rejected: {reason}", self.origin())]
pub struct Rejected {
    /// The record's offset on the topic; negative for a record fetched over HTTP.
    pub offset: i64,
    /// The record's key on the topic, or the URL it was fetched from.
    pub key: String,
    /// Why it does not count.
    pub reason: String,
}

impl Rejected {
    fn origin(&self) -> String {
        if self.offset < 0 {
            format!("a record from {}", self.key)
        } else {
            format!(
                "attestations record at offset {} (key {:?})",
                self.offset, self.key
            )
        }
    }
}

/// A root with enough signatures to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyRoot {
    /// The commit LSN.
    pub commit_lsn: Lsn,
    /// The root after it.
    pub root: Digest,
    /// The hash of its last ledger entry.
    pub ledger_hash: Digest,
    /// `threshold` signatures, by ascending signer address.
    pub signatures: Vec<(Address, Signature)>,
}

/// A withdrawal with enough approvals to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyWithdrawal {
    /// The withdrawal.
    pub withdrawal: Withdrawal,
    /// `threshold` signatures, by ascending signer address.
    pub signatures: Vec<(Address, Signature)>,
}

/// The collected signatures.
#[derive(Debug)]
pub struct Pool {
    domain: Domain,
    roots: BTreeMap<Lsn, HashMap<(Digest, Digest), Signers>>,
    withdrawals: BTreeMap<u64, HashMap<Withdrawal, Signers>>,
}

impl Pool {
    /// An empty pool for signatures of `domain`.
    pub fn new(domain: Domain) -> Pool {
        Pool {
            domain,
            roots: BTreeMap::new(),
            withdrawals: BTreeMap::new(),
        }
    }

    /// Adds the record at `offset`: parsed, its domain and signature checked.
    pub fn add(&mut self, offset: i64, key: &str, value: &[u8]) -> Result<Added, Rejected> {
        let reject = |reason: String| Rejected {
            offset,
            key: key.to_owned(),
            reason,
        };
        match Signed::from_json(value).map_err(|err| reject(err.to_string()))? {
            Signed::Root(attestation) => {
                let validator = attestation
                    .verify(&self.domain)
                    .map_err(|err| reject(err.to_string()))?;
                Ok(self.add_root(&attestation, validator))
            }
            Signed::Withdrawal(approval) => {
                let validator = approval
                    .verify(&self.domain)
                    .map_err(|err| reject(err.to_string()))?;
                Ok(self.add_withdrawal(&approval, validator))
            }
        }
    }

    fn add_root(&mut self, attestation: &SignedAttestation, validator: Address) -> Added {
        let signers = self
            .roots
            .entry(attestation.commit_lsn)
            .or_default()
            .entry((attestation.root, attestation.ledger_hash))
            .or_default();
        match signers.insert(validator, attestation.signature) {
            Some(_) => Added::Repeated,
            None => Added::Root {
                commit_lsn: attestation.commit_lsn,
                validator,
            },
        }
    }

    fn add_withdrawal(&mut self, approval: &SignedApproval, validator: Address) -> Added {
        let signers = self
            .withdrawals
            .entry(approval.withdrawal.id)
            .or_default()
            .entry(approval.withdrawal)
            .or_default();
        match signers.insert(validator, approval.signature) {
            Some(_) => Added::Repeated,
            None => Added::Withdrawal {
                id: approval.withdrawal.id,
                validator,
            },
        }
    }

    /// The roots after `after` that `threshold` active signers agree on, in LSN order, at most
    /// `max`. An LSN whose signers do not reach the threshold yet is passed over (the bridge
    /// accepts any increasing LSN); it is said in the log by the caller.
    pub fn ready_roots(
        &self,
        after: Lsn,
        threshold: usize,
        max: usize,
        is_active: impl Fn(&Address) -> bool,
    ) -> Vec<ReadyRoot> {
        let mut ready = Vec::new();
        for (lsn, variants) in self.roots.range(following(after)..) {
            if ready.len() >= max {
                break;
            }
            for ((root, ledger_hash), signers) in variants {
                if let Some(signatures) = enough(signers, threshold, &is_active) {
                    ready.push(ReadyRoot {
                        commit_lsn: *lsn,
                        root: *root,
                        ledger_hash: *ledger_hash,
                        signatures,
                    });
                    break;
                }
            }
        }
        ready
    }

    /// Forgets the roots at or before `through` (the bridge's last committed LSN).
    pub fn forget_roots_through(&mut self, through: Lsn) {
        self.roots = self.roots.split_off(&following(through));
    }

    /// How many LSNs after `after` the pool holds signatures for.
    pub fn waiting_roots(&self, after: Lsn) -> usize {
        self.roots.range(following(after)..).count()
    }

    /// The withdrawals `threshold` active signers approved, by id.
    pub fn ready_withdrawals(
        &self,
        threshold: usize,
        is_active: impl Fn(&Address) -> bool,
    ) -> Vec<ReadyWithdrawal> {
        let mut ready = Vec::new();
        for variants in self.withdrawals.values() {
            for (withdrawal, signers) in variants {
                if let Some(signatures) = enough(signers, threshold, &is_active) {
                    ready.push(ReadyWithdrawal {
                        withdrawal: *withdrawal,
                        signatures,
                    });
                    break;
                }
            }
        }
        ready
    }

    /// Forgets withdrawal `id` (paid).
    pub fn forget_withdrawal(&mut self, id: u64) {
        self.withdrawals.remove(&id);
    }

    /// The validators that signed anything in the pool.
    pub fn signers(&self) -> Vec<Address> {
        let mut signers: Vec<Address> = self
            .roots
            .values()
            .flat_map(HashMap::values)
            .chain(self.withdrawals.values().flat_map(HashMap::values))
            .flat_map(BTreeMap::keys)
            .copied()
            .collect();
        signers.sort_unstable();
        signers.dedup();
        signers
    }
}

/// The first LSN after `lsn`.
fn following(lsn: Lsn) -> Lsn {
    Lsn::new(lsn.as_u64().saturating_add(1))
}

/// The `threshold` lowest active signers' signatures, when there are that many.
fn enough(
    signers: &Signers,
    threshold: usize,
    is_active: &impl Fn(&Address) -> bool,
) -> Option<Vec<(Address, Signature)>> {
    let chosen: Vec<(Address, Signature)> = signers
        .iter()
        .filter(|(address, _)| is_active(address))
        .take(threshold)
        .map(|(address, signature)| (*address, *signature))
        .collect();
    (threshold > 0 && chosen.len() == threshold).then_some(chosen)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use alloy::primitives::U256;
    use walproof_validator::attestation::{AttestationSigner, FileKey, KeyOrigin};

    use super::*;

    /// Test keys: 32 bytes of 0x01, 0x02, 0x03 (never fund them).
    fn key(i: usize) -> FileKey {
        let text = format!("{:02x}", i + 1).repeat(32);
        FileKey::parse(&text, KeyOrigin::Env(format!("KEY{i}"))).unwrap()
    }

    fn domain() -> Domain {
        Domain::new(31337, Address::repeat_byte(0xb1))
    }

    fn root(key: &FileKey, lsn: u64, root: u8, domain: Domain) -> Vec<u8> {
        SignedAttestation::sign(
            key,
            domain,
            Lsn::new(lsn),
            Digest([root; 32]),
            Digest([9; 32]),
        )
        .unwrap()
        .to_json()
        .into_bytes()
    }

    fn approval(key: &FileKey, id: u64, amount: u64) -> Vec<u8> {
        SignedApproval::sign(
            key,
            domain(),
            Withdrawal {
                id,
                recipient: Address::repeat_byte(0x70),
                amount: U256::from(amount),
                commit_lsn: Lsn::new(100),
            },
        )
        .unwrap()
        .to_json()
        .into_bytes()
    }

    #[test]
    fn a_root_is_ready_once_threshold_active_signers_agree() {
        let mut pool = Pool::new(domain());
        let all = |_: &Address| true;
        pool.add(0, "k", &root(&key(0), 10, 1, domain())).unwrap();
        assert!(pool.ready_roots(Lsn::new(0), 2, 50, all).is_empty());
        // The same signature again counts once.
        assert_eq!(
            pool.add(1, "k", &root(&key(0), 10, 1, domain())).unwrap(),
            Added::Repeated
        );
        assert!(pool.ready_roots(Lsn::new(0), 2, 50, all).is_empty());
        // A second validator signing another root for the same LSN does not add up.
        pool.add(2, "k", &root(&key(1), 10, 2, domain())).unwrap();
        assert!(pool.ready_roots(Lsn::new(0), 2, 50, all).is_empty());
        pool.add(3, "k", &root(&key(2), 10, 1, domain())).unwrap();
        let ready = pool.ready_roots(Lsn::new(0), 2, 50, all);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].root, Digest([1; 32]));
        let signers: Vec<Address> = ready[0].signatures.iter().map(|(a, _)| *a).collect();
        let mut sorted = vec![key(0).address(), key(2).address()];
        sorted.sort();
        assert_eq!(signers, sorted, "ascending, the two that agree");
        // Inactive signers do not count; LSNs at or before the bridge's last are not ready.
        let only_first = |a: &Address| *a == key(0).address();
        assert!(pool.ready_roots(Lsn::new(0), 2, 50, only_first).is_empty());
        assert!(pool.ready_roots(Lsn::new(10), 2, 50, all).is_empty());
        pool.forget_roots_through(Lsn::new(10));
        assert_eq!(pool.waiting_roots(Lsn::new(0)), 0);
    }

    #[test]
    fn ready_roots_are_in_lsn_order_and_bounded() {
        let mut pool = Pool::new(domain());
        for lsn in [30, 10, 20, 40] {
            for k in 0..2 {
                pool.add(0, "k", &root(&key(k), lsn, 1, domain())).unwrap();
            }
        }
        let ready = pool.ready_roots(Lsn::new(10), 2, 2, |_| true);
        let lsns: Vec<u64> = ready.iter().map(|r| r.commit_lsn.as_u64()).collect();
        assert_eq!(lsns, [20, 30]);
        assert_eq!(ready[0].signatures.len(), 2, "exactly the threshold");
        assert_eq!(
            pool.ready_roots(Lsn::new(0), 1, 50, |_| true)[0]
                .signatures
                .len(),
            1
        );
    }

    #[test]
    fn records_for_another_domain_or_unreadable_are_rejected_with_their_offset() {
        let mut pool = Pool::new(domain());
        let other = Domain::new(1, Address::repeat_byte(0xb1));
        let err = pool
            .add(7, "key7", &root(&key(0), 10, 1, other))
            .unwrap_err();
        assert_eq!(err.offset, 7);
        assert!(err.to_string().contains("offset 7"), "{err}");
        assert!(err.reason.contains("chain 1"), "{err}");
        let err = pool.add(8, "key8", b"{not json").unwrap_err();
        assert!(err.to_string().contains("key8"), "{err}");
        // A forged field (the signature no longer recovers to the named validator).
        let forged = String::from_utf8(root(&key(0), 10, 1, domain()))
            .unwrap()
            .replace(&Digest([1; 32]).to_string(), &Digest([3; 32]).to_string());
        let err = pool.add(9, "k", forged.as_bytes()).unwrap_err();
        assert!(err.reason.contains("signed by"), "{err}");
        assert!(pool.signers().is_empty());
    }

    #[test]
    fn withdrawals_need_threshold_signers_on_the_same_content() {
        let mut pool = Pool::new(domain());
        pool.add(0, "k", &approval(&key(0), 1, 500)).unwrap();
        pool.add(1, "k", &approval(&key(1), 1, 501)).unwrap();
        assert!(pool.ready_withdrawals(2, |_| true).is_empty());
        pool.add(2, "k", &approval(&key(2), 1, 500)).unwrap();
        let ready = pool.ready_withdrawals(2, |_| true);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].withdrawal.amount, U256::from(500));
        pool.forget_withdrawal(1);
        assert!(pool.ready_withdrawals(2, |_| true).is_empty());
        assert_eq!(pool.signers().len(), 0);
    }
}
