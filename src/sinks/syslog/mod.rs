//! `type: syslog`: RFC 5424 (default) or RFC 3164 messages over UDP, TCP or TLS (RFC 5425).
//!
//! TCP frames by octet counting (RFC 6587 §3.4.1) or by newline; TLS always counts octets, as
//! RFC 5425 requires. The body is `cef` (default), `leef`, JSON (`event`, `ecs`, `idmefv2`,
//! `raw`) or `text`. Each message carries `[<sd_id> tenant= source= vendor= id= kind=
//! risk_score=]` structured data. UDP messages longer than `max_message_bytes` are cut (and
//! counted); over TCP/TLS nothing is cut.
//!
//! Syslog has no application-level acknowledgement: a batch counts as delivered once the
//! kernel took all of it (TCP/TLS: written and flushed on a connection that is still up). A
//! connection that breaks is re-opened and the whole batch is written again (up to
//! `retry.max_attempts`). A receiver that takes no connection at all (refused, unreachable,
//! timed out, TLS handshake failed; over UDP, a datagram answered "port unreachable") is down:
//! the write fails at once and the batch waits in the outbox.

mod config;

pub mod message;

use std::sync::Arc;

use anyhow::{Context, anyhow};
use futures::future::BoxFuture;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

pub use config::*;

use crate::encode::Format;
use crate::event::Batch;
use crate::normalize::normalize_lossless;
use crate::settings::tls::stream_connector;
use crate::sinks::{Sink, SinkContext, Written};
use message::{Header, SdElement};

type Stream = Box<dyn AsyncWrite + Send + Sync + Unpin>;

/// Why a write did not go through.
enum Failure {
    /// No connection could be made: retrying at once is no use.
    Unreachable(anyhow::Error),
    /// The connection broke while writing: a new one may do.
    Broken(anyhow::Error),
}

pub struct SyslogSink {
    config: SyslogConfig,
    ctx: SinkContext,
    messages: Arc<Messages>,
    tls: Option<(tokio_rustls::TlsConnector, rustls::pki_types::ServerName<'static>)>,
    /// The open TCP/TLS connection, if any.
    stream: Option<Stream>,
    udp: Option<UdpSocket>,
}

impl SyslogSink {
    pub fn new(config: SyslogConfig, ctx: SinkContext) -> anyhow::Result<Self> {
        let hostname = config.hostname.clone().unwrap_or_else(crate::service::hostname);
        let header = Header::new(config.facility, &hostname, &config.app_name);
        let tls = match config.transport {
            Transport::Tls => Some(stream_connector(&config.tls, &config.address)?),
            _ => None,
        };
        let messages = Arc::new(Messages { config: config.clone(), header });
        Ok(SyslogSink { config, ctx, messages, tls, stream: None, udp: None })
    }

    async fn connect(&self) -> anyhow::Result<Stream> {
        let connect = async {
            let tcp = TcpStream::connect(&self.config.address).await.with_context(|| format!("connecting to {}", self.config.address))?;
            tcp.set_nodelay(true).ok();
            Ok::<Stream, anyhow::Error>(match &self.tls {
                Some((connector, name)) => Box::new(
                    connector.connect(name.clone(), tcp).await.with_context(|| format!("TLS handshake with {}", self.config.address))?,
                ),
                None => Box::new(tcp),
            })
        };
        tokio::time::timeout(self.config.timeout, connect).await.map_err(|_| anyhow!("connecting to {}: timed out", self.config.address))?
    }

    /// Writes framed messages on the stream, opening it first when needed.
    async fn send_stream(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        if self.stream.is_none() {
            self.stream = Some(self.connect().await.map_err(Failure::Unreachable)?);
        }
        let stream = self.stream.as_mut().expect("connected");
        let write = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        match tokio::time::timeout(self.config.timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.stream = None;
                Err(Failure::Broken(anyhow!(e).context(format!("writing to {}", self.config.address))))
            }
            Err(_) => {
                self.stream = None;
                Err(Failure::Broken(anyhow!("writing to {}: timed out", self.config.address)))
            }
        }
    }

