//! Withdrawals: rows inserted into the outbound table on the source, approved by the validators
//! that replayed them.
//!
//! The outbound table has a fixed layout, so that the bridge contract can also hash its rows
//! and accept a withdrawal proven against a committed root (contracts/README.md):
//!
//! ```sql
//! CREATE TABLE public.walproof_withdrawals (id bigint PRIMARY KEY,
//!     recipient text NOT NULL CHECK (recipient ~ '^0x[0-9a-f]{40}$'),
//!     amount numeric(78,0) NOT NULL CHECK (amount > 0));
//! ```
//!
//! A row inserted (or present in the initial snapshot) is a withdrawal request. Once this
//! validator's replay reproduced the root of the transaction that inserted it, it signs the
//! EIP-712 struct
//!
//! ```solidity
//! struct WithdrawalApproval { uint256 id; address recipient; uint256 amount; uint64 commitLsn; }
//! ```
//!
//! in the same domain as root attestations, and publishes it on `<prefix>.attestations` under
//! the key `<validator>/withdrawal/<id>`, before the root attestation of that transaction (a
//! restart that signs the transaction again signs the same approval: RFC 6979 signatures are
//! deterministic). Updates and deletes of withdrawal rows are not requests and are not
//! approved; the bridge pays an id at most once whichever way it arrives.

use std::fmt;

use alloy::primitives::{Address, B256, Signature, U256};
use alloy::sol_types::SolStruct;
use walproof_core::{Lsn, Op, Relation, Transaction};

use crate::attestation::{
    AttestationParseError, AttestationSigner, Domain, JSON_VERSION, SignError, VerifyError,
    address_from_hex, signature_from_hex, versioned_object,
};

/// The `kind` of a withdrawal approval's JSON form.
pub const KIND: &str = "withdrawal";

/// The outbound table's default name.
pub const DEFAULT_TABLE: &str = "public.walproof_withdrawals";

/// The outbound table's columns in attribute order, with their type OIDs (int8, text, numeric).
pub const COLUMNS: [(&str, u32); 3] = [("id", 20), ("recipient", 25), ("amount", 1700)];

alloy::sol! {
    /// The EIP-712 struct a validator signs: "the source inserted withdrawal `id`, paying
    /// `amount` base units of the bridge's asset to `recipient`, in the transaction committed
    /// at `commitLsn`, and my replay reproduced that transaction's root".
    #[derive(Debug, PartialEq, Eq)]
    struct WithdrawalApproval {
        /// The row's `id`.
        uint256 id;
        /// The row's `recipient`.
        address recipient;
        /// The row's `amount`, in the asset's base units.
        uint256 amount;
        /// The commit LSN of the transaction that inserted the row.
        uint64 commitLsn;
    }
}

/// The schema-qualified name of the outbound table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WithdrawalTable {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub table: String,
}

impl WithdrawalTable {
    /// Parses `schema.table` (both parts as stored, unquoted).
    pub fn parse(text: &str) -> Result<WithdrawalTable, String> {
        match text.split_once('.') {
            Some((schema, table)) if !schema.is_empty() && !table.is_empty() => {
                Ok(WithdrawalTable {
                    schema: schema.to_owned(),
                    table: table.to_owned(),
                })
            }
            _ => Err(format!(
                "{text:?} is not a schema-qualified table name such as {DEFAULT_TABLE}"
            )),
        }
    }

    fn is(&self, relation: &Relation) -> bool {
        relation.schema == self.schema && relation.name == self.table
    }
}

impl fmt::Display for WithdrawalTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// A withdrawal request: one row of the outbound table, as the source committed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Withdrawal {
    /// The row's `id`.
    pub id: u64,
    /// Who is paid.
    pub recipient: Address,
    /// How much, in the asset's base units.
    pub amount: U256,
    /// The commit LSN of the transaction that inserted it.
    pub commit_lsn: Lsn,
}

impl Withdrawal {
    /// The EIP-712 struct for this withdrawal.
    pub fn message(&self) -> WithdrawalApproval {
        WithdrawalApproval {
            id: U256::from(self.id),
            recipient: self.recipient,
            amount: self.amount,
            commitLsn: self.commit_lsn.as_u64(),
        }
    }
}

/// A row of the outbound table that is not a withdrawal the bridge could pay; names the row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{table} row {ordinal} of the transaction at {commit_lsn} is not a withdrawal: {problem}")]
pub struct NotAWithdrawal {
    /// The outbound table.
    pub table: String,
    /// The transaction's commit LSN.
    pub commit_lsn: Lsn,
    /// The change's ordinal within it.
    pub ordinal: u32,
    /// What is wrong.
    pub problem: String,
}

