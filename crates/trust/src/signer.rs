//! Keys that sign what walproof attests: the [`AttestationSigner`] interface and its providers.
//!
//! A validator signs EIP-712 root attestations and withdrawal approvals with a secp256k1 key.
//! Where that key lives is a provider's business: [`FileKey`] reads it from a file or an
//! environment variable (development); a TEE provider generates it inside the workload and
//! proves its origin with an attestation the key registry contract checks.

use std::fmt;
use std::path::{Path, PathBuf};

use alloy::primitives::{Address, B256, Signature};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;

/// A secp256k1 key that signs 32-byte digests: a key file today, a TEE-held key later.
///
/// Calls may be concurrent (`&self`); an implementation that talks to a remote signer
/// serialises or pools on its own. Signing is synchronous: a local k256 signature takes
/// microseconds, and a remote signer is expected to be driven from a blocking task.
pub trait AttestationSigner: Send + Sync + fmt::Debug {
    /// The address whose key signs; signatures must recover to it.
    fn address(&self) -> Address;

    /// Signs `digest` as is (no EIP-191 prefix, no further hashing).
    fn sign_digest(&self, digest: &B256) -> Result<Signature, SignerError>;

    /// Whether every signature of this signer is known to come from the key behind
    /// [`AttestationSigner::address`], so that a caller need not recover the
    /// signer from each one (a recovery costs about twice a signature: a fifth of the
    /// validator's CPU at a thousand one-row transactions a second).
    ///
    /// IMPORTANT: answer `true` only for a key held in this process, whose address was derived
    /// from that very key and whose signatures were checked to recover to it when it was
    /// loaded, as [`FileKey`] does. A remote or TEE-held signer could answer with another key:
    /// it keeps the default, `false`, and each of its signatures is checked.
    fn signs_with_its_own_key(&self) -> bool {
        false
    }
}

/// A signer could not sign; retryable when the signer is remote (a TEE that is restarting).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signer {signer} failed: {reason}")]
pub struct SignerError {
    /// The signer's address.
    pub signer: Address,
    /// What it reported.
    pub reason: String,
}

/// Where a key was read from; printed in errors and `Debug` instead of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// A file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOrigin::File(path) => write!(f, "key file {}", path.display()),
            KeyOrigin::Env(var) => write!(f, "environment variable {var}"),
        }
    }
}

/// A key that could not be loaded. Never contains the key or any part of it.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read the attestation key file {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The environment variable is not set.
    #[error("environment variable {var} is not set; it should hold the attestation key")]
    EnvUnset {
        /// The variable.
        var: String,
    },
    /// The text is not a secp256k1 private key.
    #[error("{origin} does not hold an attestation key: {problem}")]
    Invalid {
        /// Where the text came from.
        origin: KeyOrigin,
        /// What is wrong, without the key's text.
        problem: String,
    },
    /// A new key could not be generated (no randomness from the operating system, or a
    /// signer that fails its self-check).
    #[error("cannot generate a key: {problem}")]
    Generate {
        /// What failed.
        problem: String,
    },
    /// A new key file could not be written; nothing of the key is in the message.
    #[error("cannot write the key file {path}: {error}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error (`AlreadyExists` when the file was there before: never overwritten).
        error: std::io::Error,
    },
}

/// A secp256k1 private key held in this process, read once from a file or an environment
/// variable as 64 hex digits (an optional `0x`, surrounding whitespace ignored).
///
/// Loading it signs a few fixed digests and recovers its address from each, so that signing
/// an attestation need not ([`AttestationSigner::signs_with_its_own_key`]).
///
/// `Debug` shows the address and where the key came from, never the key.
pub struct FileKey {
    signer: PrivateKeySigner,
    origin: KeyOrigin,
}

