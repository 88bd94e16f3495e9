//! The Confidential Space attestation token (an RS256 JWT signed by Google): parsed, checked
//! exactly as `ConfidentialSpaceVerifier` will check it, and turned into its evidence.
//!
//! The contract rebuilds the signing input by base64url-encoding (no padding) the header and
//! payload it is given, so the evidence carries the decoded segments byte for byte
//! ([`Token::evidence`]); a token whose segments are not canonical base64url is refused here
//! because the rebuilt input would not be what Google signed.
//!
//! The contract finds a claim by its quoted key pattern `"name":`, which must occur exactly
//! once in the payload, and reads the value right after it. [`Token::check`] reads claims the
//! same way (not through a JSON parser), so a token it accepts is one the contract reads the
//! same values from, and checks the same ones (`secboot` included).

use std::fmt;

use alloy::primitives::{B256, Bytes, keccak256};
use alloy::sol_types::SolValue;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The `iss` of every Confidential Space token.
pub const ISSUER: &str = "https://confidentialcomputing.googleapis.com";

/// The `swname` of a Confidential Space image.
pub const SOFTWARE_NAME: &str = "CONFIDENTIAL_SPACE";

/// The `dbgstat` of a production (non-debug) Confidential Space image.
pub const DEBUG_STATUS: &str = "disabled-since-boot";

/// The only signing algorithm the verifier takes.
pub const ALGORITHM: &str = "RS256";

/// A token that cannot be evidence. Every variant names the claim (or part) and the values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT: three base64url segments of JSON objects.
    #[error("the attestation token is not a JWT: {problem}")]
    Format {
        /// What is wrong.
        problem: String,
    },
    /// The header's `alg` or `kid` is not what the verifier takes.
    #[error("the attestation token's header {field} is {found}, expected {expected}")]
    Header {
        /// `alg` or `kid`.
        field: &'static str,
        /// What the verifier needs.
        expected: String,
        /// What the token has.
        found: String,
    },
    /// A claim's key pattern `"name":` occurs more than once (or, for a required claim, not
    /// at all): the verifier would refuse to pick one.
    #[error(
        "the attestation token's claim {claim}: the pattern \"{claim}\": occurs {count} times in the payload, the verifier requires exactly one"
    )]
    ClaimPattern {
        /// The claim.
        claim: &'static str,
        /// How often its pattern occurs.
        count: usize,
    },
    /// A claim holds another value than the verifier accepts.
    #[error("the attestation token's claim {claim} is {found}, expected {expected}")]
    Claim {
        /// The claim.
        claim: &'static str,
        /// What the verifier accepts.
        expected: String,
        /// What the token holds (`absent` when missing).
        found: String,
    },
    /// `exp` is not after now.
    #[error("the attestation token expired: exp {exp} is not after now ({now})")]
    Expired {
        /// The token's `exp`.
        exp: u64,
        /// Now, Unix seconds.
        now: u64,
    },
    /// `iat` or `nbf` is after now.
    #[error("the attestation token is not valid yet: {claim} {value} is after now ({now})")]
    NotYetValid {
        /// `iat` or `nbf`.
        claim: &'static str,
        /// Its value.
        value: u64,
        /// Now, Unix seconds.
        now: u64,
    },
    /// The image digest is not one of the allowed ones.
    #[error("the attestation token's image_digest {digest} is not allowed (allowed: {allowed:?})")]
    ImageNotAllowed {
        /// The token's `submods.container.image_digest`.
        digest: String,
        /// The allowed digests.
        allowed: Vec<String>,
    },
    /// No pinned key has the header's `kid`.
    #[error(
        "the attestation token is signed with key {kid}, which is not pinned (pinned: {pinned:?})"
    )]
    UnknownKey {
        /// The header's `kid`.
        kid: String,
        /// The pinned keys' ids.
        pinned: Vec<String>,
    },
    /// The RS256 signature does not verify under the pinned key.
    #[error("the attestation token's RS256 signature does not verify under pinned key {kid}")]
    BadSignature {
        /// The key's id.
        kid: String,
    },
    /// A pinned key (JWKS) could not be read.
    #[error("signing key {kid}: {problem}")]
    SigningKey {
        /// The key's id (`?` when unknown).
        kid: String,
        /// What is wrong.
        problem: String,
    },
}

/// What [`Token::check`] requires besides the fixed claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    /// The `aud` the verifier was deployed with.
    pub audience: String,
    /// The `eat_nonce`: the key binding as 64 hex digits ([`crate::binding::binding_nonce`]).
    pub nonce: String,
    /// The image digests accepted (`sha256:<64 hex>`); empty accepts any well-formed digest
    /// (the contract's owner decides which it allows).
    pub allowed_images: Vec<String>,
}