    async fn send_udp(&mut self, messages: &[Vec<u8>]) -> Result<(), Failure> {
        if self.udp.is_none() {
            let socket = async {
                let target = tokio::net::lookup_host(&self.config.address)
                    .await
                    .with_context(|| format!("resolving {}", self.config.address))?
                    .next()
                    .ok_or_else(|| anyhow!("{} resolves to no address", self.config.address))?;
                let bind = if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                let socket = UdpSocket::bind(bind).await?;
                socket.connect(target).await?;
                anyhow::Ok(socket)
            };
            self.udp = Some(socket.await.map_err(Failure::Unreachable)?);
        }
        let socket = self.udp.as_ref().expect("bound");
        for m in messages {
            if let Err(e) = socket.send(m).await {
                self.udp = None;
                let refused = e.kind() == std::io::ErrorKind::ConnectionRefused;
                let e = anyhow!(e).context(format!("sending to {}", self.config.address));
                return Err(if refused { Failure::Unreachable(e) } else { Failure::Broken(e) });
            }
        }
        Ok(())
    }

    async fn write_events(&mut self, batches: &[Batch]) -> anyhow::Result<Written> {
        let messages = self.messages.clone();
        let framed = crate::sinks::encode_all(batches, Arc::new(move |e: &crate::event::Event| messages.framed(e))).await?;
        let written = Written { truncated: framed.iter().filter(|(_, cut)| *cut).count() as u64, ..Default::default() };
        if written.truncated > 0 {
            metrics::counter!("sluice_syslog_truncated_total", "sink" => self.ctx.name.clone()).increment(written.truncated);
        }
        let udp = self.config.transport == Transport::Udp;
        let (datagrams, stream): (Vec<Vec<u8>>, Vec<u8>) = if udp {
            (framed.into_iter().map(|(m, _)| m).collect(), Vec::new())
        } else {
            let mut stream = Vec::with_capacity(framed.iter().map(|(m, _)| m.len()).sum());
            framed.iter().for_each(|(m, _)| stream.extend_from_slice(m));
            (Vec::new(), stream)
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = if udp { self.send_udp(&datagrams).await } else { self.send_stream(&stream).await };
            match result {
                Ok(()) => return Ok(written),
                Err(Failure::Unreachable(e)) => return Err(e),
                Err(Failure::Broken(e)) if attempt >= self.ctx.policy.retry.max_attempts => return Err(e),
                Err(Failure::Broken(e)) => self.pause(attempt, &e).await,
            }
        }
    }

    async fn pause(&self, attempt: u32, error: &anyhow::Error) {
        let wait = self.ctx.policy.retry.backoff(attempt, None);
        tracing::debug!(sink = %self.ctx.name, error = %format!("{error:#}"), retry_in = ?wait, "syslog write failed; retrying");
        tokio::time::sleep(wait).await;
    }
}

impl Sink for SyslogSink {
    fn events_in_flight(&self) -> Option<usize> {
        Some(self.ctx.policy.batch.max_events.get())
    }

    fn write<'a>(&'a mut self, batches: &'a [Batch]) -> BoxFuture<'a, anyhow::Result<Written>> {
        Box::pin(self.write_events(batches))
    }

    /// TCP/TLS: a fresh connection (and handshake), closed cleanly; UDP: the address resolves.
    fn check(&mut self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            if self.config.transport == Transport::Udp {
                let mut found =
                    tokio::net::lookup_host(&self.config.address).await.with_context(|| format!("resolving {}", self.config.address))?;
                found.next().ok_or_else(|| anyhow!("{} resolves to no address", self.config.address))?;
                return Ok(());
            }
            let mut stream = self.connect().await?;
            let _ = stream.shutdown().await;
            Ok(())
        })
    }
}

impl Drop for SyslogSink {
    fn drop(&mut self) {
        // A TLS receiver logs a warning for a connection closed without close_notify.
        if let Some(mut stream) = self.stream.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(async move {
                let _ = stream.shutdown().await;
            });
        }
    }
}
/// Turns events into framed syslog messages; shared with the encoding threads.
struct Messages {
    config: SyslogConfig,
    header: Header,
}

