//! Znode path rules: ZooKeeper's `PathUtils.validatePath`, parent/child splitting, and the
//! ordered key under which the tree stores every znode.
//!
//! The key is the path's depth (number of components, root = 0) as a big-endian `u32`
//! followed by the path's bytes. Ordered byte-wise, all children of `/a` are then one
//! contiguous range (depth(/a)+1, "/a/"...), which lets the tree list children without a
//! per-node child collection. Depth is a `u32` because jute allows paths far longer than
//! 65535 components.

use zoocore_proto::ErrorCode;

/// Length of the depth prefix of a key.
pub(crate) const DEPTH_BYTES: usize = 4;

/// `PathUtils.validatePath(path, isSequential)`: a sequential create is checked as if a
/// digit followed the given prefix, so "/a/" is a valid sequential prefix.
///
/// The rules of `PathUtils.validatePath(String)`, component by component, without
/// allocating (it runs for every request that names a path): no empty component, no "."
/// or ".." component, no NUL and no forbidden character. Java works on UTF-16 code units,
/// so any character outside the BMP (encoded as surrogates, 0xD800..) is rejected, as are
/// the private-use area up to 0xF8FF and 0xFFF0..=0xFFFF. A sequential create's last
/// component gets a counter appended, so it may be empty, "." or "..".
pub fn validate_path(path: &str, is_sequential: bool) -> Result<(), ErrorCode> {
    let bad = Err(ErrorCode::BAD_ARGUMENTS);
    let Some(rest) = path.strip_prefix('/') else {
        return bad;
    };
    if rest.is_empty() {
        // "/" itself, or "/1" for a sequential create.
        return Ok(());
    }
    let mut components = rest.split('/').peekable();
    while let Some(c) = components.next() {
        let counted = is_sequential && components.peek().is_none();
        if !counted && (c.is_empty() || c == "." || c == "..") {
            return bad;
        }
        if c.chars().any(|ch| ch == '\0' || is_forbidden_char(ch)) {
            return bad;
        }
    }
    Ok(())
}

fn is_forbidden_char(c: char) -> bool {
    let u = c as u32;
    (0x01..=0x1f).contains(&u)
        || (0x7f..=0x9f).contains(&u)
        || (0xd800..=0xf8ff).contains(&u)
        || (0xfff0..=0xffff).contains(&u)
        || u > 0xffff
}

/// `path.substring(0, path.lastIndexOf('/'))`, or `None` when there is no slash. The
/// parent of "/a" is "" (ZooKeeper's alias of the root).
pub(crate) fn parent_of(path: &str) -> Option<&str> {
    path.rfind('/').map(|i| &path[..i])
}

/// The root is stored as "/" but ZooKeeper's parent computations yield "".
pub(crate) fn normalize_parent(parent: &str) -> &str {
    if parent.is_empty() {
        "/"
    } else {
        parent
    }
}

