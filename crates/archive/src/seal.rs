//! Encryption at rest: every object of an archive sealed whole with AES-256-GCM.
//!
//! Each object has its own key, derived with HKDF-SHA256 from the operator's secret (salt
//! `walproof/archive/v1`, info: the object's name), and a random 96-bit nonce; the name is also
//! the associated data, so an object moved to another name does not open. A sealed object is
//!
//! ```text
//! "WPSEAL01" ‖ nonce (12 bytes) ‖ AES-256-GCM(key, nonce, aad = name, object) (ciphertext ‖ 16-byte tag)
//! ```
//!
//! Manifests keep the SHA-256 of the Parquet bytes before sealing, so a reader with the key
//! checks the file it decrypted. The wrong secret (or a changed byte) opens nothing.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, Prk, Salt};
use ring::rand::{SecureRandom as _, SystemRandom};

const MAGIC: &[u8; 8] = b"WPSEAL01";
const SALT: &[u8] = b"walproof/archive/v1";
/// The shortest secret accepted, bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Why an object could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The secret is too short to derive keys from.
    #[error("the archive's encryption secret has {0} bytes; it needs at least {MIN_SECRET_BYTES}")]
    ShortSecret(usize),
    /// The object is sealed and no secret was given.
    #[error("{0} is sealed: give the archive's encryption secret")]
    NoSecret(String),
    /// The object is not sealed (written without encryption).
    #[error("{0} is not sealed: it was written without encryption")]
    NotSealed(String),
    /// The object does not open: another secret, or altered bytes.
    #[error("{0} does not open with this secret (another secret, or the object was altered)")]
    DoesNotOpen(String),
    /// The system's random source failed.
    #[error("no random nonce for {0}: the system's random source failed")]
    NoRandom(String),
}

/// Seals and opens an archive's objects with keys derived from one secret.
pub struct Sealer {
    prk: Prk,
    random: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer for `secret` (at least [`MIN_SECRET_BYTES`] bytes, e.g. 32 random bytes).
    pub fn new(secret: &[u8]) -> Result<Sealer, SealError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SealError::ShortSecret(secret.len()));
        }
        Ok(Sealer {
            prk: Salt::new(HKDF_SHA256, SALT).extract(secret),
            random: SystemRandom::new(),
        })
    }

    fn key(&self, name: &str) -> LessSafeKey {
        let info = [name.as_bytes()];
        let okm = self
            .prk
            .expand(&info, &AES_256_GCM)
            .expect("an AES-256 key is a valid HKDF-SHA256 output length");
        LessSafeKey::new(UnboundKey::from(okm))
    }

    /// `object`, sealed for the name `name`.
    pub fn seal(&self, name: &str, mut object: Vec<u8>) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| SealError::NoRandom(name.to_owned()))?;
        self.key(name)
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut object,
            )
            .map_err(|_| SealError::DoesNotOpen(name.to_owned()))?;
        let mut sealed = Vec::with_capacity(MAGIC.len() + NONCE_LEN + object.len());
        sealed.extend_from_slice(MAGIC);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&object);
        Ok(sealed)
    }

    /// The object sealed as `name`.
    pub fn open(&self, name: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let Some(rest) = sealed.strip_prefix(MAGIC.as_slice()) else {
            return Err(SealError::NotSealed(name.to_owned()));
        };
        let (nonce, ciphertext) = rest
            .split_at_checked(NONCE_LEN)
            .ok_or_else(|| SealError::DoesNotOpen(name.to_owned()))?;
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| SealError::DoesNotOpen(name.to_owned()))?;
        let mut buffer = ciphertext.to_vec();
        let opened = self
            .key(name)
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut buffer)
            .map_err(|_| SealError::DoesNotOpen(name.to_owned()))?;
        let len = opened.len();
        buffer.truncate(len);
        Ok(buffer)
    }
}

/// Whether `bytes` are a sealed object.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_object_opens_with_its_secret_and_name_only() {
        let sealer = Sealer::new(&[7; 32]).unwrap();
        let object = b"PAR1 the parquet bytes PAR1".to_vec();
        let sealed = sealer.seal("p/t/a.parquet", object.clone()).unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(7).any(|w| w == b"parquet"), "no plaintext");
        assert_eq!(sealer.open("p/t/a.parquet", &sealed).unwrap(), object);
        // Sealed twice, two nonces: the bytes differ, both open.
        let again = sealer.seal("p/t/a.parquet", object.clone()).unwrap();
        assert_ne!(again, sealed);
        assert_eq!(sealer.open("p/t/a.parquet", &again).unwrap(), object);

        let wrong = Sealer::new(&[8; 32]).unwrap();
        assert_eq!(
            wrong
                .open("p/t/a.parquet", &sealed)
                .unwrap_err()
                .to_string(),
            "p/t/a.parquet does not open with this secret (another secret, or the object was altered)"
        );
        assert!(
            sealer.open("p/t/b.parquet", &sealed).is_err(),
            "another name"
        );
        for at in [0, 8, 20, sealed.len() - 1] {
            let mut altered = sealed.clone();
            altered[at] ^= 1;
            assert!(sealer.open("p/t/a.parquet", &altered).is_err(), "byte {at}");
        }
        assert!(sealer.open("p/t/a.parquet", &sealed[..10]).is_err());
        assert_eq!(
            sealer.open("x", &object).unwrap_err(),
            SealError::NotSealed("x".into())
        );
        assert_eq!(
            Sealer::new(b"short").unwrap_err(),
            SealError::ShortSecret(5)
        );
    }
}
