//! Numeric codes of the protocol: opcodes, error codes, watch event types and session
//! states, with ZooKeeper 3.9's values (ZooDefs.OpCode, KeeperException.Code,
//! Watcher.Event.EventType and KeeperState).

use std::fmt;

/// Defines a C-like enum over `i32` with a fallible conversion from the wire value.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $value:expr),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(i32)]
        pub enum $name { $($variant = $value),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn from_i32(v: i32) -> Option<Self> {
                match v { $($value => Some($name::$variant),)+ _ => None }
            }

            pub fn as_i32(self) -> i32 {
                self as i32
            }
        }
    };
}

wire_enum!(
    /// Request opcodes (ZooDefs.OpCode).
    OpCode {
        Notification = 0,
        Create = 1,
        Delete = 2,
        Exists = 3,
        GetData = 4,
        SetData = 5,
        GetAcl = 6,
        SetAcl = 7,
        GetChildren = 8,
        Sync = 9,
        Ping = 11,
        GetChildren2 = 12,
        Check = 13,
        Multi = 14,
        Create2 = 15,
        Reconfig = 16,
        CheckWatches = 17,
        RemoveWatches = 18,
        CreateContainer = 19,
        DeleteContainer = 20,
        CreateTtl = 21,
        MultiRead = 22,
        Auth = 100,
        SetWatches = 101,
        Sasl = 102,
        GetEphemerals = 103,
        GetAllChildrenNumber = 104,
        SetWatches2 = 105,
        AddWatch = 106,
        WhoAmI = 107,
        CreateSession = -10,
        CloseSession = -11,
        Error = -1,
    }
);

impl OpCode {
    /// Whether the request changes the tree (goes through prep, the log and commit).
    pub fn is_write(self) -> bool {
        matches!(
            self,
            OpCode::Create
                | OpCode::Create2
                | OpCode::CreateContainer
                | OpCode::CreateTtl
                | OpCode::Delete
                | OpCode::DeleteContainer
                | OpCode::SetData
                | OpCode::SetAcl
                | OpCode::Check
                | OpCode::Multi
                | OpCode::Reconfig
                | OpCode::CreateSession
                | OpCode::CloseSession
        )
    }
}

wire_enum!(
    /// Watch event types (Watcher.Event.EventType).
    EventType {
        None = -1,
        NodeCreated = 1,
        NodeDeleted = 2,
        NodeDataChanged = 3,
        NodeChildrenChanged = 4,
        DataWatchRemoved = 5,
        ChildWatchRemoved = 6,
        PersistentWatchRemoved = 7,
    }
);

wire_enum!(
    /// Session states carried in watch events (Watcher.Event.KeeperState).
    KeeperState {
        Disconnected = 0,
        SyncConnected = 3,
        AuthFailed = 4,
        ConnectedReadOnly = 5,
        SaslAuthenticated = 6,
        Expired = -112,
        Closed = 7,
    }
);

/// A reply's error code (KeeperException.Code). A newtype rather than an enum so that any
/// value a peer sends survives a round trip.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub i32);

macro_rules! error_codes {
    ($($name:ident = $value:expr),+ $(,)?) => {
        impl ErrorCode {
            $(pub const $name: ErrorCode = ErrorCode($value);)+

            /// ZooKeeper's name for the code, as its exceptions and zkCli print it.
            pub fn name(self) -> Option<&'static str> {
                match self.0 { $($value => Some(stringify!($name)),)+ _ => None }
            }
        }
    };
}

error_codes!(
    OK = 0,
    SYSTEM_ERROR = -1,
    RUNTIME_INCONSISTENCY = -2,
    DATA_INCONSISTENCY = -3,
    CONNECTION_LOSS = -4,
    MARSHALLING_ERROR = -5,
    UNIMPLEMENTED = -6,
    OPERATION_TIMEOUT = -7,
    BAD_ARGUMENTS = -8,
    UNKNOWN_SESSION = -12,
    NEW_CONFIG_NO_QUORUM = -13,
    RECONFIG_IN_PROGRESS = -14,
    API_ERROR = -100,
    NO_NODE = -101,
    NO_AUTH = -102,
    BAD_VERSION = -103,
    NO_CHILDREN_FOR_EPHEMERALS = -108,
    NODE_EXISTS = -110,
    NOT_EMPTY = -111,
    SESSION_EXPIRED = -112,
    INVALID_CALLBACK = -113,
    INVALID_ACL = -114,
    AUTH_FAILED = -115,
    SESSION_MOVED = -118,
    NOT_READ_ONLY = -119,
    EPHEMERAL_ON_LOCAL_SESSION = -120,
    NO_WATCHER = -121,
    REQUEST_TIMEOUT = -122,
    RECONFIG_DISABLED = -123,
    SESSION_CLOSED_REQUIRE_SASL_AUTH = -124,
    QUOTA_EXCEEDED = -125,
    THROTTLED_OP = -127,
);

impl ErrorCode {
    pub fn is_ok(self) -> bool {
        self == ErrorCode::OK
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}({})", self.0),
            None => write!(f, "ErrorCode({})", self.0),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcodes_round_trip_and_reject_unknown() {
        for op in OpCode::ALL {
            assert_eq!(OpCode::from_i32(op.as_i32()), Some(*op));
        }
        assert_eq!(OpCode::from_i32(10), None);
        assert_eq!(OpCode::from_i32(108), None);
    }

    #[test]
    fn error_codes_carry_zookeeper_values() {
        assert_eq!(ErrorCode::NO_NODE.0, -101);
        assert_eq!(ErrorCode::NODE_EXISTS.name(), Some("NODE_EXISTS"));
        assert_eq!(format!("{:?}", ErrorCode(-9999)), "ErrorCode(-9999)");
    }
}
