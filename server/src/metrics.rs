//! Prometheus metrics on an opt-in address (`[metrics] listen`): `GET /metrics` in the text
//! exposition format (version 0.0.4), 404 for another path, 405 for another method.
//!
//! The packet loop never waits for a scrape: after each turn the driver copies the engine's
//! [`Snapshot`] into a `watch` channel ([`Publisher::publish`]); a thread of its own serves the
//! port and encodes the latest copy with `prometheus-client`. It is an open port, so requests
//! are bounded in size, time and number.

use crate::drop_warnings::DropWarnings;
use crate::engine::stats::{DropReason, Outcome, Snapshot};
use anyhow::Context as _;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::watch;

/// Largest request head read (request line and headers).
const MAX_REQUEST: usize = 4096;
/// A connection that has not sent its request (or taken the answer) by then is closed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 16;
/// Pause after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Where the driver puts the latest snapshot (a `watch` channel: the loop never waits for
/// a reader, a scrape copies the newest value).
#[derive(Debug)]
pub struct Publisher(watch::Sender<Snapshot>);

impl Default for Publisher {
    fn default() -> Self {
        Self(watch::Sender::new(Snapshot::default()))
    }
}

impl Publisher {
    /// Replaces the snapshot the next scrape sees.
    pub fn publish(&self, snapshot: &Snapshot) {
        self.0.send_replace(*snapshot);
    }
}

/// What the driver does with the engine's counters after each loop turn: the rate-limited
/// drop warnings, and the snapshot for the endpoint when one is configured.
#[derive(Debug)]
pub struct Observer {
    publisher: Option<Publisher>,
    warnings: DropWarnings,
}

impl Observer {
    /// Starts the endpoint when `listen` is set.
    ///
    /// # Errors
    /// See [`serve`].
    pub fn new(listen: Option<SocketAddr>) -> anyhow::Result<Self> {
        Ok(Self {
            publisher: listen.map(serve).transpose()?,
            warnings: DropWarnings::new(crate::drop_warnings::INTERVAL),
        })
    }

    /// One loop turn done at `now`.
    pub fn turn(&mut self, now: Instant, snapshot: Snapshot) {
        self.warnings
            .observe(now, &snapshot.stats, crate::drop_warnings::log);
        if let Some(p) = &self.publisher {
            p.publish(&snapshot);
        }
    }
}

/// Binds `listen` and serves `/metrics` from a thread of its own.
///
/// # Errors
/// When the address cannot be bound or the thread not started.
pub fn serve(listen: SocketAddr) -> anyhow::Result<Publisher> {
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("binding the metrics address {listen}"))?;
    let publisher = start(listener)?;
    tracing::info!(%listen, "Prometheus metrics at http://{listen}/metrics");
    Ok(publisher)
}

/// Serves `/metrics` on `listener` from a thread of its own.
fn start(listener: std::net::TcpListener) -> anyhow::Result<Publisher> {
    listener.set_nonblocking(true)?;
    let publisher = Publisher::default();
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exposition(publisher.0.subscribe())));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The driver's side of the crate owns concurrency (STYLE.md §7): one thread, not shared
    // with the packet loop, which only ever writes into the channel.
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || runtime.block_on(accept(listener, Arc::new(registry))))?;
    Ok(publisher)
}

async fn accept(listener: std::net::TcpListener, registry: Arc<Registry>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%e, "metrics listener");
            return;
        }
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::debug!(%e, "metrics accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            continue; // dropped: closed at once
        };
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, &registry)).await;
            drop(permit);
        });
    }
}

