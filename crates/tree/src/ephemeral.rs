//! ZooKeeper's encoding of node kinds in `ephemeralOwner` (server/EphemeralType.java):
//! 0 is a persistent node, `i64::MIN` (only the high bit) a container, and, when extended
//! types are enabled (`zookeeper.extendedTypesEnabled`), high byte 0xff with the next two
//! bytes 0 a TTL node whose low 40 bits are the TTL in milliseconds. Anything else is the
//! owning session of an ephemeral node.

/// `EphemeralType.CONTAINER_EPHEMERAL_OWNER`.
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// `EXTENDED_MASK`: the high byte of an extended owner.
const EXTENDED_MASK: i64 = 0xff00_0000_0000_0000_u64 as i64;
/// `RESERVED_BITS_MASK`: the extended feature bits (0 = TTL).
const RESERVED_BITS_MASK: i64 = 0x00ff_ff00_0000_0000;
/// `EphemeralType.TTL.maxValue()`: 2^40 - 1 ms, about 34 years.
pub const TTL_MAX_MS: i64 = 0x0000_00ff_ffff_ffff;

/// `EphemeralType`, with the TTL value carried.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EphemeralType {
    Void,
    Normal,
    Container,
    Ttl(i64),
}

/// `EphemeralType.get(ephemeralOwner)`. An extended owner with an unknown feature makes
/// ZooKeeper throw; no txn prep produces one, and here it counts as a session owner.
pub fn ephemeral_type(owner: i64, extended_types: bool) -> EphemeralType {
    if extended_types && owner & EXTENDED_MASK == EXTENDED_MASK && owner & RESERVED_BITS_MASK == 0 {
        return EphemeralType::Ttl(owner & TTL_MAX_MS);
    }
    match owner {
        CONTAINER_OWNER => EphemeralType::Container,
        0 => EphemeralType::Void,
        _ => EphemeralType::Normal,
    }
}

/// `EphemeralType.TTL.toEphemeralOwner(ttl)`: `None` unless 0 < ttl <= TTL_MAX_MS.
pub fn ttl_owner(ttl_ms: i64) -> Option<i64> {
    if ttl_ms <= 0 || ttl_ms > TTL_MAX_MS {
        return None;
    }
    Some(EXTENDED_MASK | ttl_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_ephemeral_type_java() {
        // "an ephemeralOwner with a TTL value of 1 millisecond is 0xff00000000000001".
        assert_eq!(ttl_owner(1), Some(0xff00_0000_0000_0001_u64 as i64));
        assert_eq!(ttl_owner(0), None);
        assert_eq!(ttl_owner(-5), None);
        assert_eq!(ttl_owner(TTL_MAX_MS + 1), None);
        assert_eq!(
            ephemeral_type(0xff00_0000_0000_0001_u64 as i64, true),
            EphemeralType::Ttl(1)
        );
        // With extended types off a TTL owner reads as a session (NORMAL), as in Java.
        assert_eq!(
            ephemeral_type(0xff00_0000_0000_0001_u64 as i64, false),
            EphemeralType::Normal
        );
        // Containers are recognised whether or not extended types are on.
        assert_eq!(
            ephemeral_type(CONTAINER_OWNER, false),
            EphemeralType::Container
        );
        assert_eq!(
            ephemeral_type(CONTAINER_OWNER, true),
            EphemeralType::Container
        );
        assert_eq!(ephemeral_type(0, true), EphemeralType::Void);
        assert_eq!(ephemeral_type(0x1234, true), EphemeralType::Normal);
    }
}