/// The claims of a checked token that say what ran and for whom: kept in the evidence file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenSummary {
    /// The header's `kid`: which Google key signed.
    pub kid: String,
    /// `iss`.
    pub iss: String,
    /// `aud`.
    pub aud: String,
    /// `iat`, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// `nbf`, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// `exp`, Unix seconds.
    pub exp: u64,
    /// `eat_nonce`: the key binding.
    pub eat_nonce: String,
    /// `swname`.
    pub swname: String,
    /// `dbgstat`.
    pub dbgstat: String,
    /// `secboot`.
    pub secboot: bool,
    /// `hwmodel` (e.g. `GCP_INTEL_TDX`, `GCP_AMD_SEV`), when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hwmodel: Option<String>,
    /// `submods.container.image_digest`.
    pub image_digest: String,
    /// `submods.container.image_reference`, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_reference: Option<String>,
}

impl TokenSummary {
    /// The measurement the verifier returns: `keccak256(bytes(image_digest))`.
    pub fn measurement(&self) -> B256 {
        keccak256(self.image_digest.as_bytes())
    }

    /// As a JSON object keyed by claim names.
    pub fn to_json(&self) -> serde_json::Value {
        // A struct of strings, numbers and booleans always serialises.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// From [`TokenSummary::to_json`]'s form.
    pub fn from_json(value: &serde_json::Value) -> Result<TokenSummary, String> {
        serde_json::from_value(value.clone()).map_err(|err| err.to_string())
    }
}

/// An RSA public key that signs Confidential Space tokens, pinned by its `kid` (the
/// verifier contract's `setSigningKey(kid, modulus, exponent)`).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSigningKey {
    kid: String,
    modulus: Vec<u8>,
    exponent: Vec<u8>,
}

impl TokenSigningKey {
    /// The key `kid` with big-endian `modulus` and `exponent` (leading zero bytes ignored).
    pub fn new(kid: impl Into<String>, modulus: &[u8], exponent: &[u8]) -> TokenSigningKey {
        let strip = |bytes: &[u8]| {
            let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
            bytes[first..].to_vec()
        };
        TokenSigningKey {
            kid: kid.into(),
            modulus: strip(modulus),
            exponent: strip(exponent),
        }
    }

    /// The RSA keys of a JWK set (`{"keys": [{"kty": "RSA", "kid", "n", "e", …}]}`), such as
    /// Google publishes for Confidential Space at
    /// `https://www.googleapis.com/service_accounts/v1/metadata/jwk/signer@confidentialspace-sign.iam.gserviceaccount.com`.
    pub fn from_jwks(text: &str) -> Result<Vec<TokenSigningKey>, TokenError> {
        let error = |kid: &str, problem: String| TokenError::SigningKey {
            kid: kid.to_owned(),
            problem,
        };
        let set: serde_json::Value =
            serde_json::from_str(text).map_err(|err| error("?", format!("not JSON: {err}")))?;
        let keys = set["keys"]
            .as_array()
            .ok_or_else(|| error("?", "not a JWK set: no \"keys\" array".into()))?;
        let mut pinned = Vec::new();
        for key in keys {
            let kid = key["kid"]
                .as_str()
                .ok_or_else(|| error("?", "a key has no \"kid\"".into()))?;
            if key["kty"].as_str() != Some("RSA") {
                continue;
            }
            let number = |name: &str| {
                let text = key[name]
                    .as_str()
                    .ok_or_else(|| error(kid, format!("no \"{name}\"")))?;
                URL_SAFE_NO_PAD
                    .decode(text.trim_end_matches('='))
                    .map_err(|err| error(kid, format!("\"{name}\" is not base64url: {err}")))
            };
            pinned.push(TokenSigningKey::new(kid, &number("n")?, &number("e")?));
        }
        Ok(pinned)
    }

    /// The key's id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The modulus, big-endian, without leading zeros.
    pub fn modulus(&self) -> &[u8] {
        &self.modulus
    }

    /// The public exponent, big-endian, without leading zeros.
    pub fn exponent(&self) -> &[u8] {
        &self.exponent
    }
}

impl fmt::Debug for TokenSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigningKey")
            .field("kid", &self.kid)
            .field("bits", &(self.modulus.len() * 8))
            .finish_non_exhaustive()
    }
}

/// A parsed attestation token: the decoded segments as signed, and the header's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    header: Vec<u8>,
    payload: Vec<u8>,
    signature: Vec<u8>,
    kid: String,
    claims: serde_json::Map<String, serde_json::Value>,
}

