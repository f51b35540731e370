//! ACL rules as ZooKeeper's server applies them: `ZooKeeperServer.checkACL`,
//! `PrepRequestProcessor.fixupACL`, and the two default authentication providers,
//! `DigestAuthenticationProvider` (digest) and `IPAuthenticationProvider` (ip, IPv4 only
//! as in the Java source).
//!
//! "ip", "digest" and "x509" (TLS client certificates, whose ids the server attaches) are the
//! registered providers: an ACL with any other scheme (except "world":"anyone" and "auth") is
//! INVALID_ACL, and an authenticated id of another scheme never matches.

use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use zoocore_proto::{Acl, ErrorCode, Id, Perms};

/// `ZooKeeperServer.checkACL`: may a session with these authenticated ids do `perm` on a
/// node with this ACL? An empty ACL allows everything; a ("super", _) id bypasses checks;
/// an entry grants when it shares any bit with `perm` (`(a.getPerms() & perm) != 0`).
pub fn check_acl(acl: &[Acl], perm: Perms, auth: &[Id]) -> bool {
    if acl.is_empty() {
        return true;
    }
    if auth.iter().any(|id| id.scheme == "super") {
        return true;
    }
    for entry in acl {
        if entry.perms.0 & perm.0 == 0 {
            continue;
        }
        if entry.id.scheme == "world" && entry.id.id == "anyone" {
            return true;
        }
        let matched = auth
            .iter()
            .filter(|a| a.scheme == entry.id.scheme)
            .any(|a| provider_matches(&entry.id.scheme, &a.id, &entry.id.id));
        if matched {
            return true;
        }
    }
    false
}

fn provider_matches(scheme: &str, id: &str, acl_expr: &str) -> bool {
    match scheme {
        "digest" => id == acl_expr,
        "ip" => ip_matches(id, acl_expr),
        // X509AuthenticationProvider.matches: the certificate subject, exactly.
        "x509" => id == acl_expr,
        _ => false,
    }
}

