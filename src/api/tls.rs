//! HTTPS for the API: the rustls acceptor. The handshake runs in each connection's own task,
//! within the header timeout and the connection limit (see [`super::server`]).

use std::sync::Arc;

use crate::settings::tls::TlsFiles;

pub fn acceptor(files: &TlsFiles) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let config = crate::settings::tls::server_config(files, &[b"http/1.1"])?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
