//! The protocol's value types: the newtypes zoocore uses for identifiers, and the jute
//! records every other record is built from (Stat, Id, ACL).

use std::fmt;

use crate::jute::{DecodeError, Reader, Record, Writer};

/// A ZooKeeper transaction id: epoch in the high 32 bits, counter in the low 32.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Zxid(pub i64);

impl Zxid {
    pub const ZERO: Zxid = Zxid(0);

    pub fn new(epoch: u32, counter: u32) -> Self {
        Zxid(((u64::from(epoch) << 32) | u64::from(counter)) as i64)
    }

    pub fn epoch(self) -> u32 {
        ((self.0 as u64) >> 32) as u32
    }

    pub fn counter(self) -> u32 {
        self.0 as u64 as u32
    }

    /// The next zxid of the same epoch.
    pub fn next(self) -> Zxid {
        assert!(
            self.counter() < u32::MAX,
            "zxid counter overflow in epoch {}",
            self.epoch()
        );
        Zxid(self.0 + 1)
    }
}

impl fmt::Debug for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// A session id; 0 means "no session" (a new connection asks for one).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SessionId(pub i64);

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// A request id chosen by the client. Negative values are reserved for the protocol's own
/// packets.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct Xid(pub i32);

impl Xid {
    /// Watch events.
    pub const NOTIFICATION: Xid = Xid(-1);
    pub const PING: Xid = Xid(-2);
    pub const AUTH: Xid = Xid(-4);
    pub const SET_WATCHES: Xid = Xid(-8);
}

/// ACL permission bits (ZooDefs.Perms).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Perms(pub i32);

impl Perms {
    pub const READ: Perms = Perms(1);
    pub const WRITE: Perms = Perms(2);
    pub const CREATE: Perms = Perms(4);
    pub const DELETE: Perms = Perms(8);
    pub const ADMIN: Perms = Perms(16);
    pub const ALL: Perms = Perms(31);

    pub fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }
}

/// An identity: a scheme and an id within it ("world"/"anyone", "digest"/"user:hash", "ip"/"10.0.0.0/8").
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Id {
    pub scheme: String,
    pub id: String,
}

impl Id {
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    pub fn anyone() -> Self {
        Self::new("world", "anyone")
    }
}

impl Record for Id {
    fn encode(&self, w: &mut Writer) {
        w.write_str(&self.scheme);
        w.write_str(&self.id);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            scheme: r.read_string()?,
            id: r.read_string_or_empty()?,
        })
    }
}

/// One ACL entry: permissions granted to an identity.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Acl {
    pub perms: Perms,
    pub id: Id,
}

impl Acl {
    /// ZooDefs.Ids.OPEN_ACL_UNSAFE's single entry.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: Perms::ALL,
            id: Id::anyone(),
        }]
    }

    /// ZooDefs.Ids.READ_ACL_UNSAFE's single entry.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: Perms::READ,
            id: Id::anyone(),
        }]
    }
}

impl Record for Acl {
    fn encode(&self, w: &mut Writer) {
        w.write_i32(self.perms.0);
        self.id.encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            perms: Perms(r.read_i32()?),
            id: Id::decode(r)?,
        })
    }
}

/// A znode's metadata, in jute field order (data.jute `Stat`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

impl Record for Stat {
    fn encode(&self, w: &mut Writer) {
        w.write_i64(self.czxid);
        w.write_i64(self.mzxid);
        w.write_i64(self.ctime);
        w.write_i64(self.mtime);
        w.write_i32(self.version);
        w.write_i32(self.cversion);
        w.write_i32(self.aversion);
        w.write_i64(self.ephemeral_owner);
        w.write_i32(self.data_length);
        w.write_i32(self.num_children);
        w.write_i64(self.pzxid);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            czxid: r.read_i64()?,
            mzxid: r.read_i64()?,
            ctime: r.read_i64()?,
            mtime: r.read_i64()?,
            version: r.read_i32()?,
            cversion: r.read_i32()?,
            aversion: r.read_i32()?,
            ephemeral_owner: r.read_i64()?,
            data_length: r.read_i32()?,
            num_children: r.read_i32()?,
            pzxid: r.read_i64()?,
        })
    }
}

/// How a znode is created (CreateMode), from the `flags` of a create request.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CreateMode {
    Persistent,
    Ephemeral,
    PersistentSequential,
    EphemeralSequential,
    Container,
    PersistentWithTtl,
    PersistentSequentialWithTtl,
}

impl CreateMode {
    pub fn from_flags(flags: i32) -> Option<Self> {
        Some(match flags {
            0 => CreateMode::Persistent,
            1 => CreateMode::Ephemeral,
            2 => CreateMode::PersistentSequential,
            3 => CreateMode::EphemeralSequential,
            4 => CreateMode::Container,
            5 => CreateMode::PersistentWithTtl,
            6 => CreateMode::PersistentSequentialWithTtl,
            _ => return None,
        })
    }

    pub fn flags(self) -> i32 {
        match self {
            CreateMode::Persistent => 0,
            CreateMode::Ephemeral => 1,
            CreateMode::PersistentSequential => 2,
            CreateMode::EphemeralSequential => 3,
            CreateMode::Container => 4,
            CreateMode::PersistentWithTtl => 5,
            CreateMode::PersistentSequentialWithTtl => 6,
        }
    }

    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }

    pub fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zxid_splits_epoch_and_counter() {
        let z = Zxid::new(3, 7);
        assert_eq!(z.epoch(), 3);
        assert_eq!(z.counter(), 7);
        assert_eq!(z.next(), Zxid::new(3, 8));
        assert_eq!(format!("{z}"), "0x300000007");
    }

    #[test]
    fn stat_is_68_bytes_in_field_order() {
        let stat = Stat {
            czxid: 1,
            pzxid: 2,
            num_children: 3,
            ..Stat::default()
        };
        let bytes = stat.to_bytes();
        assert_eq!(bytes.len(), 68);
        assert_eq!(&bytes[0..8], &1i64.to_be_bytes());
        assert_eq!(&bytes[56..60], &3i32.to_be_bytes());
        assert_eq!(&bytes[60..68], &2i64.to_be_bytes());
        assert_eq!(Stat::from_bytes(&bytes), Ok(stat));
    }
}
