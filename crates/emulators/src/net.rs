//! Serving plumbing shared by the SIEM emulators: a listener whose connections a handler can drop
//! without any HTTP response (a connection reset, as a crashed or overloaded peer gives), a server
//! that can be stopped and releases its port, and small helpers for hand-written JSON bodies.

use std::borrow::Cow;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The connection a request arrived on, as a handler sees it (`ConnectInfo<Conn>`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Conn {
    reset: Arc<AtomicBool>,
}

impl Conn {
    /// The connection is closed with a TCP reset instead of carrying the response the handler
    /// returns; not one byte of it is sent.
    pub(crate) fn reset(&self) {
        self.reset.store(true, Ordering::Release);
    }
}

pub(crate) struct ResettableListener(TcpListener);

impl Listener for ResettableListener {
    type Io = ResettableStream;
    type Addr = Conn;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let conn = Conn::default();
                    return (ResettableStream { inner: stream, reset: conn.reset.clone() }, conn);
                }
                // Out of descriptors, say: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Conn> {
        Ok(Conn::default())
    }
}

impl Connected<IncomingStream<'_, ResettableListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, ResettableListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A TCP stream that fails every write once its connection is marked reset, so hyper gives up on
/// the connection before the response reaches the socket; zero linger turns the close into a RST.
pub(crate) struct ResettableStream {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl ResettableStream {
    fn check(&self) -> io::Result<()> {
        if self.reset.load(Ordering::Acquire) {
            let _ = self.inner.set_zero_linger();
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "emulated connection reset"));
        }
        Ok(())
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A running HTTP server. Dropping it stops accepting too (the shutdown sender goes away).
pub(crate) struct Server {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    pub(crate) async fn start(listen: SocketAddr, router: Router) -> io::Result<Server> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (shutdown, signal) = oneshot::channel::<()>();
        let app = router.into_make_service_with_connect_info::<Conn>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(ResettableListener(listener), app)
                .with_graceful_shutdown(async move {
                    let _ = signal.await;
                })
                .await;
        });
        Ok(Server { addr, shutdown: Some(shutdown), task: Some(task) })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting (the port is free once this returns), closes idle connections and lets
    /// requests in flight finish, for a few seconds at most.
    pub(crate) async fn stop(mut self) {
        drop(self.shutdown.take());
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err()
        {
            task.abort();
        }
    }
}

/// A JSON string, borrowed from the input unless it has escapes; any other JSON value is refused.
pub(crate) struct JsonStr<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for JsonStr<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = JsonStr<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<JsonStr<'a>, E> {
                Ok(JsonStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<JsonStr<'a>, E> {
                Ok(JsonStr(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(V(PhantomData))
    }
}

/// The members of a JSON object in their order, values left unparsed.
pub(crate) struct RawEntries<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for RawEntries<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawEntries<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEntries<'a>, A::Error> {
                let mut entries = Vec::new();
                while let Some(JsonStr(key)) = map.next_key::<JsonStr<'a>>()? {
                    entries.push((key, map.next_value::<&'a RawValue>()?));
                }
                Ok(RawEntries(entries))
            }
        }
        deserializer.deserialize_map(V(PhantomData))
    }
}

/// Appends `s` as a JSON string literal.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// `s` as a JSON string literal.
pub(crate) fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_str(&mut out, s);
    out
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters (possibly empty).
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Decodes a `Content-Encoding: gzip` body (concatenated members included).
pub(crate) fn gunzip(body: &[u8]) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::with_capacity(body.len() * 4);
    flate2::read::MultiGzDecoder::new(body).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("logs-*-*", "logs-a-b"));
        assert!(glob_match("logs-*-*", "logs-sluice-default"));
        assert!(!glob_match("logs-*-*", "logs-a"));
        assert!(!glob_match("logs-*-*", "xlogs-a-b"));
        assert!(glob_match("*", ""));
        assert!(glob_match("abc", "abc"));
        assert!(!glob_match("abc", "abcd"));
        assert!(glob_match("a*c", "abbbc"));
        assert!(!glob_match("a*bc", "abc-x"));
    }

    #[test]
    fn json_strings() {
        assert_eq!(json_str("a\"b\\c\nd\u{1}é"), "\"a\\\"b\\\\c\\nd\\u0001é\"");
    }
}
