//! A minimal HTTP/1.1 endpoint: `GET` requests answered by a handler, one response per
//! connection. Serves the decoder's Prometheus metrics at `/metrics` and the committer's
//! proofs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Renders the current metrics in the Prometheus text format.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// A response: status line, content type, body.
pub type Response = (&'static str, &'static str, String);

/// Answers a `GET` for a request target (path and query).
pub type Handler =
    Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = Response> + Send>> + Send + Sync>;

/// Serves `GET /metrics` on `listener` until `shutdown` turns true. Other paths get 404.
pub async fn serve(listener: TcpListener, render: Render, shutdown: watch::Receiver<bool>) {
    let handler: Handler = Arc::new(move |target: String| {
        let render = render.clone();
        Box::pin(async move {
            if target == "/metrics" || target.starts_with("/metrics?") {
                ("200 OK", "text/plain; version=0.0.4", render())
            } else {
                (
                    "404 Not Found",
                    "text/plain",
                    "walproof serves /metrics\n".to_owned(),
                )
            }
        })
    });
    serve_with(listener, handler, shutdown).await;
}

/// Serves `GET` requests on `listener` with `handler` until `shutdown` turns true; other
/// methods get 405.
pub async fn serve_with(
    listener: TcpListener,
    handler: Handler,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((mut stream, _)) = accepted else {
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let mut request = vec![0u8; 8192];
            let mut read = 0;
            // Read until the end of the request head (or a full buffer).
            while read < request.len() && !request[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut request[read..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
            }
            let head = String::from_utf8_lossy(&request[..read]);
            let mut words = head.split_whitespace();
            let (status, content_type, body) = match (words.next(), words.next()) {
                (Some("GET"), Some(target)) => handler(target.to_owned()).await,
                _ => (
                    "405 Method Not Allowed",
                    "text/plain",
                    "only GET is served\n".to_owned(),
                ),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// The path of a request target and its query parameters, percent-decoded (`+` is a space).
pub fn parse_target(target: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect();
    (percent_decode(path), params)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() && text.is_char_boundary(i + 3) => {
                match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_percent_decoding() {
        let (path, params) =
            parse_target("/proof?table=public.t&key=a%20b&key=c+d&key=%2Fx%3D&at=0%2F16B3748");
        assert_eq!(path, "/proof");
        assert_eq!(
            params,
            [
                ("table", "public.t"),
                ("key", "a b"),
                ("key", "c d"),
                ("key", "/x="),
                ("at", "0/16B3748")
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        assert_eq!(parse_target("/x?k=%zz%4").1[0].1, "%zz%4");
    }
}
