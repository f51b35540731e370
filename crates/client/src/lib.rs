//! A small pipelined ZooKeeper client on `zoocore-proto`, for the load generator and tests.
//!
//! Three layers, bottom up: [`frame`] cuts the byte stream into length-prefixed frames and
//! encodes request frames; [`pipeline`] assigns xids and matches every reply to the oldest
//! outstanding request, as ZooKeeper's ClientCnxn does (the server answers a session's
//! requests in order, so a reply whose xid is not the oldest one is a protocol error); both
//! are sans-IO and unit-tested without sockets. [`conn`] drives them over a tokio TCP stream:
//! handshake, pipelined submit/flush, receive, pings, close. [`Client`] is a convenience
//! request/response wrapper for setup code and tests. Server errors surface as
//! [`ErrorCode`](zoocore_proto::ErrorCode), never as panics: nothing read from the network
//! is unwrapped.

pub mod conn;
pub mod frame;
pub mod pipeline;

mod client;

pub use client::{decode_stat, Client};
pub use conn::{Conn, ConnectOptions, Session};
pub use pipeline::{Incoming, Pipeline, Reply};

use zoocore_proto::{DecodeError, ErrorCode};

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed frame from server: {0}")]
    Decode(#[from] DecodeError),
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge { len: usize, max: usize },
    #[error("negative frame length {len}")]
    NegativeFrameLength { len: i32 },
    #[error("reply xid {got} out of order: expected {expected}")]
    XidOutOfOrder { expected: i32, got: i32 },
    #[error("reply xid {xid} with no request outstanding")]
    UnexpectedReply { xid: i32 },
    #[error("connection closed by the server")]
    Closed,
    #[error("server refused the session (session id 0 or timeout <= 0)")]
    SessionRefused,
    #[error("server answered {0}")]
    Server(ErrorCode),
}

impl ClientError {
    /// The ZooKeeper error code this failure maps to: the server's code, or CONNECTION_LOSS
    /// for transport failures (as ZooKeeper clients report them).
    pub fn code(&self) -> ErrorCode {
        match self {
            ClientError::Server(code) => *code,
            ClientError::Decode(_) | ClientError::FrameTooLarge { .. } => {
                ErrorCode::MARSHALLING_ERROR
            }
            _ => ErrorCode::CONNECTION_LOSS,
        }
    }
}
