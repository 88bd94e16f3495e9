//! The Confidential Space launcher's token endpoint: a few lines of HTTP/1.1 over its unix
//! socket.
//!
//! Inside a Confidential Space VM the launcher serves `POST /v1/token` on
//! `/run/container_launcher/teeserver.sock`. The request body is
//! `{"audience": A, "token_type": "OIDC", "nonces": [N, …]}` (the launcher refuses unknown
//! fields; each nonce 10 to 74 bytes), the response body is the token itself, and an error is
//! a non-2xx status with a text body. One request per key registration does not warrant an
//! HTTP client library: the request is written by hand with `Connection: close` and the
//! response read to its end (a body of known length, chunked, or up to the close).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Where the launcher listens inside a Confidential Space VM.
pub const DEFAULT_LAUNCHER_SOCKET: &str = "/run/container_launcher/teeserver.sock";

/// How long a token request may take by default: the launcher asks Google's attestation
/// service, which usually answers within a few seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Responses longer than this are not a token (Confidential Space tokens are a few KB).
const MAX_RESPONSE_BYTES: u64 = 1 << 20;

/// How much of an error body is kept in a message.
const MAX_SHOWN_BODY: usize = 300;

/// The launcher gave no token.
#[derive(Debug, thiserror::Error)]
pub enum LauncherError {
    /// Nothing listens on the socket (not in Confidential Space, or the launcher is down).
    #[error(
        "cannot connect to the Confidential Space launcher at {}: {error} (is this workload running in a Confidential Space VM?)",
        socket.display()
    )]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The connection failed midway.
    #[error("talking to the Confidential Space launcher at {}: {error}", socket.display())]
    Io {
        /// The socket.
        socket: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// No complete answer in time.
    #[error("the Confidential Space launcher at {} did not answer within {after:?}", socket.display())]
    Timeout {
        /// The socket.
        socket: PathBuf,
        /// The time allowed.
        after: Duration,
    },
    /// The launcher answered with an error status.
    #[error("the Confidential Space launcher at {} refused the token request: HTTP {status}: {body}", socket.display())]
    Status {
        /// The socket.
        socket: PathBuf,
        /// The HTTP status.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The answer is not an HTTP response this client can read.
    #[error("the Confidential Space launcher at {} answered something that is not an HTTP response: {problem}", socket.display())]
    Malformed {
        /// The socket.
        socket: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

impl LauncherError {
    /// Whether asking again later may succeed: the launcher starting or restarting, a
    /// timeout, a server-side error. A refused request (4xx) or garbage is not retried.
    pub fn is_retryable(&self) -> bool {
        match self {
            LauncherError::Connect { .. }
            | LauncherError::Io { .. }
            | LauncherError::Timeout { .. } => true,
            LauncherError::Status { status, .. } => *status >= 500 || *status == 429,
            LauncherError::Malformed { .. } => false,
        }
    }
}

/// A client of the launcher's token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launcher {
    socket: PathBuf,
    timeout: Duration,
}

impl Default for Launcher {
    fn default() -> Launcher {
        Launcher::new(DEFAULT_LAUNCHER_SOCKET)
    }
}

impl Launcher {
    /// The launcher listening on `socket`, with the [`DEFAULT_TIMEOUT`].
    pub fn new(socket: impl Into<PathBuf>) -> Launcher {
        Launcher {
            socket: socket.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Gives a token request `timeout` to complete.
    pub fn with_timeout(mut self, timeout: Duration) -> Launcher {
        self.timeout = timeout;
        self
    }

    /// The socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Requests an OIDC attestation token for `audience` carrying `nonces`; returns the
    /// token's text (not yet checked).
    pub async fn token(&self, audience: &str, nonces: &[String]) -> Result<String, LauncherError> {
        let body = serde_json::json!({
            "audience": audience,
            "token_type": "OIDC",
            "nonces": nonces,
        })
        .to_string();
        tokio::time::timeout(self.timeout, self.exchange(&body))
            .await
            .map_err(|_| LauncherError::Timeout {
                socket: self.socket.clone(),
                after: self.timeout,
            })?
    }

    async fn exchange(&self, body: &str) -> Result<String, LauncherError> {
        let io = |error| LauncherError::Io {
            socket: self.socket.clone(),
            error,
        };
        let malformed = |problem: String| LauncherError::Malformed {
            socket: self.socket.clone(),
            problem,
        };
        let mut stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|error| LauncherError::Connect {
                socket: self.socket.clone(),
                error,
            })?;
        let request = format!(
            "POST /v1/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.map_err(io)?;
        let mut response = Vec::new();
        (&mut stream)
            .take(MAX_RESPONSE_BYTES + 1)
            .read_to_end(&mut response)
            .await
            .map_err(io)?;
        if response.len() as u64 > MAX_RESPONSE_BYTES {
            return Err(malformed(format!(
                "the response is longer than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        let (status, body) = parse_response(&response).map_err(malformed)?;
        if !(200..300).contains(&status) {
            return Err(LauncherError::Status {
                socket: self.socket.clone(),
                status,
                body: shown(&body),
            });
        }
        let text =
            String::from_utf8(body).map_err(|_| malformed("the token is not UTF-8 text".into()))?;
        Ok(text.trim().to_owned())
    }
}

/// The status and the (de-chunked) body of a complete HTTP/1.x response.
fn parse_response(bytes: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(if bytes.is_empty() {
            "the connection closed without a response".into()
        } else {
            format!("no end of headers in {}", shown(bytes))
        });
    };
    let head = String::from_utf8_lossy(&bytes[..end]);
    let rest = &bytes[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = match status_line.split(' ').collect::<Vec<_>>().as_slice() {
        [version, code, ..] if version.starts_with("HTTP/1.") => code.parse::<u16>().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("the status line is {status_line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("the header line {line:?} has no colon"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("Content-Length is {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .to_ascii_lowercase()
                .split(',')
                .any(|c| c.trim() == "chunked");
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(length) = length {
        rest.get(..length)
            .ok_or_else(|| {
                format!(
                    "the body ends after {} of its {length} bytes (Content-Length)",
                    rest.len()
                )
            })?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok((status, body))
}

/// Decodes a chunked body (RFC 9112 §7.1); trailers are ignored.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk size line is not terminated")?;
        let line = String::from_utf8_lossy(&rest[..line_end]);
        let digits = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(digits, 16)
            .map_err(|_| format!("the chunk size {digits:?} is not hex"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest
            .get(..size)
            .ok_or_else(|| format!("a chunk of {size} bytes ends early"))?;
        body.extend_from_slice(chunk);
        rest = rest
            .get(size..)
            .and_then(|after| after.strip_prefix(b"\r\n"))
            .ok_or("a chunk is not followed by CRLF")?;
    }
}

/// The start of `bytes` as text, for a message.
fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_SHOWN_BODY)]);
    let more = if bytes.len() > MAX_SHOWN_BODY {
        "…"
    } else {
        ""
    };
    format!("{:?}{more}", text.trim())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    #[test]
    fn responses_with_length_chunks_or_close_are_read() {
        let length =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nab.cdEXTRA";
        assert_eq!(parse_response(length).unwrap(), (200, b"ab.cd".to_vec()));
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\nab.\r\n2\r\ncd\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (200, b"ab.cd".to_vec()));
        let closed = b"HTTP/1.0 400 Bad Request\r\n\r\ntoken_type is a required parameter";
        assert_eq!(
            parse_response(closed).unwrap(),
            (400, b"token_type is a required parameter".to_vec())
        );
    }

    #[test]
    fn broken_responses_say_what_is_wrong() {
        for (bytes, words) in [
            (&b""[..], "closed without a response"),
            (b"garbage", "no end of headers in \"garbage\""),
            (
                b"SSH-2.0-OpenSSH\r\n\r\n",
                "status line is \"SSH-2.0-OpenSSH\"",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                "ends after 3 of its 10 bytes",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "\"zz\" is not hex",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
                "ends early",
            ),
            (
                b"HTTP/1.1 200 OK\r\nbroken\r\n\r\n",
                "\"broken\" has no colon",
            ),
        ] {
            let err = parse_response(bytes).unwrap_err();
            assert!(err.contains(words), "{err:?} lacks {words:?}");
        }
    }

    #[tokio::test]
    async fn a_missing_socket_is_a_retryable_connect_error_naming_it() {
        let err = Launcher::new("/nonexistent/teeserver.sock")
            .token("walproof", &["0".repeat(64)])
            .await
            .unwrap_err();
        assert!(matches!(err, LauncherError::Connect { .. }), "{err}");
        assert!(err.is_retryable());
        assert!(
            err.to_string().contains("/nonexistent/teeserver.sock"),
            "{err}"
        );
    }
}