impl Token {
    /// Parses `jwt` (surrounding whitespace ignored) and checks its header: `alg` RS256 and
    /// a `kid`.
    pub fn parse(jwt: &str) -> Result<Token, TokenError> {
        let format = |problem: String| TokenError::Format { problem };
        let segments: Vec<&str> = jwt.trim().split('.').collect();
        let [header, payload, signature] = segments.as_slice() else {
            return Err(format(format!(
                "{} dot-separated segments, expected 3 (header.payload.signature){}",
                segments.len(),
                excerpt(jwt)
            )));
        };
        let decode = |name: &str, segment: &str| {
            URL_SAFE_NO_PAD
                .decode(segment)
                .map_err(|err| format(format!("the {name} is not unpadded base64url: {err}")))
        };
        let (header, payload, signature) = (
            decode("header", header)?,
            decode("payload", payload)?,
            decode("signature", signature)?,
        );
        let object = |name: &str, bytes: &[u8]| match serde_json::from_slice(bytes) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            Ok(other) => Err(format(format!("the {name} is {other}, not a JSON object"))),
            Err(err) => Err(format(format!("the {name} is not JSON: {err}"))),
        };
        object("header", &header)?;
        let claims = object("payload", &payload)?;
        // Read as the contract reads them (the pattern, not a JSON parser).
        match read_claim(&header, "alg")? {
            Raw::Str(ALGORITHM) => {}
            other => {
                return Err(TokenError::Header {
                    field: "alg",
                    expected: format!("{ALGORITHM:?}"),
                    found: other.to_string(),
                });
            }
        }
        let kid = match read_claim(&header, "kid")? {
            Raw::Str(kid) if !kid.is_empty() => kid.to_owned(),
            other => {
                return Err(TokenError::Header {
                    field: "kid",
                    expected: "the id of a pinned Google signing key".into(),
                    found: other.to_string(),
                });
            }
        };
        Ok(Token {
            header,
            payload,
            signature,
            kid,
            claims,
        })
    }

    /// The header JSON exactly as signed.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// The payload JSON exactly as signed.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The RSA signature.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The header's `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// `b64url(header) "." b64url(payload)`: what RS256 signed, as the contract rebuilds it.
    pub fn signing_input(&self) -> String {
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&self.header),
            URL_SAFE_NO_PAD.encode(&self.payload)
        )
    }

    /// The verifier's evidence: `abi.encode(bytes header, bytes payload, bytes signature)`.
    pub fn evidence(&self) -> Bytes {
        (
            Bytes::copy_from_slice(&self.header),
            Bytes::copy_from_slice(&self.payload),
            Bytes::copy_from_slice(&self.signature),
        )
            .abi_encode_params()
            .into()
    }

    /// Checks the claims as the verifier will at block time `now` (Unix seconds), plus
    /// `secboot`, and returns what they say. The first claim that fails is the error.
    pub fn check(&self, expected: &Expectations, now: u64) -> Result<TokenSummary, TokenError> {
        let string = |claim, wanted: &str| -> Result<String, TokenError> {
            match self.raw(claim)? {
                Raw::Str(found) if found == wanted => Ok(found.to_owned()),
                other => Err(TokenError::Claim {
                    claim,
                    expected: format!("{wanted:?}"),
                    found: other.to_string(),
                }),
            }
        };
        let iss = string("iss", ISSUER)?;
        let aud = string("aud", &expected.audience)?;
        let exp = match self.raw("exp")? {
            Raw::Number(exp) if exp > now => exp,
            Raw::Number(exp) => return Err(TokenError::Expired { exp, now }),
            other => return Err(seconds_expected("exp", &other)),
        };
        let not_before = |claim| -> Result<Option<u64>, TokenError> {
            match self.raw(claim)? {
                Raw::Absent => Ok(None),
                Raw::Number(value) if value <= now => Ok(Some(value)),
                Raw::Number(value) => Err(TokenError::NotYetValid { claim, value, now }),
                other => Err(seconds_expected(claim, &other)),
            }
        };
        let iat = not_before("iat")?;
        let nbf = not_before("nbf")?;
        let eat_nonce = string("eat_nonce", &expected.nonce)?;
        let swname = string("swname", SOFTWARE_NAME)?;
        let dbgstat = string("dbgstat", DEBUG_STATUS)?;
        match self.raw("secboot")? {
            Raw::Bool(true) => {}
            other => {
                return Err(TokenError::Claim {
                    claim: "secboot",
                    expected: "true".into(),
                    found: other.to_string(),
                });
            }
        }
        let image_digest = match self.raw("image_digest")? {
            Raw::Str(digest) if is_image_digest(digest) => digest.to_owned(),
            other => {
                return Err(TokenError::Claim {
                    claim: "image_digest",
                    expected: "\"sha256:<64 lower-case hex>\"".into(),
                    found: other.to_string(),
                });
            }
        };
        // The contract finds the pattern anywhere (once); here it must also be the container's.
        let container = &self.claims.get("submods").and_then(|s| s.get("container"));
        let nested = container.and_then(|c| c.get("image_digest"));
        if nested.and_then(|d| d.as_str()) != Some(image_digest.as_str()) {
            return Err(TokenError::Claim {
                claim: "image_digest",
                expected: format!("{image_digest:?} under submods.container"),
                found: format!("{} there", json_text(nested)),
            });
        }
        if !expected.allowed_images.is_empty() && !expected.allowed_images.contains(&image_digest) {
            return Err(TokenError::ImageNotAllowed {
                digest: image_digest,
                allowed: expected.allowed_images.clone(),
            });
        }
        // The contract also requires `project_id` (submods.gce), exactly once, on its allow-list;
        // only the list is unknown here.
        match self.raw("project_id")? {
            Raw::Str(_) => {}
            other => {
                return Err(TokenError::Claim {
                    claim: "project_id",
                    expected: "a GCP project id".into(),
                    found: other.to_string(),
                });
            }
        }
        let text =
            |value: Option<&serde_json::Value>| value.and_then(|v| v.as_str()).map(str::to_owned);
        Ok(TokenSummary {
            kid: self.kid.clone(),
            iss,
            aud,
            iat,
            nbf,
            exp,
            eat_nonce,
            swname,
            dbgstat,
            secboot: true,
            hwmodel: text(self.claims.get("hwmodel")),
            image_digest,
            image_reference: text(container.and_then(|c| c.get("image_reference"))),
        })
    }

    /// Verifies the RS256 signature (PKCS#1 v1.5, SHA-256) over [`Token::signing_input`]
    /// under the pinned key named by the header's `kid`.
    pub fn verify_signature(&self, pinned: &[TokenSigningKey]) -> Result<(), TokenError> {
        let key = pinned
            .iter()
            .find(|key| key.kid == self.kid)
            .ok_or_else(|| TokenError::UnknownKey {
                kid: self.kid.clone(),
                pinned: pinned.iter().map(|key| key.kid.clone()).collect(),
            })?;
        ring::signature::RsaPublicKeyComponents {
            n: &key.modulus,
            e: &key.exponent,
        }
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            self.signing_input().as_bytes(),
            &self.signature,
        )
        .map_err(|_| TokenError::BadSignature {
            kid: self.kid.clone(),
        })
    }

    /// The payload's claim `claim`, read as the contract reads it ([`read_claim`]).
    fn raw(&self, claim: &'static str) -> Result<Raw<'_>, TokenError> {
        read_claim(&self.payload, claim)
    }
}