/// `DigestAuthenticationProvider.generateDigest`: "user:password" →
/// "user:base64(sha1("user:password"))".
pub fn digest_of(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or("");
    let hash = Sha1::digest(user_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// The ids a digest auth packet (`addauth digest user:password`) adds to a session, as
/// `DigestAuthenticationProvider.handleAuthentication`: ("super", "") first when the digest
/// equals the configured super digest, then ("digest", digest). Invalid UTF-8 → AUTH_FAILED.
pub fn digest_auth_ids(auth_data: &[u8], super_digest: Option<&str>) -> Result<Vec<Id>, ErrorCode> {
    let text = std::str::from_utf8(auth_data).map_err(|_| ErrorCode::AUTH_FAILED)?;
    let digest = digest_of(text);
    let mut ids = Vec::with_capacity(2);
    if super_digest == Some(digest.as_str()) {
        ids.push(Id::new("super", ""));
    }
    ids.push(Id::new("digest", digest));
    Ok(ids)
}

/// Java's `String.split(sep)` count: trailing empty strings are dropped.
fn java_split_count(s: &str, sep: char) -> usize {
    let parts: Vec<&str> = s.split(sep).collect();
    let trailing_empty = parts.iter().rev().take_while(|p| p.is_empty()).count();
    parts.len() - trailing_empty
}

/// `DigestAuthenticationProvider.isValid`: `id.split(":").length == 2`.
fn digest_id_valid(id: &str) -> bool {
    java_split_count(id, ':') == 2
}

/// `IPAuthenticationProvider.v4addr2Bytes`: exactly four dot-separated `Integer.parseInt`
/// values in 0..=255.
fn v4_bytes(addr: &str) -> Option<[u8; 4]> {
    let parts: Vec<&str> = addr.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut out = [0u8; 4];
    for (slot, part) in out.iter_mut().zip(parts) {
        let v: i32 = java_parse_int(part)?;
        *slot = u8::try_from(v).ok()?;
    }
    Some(out)
}

/// `Integer.parseInt`: optional sign, decimal digits only.
fn java_parse_int(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses "a.b.c.d[/bits]" into address and prefix length.
fn parse_ip_expr(expr: &str) -> Option<([u8; 4], u32)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (expr, None),
    };
    let bytes = v4_bytes(addr)?;
    let bits = match bits {
        None => 32,
        Some(b) => u32::try_from(java_parse_int(b)?)
            .ok()
            .filter(|&b| b <= 32)?,
    };
    Some((bytes, bits))
}

fn mask(addr: [u8; 4], bits: u32) -> u32 {
    let v = u32::from_be_bytes(addr);
    if bits == 0 {
        0
    } else {
        v & (u32::MAX << (32 - bits))
    }
}

/// `IPAuthenticationProvider.matches`: the session address under the ACL's prefix.
fn ip_matches(id: &str, acl_expr: &str) -> bool {
    let Some((acl_addr, bits)) = parse_ip_expr(acl_expr) else {
        return false;
    };
    let Some(remote) = v4_bytes(id) else {
        return false;
    };
    mask(acl_addr, bits) == mask(remote, bits)
}

/// `PrepRequestProcessor.fixupACL`: removes duplicates, rejects an empty list, expands
/// "auth" to the session's authenticated ids (digest ids; ip and super are not
/// "authenticated" providers), and checks every other id with its provider.
pub fn fixup_acl(acl: &[Acl], auth: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::INVALID_ACL);
    }
    let mut out = Vec::with_capacity(unique.len());
    for a in unique {
        let id = &a.id;
        if id.scheme == "world" && id.id == "anyone" {
            out.push(a.clone());
        } else if id.scheme == "auth" {
            let mut any = false;
            // Every authenticated provider's ids: digest, and x509 (a TLS client certificate).
            let authenticated = |cid: &&Id| cid.scheme == "digest" || cid.scheme == "x509";
            for cid in auth.iter().filter(authenticated) {
                any = true;
                out.push(Acl {
                    perms: a.perms,
                    id: cid.clone(),
                });
            }
            if !any {
                return Err(ErrorCode::INVALID_ACL);
            }
        } else {
            let valid = match id.scheme.as_str() {
                "digest" => digest_id_valid(&id.id),
                "ip" => parse_ip_expr(&id.id).is_some(),
                "x509" => !id.id.is_empty(),
                _ => false,
            };
            if !valid {
                return Err(ErrorCode::INVALID_ACL);
            }
            out.push(a.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(perms: Perms, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            id: Id::new(scheme, id),
        }
    }

    #[test]
    fn digest_matches_zookeeper() {
        // Known value: DigestAuthenticationProvider.generateDigest("super:test").
        assert_eq!(
            digest_of("super:test"),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
        // Only the first colon separates the user.
        assert!(digest_of("a:b:c").starts_with("a:"));
    }

    #[test]
    fn digest_auth_adds_super_when_matching() {
        let ids =
            digest_auth_ids(b"super:test", Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=")).unwrap();
        assert_eq!(ids[0], Id::new("super", ""));
        assert_eq!(ids[1].scheme, "digest");
        assert_eq!(digest_auth_ids(b"u:p", None).unwrap().len(), 1);
        assert_eq!(digest_auth_ids(&[0xff], None), Err(ErrorCode::AUTH_FAILED));
    }

    #[test]
    fn x509_ids_match_exactly_and_fill_auth_acls() {
        let alice = Id::new("x509", "CN=alice,O=zoocore");
        let only_alice = vec![acl(Perms::ALL, "x509", "CN=alice,O=zoocore")];
        assert!(check_acl(
            &only_alice,
            Perms::READ,
            std::slice::from_ref(&alice)
        ));
        assert!(!check_acl(
            &only_alice,
            Perms::READ,
            &[Id::new("x509", "CN=alice,O=zoocore,C=DE")]
        ));
        assert!(!check_acl(
            &only_alice,
            Perms::READ,
            &[Id::new("digest", "CN=alice,O=zoocore")]
        ));
        assert_eq!(fixup_acl(&only_alice, &[]), Ok(only_alice.clone()));
        assert_eq!(
            fixup_acl(&[acl(Perms::ALL, "x509", "")], &[]),
            Err(ErrorCode::INVALID_ACL)
        );
        let creator = [acl(Perms::ALL, "auth", "")];
        let ip = Id::new("ip", "127.0.0.1");
        assert_eq!(fixup_acl(&creator, &[ip, alice]), Ok(only_alice));
    }

    #[test]
    fn check_acl_rules() {
        let open = Acl::open_unsafe();
        assert!(check_acl(&open, Perms::WRITE, &[]));
        assert!(check_acl(&[], Perms::ADMIN, &[]), "empty ACL allows all");
        let read_only = Acl::read_unsafe();
        assert!(!check_acl(&read_only, Perms::WRITE, &[]));
        assert!(
            check_acl(&read_only, Perms::WRITE, &[Id::new("super", "")]),
            "super bypasses"
        );
        let d = digest_of("u:p");
        let dig = vec![acl(Perms::ALL, "digest", &d)];
        assert!(check_acl(
            &dig,
            Perms::READ,
            &[Id::new("digest", d.clone())]
        ));
        assert!(!check_acl(
            &dig,
            Perms::READ,
            &[Id::new("digest", "u:other")]
        ));
        assert!(
            !check_acl(&dig, Perms::READ, &[Id::new("ip", d.as_str())]),
            "scheme must match"
        );
        // Perm bits must intersect.
        let w = vec![acl(Perms::WRITE, "world", "anyone")];
        assert!(!check_acl(&w, Perms::READ, &[]));
    }

    #[test]
    fn ip_cidr_matching() {
        let net = vec![acl(Perms::ALL, "ip", "10.1.0.0/16")];
        assert!(check_acl(&net, Perms::READ, &[Id::new("ip", "10.1.200.3")]));
        assert!(!check_acl(&net, Perms::READ, &[Id::new("ip", "10.2.0.1")]));
        let host = vec![acl(Perms::ALL, "ip", "127.0.0.1")];
        assert!(check_acl(&host, Perms::READ, &[Id::new("ip", "127.0.0.1")]));
        assert!(!check_acl(
            &host,
            Perms::READ,
            &[Id::new("ip", "127.0.0.2")]
        ));
        assert!(ip_matches("1.2.3.4", "0.0.0.0/0"));
        assert!(ip_matches("10.1.2.3", "10.1.2.0/23"));
        assert!(!ip_matches("10.1.4.3", "10.1.2.0/23"));
        assert!(!ip_matches("::1", "10.0.0.0/8"));
    }

    #[test]
    fn fixup_acl_rules() {
        let d = digest_of("u:p");
        let auth = vec![Id::new("ip", "127.0.0.1"), Id::new("digest", d.clone())];
        // Empty → INVALID_ACL.
        assert_eq!(fixup_acl(&[], &auth), Err(ErrorCode::INVALID_ACL));
        // "auth" expands to the digest ids only.
        let out = fixup_acl(&[acl(Perms::ALL, "auth", "")], &auth).unwrap();
        assert_eq!(out, vec![acl(Perms::ALL, "digest", &d)]);
        // "auth" with only an ip id → INVALID_ACL (ip is not an authenticated provider).
        assert_eq!(
            fixup_acl(&[acl(Perms::ALL, "auth", "")], &auth[..1]),
            Err(ErrorCode::INVALID_ACL)
        );
        // digest needs exactly one colon-separated pair (Java split drops trailing "").
        assert_eq!(
            fixup_acl(&[acl(Perms::ALL, "digest", "nocolon")], &[]),
            Err(ErrorCode::INVALID_ACL)
        );
        assert_eq!(
            fixup_acl(&[acl(Perms::ALL, "digest", "u:")], &[]),
            Err(ErrorCode::INVALID_ACL)
        );
        assert_eq!(
            fixup_acl(&[acl(Perms::ALL, "digest", "a:b:c")], &[]),
            Err(ErrorCode::INVALID_ACL)
        );
        assert!(fixup_acl(&[acl(Perms::ALL, "digest", ":h")], &[]).is_ok());
        // ip must parse; bits in 0..=32.
        assert!(fixup_acl(&[acl(Perms::ALL, "ip", "10.0.0.0/8")], &[]).is_ok());
        assert_eq!(
            fixup_acl(&[acl(Perms::ALL, "ip", "10.0.0/8")], &[]),
            Err(ErrorCode::INVALID_ACL)
        );
        assert_eq!(
            fixup_acl(&[acl(Perms::ALL, "ip", "10.0.0.0/33")], &[]),
            Err(ErrorCode::INVALID_ACL)
        );
        assert_eq!(
            fixup_acl(&[acl(Perms::ALL, "ip", "300.0.0.0")], &[]),
            Err(ErrorCode::INVALID_ACL)
        );
        // Unknown schemes, and world with another id.
        assert_eq!(
            fixup_acl(&[acl(Perms::ALL, "sasl", "x")], &[]),
            Err(ErrorCode::INVALID_ACL)
        );
        assert_eq!(
            fixup_acl(&[acl(Perms::ALL, "world", "bob")], &[]),
            Err(ErrorCode::INVALID_ACL)
        );
        // Duplicates are removed.
        let dup = [Acl::open_unsafe(), Acl::open_unsafe()].concat();
        assert_eq!(fixup_acl(&dup, &[]).unwrap().len(), 1);
    }
}
