//! TLS in one place: the HTTP clients (sinks and API-pull sources), stream clients (syslog over
//! TLS), database clients (PostgreSQL) and servers (the API). rustls everywhere, with the aws-lc-rs provider; certificate
//! verification is on unless a config turns it off for a test setup.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;

/// `tls:` of an HTTP client (the HTTP sinks, the API-pull sources).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// A PEM file of CA certificates to trust besides the system's (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate. For test setups only: it turns off the protection TLS
    /// gives.
    pub insecure: bool,
}

impl TlsConfig {
    pub fn problems(&self, field: &'static str) -> Vec<(&'static str, String)> {
        match &self.ca_file {
            Some(path) if !path.is_file() => vec![(field, format!("ca_file {} does not exist", path.display()))],
            _ => Vec::new(),
        }
    }
}

/// A client for one sink: connection pooling, timeouts, the sink's TLS settings, gzip off
/// (sinks compress request bodies themselves).
pub fn http_client(tls: &TlsConfig, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(32)
        .danger_accept_invalid_certs(tls.insecure);
    if let Some(path) = &tls.ca_file {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem).with_context(|| format!("parsing {}", path.display()))? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().context("building the HTTP client")
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamTlsConfig {
    /// PEM CA certificates to trust instead of the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// Client certificate and key (PEM) for receivers that authenticate senders.
    pub cert_file: Option<std::path::PathBuf>,
    pub key_file: Option<std::path::PathBuf>,
    /// The name the server certificate must carry; default: the host of the address.
    pub server_name: Option<String>,
    /// Accept any server certificate (test setups only).
    pub insecure: bool,
}

/// A TLS connector for a stream client (syslog over TLS) and the server name to check, by
/// default the host of `address` (`host:port`).
pub fn stream_connector(
    tls: &StreamTlsConfig,
    address: &str,
) -> anyhow::Result<(tokio_rustls::TlsConnector, rustls::pki_types::ServerName<'static>)> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = if tls.insecure {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(insecure::AcceptAny(provider)))
    } else if let Some(path) = &tls.ca_file {
        builder.with_root_certificates(roots_from(path)?)
    } else {
        use rustls_platform_verifier::BuilderVerifierExt;
        builder.with_platform_verifier()?
    };
    let client = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .with_context(|| format!("reading {}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("parsing {}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {}", key.display()))?;
            builder.with_client_auth_cert(certs, key)?
        }
        _ => builder.with_no_client_auth(),
    };
    let host = tls.server_name.clone().unwrap_or_else(|| {
        let host = address.rsplit_once(':').map(|(h, _)| h).unwrap_or(address);
        host.trim_start_matches('[').trim_end_matches(']').to_string()
    });
    let name = ServerName::try_from(host.clone()).map_err(|_| anyhow::anyhow!("`{host}` is not a valid TLS server name"))?;
    Ok((tokio_rustls::TlsConnector::from(Arc::new(client)), name))
}

/// The CA certificates of a PEM file, as the only roots to trust.
fn roots_from(path: &std::path::Path) -> anyhow::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).with_context(|| format!("reading {}", path.display()))? {
        roots.add(cert.with_context(|| format!("parsing {}", path.display()))?)?;
    }
    Ok(roots)
}

/// A client config that verifies the server's certificate chain against `ca_file` (or the
/// system's roots), and its host name when `check_host_name`.
pub fn chain_verified_client(ca_file: Option<&std::path::Path>, check_host_name: bool) -> anyhow::Result<rustls::ClientConfig> {
    chain::client_config(ca_file, check_host_name)
}

mod chain {
    //! Clients that verify a server's certificate chain, and its host name only when asked
    //! (PostgreSQL's `sslmode=require` with verification, and `verify-full`).
    use std::path::Path;
    use std::sync::Arc;

    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

    pub fn client_config(ca_file: Option<&Path>, check_host_name: bool) -> anyhow::Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match ca_file {
            Some(path) => WebPkiServerVerifier::builder_with_provider(Arc::new(super::roots_from(path)?), provider.clone()).build()?,
            None => Arc::new(rustls_platform_verifier::Verifier::new(provider.clone())?),
        };
        let verifier = if check_host_name { verifier } else { Arc::new(AnyName(verifier)) };
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth())
    }

    /// Verifies the chain (a name mismatch is only found once the chain is verified), not the
    /// host name.
    #[derive(Debug)]
    struct AnyName(Arc<dyn ServerCertVerifier>);

    impl ServerCertVerifier for AnyName {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls12_signature(message, cert, dss)
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls13_signature(message, cert, dss)
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.supported_verify_schemes()
        }
    }
}

mod insecure {
    //! `tls.insecure`: accepts any certificate, still checking the handshake signatures.
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    #[derive(Debug)]
    pub struct AcceptAny(pub Arc<CryptoProvider>);

    impl ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

/// A server's certificate chain and key (PEM): `api.tls`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// A server config for `files`, offering the `alpn` protocols.
pub fn server_config(files: &TlsFiles, alpn: &[&[u8]]) -> anyhow::Result<rustls::ServerConfig> {
    let certs = CertificateDer::pem_file_iter(&files.cert_file)
        .with_context(|| format!("reading {}", files.cert_file.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", files.cert_file.display()))?;
    let key = PrivateKeyDer::from_pem_file(&files.key_file).with_context(|| format!("reading {}", files.key_file.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the certificate and key do not match")?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}
