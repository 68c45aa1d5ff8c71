//! The HTTP/1.1 server of the API and of the metrics listener, hardened against hostile clients:
//!
//! - at most `max_connections` at once (also kept under the process's open-file limit); one more
//!   is answered 503 and closed at once, so the sockets a flood can take are bounded;
//! - a client has `header_timeout` from connecting (TLS handshake included) to send its request
//!   line and headers, and as long from the first byte of each further request on a kept-alive
//!   connection: slow-loris clients are closed;
//! - a kept-alive connection with no request, or whose answer the client does not read, is closed
//!   after `idle_timeout`;
//! - a request body must arrive within `body_timeout` (else 408, and the connection is closed);
//! - accept errors (EMFILE, ENFILE, ENOBUFS …) back off from 10 ms up to 1 s and are logged at
//!   most once a second with the count of those not logged, instead of a hot loop.
//!
//! Each connection is one task; its watchdog, the I/O and the request handling share it.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{ApiError, PeerAddr};

/// What one listener allows its clients.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
}

/// The metrics listener's connections: a few scrapers, not a crowd.
pub const METRICS_MAX_CONNECTIONS: usize = 64;

impl Limits {
    /// The metrics listener's: `GET /metrics` has no body and answers at once.
    pub fn metrics() -> Limits {
        Limits {
            max_connections: METRICS_MAX_CONNECTIONS,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(10),
        }
    }
}

/// The process's soft limit of open files (`ulimit -n`, systemd's `LimitNOFILE`), if known.
fn open_files_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

/// The connections a listener may hold under an open-file limit of `files`: a quarter (at least
/// 64) is left to the pipeline (store, sinks, log files), the metrics listener gets at most an
/// eighth, the API the rest.
fn connection_budget(files: usize, metrics: bool) -> usize {
    let metrics_share = METRICS_MAX_CONNECTIONS.min(files / 8);
    if metrics {
        return metrics_share.max(1);
    }
    files.saturating_sub((files / 4).max(64)).saturating_sub(metrics_share).max(1)
}

/// Logs a repeated condition at most once a second, with how often it was not logged.
struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    fn new() -> Self {
        Throttle { last: None, suppressed: 0 }
    }

    /// `Some(suppressed since the last time)` when it is time to log again.
    fn ready(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|l| now.duration_since(l) < Duration::from_secs(1)) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// Accept errors that concern one connection only (it was gone before we took it): no back-off.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock)
}

const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 32\r\n\
connection: close\r\nretry-after: 1\r\n\r\n{\"error\":\"too many connections\"}";

/// Serves `router` on `tcp` (over TLS with `tls`) until `shutdown` resolves; then stops
/// accepting, lets requests in flight finish and closes idle connections.
pub async fn serve(
    tcp: TcpListener,
    name: &'static str,
    router: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut max = limits.max_connections;
    if let Some(files) = open_files_limit() {
        let budget = connection_budget(files, name == "metrics");
        if budget < max {
            tracing::warn!(
                listener = name,
                configured = max,
                open_files_limit = files,
                serving = budget,
                "the open-file limit (ulimit -n, LimitNOFILE) is too low for this many connections; serving fewer"
            );
            max = budget;
        }
    }
    let permits = Arc::new(Semaphore::new(max));
    let limits = Arc::new(limits);
    let stop = CancellationToken::new();
    let connections = TaskTracker::new();
    let (mut accept_errors, mut refusals) = (Throttle::new(), Throttle::new());
    let mut backoff = Duration::ZERO;
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = tcp.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::ZERO;
                match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let (router, tls, limits, stop) = (router.clone(), tls.clone(), limits.clone(), stop.clone());
                        connections.spawn(async move {
                            connection(stream, peer, router, tls, limits, stop).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        if let Some(suppressed) = refusals.ready() {
                            tracing::warn!(listener = name, max_connections = max, refused_before = suppressed, %peer, "connection limit reached; refusing connections");
                        }
                        // Best effort, without waiting: a TLS client cannot read it anyway.
                        if tls.is_none() {
                            let _ = stream.try_write(REFUSED);
                        }
                        drop(stream);
                    }
                }
            }
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                if let Some(suppressed) = accept_errors.ready() {
                    tracing::error!(listener = name, error = %e, failed_before = suppressed, backoff_ms = backoff.as_millis() as u64, "cannot accept connections; backing off");
                }
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
            }
        }
    }
    drop(tcp);
    stop.cancel();
    connections.close();
    connections.wait().await;
}

