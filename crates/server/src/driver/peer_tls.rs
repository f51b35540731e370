//! TLS on the links between members (`sslQuorum`): ZooKeeper's quorum TLS with its PEM key
//! and trust stores (`ssl.quorum.*`), on rustls like the client port (clients/tls.rs, whose
//! PEM readers this uses).
//!
//! Both ends prove themselves: the dialling member shows its certificate as a client
//! certificate and the accepting member requires one that chains to the trust store, as
//! ZooKeeper's QuorumX509Util does; so a process without the ensemble's CA can neither send
//! a member frames nor pose as one to it. With `ssl.quorum.hostnameVerification` (the
//! default) a dialled member's certificate must also name the host of its `server.N` line
//! (an IP address SAN for an address, a DNS SAN for a name); without it, any certificate of
//! the trust store's CA is accepted from any address.
//!
//! `portUnification` lets the quorum port take plain and TLS links alike (told apart by the
//! first byte, 0x16 for a TLS handshake, `Z` for zoocore's hello), which is ZooKeeper's
//! rolling switch: every member with the stores and `portUnification=true`, then
//! `sslQuorum=true` member by member, then `portUnification=false`.
//!
//! The stores are read once at start-up: a missing or bad file stops the server with its
//! name. (ZooKeeper's `sslQuorumReloadCertFiles` is not implemented: a restart, member by
//! member, takes new files.)

use std::sync::Arc;

use futures_rustls::{TlsAcceptor, TlsConnector};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme,
};

use crate::config::QuorumTls;
use crate::tls::{read_key_store, read_trust_store, TlsError};

/// What the peer links of a member with quorum TLS use.
pub struct PeerTls {
    /// Set with `sslQuorum`: links this member dials are TLS.
    pub connector: Option<TlsConnector>,
    pub acceptor: TlsAcceptor,
    /// Whether the quorum port takes TLS links, and plain ones.
    pub accept_tls: bool,
    pub accept_plain: bool,
}

/// Builds the peer TLS set-up from the stores; an error names the file.
pub fn build(q: &QuorumTls) -> Result<PeerTls, TlsError> {
    let bad = |path: &std::path::Path, why: String| TlsError::Bad {
        path: path.to_owned(),
        why,
    };
    let (chain, key) = read_key_store(&q.key_store)?;
    let roots = Arc::new(read_trust_store(&q.trust_store)?);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());

    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| bad(&q.trust_store, format!("unusable trust store: {e}")))?;
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&q.key_store, format!("TLS set-up: {e}")))?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(|e| bad(&q.key_store, format!("unusable key or certificate: {e}")))?;

    let connector = if q.dial_tls {
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| bad(&q.trust_store, format!("unusable trust store: {e}")))?;
        let verifier: Arc<dyn ServerCertVerifier> = if q.hostname_verification {
            webpki
        } else {
            Arc::new(AnyName(webpki))
        };
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(&q.key_store, format!("TLS set-up: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(chain, key)
            .map_err(|e| bad(&q.key_store, format!("unusable key or certificate: {e}")))?;
        Some(TlsConnector::from(Arc::new(client)))
    } else {
        None
    };
    Ok(PeerTls {
        connector,
        acceptor: TlsAcceptor::from(Arc::new(server)),
        accept_tls: q.dial_tls || q.port_unification,
        accept_plain: !q.dial_tls || q.port_unification,
    })
}

/// The name a dialled member's certificate must carry: the host of its `server.N` line.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| format!("{host:?} is not a usable TLS name: {e}"))
}

/// `ssl.quorum.hostnameVerification=false`: the chain is checked as usual, the name is not.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
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
