//! The Confidential Space provider: attests a [`WorkloadKey`] with a launcher token whose
//! nonce is the key binding.
//!
//! Inside a Confidential Space VM, the workload generates its key in memory
//! ([`WorkloadKey::generate`]), computes the binding of the key's address to the registry
//! and chain ([`crate::binding::key_binding`]), and asks the launcher for an OIDC token with
//! that binding as its only nonce. Google signs the token (RS256) over what the VM measured:
//! the image digest, debug off, secure boot. `ConfidentialSpaceVerifier` checks the token's
//! signature against pinned Google keys and its claims, and returns
//! `keccak256(image digest)` as the measurement; [`ConfidentialSpace::attest`] checks the same
//! claims before anything is sent, so a wrong audience or image shows here with its values
//! rather than as a revert.
//!
//! The key exists only in the process that generated it: the evidence is worth something
//! only while that process keeps running and signs with it.

use alloy::primitives::Address;

use super::launcher::Launcher;
use super::token::{Expectations, Token, TokenSigningKey};
use crate::binding::binding_nonce;
use crate::evidence::{
    AttestError, Evidence, EvidenceDetails, KeyAttestor, Provider, Registration, unix_now,
};
use crate::signer::{AttestationSigner, WorkloadKey};

/// Attests workload keys through the Confidential Space launcher.
#[derive(Debug, Clone)]
pub struct ConfidentialSpace {
    launcher: Launcher,
    audience: String,
    pinned: Vec<TokenSigningKey>,
    allowed_images: Vec<String>,
}

impl ConfidentialSpace {
    /// Tokens for `audience` (what the verifier contract was deployed with) from `launcher`.
    pub fn new(launcher: Launcher, audience: impl Into<String>) -> ConfidentialSpace {
        ConfidentialSpace {
            launcher,
            audience: audience.into(),
            pinned: Vec::new(),
            allowed_images: Vec::new(),
        }
    }

    /// Also verifies each token's RS256 signature under these keys (the ones the verifier
    /// contract pins). Without pinned keys the signature is left to the contract.
    pub fn pin_signing_keys(mut self, keys: Vec<TokenSigningKey>) -> ConfidentialSpace {
        self.pinned = keys;
        self
    }

    /// Refuses tokens of images other than these digests (`sha256:<64 hex>`); by default
    /// any image, as the contract's allow list decides.
    pub fn allow_images(mut self, digests: Vec<String>) -> ConfidentialSpace {
        self.allowed_images = digests;
        self
    }

    /// The launcher asked.
    pub fn launcher(&self) -> &Launcher {
        &self.launcher
    }

    async fn attest_address(
        &self,
        key: Address,
        registration: &Registration,
    ) -> Result<Evidence, AttestError> {
        let nonce = binding_nonce(&registration.binding(key));
        let jwt = self
            .launcher
            .token(&self.audience, std::slice::from_ref(&nonce))
            .await?;
        let token = Token::parse(&jwt)?;
        let expected = Expectations {
            audience: self.audience.clone(),
            nonce,
            allowed_images: self.allowed_images.clone(),
        };
        // The contract's order: the signature, then the claims.
        if self.pinned.is_empty() {
            tracing::info!(kid = %token.kid(), "no pinned signing keys: the token's signature is left to the verifier contract");
        } else {
            token.verify_signature(&self.pinned)?;
        }
        let summary = token.check(&expected, unix_now()?)?;
        tracing::info!(
            key = %key,
            image_digest = %summary.image_digest,
            exp = summary.exp,
            "the launcher attested the workload key"
        );
        Ok(Evidence {
            provider: Provider::ConfidentialSpace,
            key,
            registration: *registration,
            measurement: summary.measurement(),
            bytes: token.evidence(),
            details: EvidenceDetails::ConfidentialSpace(Box::new(summary)),
        })
    }
}

impl KeyAttestor for ConfidentialSpace {
    /// Only keys generated in this workload: a token about any other key would prove nothing
    /// about who holds it.
    type Key = WorkloadKey;

    fn provider(&self) -> Provider {
        Provider::ConfidentialSpace
    }

    async fn attest(
        &self,
        key: &WorkloadKey,
        registration: &Registration,
    ) -> Result<Evidence, AttestError> {
        self.attest_address(key.address(), registration).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};

    use alloy::primitives::Bytes;
    use alloy::sol_types::SolValue;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixListener;

    use super::*;
    use crate::confidential_space::LauncherError;
    use crate::confidential_space::TokenError;
    use crate::confidential_space::token::tests::Fixture;