/// One connection, from its TLS handshake (if any) to its end.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Arc<Limits>,
    stop: CancellationToken,
) {
    let accepted = Instant::now();
    let _ = stream.set_nodelay(true);
    match tls {
        None => http(stream, accepted, peer, router, &limits, stop).await,
        Some(acceptor) => {
            let handshake = tokio::select! {
                r = tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)) => r,
                _ = stop.cancelled() => return,
            };
            match handshake {
                Ok(Ok(stream)) => http(stream, accepted, peer, router, &limits, stop).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

async fn http<I>(io: I, accepted: Instant, peer: SocketAddr, router: axum::Router, limits: &Limits, stop: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new(accepted));
    let io = hyper_util::rt::TokioIo::new(Tracked { inner: io, activity: activity.clone() });
    let service = ConnectionService { router, peer, activity: activity.clone(), body_timeout: limits.body_timeout };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Bounds the head a client can make us buffer (and the read buffer of each connection).
    builder.max_buf_size(64 * 1024).max_headers(100);
    let mut conn = pin!(builder.serve_connection(io, service));
    // Once the server stops: when it began to, so that idle and slow clients are let go.
    let mut stopping: Option<Instant> = None;
    let deadline = |stopping: Option<Instant>| {
        let (deadline, why) = activity.deadline(limits);
        match stopping.and_then(|at| activity.drain_deadline(at)) {
            Some(drain) if drain < deadline => (drain, "shutting down"),
            _ => (deadline, why),
        }
    };
    loop {
        let (at, _) = deadline(stopping);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.cancelled(), if stopping.is_none() => {
                stopping = Some(Instant::now());
                conn.as_mut().graceful_shutdown();
            }
            _ = activity.changed.notified() => {}
            _ = tokio::time::sleep_until(at.into()) => {
                let (at, why) = deadline(stopping);
                if at <= Instant::now() {
                    tracing::debug!(%peer, why, "closing connection");
                    return;
                }
            }
        }
    }
}

/// What a connection is doing, for its watchdog. Times are milliseconds since `base`.
struct Activity {
    base: Instant,
    in_flight: AtomicUsize,
    /// A request was answered on this connection.
    served: AtomicBool,
    /// When the last request was answered.
    idle_since: AtomicU64,
    /// 1 + when the first byte of the next request arrived; 0 when none did.
    head_started: AtomicU64,
    last_write: AtomicU64,
    body_timed_out: AtomicBool,
    changed: Notify,
}

impl Activity {
    fn new(base: Instant) -> Self {
        Activity {
            base,
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            last_write: AtomicU64::new(0),
            body_timed_out: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        self.base + Duration::from_millis(ms)
    }

    fn read(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0 && self.head_started.load(Ordering::Relaxed) == 0 {
            self.head_started.store(self.now() + 1, Ordering::Relaxed);
            self.changed.notify_one();
        }
    }

    fn wrote(&self) {
        self.last_write.store(self.now(), Ordering::Relaxed);
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(0, Ordering::Relaxed);
    }

    fn request_done(&self) {
        if self.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.idle_since.store(self.now(), Ordering::Relaxed);
            self.served.store(true, Ordering::Relaxed);
            self.changed.notify_one();
        }
    }

