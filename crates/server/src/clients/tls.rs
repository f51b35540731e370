//! TLS for client connections (`secureClientPort`): the rustls server configuration built
//! from ZooKeeper's PEM key and trust stores, and the `x509` id a client certificate proves.
//!
//! The configuration is built once at start-up, so a missing, unreadable or malformed file
//! stops the server with an error naming it, never a client's handshake later. ZooKeeper's PEM
//! key store (PEMFileLoader) is one file holding the private key and the certificate chain; the
//! trust store holds the CA certificates. With `ssl.clientAuth=need` (ZooKeeper's default) a
//! client without a trusted certificate fails the handshake; with `want` it is served without
//! an `x509` id. A trusted certificate's subject, written as Java's
//! `X500Principal.getName()` writes it (RFC 2253), becomes the id `x509:<subject>`, as
//! X509AuthenticationProvider does, and `super` too when it equals
//! `X509AuthenticationProvider.superUser`. The subject is read from the certificate's DER by
//! the small reader below: only the Name of the end-entity certificate, which rustls has
//! already verified, is looked at.
//!
//! With `client.certReload=true` each shard looks at the stores' files every
//! [`RELOAD_CHECK_MS`] and, when one changed, builds a new acceptor for the connections that
//! come after; open connections keep the certificates they were set up with. Files that do not
//! load (half written, or bad) leave the old certificates in place, logged once per version.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_rustls::TlsAcceptor;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use zoocore_proto::Id;

use crate::config::{ClientAuth, ClientTls};

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {why}")]
    Bad { path: PathBuf, why: String },
}