    /// How the fake launcher answers.
    #[derive(Debug, Clone, Copy)]
    enum Behaviour {
        /// A token over the nonce it was sent, signed with the test key (chunked, as Go
        /// sends bodies past 2 KB).
        Token,
        /// HTTP 400 with the launcher's error text.
        Refuse,
        /// Bytes that are not HTTP.
        Garbage,
        /// HTTP 200 with a body that is not a token.
        NotAToken,
        /// A token over another nonce.
        WrongNonce,
        /// Accepts the connection and never answers.
        Silent,
    }

    /// A fake launcher on a unix socket in a temporary directory of its own.
    struct FakeLauncher {
        dir: PathBuf,
        socket: PathBuf,
        requests: Arc<Mutex<Vec<serde_json::Value>>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl FakeLauncher {
        fn start(name: &str, behaviour: Behaviour) -> FakeLauncher {
            let dir = std::env::temp_dir()
                .join(format!("walproof-launcher-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let socket = dir.join("teeserver.sock");
            let listener = UnixListener::bind(&socket).unwrap();
            let requests = Arc::new(Mutex::new(Vec::new()));
            let seen = requests.clone();
            let fixture = Arc::new(Fixture::load());
            let task = tokio::spawn(async move {
                loop {
                    let (mut stream, _) = listener.accept().await.unwrap();
                    let request = read_request(&mut stream).await;
                    seen.lock().unwrap().push(request.clone());
                    let nonce = request["nonces"][0].as_str().unwrap_or_default().to_owned();
                    let now = unix_now().unwrap();
                    let response: Vec<u8> = match behaviour {
                        Behaviour::Token => {
                            let token = fixture.token(&nonce, now);
                            let (a, b) = token.split_at(token.len() / 2);
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                                a.len(),
                                b.len()
                            )
                            .into_bytes()
                        }
                        Behaviour::Refuse => {
                            let body = "failed to parse POST body as TokenOptions: json: unknown field \"nonce\"";
                            format!(
                                "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\n\r\n{body}",
                                body.len()
                            )
                            .into_bytes()
                        }
                        Behaviour::Garbage => b"\x00\x01 not http at all".to_vec(),
                        Behaviour::NotAToken => {
                            b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n<html>hi</html>\n"
                                .to_vec()
                        }
                        Behaviour::WrongNonce => {
                            let token = fixture.token(&"e".repeat(64), now);
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{token}",
                                token.len()
                            )
                            .into_bytes()
                        }
                        Behaviour::Silent => {
                            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                            Vec::new()
                        }
                    };
                    let _ = stream.write_all(&response).await;
                    let _ = stream.shutdown().await;
                }
            });
            FakeLauncher {
                dir,
                socket,
                requests,
                task,
            }
        }

        fn requests(&self) -> Vec<serde_json::Value> {
            self.requests.lock().unwrap().clone()
        }
    }

    impl Drop for FakeLauncher {
        fn drop(&mut self) {
            self.task.abort();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// Reads one request's headers and its Content-Length body; returns the body as JSON,
    /// with the request line and content type kept under "_line" and "_type".
    async fn read_request(stream: &mut tokio::net::UnixStream) -> serde_json::Value {
        let mut bytes = Vec::new();
        let mut buffer = [0u8; 4096];
        let (head_end, length) = loop {
            let n = stream.read(&mut buffer).await.unwrap();
            assert!(n > 0, "the client closed before a whole request");
            bytes.extend_from_slice(&buffer[..n]);
            if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&bytes[..end]).to_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse::<usize>().unwrap())
                    .unwrap();
                break (end + 4, length);
            }
        };
        while bytes.len() < head_end + length {
            let n = stream.read(&mut buffer).await.unwrap();
            assert!(n > 0);
            bytes.extend_from_slice(&buffer[..n]);
        }
        let head = String::from_utf8_lossy(&bytes[..head_end]).to_string();
        let mut body: serde_json::Value = serde_json::from_slice(&bytes[head_end..]).unwrap();
        body["_line"] = head.lines().next().unwrap().into();
        body["_type"] = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Type: "))
            .unwrap_or_default()
            .into();
        body
    }

    fn registration() -> Registration {
        Registration {
            chain_id: 31337,
            registry: "0x5FbDB2315678afecb367f032d93F642f64180aa3"
                .parse()
                .unwrap(),
            verifier: "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
                .parse()
                .unwrap(),
        }
    }

    fn provider(launcher: &FakeLauncher) -> ConfidentialSpace {
        ConfidentialSpace::new(Launcher::new(&launcher.socket), "walproof")
            .pin_signing_keys(vec![Fixture::load().pinned()])
    }