impl FileKey {
    /// Reads the key from `path`. Logs a warning when the file is readable by others.
    pub fn from_file(path: impl AsRef<Path>) -> Result<FileKey, KeyError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|error| KeyError::Read {
            path: path.to_owned(),
            error,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(metadata) = std::fs::metadata(path) {
                let mode = metadata.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(
                        path = %path.display(),
                        mode = format_args!("{:o}", mode & 0o777),
                        "the attestation key file is readable by others than its owner"
                    );
                }
            }
        }
        FileKey::parse(&text, KeyOrigin::File(path.to_owned()))
    }

    /// Reads the key from the environment variable `var`.
    pub fn from_env(var: &str) -> Result<FileKey, KeyError> {
        let origin = KeyOrigin::Env(var.to_owned());
        let value = std::env::var_os(var).ok_or_else(|| KeyError::EnvUnset {
            var: var.to_owned(),
        })?;
        // `VarError::NotUnicode` would carry the value: turn it into a message without it.
        let text = value.into_string().map_err(|_| KeyError::Invalid {
            origin: origin.clone(),
            problem: "the value is not valid UTF-8".into(),
        })?;
        FileKey::parse(&text, origin)
    }

    /// Parses hex key text; `origin` only names it in errors and `Debug`.
    pub fn parse(text: &str, origin: KeyOrigin) -> Result<FileKey, KeyError> {
        let invalid = |problem: String| KeyError::Invalid {
            origin: origin.clone(),
            problem,
        };
        let trimmed = text.trim();
        let digits = trimmed
            .strip_prefix("0x")
            .or_else(|| trimmed.strip_prefix("0X"))
            .unwrap_or(trimmed);
        if digits.len() != 64 {
            return Err(invalid(format!(
                "expected 64 hex digits (optionally 0x-prefixed), found {} characters",
                digits.chars().count()
            )));
        }
        let mut bytes = B256::ZERO;
        // The hex error names the offending character and its index: not passed on.
        hex::decode_to_slice(digits, bytes.as_mut_slice())
            .map_err(|_| invalid("expected 64 hex digits, found other characters".into()))?;
        let signer = PrivateKeySigner::from_bytes(&bytes).map_err(|_| {
            invalid("not a secp256k1 private key (zero, or not below the curve order)".into())
        })?;
        check_signatures_recover(&signer).map_err(invalid)?;
        tracing::info!(address = %signer.address(), from = %origin, "loaded the attestation key");
        Ok(FileKey { signer, origin })
    }

    /// Where the key was read from.
    pub fn origin(&self) -> &KeyOrigin {
        &self.origin
    }

    /// The key as alloy's local signer, to sign transactions (an `EthereumWallet`). Its
    /// `Debug` shows no key either.
    pub fn into_local_signer(self) -> PrivateKeySigner {
        self.signer
    }
}

/// Signs fixed digests with `signer` and recovers the address from each signature, until both
/// parities of the nonce point (`v` 27 and 28) came up: the check that lets [`FileKey`] skip
/// the recovery on every attestation. The key is in this process and its address derived from
/// it, so no other key can answer; what a per-signature recovery would still catch is signing
/// code that gets the recovery id (`v`) or the normalisation of `s` wrong, which shows on these
/// digests as on any other of the same parity.
fn check_signatures_recover(signer: &PrivateKeySigner) -> Result<(), String> {
    let mut parities = [false; 2];
    for i in 0..=u8::MAX {
        let digest =
            alloy::primitives::keccak256([b"walproof/key-check/v1".as_slice(), &[i]].concat());
        let signature = signer
            .sign_hash_sync(&digest)
            .map_err(|err| format!("the key cannot sign: {err}"))?
            .normalized_s();
        let recovered = signature.recover_address_from_prehash(&digest).ok();
        if recovered != Some(signer.address()) {
            return Err(format!(
                "its signatures do not recover to its address {} (a broken signer)",
                signer.address()
            ));
        }
        parities[usize::from(signature.v())] = true;
        if parities == [true, true] {
            return Ok(());
        }
    }
    Err("256 signatures of the key all had the same parity (a broken signer)".into())
}

impl fmt::Debug for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileKey")
            .field("address", &self.signer.address())
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Signs `digest` with a key held in this process.
fn sign_locally(signer: &PrivateKeySigner, digest: &B256) -> Result<Signature, SignerError> {
    signer.sign_hash_sync(digest).map_err(|err| SignerError {
        signer: signer.address(),
        reason: err.to_string(),
    })
}