/// The withdrawals `transaction` requests: its inserts (and snapshot rows) into `table`, in
/// change order. A row that is not a payable withdrawal is returned as the error naming it.
pub fn requested(
    transaction: &Transaction,
    table: &WithdrawalTable,
) -> Vec<Result<Withdrawal, NotAWithdrawal>> {
    let mut found = Vec::new();
    // Most transactions do not touch the outbound table: said once, not per change.
    if !transaction.relations.values().any(|r| table.is(r)) {
        return found;
    }
    for change in &transaction.changes {
        let (relation, row) = match &change.op {
            Op::Insert { relation, new } => (relation, new),
            Op::Snapshot { relation, row } => (relation, row),
            _ => continue,
        };
        let Some(relation) = transaction.relations.get(relation) else {
            continue;
        };
        if !table.is(relation) {
            continue;
        }
        let reject = |problem: String| NotAWithdrawal {
            table: table.to_string(),
            commit_lsn: transaction.commit_lsn,
            ordinal: change.ordinal,
            problem,
        };
        found.push(
            parse_row(relation, &row.0)
                .map_err(reject)
                .map(|(id, recipient, amount)| Withdrawal {
                    id,
                    recipient,
                    amount,
                    commit_lsn: transaction.commit_lsn,
                }),
        );
    }
    found
}

/// The `(id, recipient, amount)` of a row whose relation has the outbound table's layout.
fn parse_row(
    relation: &Relation,
    values: &[walproof_core::Value],
) -> Result<(u64, Address, U256), String> {
    let layout: Vec<(&str, u32)> = relation
        .columns
        .iter()
        .map(|column| (column.name.as_str(), column.type_oid))
        .collect();
    if layout != COLUMNS {
        return Err(format!(
            "the table's columns are {layout:?}, expected exactly {COLUMNS:?} (id bigint, recipient text, amount numeric)"
        ));
    }
    let text = |index: usize| {
        values
            .get(index)
            .and_then(|value| value.as_text())
            .ok_or_else(|| format!("{} is NULL or missing", COLUMNS[index].0))
    };
    let id = parse_id(text(0)?)?;
    let recipient_text = text(1)?;
    let recipient = parse_recipient(recipient_text)?;
    let amount_text = text(2)?;
    let amount = parse_amount(amount_text)?;
    Ok((id, recipient, amount))
}

/// Digits as Postgres prints them: no sign, no leading zero (the bridge parses the same).
fn canonical_digits(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
}

/// A non-negative `bigint` id, as the bridge parses it.
fn parse_id(text: &str) -> Result<u64, String> {
    if !canonical_digits(text) {
        return Err(format!("id {text:?} is not a non-negative integer"));
    }
    text.parse::<u64>()
        .map_err(|_| format!("id {text:?} is not a non-negative integer"))
}

/// `0x` and 40 hex digits, as the bridge parses a recipient.
fn parse_recipient(text: &str) -> Result<Address, String> {
    let digits = text
        .strip_prefix("0x")
        .filter(|digits| digits.len() == 40 && digits.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| format!("recipient {text:?} is not 0x and 40 hex digits"))?;
    let mut raw = [0u8; 20];
    hex::decode_to_slice(digits, &mut raw)
        .map_err(|_| format!("recipient {text:?} is not 0x and 40 hex digits"))?;
    if raw == [0u8; 20] {
        return Err("recipient is the zero address (the payment would be burnt)".into());
    }
    Ok(Address::from(raw))
}

/// A positive whole number of base units below 2^256, as the bridge parses an amount.
fn parse_amount(text: &str) -> Result<U256, String> {
    if !canonical_digits(text) {
        return Err(format!(
            "amount {text:?} is not a whole number of base units"
        ));
    }
    let amount = U256::from_str_radix(text, 10)
        .map_err(|_| format!("amount {text:?} does not fit in 256 bits"))?;
    if amount.is_zero() {
        return Err("amount is zero".into());
    }
    Ok(amount)
}

/// A withdrawal approval with its signature, as published on `<prefix>.attestations`.
///
/// Its JSON form (version 1):
///
/// ```json
/// {"version": 1, "kind": "withdrawal", "validator": "0xf39F…2266", "id": "42",
///  "recipient": "0x7099…79C8", "amount": "1000000000000000000", "commit_lsn": "16/B374D848",
///  "chain_id": 31337, "bridge": "0x5FbD…0aa3", "signature": "0x<130 hex>"}
/// ```
///
/// `id` and `amount` are decimal strings (an amount may exceed 2^53); addresses EIP-55.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedApproval {
    /// The validator whose key signed.
    pub validator: Address,
    /// The approved withdrawal.
    pub withdrawal: Withdrawal,
    /// The chain and bridge the approval is for.
    pub domain: Domain,
    /// The signature over [`SignedApproval::signing_hash`].
    pub signature: Signature,
}

