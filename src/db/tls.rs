//! TLS for PostgreSQL connections through rustls, with libpq's `sslmode` semantics:
//! `prefer` and `require` encrypt without verifying the server (unless `sslrootcert` is given:
//! then `require` verifies the chain, as libpq does), `verify-ca` verifies the chain against
//! the root certificates, `verify-full` the chain and the host name. Roots come from
//! `sslrootcert` (a PEM file, or `system` for the Mozilla roots bundled with ocapi), else
//! `~/.postgresql/root.crt` as libpq; a client certificate from `sslcert`/`sslkey`, else
//! `~/.postgresql/postgresql.crt`/`.key` when both exist.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::url::{SslMode, TlsParams};

/// Builds the rustls client config for a URL's TLS parameters; errors name the parameter.
pub(crate) fn client_config(params: &TlsParams) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS setup: {error}"))?;
    let mode = params.mode.unwrap_or(SslMode::Prefer);
    let verify = match mode {
        SslMode::VerifyCa | SslMode::VerifyFull => true,
        SslMode::Require => params.root_cert.is_some(),
        SslMode::Disable | SslMode::Prefer => false,
    };
    let builder = if verify {
        let roots = Arc::new(root_store(params.root_cert.as_deref(), mode)?);
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
            .build()
            .map_err(|error| format!("parameter `sslrootcert`: {error}"))?;
        if mode == SslMode::VerifyFull {
            builder.with_webpki_verifier(webpki)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
        }
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
    };
    match client_identity(params)? {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|error| format!("parameters `sslcert`/`sslkey`: {error}")),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// A file in `~/.postgresql`, where libpq looks by default.
fn home_file(name: &str) -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".postgresql").join(name))
}

/// The root certificates to verify the server against.
fn root_store(root_cert: Option<&str>, mode: SslMode) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    if root_cert == Some("system") {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(store);
    }
    let path = match root_cert {
        Some(path) => PathBuf::from(path),
        None => match home_file("root.crt").filter(|path| path.exists()) {
            Some(path) => path,
            None => {
                let mode = if mode == SslMode::VerifyCa {
                    "verify-ca"
                } else {
                    "verify-full"
                };
                return Err(format!(
                    "`sslmode={mode}` verifies the server's certificate but no root \
                     certificate is given: add parameter `sslrootcert` (a PEM file with your \
                     CA, or `system` for the public certificate authorities)"
                ));
            }
        },
    };
    let certs = read_certs(&path, "sslrootcert")?;
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "parameter `sslrootcert`: no usable certificate in {}",
            path.display()
        ));
    }
    Ok(store)
}

/// PEM certificates from a file.
fn read_certs(path: &std::path::Path, param: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let unreadable = |error: &dyn std::fmt::Display| {
        format!(
            "parameter `{param}`: cannot read {}: {error}",
            path.display()
        )
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|error| unreadable(&error))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| unreadable(&error))?;
    if certs.is_empty() {
        return Err(format!(
            "parameter `{param}`: no PEM certificate in {}",
            path.display()
        ));
    }
    Ok(certs)
}

/// The client certificate and key, when given (or both present in `~/.postgresql`).
type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// Reads the client's certificate and key.
fn client_identity(params: &TlsParams) -> Result<Option<Identity>, String> {
    let (cert, key) = match (&params.cert, &params.key) {
        (Some(cert), Some(key)) => (PathBuf::from(cert), PathBuf::from(key)),
        (Some(_), None) | (None, Some(_)) => {
            return Err("parameters `sslcert` and `sslkey` go together: give both".to_owned())
        }
        (None, None) => match (home_file("postgresql.crt"), home_file("postgresql.key")) {
            (Some(cert), Some(key)) if cert.exists() && key.exists() => (cert, key),
            _ => return Ok(None),
        },
    };
    let certs = read_certs(&cert, "sslcert")?;
    let key = PrivateKeyDer::from_pem_file(&key).map_err(|error| {
        format!(
            "parameter `sslkey`: cannot read a PEM private key from {}: {error}",
            key.display()
        )
    })?;
    Ok(Some((certs, key)))
}

/// `verify-ca`: the chain must lead to a trusted root; the name in it is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the name only once the chain verified: a name error means a good chain.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
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

/// `prefer`/`require`: accepts any server certificate but still checks handshake signatures,
/// as libpq does.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