/// Reads one request head and answers it; the connection then closes.
async fn answer(mut stream: tokio::net::TcpStream, registry: &Registry) -> std::io::Result<()> {
    let mut head = [0u8; MAX_REQUEST];
    let mut len = 0;
    while !head[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        let Some(space) = head.get_mut(len..).filter(|s| !s.is_empty()) else {
            return respond(&mut stream, "431 Request Header Fields Too Large", "", "").await;
        };
        let n = stream.read(space).await?;
        if n == 0 {
            return Ok(());
        }
        len += n;
    }
    let line = head[..len]
        .split(|b| *b == b'\r')
        .next()
        .unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    let (method, target) = (parts.next(), parts.next());
    match (method, target) {
        (Some(b"GET"), Some(b"/metrics")) => {
            let mut body = String::new();
            if prometheus_client::encoding::prometheus_text::encode(&mut body, registry).is_err() {
                return respond(&mut stream, "500 Internal Server Error", "", "").await;
            }
            let ct = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
            respond(&mut stream, "200 OK", ct, &body).await
        }
        (Some(b"GET"), _) => {
            respond(&mut stream, "404 Not Found", "text/plain", "not found\n").await
        }
        _ => {
            respond(
                &mut stream,
                "405 Method Not Allowed",
                "text/plain",
                "GET only\n",
            )
            .await
        }
    }
}

async fn respond(
    stream: &mut tokio::net::TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// The latest snapshot as Prometheus metrics (`prometheus-client` adds `_total` to counters).
#[derive(Debug)]
struct Exposition(watch::Receiver<Snapshot>);

impl Collector for Exposition {
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let snapshot = *self.0.borrow();
        encode(&snapshot, encoder)
    }
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &'static str,
    values: impl IntoIterator<Item = (&'static str, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, n) in values {
        ConstCounter::new(n).encode(metric.encode_family(&[(label, value)])?)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: usize,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(metric)
}

fn encode(s: &Snapshot, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
    let e = &mut encoder;
    let st = &s.stats;
    counter(
        e,
        "l2sec_connects",
        "Connection attempts by outcome.",
        "outcome",
        Outcome::ALL.map(|o| (o.name(), st.connects(o))),
    )?;
    counter(
        e,
        "l2sec_drops",
        "Packets dropped by reason.",
        "reason",
        DropReason::ALL.map(|r| (r.name(), st.drops(r))),
    )?;
    let ((pin, pout), (bin, bout)) = (st.packets(), st.bytes());
    counter(
        e,
        "l2sec_esp_packets",
        "ESP packets received (authenticated) and sent.",
        "direction",
        [("in", pin), ("out", pout)],
    )?;
    counter(
        e,
        "l2sec_esp_bytes",
        "Bytes of those ESP packets (from the SPI on).",
        "direction",
        [("in", bin), ("out", bout)],
    )?;
    gauge(e, "l2sec_ike_sas", "Established ISAKMP SAs.", s.ike_sas)?;
    gauge(
        e,
        "l2sec_ike_half_open",
        "IKE exchanges in progress.",
        s.ike_half_open,
    )?;
    gauge(e, "l2sec_child_sas", "Installed ESP SA pairs.", s.child_sas)?;
    gauge(e, "l2sec_tunnels", "L2TP tunnels.", s.tunnels)?;
    gauge(e, "l2sec_sessions", "L2TP sessions with PPP.", s.sessions)?;
    gauge(
        e,
        "l2sec_pool_addresses_in_use",
        "Pool addresses assigned.",
        s.pool_in_use,
    )?;
    gauge(
        e,
        "l2sec_connecting",
        "Connection attempts without an outcome yet.",
        s.connecting,
    )?;
    let h = st.handshake();
    let mut metric = e.encode_descriptor(
        "l2sec_handshake_duration_seconds",
        "First IKE packet of a client to its PPP address.",
        None,
        MetricType::Histogram,
    )?;
    metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
        h.sum_seconds(),
        h.count(),
        &h.buckets(),
        None,
    )
}

/// The exposition text of `snapshot` (what a scrape returns).
///
/// # Errors
/// Only if formatting fails.
pub fn render(snapshot: &Snapshot) -> Result<String, std::fmt::Error> {
    let (_keep, receiver) = watch::channel(*snapshot);
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exposition(receiver)));
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
    Ok(out)
}

#[cfg(test)]
mod tests;