impl AttestationSigner for FileKey {
    fn address(&self) -> Address {
        self.signer.address()
    }

    fn sign_digest(&self, digest: &B256) -> Result<Signature, SignerError> {
        sign_locally(&self.signer, digest)
    }

    /// The key is in this process, its address derived from it, and its signatures were
    /// checked to recover to that address when it was loaded.
    fn signs_with_its_own_key(&self) -> bool {
        true
    }
}

/// A secp256k1 key generated in this process that never leaves it: not written, not logged,
/// not exportable. It dies with the process.
///
/// This is the key a TEE provider attests (for example
/// [`crate::confidential_space::ConfidentialSpace`]): the attestation proves the workload that
/// asked for it holds the key, which is only meaningful when no one else can have a copy. A
/// restarted workload generates a new key and has it registered again.
///
/// `Debug` shows the address only.
pub struct WorkloadKey {
    signer: PrivateKeySigner,
}

impl WorkloadKey {
    /// Generates a key from the operating system's randomness and checks that its signatures
    /// recover to its address (as [`FileKey`] does when loading).
    pub fn generate() -> Result<WorkloadKey, KeyError> {
        let signer = generate_signer()?;
        check_signatures_recover(&signer).map_err(|problem| KeyError::Generate { problem })?;
        tracing::info!(address = %signer.address(), "generated a workload key (in memory only)");
        Ok(WorkloadKey { signer })
    }
}

impl fmt::Debug for WorkloadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadKey")
            .field("address", &self.signer.address())
            .finish_non_exhaustive()
    }
}

impl AttestationSigner for WorkloadKey {
    fn address(&self) -> Address {
        self.signer.address()
    }

    fn sign_digest(&self, digest: &B256) -> Result<Signature, SignerError> {
        sign_locally(&self.signer, digest)
    }

    /// Generated in this process, its address derived from it, its signatures checked to
    /// recover to that address when it was generated.
    fn signs_with_its_own_key(&self) -> bool {
        true
    }
}

/// Generates a key and writes it to `path` as 64 hex digits and a newline, readable by its
/// owner only (mode 0600), in the form [`FileKey::from_file`] reads. Refuses to overwrite an
/// existing file. Returns the key's address; the key itself goes nowhere but the file.
pub fn generate_key_file(path: impl AsRef<Path>) -> Result<Address, KeyError> {
    use std::io::Write as _;
    let path = path.as_ref();
    let signer = generate_signer()?;
    check_signatures_recover(&signer).map_err(|problem| KeyError::Generate { problem })?;
    let write_error = |error| KeyError::Write {
        path: path.to_owned(),
        error,
    };
    let mut options = std::fs::OpenOptions::new();
    // create_new: an existing key is never replaced (it may be registered somewhere).
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(write_error)?;
    let mut raw = signer.to_bytes();
    let mut text = hex::encode(raw.as_slice()).into_bytes();
    wipe(raw.as_mut_slice());
    text.push(b'\n');
    let written = file.write_all(&text).and_then(|()| file.sync_all());
    wipe(&mut text);
    written.map_err(write_error)?;
    Ok(signer.address())
}

/// A key from the operating system's randomness (getrandom, through ring).
fn generate_signer() -> Result<PrivateKeySigner, KeyError> {
    use ring::rand::SecureRandom as _;
    let random = ring::rand::SystemRandom::new();
    let mut bytes = [0u8; 32];
    // A uniformly random 256-bit value is zero or not below the curve order with probability
    // about 2^-128: retrying is what makes the result uniform over valid keys.
    for _ in 0..16 {
        random.fill(&mut bytes).map_err(|_| KeyError::Generate {
            problem: "the operating system gave no randomness".into(),
        })?;
        let mut candidate = B256::from(bytes);
        wipe(&mut bytes);
        let signer = PrivateKeySigner::from_bytes(&candidate);
        wipe(candidate.as_mut_slice());
        if let Ok(signer) = signer {
            return Ok(signer);
        }
    }
    Err(KeyError::Generate {
        problem: "16 random values in a row were not secp256k1 keys (a broken random source)"
            .into(),
    })
}

