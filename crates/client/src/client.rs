//! [`Client`]: one request at a time over a [`Conn`], for setup code and tests where
//! pipelining does not matter. Watch events that arrive while waiting for a reply are kept,
//! in order, for [`Client::next_event`]. A reply with a non-zero error becomes
//! `ClientError::Server(code)`.

use std::collections::VecDeque;
use std::net::SocketAddr;

use zoocore_proto::records::{
    AddWatchRequest, CreateResponse, DeleteRequest, ExistsRequest, GetDataRequest, GetDataResponse,
    SetDataRequest, StatResponse, WatcherEvent,
};
use zoocore_proto::{Acl, Bytes, ErrorCode, OpCode, Reader, Record, Stat, Writer};

use crate::conn::{Conn, ConnectOptions, Session};
use crate::pipeline::Incoming;
use crate::ClientError;

/// A sequential client.
#[derive(Debug)]
pub struct Client {
    conn: Conn<()>,
    events: VecDeque<WatcherEvent>,
}

impl Client {
    pub async fn connect(addr: SocketAddr, opts: &ConnectOptions) -> Result<Self, ClientError> {
        Ok(Self {
            conn: Conn::connect(addr, opts).await?,
            events: VecDeque::new(),
        })
    }

    pub fn session(&self) -> &Session {
        self.conn.session()
    }

    /// Sends one request and returns its reply's zxid and body.
    pub async fn call(
        &mut self,
        op: OpCode,
        body: impl FnOnce(&mut Writer),
    ) -> Result<(i64, Vec<u8>), ClientError> {
        let xid = self.conn.submit(op, (), body);
        self.conn.flush().await?;
        loop {
            match self.conn.next().await? {
                Incoming::Event { event, .. } => self.events.push_back(event),
                Incoming::Pong { .. } => {}
                Incoming::Reply(r) => {
                    if r.xid != xid {
                        continue;
                    }
                    if r.err != ErrorCode::OK {
                        return Err(ClientError::Server(r.err));
                    }
                    return Ok((r.zxid, self.conn.body(&r).to_vec()));
                }
            }
        }
    }

    /// create with the open ACL; `flags` is CreateMode's wire value. Returns the path made.
    pub async fn create(
        &mut self,
        path: &str,
        data: &[u8],
        flags: i32,
    ) -> Result<String, ClientError> {
        let (_, body) = self
            .call(OpCode::Create, |w| {
                w.write_str(path);
                w.write_buffer(data);
                w.write_records(&Acl::open_unsafe());
                w.write_i32(flags);
            })
            .await?;
        Ok(CreateResponse::from_bytes(&body)?.path)
    }

    pub async fn get_data(
        &mut self,
        path: &str,
        watch: bool,
    ) -> Result<(Vec<u8>, Stat), ClientError> {
        let req = GetDataRequest {
            path: path.into(),
            watch,
        };
        let (_, body) = self.call(OpCode::GetData, |w| req.encode(w)).await?;
        let resp = GetDataResponse::from_bytes(&body)?;
        Ok((resp.data.unwrap_or_default(), resp.stat))
    }

    pub async fn set_data(
        &mut self,
        path: &str,
        data: &[u8],
        version: i32,
    ) -> Result<Stat, ClientError> {
        let req = SetDataRequest {
            path: path.into(),
            data: Some(Bytes::copy_from_slice(data)),
            version,
        };
        let (_, body) = self.call(OpCode::SetData, |w| req.encode(w)).await?;
        Ok(StatResponse::from_bytes(&body)?.stat)
    }

    pub async fn delete(&mut self, path: &str, version: i32) -> Result<(), ClientError> {
        let req = DeleteRequest {
            path: path.into(),
            version,
        };
        self.call(OpCode::Delete, |w| req.encode(w)).await?;
        Ok(())
    }

    /// exists: `None` when the node is missing.
    pub async fn exists(&mut self, path: &str, watch: bool) -> Result<Option<Stat>, ClientError> {
        let req = ExistsRequest {
            path: path.into(),
            watch,
        };
        match self.call(OpCode::Exists, |w| req.encode(w)).await {
            Ok((_, body)) => Ok(Some(StatResponse::from_bytes(&body)?.stat)),
            Err(ClientError::Server(ErrorCode::NO_NODE)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// addWatch (3.6+): mode 0 persistent, 1 persistent recursive.
    pub async fn add_watch(&mut self, path: &str, mode: i32) -> Result<(), ClientError> {
        let req = AddWatchRequest {
            path: path.into(),
            mode,
        };
        self.call(OpCode::AddWatch, |w| req.encode(w)).await?;
        Ok(())
    }

    /// The next watch event, waiting for one if none is buffered.
    pub async fn next_event(&mut self) -> Result<WatcherEvent, ClientError> {
        if let Some(e) = self.events.pop_front() {
            return Ok(e);
        }
        loop {
            match self.conn.next().await? {
                Incoming::Event { event, .. } => return Ok(event),
                Incoming::Pong { .. } => {}
                Incoming::Reply(r) => return Err(ClientError::UnexpectedReply { xid: r.xid }),
            }
        }
    }

    /// Sends a ping and waits for its answer.
    pub async fn ping(&mut self) -> Result<(), ClientError> {
        self.conn.ping();
        self.conn.flush().await?;
        loop {
            match self.conn.next().await? {
                Incoming::Pong { .. } => return Ok(()),
                Incoming::Event { event, .. } => self.events.push_back(event),
                Incoming::Reply(r) => return Err(ClientError::UnexpectedReply { xid: r.xid }),
            }
        }
    }

    /// Closes the session and the connection.
    pub async fn close(self) -> Result<(), ClientError> {
        self.conn.close(()).await
    }

    /// The underlying connection, for pipelined use.
    pub fn into_conn(self) -> Conn<()> {
        self.conn
    }
}

/// Decodes a `Stat` reply body (setData, exists), for pipelined callers.
pub fn decode_stat(body: &[u8]) -> Result<Stat, ClientError> {
    let mut r = Reader::new(body);
    Ok(Stat::decode(&mut r)?)
}