    #[tokio::test]
    async fn workload_key_is_attested_end_to_end_through_the_launcher_socket() {
        let launcher = FakeLauncher::start("good", Behaviour::Token);
        let key = WorkloadKey::generate().unwrap();
        let evidence = provider(&launcher)
            .attest(&key, &registration())
            .await
            .unwrap();

        let requests = launcher.requests();
        assert_eq!(requests.len(), 1);
        let nonce = binding_nonce(&registration().binding(key.address()));
        assert_eq!(requests[0]["_line"], "POST /v1/token HTTP/1.1");
        assert_eq!(requests[0]["_type"], "application/json");
        assert_eq!(requests[0]["audience"], "walproof");
        assert_eq!(requests[0]["token_type"], "OIDC");
        assert_eq!(requests[0]["nonces"], serde_json::json!([nonce]));

        assert_eq!(evidence.provider, Provider::ConfidentialSpace);
        assert_eq!(evidence.key, key.address());
        assert_eq!(evidence.registration, registration());
        let EvidenceDetails::ConfidentialSpace(summary) = &evidence.details else {
            panic!("{:?}", evidence.details)
        };
        assert_eq!(summary.eat_nonce, nonce);
        assert_eq!(evidence.measurement, summary.measurement());
        let (header, payload, signature) =
            <(Bytes, Bytes, Bytes)>::abi_decode_params(&evidence.bytes).unwrap();
        assert!(header.starts_with(b"{\"alg\":\"RS256\""));
        assert!(String::from_utf8_lossy(&payload).contains(&nonce));
        assert_eq!(signature.len(), 256);
        // The evidence file keeps the token's summary.
        let json = evidence.to_json();
        assert_eq!(json["token"]["eat_nonce"], nonce.as_str());
        assert_eq!(Evidence::from_json(&json.to_string()).unwrap(), evidence);
    }

    async fn attest_error(name: &str, behaviour: Behaviour) -> AttestError {
        let launcher = FakeLauncher::start(name, behaviour);
        let key = WorkloadKey::generate().unwrap();
        let provider = ConfidentialSpace::new(
            Launcher::new(&launcher.socket).with_timeout(std::time::Duration::from_millis(500)),
            "walproof",
        );
        provider.attest(&key, &registration()).await.unwrap_err()
    }

    #[tokio::test]
    async fn a_launcher_error_status_is_reported_with_its_body() {
        let err = attest_error("refuse", Behaviour::Refuse).await;
        assert!(
            matches!(
                &err,
                AttestError::Launcher(LauncherError::Status { status: 400, .. })
            ),
            "{err}"
        );
        assert!(err.to_string().contains("HTTP 400"), "{err}");
        assert!(err.to_string().contains("unknown field"), "{err}");
        assert!(!err.is_retryable());
    }

    #[tokio::test]
    async fn garbage_from_the_launcher_is_reported_as_such() {
        let err = attest_error("garbage", Behaviour::Garbage).await;
        assert!(
            matches!(&err, AttestError::Launcher(LauncherError::Malformed { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("not an HTTP response"), "{err}");
        let err = attest_error("html", Behaviour::NotAToken).await;
        assert!(
            matches!(&err, AttestError::Token(TokenError::Format { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("<html>hi</html>"), "{err}");
    }

    #[tokio::test]
    async fn a_token_over_another_nonce_is_refused_naming_both_nonces() {
        let err = attest_error("nonce", Behaviour::WrongNonce).await;
        let AttestError::Token(TokenError::Claim {
            claim,
            expected,
            found,
        }) = &err
        else {
            panic!("{err}")
        };
        assert_eq!(*claim, "eat_nonce");
        assert_eq!(found, &format!("{:?}", "e".repeat(64)));
        assert_eq!(expected.len(), 66, "{expected}");
        assert!(!err.is_retryable());
    }

    #[tokio::test]
    async fn a_silent_launcher_times_out() {
        let err = attest_error("silent", Behaviour::Silent).await;
        assert!(
            matches!(&err, AttestError::Launcher(LauncherError::Timeout { .. })),
            "{err}"
        );
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn a_token_signed_by_an_unpinned_key_is_refused() {
        let launcher = FakeLauncher::start("unpinned", Behaviour::Token);
        let pinned = Fixture::load().pinned();
        let other = TokenSigningKey::new("google-key-1", pinned.modulus(), pinned.exponent());
        let provider = ConfidentialSpace::new(Launcher::new(&launcher.socket), "walproof")
            .pin_signing_keys(vec![other]);
        let err = provider
            .attest(&WorkloadKey::generate().unwrap(), &registration())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AttestError::Token(TokenError::UnknownKey { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("walproof-test-rsa-1"), "{err}");
    }
}