/// Overwrites key material before it goes out of scope. `black_box` keeps the compiler from
/// removing the stores as dead.
fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(bytes);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    /// anvil's first well-known test key (public; never fund it).
    const TEST_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    fn key(text: &str) -> FileKey {
        FileKey::parse(text, KeyOrigin::Env("TEST_KEY".into())).unwrap()
    }

    #[test]
    fn key_text_may_have_0x_and_whitespace() {
        let plain = key(TEST_KEY);
        for text in [
            format!("0x{TEST_KEY}"),
            format!("  {TEST_KEY}\n"),
            format!("\t0x{}\r\n", TEST_KEY.to_uppercase()),
        ] {
            assert_eq!(key(&text).address(), plain.address(), "{text:?}");
        }
    }

    #[test]
    fn key_errors_name_the_source_and_never_contain_the_key() {
        let origin = KeyOrigin::File("/etc/walproof/validator.key".into());
        let short = &TEST_KEY[..62];
        let not_hex = format!("{}zz", &TEST_KEY[..62]);
        let order = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
        for bad in [short, not_hex.as_str(), order, &"0".repeat(64), ""] {
            let err = FileKey::parse(bad, origin.clone()).unwrap_err();
            let (message, debug) = (err.to_string(), format!("{err:?}"));
            assert!(message.contains("/etc/walproof/validator.key"), "{message}");
            if bad.len() > 8 {
                assert!(!message.contains(&bad[..8]), "{message} leaks the key");
                assert!(!debug.contains(&bad[..8]), "{debug} leaks the key");
            }
        }
        let missing = FileKey::from_file("/nonexistent/walproof.key").unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/walproof.key"));
        let var = "WALPROOF_TEST_ATTESTATION_KEY_THAT_IS_NEVER_SET";
        let unset = FileKey::from_env(var).unwrap_err();
        assert!(unset.to_string().contains(var), "{unset}");
    }

    #[test]
    fn key_debug_shows_address_and_origin_but_not_the_key() {
        let debug = format!("{:?}", key(TEST_KEY));
        assert!(debug.contains("TEST_KEY"), "{debug}");
        assert!(
            debug
                .to_lowercase()
                .contains("f39fd6e51aad88f6f4ce6ab8827279cfffb92266"),
            "{debug}"
        );
        assert!(!debug.to_lowercase().contains(&TEST_KEY[..16]), "{debug}");
    }

    #[test]
    fn workload_keys_are_fresh_sign_for_their_address_and_debug_shows_only_it() {
        let (a, b) = (
            WorkloadKey::generate().unwrap(),
            WorkloadKey::generate().unwrap(),
        );
        assert_ne!(a.address(), b.address());
        let digest = alloy::primitives::keccak256(b"walproof");
        let signature = a.sign_digest(&digest).unwrap();
        assert_eq!(
            signature.recover_address_from_prehash(&digest).unwrap(),
            a.address()
        );
        let debug = format!("{a:?}");
        assert_eq!(
            debug,
            format!("WorkloadKey {{ address: {:?}, .. }}", a.address())
        );
    }

    #[test]
    fn generated_key_file_is_private_loads_back_and_is_never_overwritten() {
        let dir =
            std::env::temp_dir().join(format!("walproof-trust-keygen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("validator.key");
        let _ = std::fs::remove_file(&path);
        let address = generate_key_file(&path).unwrap();
        assert_eq!(FileKey::from_file(&path).unwrap().address(), address);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let before = std::fs::read(&path).unwrap();
        let err = generate_key_file(&path).unwrap_err();
        assert!(
            matches!(&err, KeyError::Write { error, .. } if error.kind() == std::io::ErrorKind::AlreadyExists),
            "{err}"
        );
        assert!(err.to_string().contains("validator.key"), "{err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "the existing key is kept"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