    /// While the server stops (since `at`): a connection with no request in flight gets a second
    /// more, and a second after each write of its answer, instead of its timeouts.
    fn drain_deadline(&self, at: Instant) -> Option<Instant> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        Some(at.max(self.at(self.last_write.load(Ordering::Relaxed))) + Duration::from_secs(1))
    }

    /// When the connection is to be closed if nothing changes, and why.
    fn deadline(&self, limits: &Limits) -> (Instant, &'static str) {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            // A handler runs; the body timeout bounds how long it waits for the client.
            return (Instant::now() + Duration::from_secs(3600), "");
        }
        if !self.served.load(Ordering::Relaxed) {
            return (self.base + limits.header_timeout, "no complete request within header_timeout");
        }
        let head = self.head_started.load(Ordering::Relaxed);
        if head != 0 {
            return (self.at(head - 1) + limits.header_timeout, "request headers not complete within header_timeout");
        }
        let last = self.idle_since.load(Ordering::Relaxed).max(self.last_write.load(Ordering::Relaxed));
        (self.at(last) + limits.idle_timeout, "idle for idle_timeout")
    }
}

/// The connection's I/O, telling its [`Activity`] when bytes move.
struct Tracked<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        result
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Hands a connection's requests to the router, with the client's address and a deadline on
/// the body.
struct ConnectionService {
    router: axum::Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
    body_timeout: Duration,
}

/// Counts a request in flight until it is answered (or dropped).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_done();
    }
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.activity.request_started();
        let in_flight = InFlight(self.activity.clone());
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(ConnectInfo(PeerAddr(self.peer)));
        let body = if body.is_end_stream() {
            Body::new(body)
        } else {
            Body::new(DeadlineBody {
                inner: body,
                deadline: Box::pin(tokio::time::sleep(self.body_timeout)),
                activity: self.activity.clone(),
            })
        };
        let router = hyper_util::service::TowerToHyperService::new(self.router.clone());
        let activity = self.activity.clone();
        Box::pin(async move {
            let response = hyper::service::Service::call(&router, Request::from_parts(parts, body)).await?;
            let response = if activity.body_timed_out.swap(false, Ordering::Relaxed) {
                let mut late =
                    ApiError::new(StatusCode::REQUEST_TIMEOUT, "the request body did not arrive within body_timeout").into_response();
                late.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                late
            } else {
                response
            };
            drop(in_flight);
            Ok(response)
        })
    }
}

/// A request body that fails once its deadline passes.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    activity: Arc<Activity>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.activity.body_timed_out.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err("the request body did not arrive within body_timeout".into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_budget_leaves_files_to_the_pipeline() {
        assert_eq!(connection_budget(1024, false), 1024 - 256 - 64);
        assert_eq!(connection_budget(1024, true), 64);
        assert_eq!(connection_budget(256, false), 256 - 64 - 32);
        assert_eq!(connection_budget(256, true), 32);
        assert!(connection_budget(65536, false) > 1024);
        assert_eq!(connection_budget(10, false), 1);
    }

    #[test]
    fn a_throttle_says_once_a_second_how_much_it_held_back() {
        let mut t = Throttle::new();
        assert_eq!(t.ready(), Some(0));
        assert_eq!(t.ready(), None);
        assert_eq!(t.ready(), None);
        t.last = Some(Instant::now() - Duration::from_secs(2));
        assert_eq!(t.ready(), Some(2));
    }

    #[test]
    fn deadlines_follow_the_state_of_the_connection() {
        let limits = Limits {
            max_connections: 1,
            header_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(5),
        };
        let base = Instant::now() - Duration::from_secs(10);
        let a = Activity::new(base);
        // Nothing sent yet: the header timeout counts from the connection.
        assert_eq!(a.deadline(&limits).0, base + Duration::from_secs(2));
        a.request_started();
        assert!(a.deadline(&limits).0 > Instant::now() + Duration::from_secs(60));
        a.request_done();
        // Answered: idle from now on.
        let (idle, _) = a.deadline(&limits);
        assert!(idle > Instant::now() + Duration::from_secs(29));
        // The first byte of the next request starts its header timeout.
        a.read();
        let (head, why) = a.deadline(&limits);
        assert!(head < Instant::now() + Duration::from_millis(2100), "{why}");
        // Stopping: a second to go, unless a request is in flight.
        let stop = Instant::now();
        assert_eq!(a.drain_deadline(stop), Some(stop + Duration::from_secs(1)));
        a.request_started();
        assert_eq!(a.drain_deadline(stop), None);
    }
}