/// The acceptor every shard's secure listener hands its connections to.
pub fn acceptor(tls: &ClientTls) -> Result<TlsAcceptor, TlsError> {
    let bad = |path: &Path, why: String| TlsError::Bad {
        path: path.to_owned(),
        why,
    };
    let (chain, key) = read_key_store(&tls.key_store)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&tls.key_store, format!("TLS set-up: {e}")))?;
    let builder = match (&tls.trust_store, tls.client_auth) {
        (Some(path), ClientAuth::Need | ClientAuth::Want) => {
            let roots = read_trust_store(path)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider);
            let verifier = if tls.client_auth == ClientAuth::Want {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| bad(path, format!("unusable trust store: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        // config.rs refuses need/want without a trust store.
        _ => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| bad(&tls.key_store, format!("unusable key or certificate: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// How often a shard looks at the store files with `client.certReload` (ZooKeeper watches
/// them with inotify; a stat a second per shard costs as little and needs no thread).
pub const RELOAD_CHECK_MS: u64 = 1000;

/// What identifies a version of the store files: each one's modification time and length.
type Stamps = Vec<Option<(SystemTime, u64)>>;

fn stamps(tls: &ClientTls) -> Stamps {
    std::iter::once(&tls.key_store)
        .chain(tls.trust_store.as_ref())
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

/// Replaces `current` whenever the store files change (`client.certReload`); runs for ever.
pub async fn reload_loop(tls: ClientTls, current: Rc<RefCell<TlsAcceptor>>, shard: usize) {
    let mut loaded = stamps(&tls);
    let mut failed: Option<Stamps> = None;
    loop {
        glommio::timer::sleep(Duration::from_millis(RELOAD_CHECK_MS)).await;
        let now = stamps(&tls);
        if now == loaded || failed.as_ref() == Some(&now) {
            continue;
        }
        match acceptor(&tls) {
            Ok(fresh) => {
                *current.borrow_mut() = fresh;
                loaded = now;
                failed = None;
                tracing::info!("shard {shard}: TLS certificates reloaded");
            }
            Err(e) => {
                tracing::warn!(
                    "shard {shard}: TLS certificates not reloaded, keeping the old: {e}"
                );
                failed = Some(now);
            }
        }
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The private key and the certificate chain (end-entity first, as PEMFileLoader expects).
pub(crate) fn read_key_store(
    path: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let bytes = read_file(path)?;
    let bad = |why: String| TlsError::Bad {
        path: path.to_owned(),
        why,
    };
    let chain = read_certs(&bytes).map_err(&bad)?;
    if chain.is_empty() {
        return Err(bad("no CERTIFICATE in the key store".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        if contains(&bytes, b"ENCRYPTED PRIVATE KEY") {
            bad(
                "the private key is encrypted; zoocore reads only unencrypted PEM keys \
                 (`openssl pkey -in key.pem -out plain.pem`)"
                    .into(),
            )
        } else {
            bad(format!("no usable PRIVATE KEY: {e}"))
        }
    })?;
    Ok((chain, key))
}

pub(crate) fn read_trust_store(path: &Path) -> Result<RootCertStore, TlsError> {
    let bad = |why: String| TlsError::Bad {
        path: path.to_owned(),
        why,
    };
    let certs = read_certs(&read_file(path)?).map_err(&bad)?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE in the trust store".into()));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| bad(format!("unusable CA certificate: {e}")))?;
    }
    Ok(roots)
}

fn read_certs(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("malformed PEM: {e}"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The ids a verified client certificate chain proves: `super` first when its subject is the
/// configured super user, then `x509:<subject>` (X509AuthenticationProvider). A subject that
/// cannot be read proves nothing: the connection is served without an x509 id.
pub fn client_ids(chain: Option<&[CertificateDer<'_>]>, super_user: Option<&str>) -> Vec<Id> {
    let Some(subject) = chain
        .and_then(|c| c.first())
        .and_then(|cert| subject_rfc2253(cert).ok())
    else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    if super_user == Some(subject.as_str()) {
        ids.push(Id::new("super", subject.clone()));
    }
    ids.push(Id::new("x509", subject));
    ids
}

/// A certificate's subject as `X500Principal.getName()` (RFC 2253) writes it: RDNs last to
/// first, joined by ','; the attribute types RFC 2253 names by keyword (CN, L, ST, O, OU, C,
/// STREET, DC, UID), any other by its dotted OID with the value as '#' and the hex of its DER;
/// string values with `,=+<>#;"\` escaped, and leading or trailing spaces.
pub fn subject_rfc2253(cert_der: &[u8]) -> Result<String, String> {
    let (cert, _) = Der::new(cert_der).expect(0x30)?;
    let (tbs, _) = cert.expect(0x30)?;
    let mut tbs = tbs;
    if tbs.peek() == Some(0xa0) {
        tbs = tbs.skip()?; // version
    }
    // serialNumber, signature, issuer, validity, then subject.
    let tbs = tbs.skip()?.skip()?.skip()?.skip()?;
    let (mut name, _) = tbs.expect(0x30)?;
    let mut rdns = Vec::new();
    while !name.is_empty() {
        let (mut set, rest) = name.expect(0x31)?;
        name = rest;
        let mut avas = Vec::new();
        while !set.is_empty() {
            let (ava, rest) = set.expect(0x30)?;
            set = rest;
            avas.push(ava_rfc2253(ava)?);
        }
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

fn ava_rfc2253(ava: Der<'_>) -> Result<String, String> {
    let (oid, rest) = ava.expect(0x06)?;
    let (tag, value, whole, _) = rest.tlv()?;
    let oid = oid_string(oid.0)?;
    let keyword = match oid.as_str() {
        "2.5.4.3" => Some("CN"),
        "2.5.4.7" => Some("L"),
        "2.5.4.8" => Some("ST"),
        "2.5.4.10" => Some("O"),
        "2.5.4.11" => Some("OU"),
        "2.5.4.6" => Some("C"),
        "2.5.4.9" => Some("STREET"),
        "0.9.2342.19200300.100.1.25" => Some("DC"),
        "0.9.2342.19200300.100.1.1" => Some("UID"),
        _ => None,
    };
    match (keyword, string_value(tag, value)) {
        (Some(keyword), Some(text)) => Ok(format!("{keyword}={}", escape(&text))),
        (keyword, _) => {
            let mut out = format!("{}=#", keyword.unwrap_or(&oid));
            for b in whole {
                let _ = write!(out, "{b:02x}");
            }
            Ok(out)
        }
    }
}

/// The text of a DirectoryString (and IA5String) value; `None` for other types.
fn string_value(tag: u8, value: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String, VisibleString
        0x0c | 0x13 | 0x16 | 0x1a => std::str::from_utf8(value).ok().map(str::to_owned),
        // TeletexString, read as Latin-1 as Java does
        0x14 => Some(value.iter().map(|&b| char::from(b)).collect()),
        // BMPString
        0x1e if value.chunks_exact(2).remainder().is_empty() => {
            let units: Vec<u16> = value
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        // UniversalString
        0x1c if value.chunks_exact(4).remainder().is_empty() => value
            .chunks_exact(4)
            .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        _ => None,
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let last = text.chars().count().saturating_sub(1);
    for (i, c) in text.chars().enumerate() {
        let edge_space = c == ' ' && (i == 0 || i == last);
        if ",=+<>#;\"\\".contains(c) || edge_space {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn oid_string(bytes: &[u8]) -> Result<String, String> {
    let mut arcs = Vec::new();
    let mut value: u64 = 0;
    for &b in bytes {
        if value > u64::MAX >> 7 {
            return Err("OID arc too large".into());
        }
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(value);
            value = 0;
        }
    }
    let Some(&first) = arcs.first() else {
        return Err("empty OID".into());
    };
    let (a, b) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut out = format!("{a}.{b}");
    for arc in &arcs[1..] {
        let _ = write!(out, ".{arc}");
    }
    Ok(out)
}

/// A slice of DER read one element at a time.
#[derive(Clone, Copy)]
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Der(bytes)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// The next element: its tag, its contents, the whole element, and what follows it.
    #[allow(clippy::type_complexity)]
    fn tlv(self) -> Result<(u8, &'a [u8], &'a [u8], Der<'a>), String> {
        let short = || "truncated DER".to_string();
        let (&tag, rest) = self.0.split_first().ok_or_else(short)?;
        let (&first, rest) = rest.split_first().ok_or_else(short)?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err("bad DER length".into());
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return Err(short());
        }
        let header = self.0.len() - rest.len();
        Ok((
            tag,
            &rest[..len],
            &self.0[..header + len],
            Der(&rest[len..]),
        ))
    }

    /// The contents of the next element, which must have `tag`, and what follows it.
    fn expect(self, tag: u8) -> Result<(Der<'a>, Der<'a>), String> {
        let (got, contents, _, rest) = self.tlv()?;
        if got != tag {
            return Err(format!("expected DER tag {tag:#04x}, found {got:#04x}"));
        }
        Ok((Der(contents), rest))
    }

    fn skip(self) -> Result<Der<'a>, String> {
        Ok(self.tlv()?.3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DER of one element.
    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if contents.len() < 0x80 {
            out.push(contents.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(contents.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(contents);
        out
    }

    fn ava(oid: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
        tlv(
            0x31,
            &tlv(0x30, &[tlv(0x06, oid), tlv(tag, value)].concat()),
        )
    }

    /// A certificate shell: only what the subject reader walks over is well formed.
    fn cert_with_subject(rdns: &[Vec<u8>]) -> Vec<u8> {
        let subject = tlv(0x30, &rdns.concat());
        let tbs = [
            tlv(0xa0, &tlv(0x02, &[2])),
            tlv(0x02, &[1]),
            tlv(0x30, &[]),
            tlv(0x30, &[]),
            tlv(0x30, &[]),
            subject,
            tlv(0x30, &[0; 200]),
        ]
        .concat();
        tlv(
            0x30,
            &[tlv(0x30, &tbs), tlv(0x30, &[]), tlv(0x03, &[0])].concat(),
        )
    }

    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    const C: &[u8] = &[0x55, 0x04, 0x06];
    const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];

    #[test]
    fn subject_is_written_last_rdn_first_as_java_does() {
        let cert = cert_with_subject(&[
            ava(C, 0x13, b"DE"),
            ava(O, 0x0c, b"zoo, core"),
            ava(CN, 0x0c, b" client#1 "),
        ]);
        assert_eq!(
            subject_rfc2253(&cert).unwrap(),
            "CN=\\ client\\#1\\ ,O=zoo\\, core,C=DE"
        );
    }

    #[test]
    fn unnamed_attributes_are_oid_and_hex() {
        let cert = cert_with_subject(&[ava(EMAIL, 0x16, b"a@b"), ava(CN, 0x13, b"x")]);
        assert_eq!(
            subject_rfc2253(&cert).unwrap(),
            "CN=x,1.2.840.113549.1.9.1=#1603614062"
        );
    }

    #[test]
    fn multi_valued_rdns_join_with_plus_and_bmp_strings_decode() {
        let rdn = tlv(
            0x31,
            &[
                tlv(
                    0x30,
                    &[tlv(0x06, CN), tlv(0x1e, &[0, b'a', 0, b'b'])].concat(),
                ),
                tlv(0x30, &[tlv(0x06, O), tlv(0x13, b"o")].concat()),
            ]
            .concat(),
        );
        let cert = cert_with_subject(&[rdn]);
        assert_eq!(subject_rfc2253(&cert).unwrap(), "CN=ab+O=o");
    }

    #[test]
    fn truncated_der_is_an_error_not_a_panic() {
        let cert = cert_with_subject(&[ava(CN, 0x0c, b"client")]);
        for cut in 0..cert.len() {
            let _ = subject_rfc2253(&cert[..cut]);
        }
        assert!(subject_rfc2253(&cert[..cert.len() / 2]).is_err());
        assert!(subject_rfc2253(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn client_ids_add_super_for_the_super_user() {
        let der = cert_with_subject(&[ava(CN, 0x0c, b"root")]);
        let chain = [CertificateDer::from(der)];
        assert_eq!(
            client_ids(Some(&chain), Some("CN=root")),
            vec![Id::new("super", "CN=root"), Id::new("x509", "CN=root")]
        );
        assert_eq!(
            client_ids(Some(&chain), Some("CN=other")),
            vec![Id::new("x509", "CN=root")]
        );
        assert!(client_ids(None, Some("CN=root")).is_empty());
    }

    #[test]
    fn bad_key_stores_name_their_file() {
        let dir = std::env::temp_dir().join(format!("zoocore-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key.pem");
        let tls = ClientTls {
            addr: Some("127.0.0.1:2281".parse().unwrap()),
            port_unification: false,
            key_store: path.clone(),
            trust_store: None,
            client_auth: ClientAuth::None,
            super_user: None,
            cert_reload: false,
        };
        let err = acceptor(&tls).err().unwrap().to_string();
        assert!(
            err.starts_with(&format!("{}: cannot read", path.display())),
            "{err}"
        );
        std::fs::write(&path, "not pem at all").unwrap();
        let err = acceptor(&tls).err().unwrap().to_string();
        assert!(err.contains("no CERTIFICATE"), "{err}");
        std::fs::write(
            &path,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n\
             -----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = acceptor(&tls).err().unwrap().to_string();
        assert!(err.contains("encrypted"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
