//! The HTTP side of [`super`]: a small HTTP/1.1 responder on a tokio listener (GET and HEAD,
//! `Connection: close`). Three fixed paths do not need a web framework and its dependency tree.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::{debug, info};

use super::{now_ms, Metrics};

/// Requests answered at once; each is bounded in size (8 KiB) and time (5 s).
const MAX_CONNECTIONS: usize = 16;

/// `--metrics-addr` could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr} (--metrics-addr / HUBCAP_METRICS_ADDR): {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// The metrics endpoint, bound; [`Server::serve`] answers until the task is dropped.
pub struct Server {
    listener: TcpListener,
    metrics: Arc<Metrics>,
}

impl Server {
    pub async fn bind(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<Server, BindError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| BindError { addr, source })?;
        Ok(Server { listener, metrics })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Answers connections, one task each and at most [`MAX_CONNECTIONS`] at a time (more are
    /// closed unanswered), until dropped.
    pub async fn serve(self) {
        if let Some(addr) = self.local_addr() {
            info!(%addr, "serving /metrics, /healthz and /readyz");
        }
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        loop {
            match self.listener.accept().await {
                Ok((conn, _)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        debug!("too many metrics requests at once; closing one unanswered");
                        continue;
                    };
                    let metrics = self.metrics.clone();
                    tokio::spawn(async move {
                        if let Err(e) = answer(conn, &metrics).await {
                            debug!(error = %e, "metrics request failed");
                        }
                        drop(slot);
                    });
                }
                Err(e) => {
                    debug!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Reads one request head (bounded in size and time) and answers it.
async fn answer(mut conn: tokio::net::TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    const MAX_HEAD: usize = 8 << 10;
    let mut buf = Vec::with_capacity(1024);
    let read = async {
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_HEAD {
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let (status, content_type, body) = route(&line, metrics, now_ms());
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    if !line.starts_with("HEAD ") {
        conn.write_all(body.as_bytes()).await?;
    }
    conn.shutdown().await
}

/// The answer to a request line: (status, content type, body).
pub(super) fn route(
    line: &str,
    metrics: &Metrics,
    now_ms: i64,
) -> (&'static str, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", TEXT, "GET only\n".into());
    }
    let path = target.split('?').next().unwrap_or("");
    match path {
        "/metrics" => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(now_ms),
        ),
        "/healthz" => ("200 OK", TEXT, "ok\n".into()),
        "/readyz" => match metrics.readiness(now_ms) {
            Ok(summary) => ("200 OK", TEXT, format!("{summary}\n")),
            Err(reasons) => (
                "503 Service Unavailable",
                TEXT,
                format!("not ready:\n{}\n", reasons.join("\n")),
            ),
        },
        _ => (
            "404 Not Found",
            TEXT,
            "not found; try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}