impl Messages {
    /// One event as a syslog message, framed for TCP/TLS (octet count or trailing newline), or
    /// cut to `max_udp` for UDP. Returns the bytes and whether they were cut.
    fn framed(&self, event: &crate::event::Event) -> (Vec<u8>, bool) {
        let mut m = Vec::with_capacity(1024);
        self.message(event, &mut m);
        match self.config.transport {
            Transport::Udp => {
                let cut = message::truncate(&mut m, self.config.max_udp_bytes());
                (m, cut)
            }
            Transport::Tls => (octet_counted(m), false),
            Transport::Tcp if self.config.framing == Framing::OctetCounting => (octet_counted(m), false),
            Transport::Tcp => {
                m.push(b'\n');
                (m, false)
            }
        }
    }

    /// Encodes one event as a syslog message (no framing).
    fn message(&self, event: &crate::event::Event, out: &mut Vec<u8>) {
        let model = normalize_lossless(event);
        let mut body = Vec::with_capacity(512);
        if self.config.format == Format::Leef {
            let mut text = String::new();
            crate::encode::leef::encode(&model, self.config.leef_delimiter, &mut text);
            body.extend_from_slice(text.as_bytes());
        } else {
            self.config.format.encode_document(event, Some(&model), &mut body);
        }
        let body = String::from_utf8(body).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        let severity = message::severity(model.severity.level);
        match self.config.protocol {
            Protocol::Rfc5424 => {
                let kind = model.kind.as_str();
                let risk = model.risk_score.to_string();
                let sd = [SdElement {
                    id: &self.config.sd_id,
                    params: vec![
                        ("tenant", &event.tenant),
                        ("source", &event.source),
                        ("vendor", &event.vendor),
                        ("id", &event.id),
                        ("kind", kind),
                        ("risk_score", &risk),
                    ],
                }];
                message::rfc5424(&self.header, severity, model.time, kind, &sd, &body, out);
            }
            Protocol::Rfc3164 => message::rfc3164(&self.header, severity, model.time, &body, out),
        }
    }
}

fn octet_counted(message: Vec<u8>) -> Vec<u8> {
    let mut framed = format!("{} ", message.len()).into_bytes();
    framed.extend_from_slice(&message);
    framed
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::Event;
    use crate::sinks::SinkSettings;
    use crate::store::Store;

    #[tokio::test]
    async fn udp_messages_over_the_limit_are_cut_on_a_character_boundary_and_counted() {
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = receiver.local_addr().unwrap();
        let config: SyslogConfig =
            serde_saphyr::from_str(&format!("address: \"{addr}\"\ntransport: udp\nformat: text\nmax_message_bytes: 480")).unwrap();
        assert!(config.problems().is_empty(), "{:?}", config.problems());
        let dir = tempfile::tempdir().unwrap();
        let ctx = SinkContext { name: "udp".into(), store: Store::open(dir.path()).unwrap(), policy: Default::default() };
        let mut sink = SyslogSink::new(config, ctx).unwrap();
        let long = format!("{{\"title\":\"{}\",\"severity\":\"high\"}}", "é".repeat(400));
        let short = "{\"title\":\"short\",\"severity\":\"high\"}".to_string();
        let events: Vec<Event> = [long, short]
            .into_iter()
            .map(|raw| {
                Event::hashed(
                    "acme".into(),
                    "s".into(),
                    "json".into(),
                    chrono::Utc::now(),
                    serde_json::value::RawValue::from_string(raw).unwrap(),
                )
            })
            .collect();
        let written = sink.write(&[Arc::new(events)]).await.unwrap();
        assert_eq!(written.truncated, 1);
        let mut buf = [0u8; 4096];
        let n = receiver.recv(&mut buf).await.unwrap();
        assert!(n <= 480, "{n} bytes");
        let text = std::str::from_utf8(&buf[..n]).expect("cut between characters");
        assert!(text.starts_with("<131>1 "), "{text}");
        let n = receiver.recv(&mut buf).await.unwrap();
        assert!(std::str::from_utf8(&buf[..n]).unwrap().ends_with("short"));
    }
}