impl SignedApproval {
    /// Signs the approval of `withdrawal` for `domain` (normalising a high `s`), and checks
    /// the signature recovers to the signer unless it [signs with its own
    /// key](AttestationSigner::signs_with_its_own_key).
    ///
    /// IMPORTANT: call this only after this validator's own replay reproduced the root of the
    /// transaction that inserted the row.
    pub fn sign<S: AttestationSigner + ?Sized>(
        signer: &S,
        domain: Domain,
        withdrawal: Withdrawal,
    ) -> Result<SignedApproval, SignError> {
        let validator = signer.address();
        let hash = withdrawal.message().eip712_signing_hash(&domain.eip712());
        let approval = SignedApproval {
            validator,
            withdrawal,
            domain,
            signature: signer.sign_digest(&hash)?.normalized_s(),
        };
        if !signer.signs_with_its_own_key() {
            approval
                .verify(&domain)
                .map_err(|source| SignError::WrongKey {
                    signer: validator,
                    commit_lsn: withdrawal.commit_lsn,
                    source,
                })?;
        }
        Ok(approval)
    }

    /// The EIP-712 signing hash of the approved fields under the approval's domain.
    pub fn signing_hash(&self) -> B256 {
        self.withdrawal
            .message()
            .eip712_signing_hash(&self.domain.eip712())
    }

    /// The signature as the bridge takes it: 65 bytes `r ‖ s ‖ v`, `v` 27 or 28.
    pub fn signature_bytes(&self) -> [u8; 65] {
        self.signature.as_bytes()
    }

    /// Checks that the approval is for `expected` and was signed by the validator it names.
    pub fn verify(&self, expected: &Domain) -> Result<Address, VerifyError> {
        let commit_lsn = self.withdrawal.commit_lsn;
        if self.domain != *expected {
            return Err(VerifyError::WrongDomain {
                commit_lsn,
                expected: *expected,
                found: self.domain,
            });
        }
        if self.signature.normalize_s().is_some() {
            return Err(VerifyError::HighS);
        }
        let recovered = self
            .signature
            .recover_address_from_prehash(&self.signing_hash())
            .map_err(|err| VerifyError::Unrecoverable {
                problem: err.to_string(),
            })?;
        if recovered != self.validator {
            return Err(VerifyError::WrongSigner {
                commit_lsn,
                claimed: self.validator,
                recovered,
            });
        }
        Ok(recovered)
    }

    /// The record key on `<prefix>.attestations`: `<validator address>/withdrawal/<id>`.
    pub fn topic_key(&self) -> String {
        format!(
            "{}/{KIND}/{}",
            self.validator.to_checksum(None),
            self.withdrawal.id
        )
    }

    /// The JSON form (version 1; see the type's documentation).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "version": JSON_VERSION,
            "kind": KIND,
            "validator": self.validator.to_checksum(None),
            "id": self.withdrawal.id.to_string(),
            "recipient": self.withdrawal.recipient.to_checksum(None),
            "amount": self.withdrawal.amount.to_string(),
            "commit_lsn": self.withdrawal.commit_lsn.to_string(),
            "chain_id": self.domain.chain_id,
            "bridge": self.domain.bridge.to_checksum(None),
            "signature": format!("0x{}", hex::encode(self.signature_bytes())),
        })
        .to_string()
    }

    /// Parses the JSON form; the error names the field. Does not verify the signature.
    pub fn from_json(bytes: &[u8]) -> Result<SignedApproval, AttestationParseError> {
        use AttestationParseError::{Invalid, Missing};
        let value = versioned_object(bytes)?;
        let text = |field: &'static str| match &value[field] {
            serde_json::Value::Null => Err(Missing { field }),
            found => found.as_str().ok_or_else(|| Invalid {
                field,
                problem: "not a string".into(),
            }),
        };
        if text("kind")? != KIND {
            return Err(Invalid {
                field: "kind",
                problem: format!("{:?} is not {KIND:?}", text("kind")?),
            });
        }
        let address = |field: &'static str| {
            address_from_hex(text(field)?).map_err(|problem| Invalid { field, problem })
        };
        let invalid = |field: &'static str| move |problem: String| Invalid { field, problem };
        let id = parse_id(text("id")?).map_err(invalid("id"))?;
        Ok(SignedApproval {
            validator: address("validator")?,
            withdrawal: Withdrawal {
                id,
                recipient: address("recipient")?,
                amount: parse_amount(text("amount")?).map_err(invalid("amount"))?,
                commit_lsn: text("commit_lsn")?
                    .parse()
                    .map_err(|err| invalid("commit_lsn")(format!("{err}")))?,
            },
            domain: Domain {
                chain_id: match &value["chain_id"] {
                    serde_json::Value::Null => return Err(Missing { field: "chain_id" }),
                    found => found.as_u64().ok_or_else(|| Invalid {
                        field: "chain_id",
                        problem: "not an unsigned 64-bit integer".into(),
                    })?,
                },
                bridge: address("bridge")?,
            },
            signature: signature_from_hex(text("signature")?).map_err(invalid("signature"))?,
        })
    }
}