/// Claim `claim` of the JSON `document`, read as the contract's `JsonClaims` reads it: the
/// pattern `"claim":` must occur at most once (anywhere, at any depth), and the value starts
/// after it and any whitespace. Strings are compared undecoded (one with a backslash is
/// refused), numbers are unsigned decimal integers without a leading zero, and every value
/// must end at a delimiter (`,` `}` `]` or whitespace).
fn read_claim<'a>(document: &'a [u8], claim: &'static str) -> Result<Raw<'a>, TokenError> {
    let pattern = format!("\"{claim}\":");
    let pattern = pattern.as_bytes();
    let mut at = document
        .windows(pattern.len())
        .enumerate()
        .filter(|(_, window)| *window == pattern)
        .map(|(i, _)| i);
    let Some(first) = at.next() else {
        return Ok(Raw::Absent);
    };
    let others = at.count();
    if others > 0 {
        return Err(TokenError::ClaimPattern {
            claim,
            count: others + 1,
        });
    }
    let mut pos = first + pattern.len();
    while document.get(pos).is_some_and(|b| is_json_whitespace(*b)) {
        pos += 1;
    }
    Ok(Raw::at(document, pos))
}

/// A claim's value as the contract sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Raw<'a> {
    /// The pattern does not occur.
    Absent,
    /// A string: the bytes between the quotes (no escapes in them).
    Str(&'a str),
    /// An unsigned decimal integer.
    Number(u64),
    /// `true` or `false`.
    Bool(bool),
    /// Something the contract does not read as a value: what it is, and the value's start.
    Unreadable(&'static str, String),
}

impl<'a> Raw<'a> {
    /// The value starting at `pos` of `document`.
    fn at(document: &'a [u8], pos: usize) -> Raw<'a> {
        let rest = document.get(pos..).unwrap_or_default();
        let unreadable = |what| Raw::Unreadable(what, excerpt_bytes(rest));
        let ends_value = |i: usize| {
            document
                .get(pos + i)
                .is_some_and(|b| matches!(b, b',' | b'}' | b']') || is_json_whitespace(*b))
        };
        match rest.first() {
            Some(b'"') => match rest[1..].iter().position(|b| matches!(b, b'"' | b'\\')) {
                None => unreadable("an unterminated string"),
                Some(end) if rest[1 + end] == b'\\' => {
                    unreadable("a string with an escape (the verifier compares strings undecoded)")
                }
                Some(end) if !ends_value(end + 2) => unreadable("a string followed by more"),
                Some(end) => match std::str::from_utf8(&rest[1..1 + end]) {
                    Ok(text) => Raw::Str(text),
                    Err(_) => unreadable("a string that is not UTF-8"),
                },
            },
            Some(b'0'..=b'9') => {
                let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                if (rest[0] == b'0' && digits > 1) || !ends_value(digits) {
                    return unreadable("not an unsigned decimal integer");
                }
                std::str::from_utf8(&rest[..digits])
                    .ok()
                    .and_then(|text| text.parse().ok())
                    .map_or_else(|| unreadable("a number beyond 64 bits"), Raw::Number)
            }
            Some(b't') if rest.starts_with(b"true") && ends_value(4) => Raw::Bool(true),
            Some(b'f') if rest.starts_with(b"false") && ends_value(5) => Raw::Bool(false),
            Some(b'-') => unreadable("not an unsigned decimal integer"),
            Some(b'[') => unreadable("an array, not one value"),
            Some(b'{') => unreadable("an object, not one value"),
            _ => unreadable("not a JSON value"),
        }
    }
}

impl fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Raw::Absent => f.write_str("absent"),
            Raw::Str(text) => write!(f, "{text:?}"),
            Raw::Number(n) => write!(f, "{n}"),
            Raw::Bool(b) => write!(f, "{b}"),
            Raw::Unreadable(what, start) => write!(f, "{what}: {start}"),
        }
    }
}