/// The last component of a path ("" for the root).
pub(crate) fn child_name(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Number of components: "/" is 0, "/a" is 1, "/a/b" is 2.
pub(crate) fn depth(path: &str) -> u32 {
    if path == "/" {
        return 0;
    }
    let n = path.bytes().filter(|&b| b == b'/').count();
    u32::try_from(n).expect("path depth fits in u32")
}

/// Writes the key of `path` (depth prefix + bytes) into `out`.
pub(crate) fn write_key(out: &mut Vec<u8>, depth: u32, path: &str) {
    out.clear();
    out.extend_from_slice(&depth.to_be_bytes());
    out.extend_from_slice(path.as_bytes());
}

/// The key of a path.
pub(crate) fn key_of(path: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(DEPTH_BYTES + path.len());
    write_key(&mut out, depth(path), path);
    out
}

/// The key of a path for a lookup, on the stack for paths up to 124 bytes: every request
/// looks a node up by path at least once (prep, then apply), so a heap key there is an
/// allocation per request.
pub(crate) fn lookup_key(path: &str) -> smallvec::SmallVec<[u8; 128]> {
    let mut out = smallvec::SmallVec::new();
    out.extend_from_slice(&depth(path).to_be_bytes());
    out.extend_from_slice(path.as_bytes());
    out
}

/// The path a key stores.
pub(crate) fn path_of_key(key: &[u8]) -> &str {
    assert!(key.len() > DEPTH_BYTES, "key shorter than its depth prefix");
    std::str::from_utf8(&key[DEPTH_BYTES..]).expect("keys hold UTF-8 paths")
}

/// The key prefix shared by all children of `path`: (depth+1, "path/").
pub(crate) fn children_prefix(path: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(DEPTH_BYTES + path.len() + 1);
    out.extend_from_slice(&(depth(path) + 1).to_be_bytes());
    if path != "/" {
        out.extend_from_slice(path.as_bytes());
    }
    out.push(b'/');
    out
}

/// Joins a parent path and a child name.
pub(crate) fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Cases from PathUtilsTest / the rules of PathUtils.validatePath.
    #[test]
    fn valid_paths() {
        for p in [
            "/",
            "/a",
            "/a/b",
            "/a.b",
            "/..a",
            "/a..",
            "/.a",
            "/a.",
            "/...",
            "/a/b.c/d",
            "/zookeeper",
            "/\u{00a0}",
        ] {
            assert_eq!(validate_path(p, false), Ok(()), "{p:?}");
        }
    }

    #[test]
    fn invalid_paths() {
        for p in [
            "",
            "a",
            "a/b",
            "//",
            "/a/",
            "/a//b",
            "/.",
            "/..",
            "/a/.",
            "/a/..",
            "/./a",
            "/../a",
            "/a\0b",
            "/a\u{1}",
            "/a\u{7f}",
            "/a\u{9f}",
            "/a\u{e000}",
            "/a\u{f8ff}",
            "/a\u{fff0}",
            "/a\u{ffff}",
            "/a\u{1f600}",
        ] {
            assert_eq!(
                validate_path(p, false),
                Err(ErrorCode::BAD_ARGUMENTS),
                "{p:?}"
            );
        }
    }

    /// PathUtils.validatePath(String) character by character, as Java writes it: the
    /// reference `validate_path` is checked against.
    fn java_validate(path: &str) -> bool {
        if path.is_empty() || !path.starts_with('/') {
            return false;
        }
        if path.len() == 1 {
            return true;
        }
        if path.ends_with('/') {
            return false;
        }
        let chars: Vec<char> = path.chars().collect();
        let mut last = '/';
        for i in 1..chars.len() {
            let c = chars[i];
            let next_is_end = i + 1 == chars.len() || chars[i + 1] == '/';
            if c == '\0' || (c == '/' && last == '/') {
                return false;
            } else if c == '.' && last == '.' {
                if i >= 2 && chars[i - 2] == '/' && next_is_end {
                    return false;
                }
            } else if c == '.' {
                if chars[i - 1] == '/' && next_is_end {
                    return false;
                }
            } else if is_forbidden_char(c) {
                return false;
            }
            last = c;
        }
        true
    }

    /// Every string of up to 6 characters over an alphabet of the characters the rules
    /// treat apart: the same verdict as Java's loop, sequential (path + "1") or not.
    #[test]
    fn agrees_with_javas_loop_on_every_short_path() {
        let alphabet = ['/', '.', 'a', '\0', '\u{1}', '\u{e000}'];
        let mut paths = vec![String::new()];
        let mut checked = 0;
        for _ in 0..6 {
            let mut next = Vec::new();
            for p in &paths {
                for c in alphabet {
                    let mut q = p.clone();
                    q.push(c);
                    next.push(q);
                }
            }
            for p in &next {
                assert_eq!(validate_path(p, false).is_ok(), java_validate(p), "{p:?}");
                let seq = format!("{p}1");
                assert_eq!(
                    validate_path(p, true).is_ok(),
                    java_validate(&seq),
                    "{p:?} sequential"
                );
                checked += 1;
            }
            paths = next;
        }
        assert!(validate_path("", true).is_err());
        assert_eq!(checked, (1..=6).map(|n| 6usize.pow(n)).sum::<usize>());
    }

    #[test]
    fn sequential_prefix_may_end_with_slash() {
        // PathUtils.validatePath(path, true) checks path + "1".
        assert_eq!(validate_path("/a/", true), Ok(()));
        assert_eq!(validate_path("/a/", false), Err(ErrorCode::BAD_ARGUMENTS));
        assert_eq!(validate_path("/", true), Ok(()));
    }

    #[test]
    fn keys_order_children_contiguously() {
        let mut keys: Vec<Vec<u8>> = ["/", "/a", "/a/b", "/a0", "/a/c", "/b", "/a/b/c"]
            .iter()
            .map(|p| key_of(p))
            .collect();
        keys.sort();
        let paths: Vec<&str> = keys.iter().map(|k| path_of_key(k)).collect();
        assert_eq!(paths, ["/", "/a", "/a0", "/b", "/a/b", "/a/c", "/a/b/c"]);
        assert!(key_of("/a/b").starts_with(&children_prefix("/a")));
        assert!(key_of("/a").starts_with(&children_prefix("/")));
        assert!(!key_of("/a/b/c").starts_with(&children_prefix("/a")));
    }

    #[test]
    fn parents() {
        assert_eq!(parent_of("/a"), Some(""));
        assert_eq!(parent_of("/a/b"), Some("/a"));
        assert_eq!(parent_of("a"), None);
        assert_eq!(normalize_parent(""), "/");
        assert_eq!(child_name("/a/b"), "b");
        assert_eq!(depth("/"), 0);
        assert_eq!(depth("/a/b"), 2);
    }
}