/// What a record of `<prefix>.attestations` holds: a root attestation or a withdrawal
/// approval, told apart by the JSON's `kind` (absent in records older than approvals: root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signed {
    /// A root attestation.
    Root(crate::attestation::SignedAttestation),
    /// A withdrawal approval.
    Withdrawal(SignedApproval),
}

impl Signed {
    /// Parses a record's value by its `kind`; the error names the field.
    pub fn from_json(bytes: &[u8]) -> Result<Signed, AttestationParseError> {
        #[derive(serde::Deserialize)]
        struct Kind {
            kind: Option<String>,
        }
        let kind = serde_json::from_slice::<Kind>(bytes)
            .map_err(|err| AttestationParseError::NotJson {
                problem: err.to_string(),
            })?
            .kind;
        match kind.as_deref() {
            Some(KIND) => SignedApproval::from_json(bytes).map(Signed::Withdrawal),
            _ => crate::attestation::SignedAttestation::from_json(bytes).map(Signed::Root),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use std::collections::BTreeMap;

    use walproof_core::{Change, Column, ReplicaIdentity, Row, Value};

    use super::*;
    use crate::attestation::{FileKey, KeyOrigin};

    /// anvil's first well-known test key (public; never fund it).
    const TEST_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    fn key() -> FileKey {
        FileKey::parse(TEST_KEY, KeyOrigin::Env("TEST_KEY".into())).unwrap()
    }

    fn domain() -> Domain {
        Domain::new(
            31337,
            "0x5FbDB2315678afecb367f032d93F642f64180aa3"
                .parse()
                .unwrap(),
        )
    }

    fn relation(columns: &[(&str, u32)]) -> Relation {
        Relation {
            id: 16_400,
            schema: "public".into(),
            name: "walproof_withdrawals".into(),
            replica_identity: ReplicaIdentity::Default,
            columns: columns
                .iter()
                .map(|(name, type_oid)| Column {
                    name: (*name).into(),
                    type_oid: *type_oid,
                    type_modifier: -1,
                    key: *name == "id",
                })
                .collect(),
        }
    }

    fn transaction(relation: Relation, rows: &[[Option<&str>; 3]]) -> Transaction {
        let id = relation.id;
        Transaction {
            commit_lsn: "16/B374D848".parse().unwrap(),
            xid: 7,
            commit_time_us: 0,
            relations: BTreeMap::from([(id, relation)]),
            changes: rows
                .iter()
                .enumerate()
                .map(|(ordinal, values)| Change {
                    ordinal: ordinal as u32,
                    op: Op::Insert {
                        relation: id,
                        new: Row(values
                            .iter()
                            .map(|v| v.map_or(Value::Null, |t| Value::Text(t.into())))
                            .collect()),
                    },
                })
                .collect(),
        }
    }

    const RECIPIENT: &str = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";

    #[test]
    fn inserted_rows_are_withdrawals_and_bad_rows_are_named() {
        let table = WithdrawalTable::parse(DEFAULT_TABLE).unwrap();
        let tx = transaction(
            relation(&COLUMNS),
            &[
                [Some("42"), Some(RECIPIENT), Some("1000000000000000000")],
                [Some("-1"), Some(RECIPIENT), Some("5")],
                [Some("43"), Some("0x1234"), Some("5")],
                [Some("44"), Some(RECIPIENT), Some("1.5")],
                [Some("45"), Some(RECIPIENT), Some("0")],
                [Some("46"), None, Some("5")],
                [Some("+7"), Some(RECIPIENT), Some("5")],
                [Some("48"), Some(RECIPIENT), Some("007")],
                [
                    Some("49"),
                    Some("0x0000000000000000000000000000000000000000"),
                    Some("5"),
                ],
            ],
        );
        let found = requested(&tx, &table);
        assert_eq!(found.len(), 9);
        let first = found[0].as_ref().unwrap();
        assert_eq!(first.id, 42);
        assert_eq!(first.recipient, RECIPIENT.parse::<Address>().unwrap());
        assert_eq!(first.amount, U256::from(10u64).pow(U256::from(18)));
        assert_eq!(first.commit_lsn, tx.commit_lsn);
        let problems: Vec<String> = found[1..]
            .iter()
            .map(|r| r.as_ref().unwrap_err().to_string())
            .collect();
        for (problem, expected) in problems.iter().zip([
            "id \"-1\"",
            "recipient \"0x1234\"",
            "amount \"1.5\"",
            "amount is zero",
            "recipient is NULL",
            "id \"+7\"",
            "amount \"007\"",
            "zero address",
        ]) {
            assert!(problem.contains(expected), "{problem}");
            assert!(
                problem.contains("public.walproof_withdrawals row"),
                "{problem}"
            );
        }
        // Another table, or the table with another layout, requests nothing / is named.
        let other = WithdrawalTable::parse("public.other").unwrap();
        assert!(requested(&tx, &other).is_empty());
        let wrong = transaction(
            relation(&[("id", 20), ("amount", 1700), ("recipient", 25)]),
            &[[Some("1"), Some("5"), Some(RECIPIENT)]],
        );
        let err = requested(&wrong, &table)[0].clone().unwrap_err();
        assert!(err.problem.contains("expected exactly"), "{err}");
    }

    #[test]
    fn approval_signs_verifies_and_round_trips_as_json() {
        let table = WithdrawalTable::parse(DEFAULT_TABLE).unwrap();
        let tx = transaction(
            relation(&COLUMNS),
            &[[
                Some("42"),
                Some(RECIPIENT),
                Some("123456789012345678901234567890"),
            ]],
        );
        let withdrawal = requested(&tx, &table)[0].clone().unwrap();
        let approval = SignedApproval::sign(&key(), domain(), withdrawal).unwrap();
        assert_eq!(approval.verify(&domain()).unwrap(), key().address());
        assert_eq!(
            approval.topic_key(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266/withdrawal/42"
        );
        let json = approval.to_json();
        assert!(
            json.contains("\"amount\":\"123456789012345678901234567890\""),
            "{json}"
        );
        let parsed = SignedApproval::from_json(json.as_bytes()).unwrap();
        assert_eq!(parsed, approval);
        assert_eq!(
            Signed::from_json(json.as_bytes()).unwrap(),
            Signed::Withdrawal(approval.clone())
        );
        // A changed amount recovers another signer; another bridge is another domain.
        let mut forged = approval.clone();
        forged.withdrawal.amount += U256::from(1);
        assert!(matches!(
            forged.verify(&domain()),
            Err(VerifyError::WrongSigner { .. })
        ));
        let other = Domain::new(31337, Address::repeat_byte(1));
        assert!(matches!(
            approval.verify(&other),
            Err(VerifyError::WrongDomain { .. })
        ));
        // A root attestation's JSON is told apart by its kind.
        let root = crate::attestation::SignedAttestation::sign(
            &key(),
            domain(),
            tx.commit_lsn,
            walproof_core::Digest([1; 32]),
            walproof_core::Digest([2; 32]),
        )
        .unwrap();
        assert_eq!(
            Signed::from_json(root.to_json().as_bytes()).unwrap(),
            Signed::Root(root.clone())
        );
        assert!(matches!(
            SignedApproval::from_json(root.to_json().as_bytes()),
            Err(AttestationParseError::Invalid { field: "kind", .. })
        ));
        assert!(matches!(
            crate::attestation::SignedAttestation::from_json(json.as_bytes()),
            Err(AttestationParseError::Invalid { field: "kind", .. })
        ));
    }

    #[test]
    fn approval_json_errors_name_the_field() {
        let table = WithdrawalTable::parse(DEFAULT_TABLE).unwrap();
        let tx = transaction(
            relation(&COLUMNS),
            &[[Some("7"), Some(RECIPIENT), Some("9")]],
        );
        let json =
            SignedApproval::sign(&key(), domain(), requested(&tx, &table)[0].clone().unwrap())
                .unwrap()
                .to_json();
        for (from, to, field) in [
            ("\"amount\":\"9\"", "\"amount\":\"9.0\"", "amount"),
            ("\"id\":\"7\"", "\"id\":\"x\"", "id"),
            (
                "\"commit_lsn\":\"16/B374D848\"",
                "\"commit_lsn\":\"16\"",
                "commit_lsn",
            ),
        ] {
            let bad = json.replace(from, to);
            assert_ne!(bad, json);
            match SignedApproval::from_json(bad.as_bytes()) {
                Err(AttestationParseError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