fn is_json_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// The first characters of `bytes`, for a message.
fn excerpt_bytes(bytes: &[u8]) -> String {
    let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(40)]);
    let more = if bytes.len() > 40 { "…" } else { "" };
    format!("{shown}{more}")
}

fn seconds_expected(claim: &'static str, found: &Raw<'_>) -> TokenError {
    TokenError::Claim {
        claim,
        expected: "Unix seconds (an unsigned integer)".into(),
        found: found.to_string(),
    }
}

/// `sha256:` and 64 lower-case hex digits.
fn is_image_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

fn json_text(value: Option<&serde_json::Value>) -> String {
    value.map_or_else(|| "absent".into(), |value| value.to_string())
}

/// The start of a text that is not a token, for an error message.
fn excerpt(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return ": the text is empty".into();
    }
    let shown: String = text.chars().take(60).collect();
    let more = if text.chars().count() > 60 { "…" } else { "" };
    format!(": {shown:?}{more}")
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    /// The recorded token shape and test RSA key of contracts/test/fixtures/confidential_space.
    pub(crate) struct Fixture {
        pub(crate) shape: serde_json::Value,
        key: ring::signature::RsaKeyPair,
    }

    pub(crate) const NOW: u64 = 1_800_000_000;
    pub(crate) const NONCE: &str =
        "256ff10bd888604adc4c007df243e36a34a0ad0483174c29996376de8f8a056d";

    impl Fixture {
        pub(crate) fn load() -> Fixture {
            let dir = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../contracts/test/fixtures/confidential_space"
            );
            let shape: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(format!("{dir}/token_shape.json")).unwrap(),
            )
            .unwrap();
            let pem = std::fs::read_to_string(format!("{dir}/test_signing_key.pem")).unwrap();
            let body: String = pem
                .lines()
                .filter(|line| !line.starts_with("-----"))
                .collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap();
            let key = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
            Fixture { shape, key }
        }

        pub(crate) fn kid(&self) -> String {
            self.shape["header"]["kid"].as_str().unwrap().to_owned()
        }

        pub(crate) fn pinned(&self) -> TokenSigningKey {
            let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(self.key.public());
            TokenSigningKey::new(self.kid(), &public.n, &public.e)
        }

        /// The recorded claims with `nonce` and times around `now` filled in.
        pub(crate) fn claims(&self, nonce: &str, now: u64) -> serde_json::Value {
            let mut claims = self.shape["claims"].clone();
            claims["eat_nonce"] = nonce.into();
            claims["iat"] = now.into();
            claims["nbf"] = now.into();
            claims["exp"] = (now + 3600).into();
            claims
        }

        pub(crate) fn expectations(&self, nonce: &str) -> Expectations {
            Expectations {
                audience: self.shape["claims"]["aud"].as_str().unwrap().to_owned(),
                nonce: nonce.to_owned(),
                allowed_images: vec![],
            }
        }

        /// A JWT of `header` and `payload` (bytes as given), signed with the test key.
        pub(crate) fn sign_raw(&self, header: &[u8], payload: &[u8]) -> String {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(payload)
            );
            let mut signature = vec![0; self.key.public().modulus_len()];
            self.key
                .sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &ring::rand::SystemRandom::new(),
                    input.as_bytes(),
                    &mut signature,
                )
                .unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
        }

        /// A JWT with the recorded header and `claims`, compact JSON as Google's.
        pub(crate) fn sign(&self, claims: &serde_json::Value) -> String {
            self.sign_raw(
                self.shape["header"].to_string().as_bytes(),
                claims.to_string().as_bytes(),
            )
        }

        pub(crate) fn token(&self, nonce: &str, now: u64) -> String {
            self.sign(&self.claims(nonce, now))
        }
    }

    #[test]
    fn recorded_shape_signed_with_the_test_key_checks_out() {
        let fixture = Fixture::load();
        let token = Token::parse(&fixture.token(NONCE, NOW)).unwrap();
        let summary = token.check(&fixture.expectations(NONCE), NOW).unwrap();
        token.verify_signature(&[fixture.pinned()]).unwrap();
        assert_eq!(token.kid(), "walproof-test-rsa-1");
        assert_eq!(summary.eat_nonce, NONCE);
        assert_eq!(summary.iss, ISSUER);
        assert_eq!(summary.aud, "walproof");
        assert_eq!(summary.exp, NOW + 3600);
        assert_eq!((summary.iat, summary.nbf), (Some(NOW), Some(NOW)));
        assert_eq!(summary.hwmodel.as_deref(), Some("GCP_INTEL_TDX"));
        let digest = "sha256:3b1f5e0c7a2d9e4f6a8b0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f7";
        assert_eq!(summary.image_digest, digest);
        assert_eq!(summary.measurement(), keccak256(digest));
        assert_eq!(
            TokenSummary::from_json(&summary.to_json()).unwrap(),
            summary
        );
    }

    #[test]
    fn evidence_is_the_decoded_segments_abi_encoded() {
        let fixture = Fixture::load();
        let jwt = fixture.token(NONCE, NOW);
        let token = Token::parse(&jwt).unwrap();
        let (header, payload, signature) =
            <(Bytes, Bytes, Bytes)>::abi_decode_params(&token.evidence()).unwrap();
        assert_eq!(
            header.as_ref(),
            fixture.shape["header"].to_string().as_bytes()
        );
        assert_eq!(payload.as_ref(), token.payload());
        assert_eq!(signature.len(), 256);
        // What the contract rebuilds and verifies is the token's own signing input.
        assert_eq!(
            format!("{}.", token.signing_input()),
            jwt[..jwt.rfind('.').unwrap() + 1]
        );
    }

    /// One claim changed from the good token, and the words the error must contain.
    fn rejected(change: impl FnOnce(&mut serde_json::Value), words: &[&str]) {
        let fixture = Fixture::load();
        let mut claims = fixture.claims(NONCE, NOW);
        change(&mut claims);
        let token = Token::parse(&fixture.sign(&claims)).unwrap();
        let err = token
            .check(&fixture.expectations(NONCE), NOW)
            .unwrap_err()
            .to_string();
        for word in words {
            assert!(err.contains(word), "{err:?} lacks {word:?}");
        }
    }

    #[test]
    fn each_claim_the_verifier_checks_is_refused_with_its_name_and_values() {
        let other = "0".repeat(64);
        rejected(
            |c| c["iss"] = "https://accounts.google.com".into(),
            &["iss", "accounts.google.com", ISSUER],
        );
        rejected(
            |c| c["aud"] = "someone-else".into(),
            &["aud", "someone-else", "walproof"],
        );
        rejected(
            |c| c["eat_nonce"] = other.clone().into(),
            &["eat_nonce", &other, NONCE],
        );
        rejected(
            |c| c["eat_nonce"] = serde_json::json!([NONCE, other]),
            &["eat_nonce", "an array"],
        );
        rejected(
            |c| c["swname"] = "GCE".into(),
            &["swname", "GCE", SOFTWARE_NAME],
        );
        rejected(
            |c| c["dbgstat"] = "enabled".into(),
            &["dbgstat", "enabled", DEBUG_STATUS],
        );
        rejected(
            |c| c["secboot"] = false.into(),
            &["secboot", "false", "true"],
        );
        rejected(
            |c| c["submods"]["container"]["image_digest"] = "latest".into(),
            &["image_digest", "latest", "sha256:"],
        );
        rejected(
            |c| {
                c["submods"]["container"]
                    .as_object_mut()
                    .unwrap()
                    .remove("image_digest");
            },
            &["image_digest", "absent"],
        );
        rejected(
            |c| {
                c["submods"]["gce"]
                    .as_object_mut()
                    .unwrap()
                    .remove("project_id");
            },
            &["project_id", "absent"],
        );
        rejected(
            |c| c["exp"] = NOW.into(),
            &["expired", &format!("exp {NOW}"), &format!("now ({NOW})")],
        );
        rejected(
            |c| c["exp"] = "soon".into(),
            &["exp", "soon", "Unix seconds"],
        );
        rejected(
            |c| c["iat"] = (NOW + 5).into(),
            &["iat", &(NOW + 5).to_string()],
        );
        rejected(
            |c| c["nbf"] = (NOW + 5).into(),
            &["nbf", &(NOW + 5).to_string()],
        );
        rejected(
            |c| {
                c.as_object_mut().unwrap().remove("aud");
            },
            &["aud", "absent"],
        );
    }

    #[test]
    fn iat_and_nbf_may_be_absent() {
        let fixture = Fixture::load();
        let mut claims = fixture.claims(NONCE, NOW);
        let object = claims.as_object_mut().unwrap();
        object.remove("iat");
        object.remove("nbf");
        let token = Token::parse(&fixture.sign(&claims)).unwrap();
        let summary = token.check(&fixture.expectations(NONCE), NOW).unwrap();
        assert_eq!((summary.iat, summary.nbf), (None, None));
    }

    #[test]
    fn a_claim_pattern_that_occurs_twice_is_refused_as_the_verifier_would() {
        let fixture = Fixture::load();
        // A second "aud": key nested elsewhere: valid JSON, ambiguous for the contract.
        let mut claims = fixture.claims(NONCE, NOW);
        claims["submods"]["gce"]["aud"] = "walproof".into();
        let token = Token::parse(&fixture.sign(&claims)).unwrap();
        let err = token.check(&fixture.expectations(NONCE), NOW).unwrap_err();
        assert_eq!(
            err,
            TokenError::ClaimPattern {
                claim: "aud",
                count: 2
            }
        );
        assert!(err.to_string().contains("\"aud\": occurs 2 times"), "{err}");
    }

    #[test]
    fn whitespace_after_a_colon_is_read_past_as_the_verifier_does() {
        let fixture = Fixture::load();
        let payload = serde_json::to_string_pretty(&fixture.claims(NONCE, NOW)).unwrap();
        let jwt = fixture.sign_raw(
            fixture.shape["header"].to_string().as_bytes(),
            payload.as_bytes(),
        );
        let summary = Token::parse(&jwt)
            .unwrap()
            .check(&fixture.expectations(NONCE), NOW)
            .unwrap();
        assert_eq!(summary.eat_nonce, NONCE);
    }

    #[test]
    fn whitespace_before_a_colon_hides_the_claim_as_it_does_from_the_verifier() {
        let fixture = Fixture::load();
        let payload = fixture
            .claims(NONCE, NOW)
            .to_string()
            .replace("\"iss\":", "\"iss\" :");
        let jwt = fixture.sign_raw(
            fixture.shape["header"].to_string().as_bytes(),
            payload.as_bytes(),
        );
        let err = Token::parse(&jwt)
            .unwrap()
            .check(&fixture.expectations(NONCE), NOW)
            .unwrap_err();
        assert!(
            matches!(&err, TokenError::Claim { claim: "iss", found, .. } if found == "absent"),
            "{err}"
        );
    }

    #[test]
    fn values_are_read_strictly_as_the_verifier_reads_them() {
        let fixture = Fixture::load();
        let good = fixture.claims(NONCE, NOW).to_string();
        let exp = format!("\"exp\":{}", NOW + 3600);
        for (from, to, words) in [
            (
                "\"swname\":\"CONFIDENTIAL_SPACE\"",
                "\"swname\":\"CONFIDENTIAL\\u005fSPACE\"".to_owned(),
                vec!["swname", "escape"],
            ),
            (
                exp.as_str(),
                "\"exp\":-1".to_owned(),
                vec!["exp", "not an unsigned decimal integer"],
            ),
            (
                exp.as_str(),
                format!("\"exp\":{}.5", NOW + 3600),
                vec!["exp", "not an unsigned decimal integer"],
            ),
            (
                "\"secboot\":true",
                "\"secboot\":\"true\"".to_owned(),
                vec!["secboot", "\"true\""],
            ),
        ] {
            assert!(good.contains(from), "{from}");
            let payload = good.replace(from, &to);
            let jwt = fixture.sign_raw(
                fixture.shape["header"].to_string().as_bytes(),
                payload.as_bytes(),
            );
            let err = Token::parse(&jwt)
                .unwrap()
                .check(&fixture.expectations(NONCE), NOW)
                .unwrap_err()
                .to_string();
            for word in words {
                assert!(err.contains(word), "{to}: {err:?} lacks {word:?}");
            }
        }
    }

    #[test]
    fn an_image_outside_the_allowed_list_is_refused() {
        let fixture = Fixture::load();
        let token = Token::parse(&fixture.token(NONCE, NOW)).unwrap();
        let mut expectations = fixture.expectations(NONCE);
        expectations.allowed_images = vec![format!("sha256:{}", "a".repeat(64))];
        let err = token.check(&expectations, NOW).unwrap_err();
        assert!(matches!(err, TokenError::ImageNotAllowed { .. }), "{err}");
        assert!(err.to_string().contains("sha256:3b1f5e0c"), "{err}");
        expectations
            .allowed_images
            .push("sha256:3b1f5e0c7a2d9e4f6a8b0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f7".into());
        token.check(&expectations, NOW).unwrap();
    }

    #[test]
    fn header_must_say_rs256_and_name_a_key() {
        let fixture = Fixture::load();
        let claims = fixture.claims(NONCE, NOW).to_string();
        for (header, words) in [
            (
                r#"{"alg":"HS256","kid":"k","typ":"JWT"}"#,
                ["alg", "\"HS256\"", "RS256"],
            ),
            (r#"{"alg":"none","kid":"k"}"#, ["alg", "\"none\"", "RS256"]),
            (
                r#"{"alg":"RS256","typ":"JWT"}"#,
                ["kid", "absent", "pinned"],
            ),
            (r#"{"alg":"RS256","kid":""}"#, ["kid", "\"\"", "pinned"]),
        ] {
            let err = Token::parse(&fixture.sign_raw(header.as_bytes(), claims.as_bytes()))
                .unwrap_err()
                .to_string();
            for word in words {
                assert!(err.contains(word), "{header}: {err:?} lacks {word:?}");
            }
        }
    }

    #[test]
    fn signature_must_verify_under_the_pinned_key_of_its_kid() {
        let fixture = Fixture::load();
        let jwt = fixture.token(NONCE, NOW);
        let token = Token::parse(&jwt).unwrap();
        let pinned = fixture.pinned();
        let err = token
            .verify_signature(&[TokenSigningKey::new(
                "other",
                pinned.modulus(),
                pinned.exponent(),
            )])
            .unwrap_err();
        assert!(err.to_string().contains("walproof-test-rsa-1"), "{err}");
        assert!(err.to_string().contains("other"), "{err}");
        // The payload changed after signing (the nonce of another key): the signature fails.
        let (signed, signature) = jwt.rsplit_once('.').unwrap();
        let (header, _) = signed.split_once('.').unwrap();
        let forged_claims = fixture.claims(&"1".repeat(64), NOW).to_string();
        let forged = format!(
            "{header}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(forged_claims)
        );
        let err = Token::parse(&forged)
            .unwrap()
            .verify_signature(&[pinned])
            .unwrap_err();
        assert_eq!(
            err,
            TokenError::BadSignature {
                kid: "walproof-test-rsa-1".into()
            }
        );
    }

    #[test]
    fn pinned_keys_read_from_a_jwk_set() {
        let fixture = Fixture::load();
        let pinned = fixture.pinned();
        let jwks = serde_json::json!({"keys": [
            {"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": pinned.kid(),
             "n": URL_SAFE_NO_PAD.encode(pinned.modulus()), "e": URL_SAFE_NO_PAD.encode(pinned.exponent())},
        ]});
        let keys = TokenSigningKey::from_jwks(&jwks.to_string()).unwrap();
        assert_eq!(keys, vec![pinned]);
        let token = Token::parse(&fixture.token(NONCE, NOW)).unwrap();
        token.verify_signature(&keys).unwrap();
        assert!(format!("{:?}", keys[0]).contains("bits: 2048"));
        let err =
            TokenSigningKey::from_jwks(r#"{"keys":[{"kty":"RSA","kid":"k","n":"!!","e":"AQAB"}]}"#)
                .unwrap_err();
        assert!(
            err.to_string().contains("k") && err.to_string().contains("\"n\""),
            "{err}"
        );
    }

    #[test]
    fn text_that_is_not_a_jwt_is_named() {
        for (text, words) in [
            ("", vec!["1 dot-separated segments", "empty"]),
            (
                "<html>502 Bad Gateway</html>",
                vec!["1 dot-separated", "502 Bad Gateway"],
            ),
            ("a.b", vec!["2 dot-separated"]),
            ("a.b.c.d", vec!["4 dot-separated"]),
            ("e30=.e30.AA", vec!["header", "base64url"]),
            ("W10.e30.AA", vec!["header is []", "not a JSON object"]),
            ("e30.bm90IGpzb24.AA", vec!["payload", "not JSON"]),
        ] {
            let err = Token::parse(text).unwrap_err().to_string();
            for word in &words {
                assert!(err.contains(word), "{text:?}: {err:?} lacks {word:?}");
            }
        }
    }

    /// The cases `contracts/test/fixtures/confidential_space/tokens.json` records for the
    /// contract's tests (when present: it belongs to the contracts, this crate does not
    /// depend on it), each refused here for the reason the contract gives, or accepted.
    #[test]
    fn contract_token_cases_get_the_same_verdict_here() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../contracts/test/fixtures/confidential_space/tokens.json"
        );
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        let file: serde_json::Value = serde_json::from_str(&text).unwrap();
        let hex_bytes = |v: &serde_json::Value| {
            hex::decode(v.as_str().unwrap().trim_start_matches("0x")).unwrap()
        };
        let pinned = TokenSigningKey::new(
            file["signing_key"]["kid"].as_str().unwrap(),
            &hex_bytes(&file["signing_key"]["modulus"]),
            &hex_bytes(&file["signing_key"]["exponent"]),
        );
        let expected = Expectations {
            audience: file["audience"].as_str().unwrap().to_owned(),
            nonce: file["nonce"].as_str().unwrap().to_owned(),
            allowed_images: vec![file["image_digest"].as_str().unwrap().to_owned()],
        };
        let now = file["now"].as_u64().unwrap();
        let cases = file["cases"].as_object().unwrap();
        assert!(cases.len() > 10, "{} cases", cases.len());
        for (name, case) in cases {
            // The contract's order: header, signature, then the claims.
            let verdict = Token::parse(case["token"].as_str().unwrap()).and_then(|token| {
                token.verify_signature(std::slice::from_ref(&pinned))?;
                token.check(&expected, now)
            });
            let expect = case["expect"].as_str().unwrap();
            let same = match (&verdict, expect) {
                (Ok(_), "ok") => true,
                (Err(TokenError::Expired { .. }), "TokenExpired") => true,
                (Err(TokenError::NotYetValid { .. }), "TokenNotYetValid") => true,
                (Err(TokenError::Claim { claim, .. }), "ClaimMismatch") => *claim != "eat_nonce",
                (
                    Err(TokenError::Claim {
                        claim: "eat_nonce", ..
                    }),
                    "NonceMismatch",
                ) => true,
                (Err(TokenError::Claim { found, .. }), "ClaimNotAString") => {
                    found.contains("array")
                }
                (Err(TokenError::Claim { found, .. }), "ClaimEscaped") => found.contains("escape"),
                (Err(TokenError::ClaimPattern { .. }), "ClaimRepeated") => true,
                (Err(TokenError::ImageNotAllowed { .. }), "ImageNotAllowed") => true,
                // The project allow-list is the contract's alone.
                (Ok(_), "ProjectNotAllowed") => true,
                (Err(TokenError::UnknownKey { .. }), "UnknownSigningKey") => true,
                (Err(TokenError::Header { field: "alg", .. }), "UnsupportedAlgorithm") => true,
                (Err(TokenError::BadSignature { .. }), "BadRsaSignature") => true,
                _ => false,
            };
            assert!(
                same,
                "case {name}: the contract says {expect}, here {verdict:?}"
            );
        }
    }
}
