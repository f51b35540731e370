//! zoocore's peer protocol: the messages servers exchange for election (FastLeaderElection
//! notifications) and for one leader-learner session (discovery, synchronisation,
//! broadcast), and their framing.
//!
//! A frame is a 16-byte header and a payload, all integers big-endian (docs/ZAB.md has the
//! layout): magic `ZCZB`, version, kind, flags (0), payload length, and a crc32c over the
//! first 12 header bytes and the payload. Decoding checks magic, version, length limit and
//! checksum before it looks at the payload, and never panics on any input: every malformed
//! frame is a [`FrameError`]. Every session message carries the learner's connection id
//! (`conn`), which stands in for the TCP connection ZooKeeper's LearnerHandler owns: a
//! message of an older connection is ignored by both ends.

use thiserror::Error;
use zoocore_proto::{DecodeError, Reader, Share, Writer, Zxid};

use crate::{Epoch, Members, ServerId};

/// The bytes of one transaction as the driver logs and applies them; opaque to ZAB. Shared:
/// a clone or a slice is a reference, so the log, the in-memory history and the frames to
/// every learner hold one buffer.
pub type Payload = bytes::Bytes;

pub const FRAME_MAGIC: [u8; 4] = *b"ZCZB";
pub const FRAME_VERSION: u8 = 5;
pub const FRAME_HEADER_BYTES: usize = 16;
/// The largest payload a frame may carry (a SNAP's snapshot included).
pub const FRAME_PAYLOAD_BYTES_MAX: u32 = 1 << 30;

/// What a server reports about itself in an election notification (ZooKeeper's
/// `QuorumPeer.ServerState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    Looking,
    Following,
    Leading,
    Observing,
}

/// A vote: the candidate, its last zxid and its current epoch (FastLeaderElection `Vote`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vote {
    pub leader: ServerId,
    pub zxid: Zxid,
    pub peer_epoch: Epoch,
}

/// The configuration a notification's sender has in effect (ZooKeeper's `qv` in a
/// notification): the zxid of the reconfig that made it (`ZERO`: the starting one) and its
/// servers. Only committed configurations: a reconfig logged and not yet applied is not in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotifiedConfig {
    pub since: Zxid,
    pub members: Members,
}

/// Every message of the peer protocol. Names follow ZooKeeper's `Leader` packet types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// FastLeaderElection notification; `round` is the sender's logical clock
    /// (`electionEpoch`); `config` the configuration in effect on the sender.
    Notification {
        vote: Vote,
        round: u64,
        state: PeerState,
        config: NotifiedConfig,
    },
    /// Learner → leader, phase 1 (FOLLOWERINFO / OBSERVERINFO). `epochs` is the last zxid of
    /// each epoch in the learner's log after `base` (the zxid its tree has applied, all
    /// committed), ascending.
    FollowerInfo {
        conn: u64,
        accepted_epoch: Epoch,
        base: Zxid,
        epochs: Vec<Zxid>,
        observer: bool,
    },
    /// Leader → learner, phase 1: the proposed new epoch.
    LeaderInfo { conn: u64, epoch: Epoch },
    /// Learner → leader, phase 1, sent after the accepted epoch is durable. `fresh`: the
    /// learner promised this epoch now; a learner that had already accepted it (from this or
    /// another leader) acknowledges with `false`, and only fresh acknowledgements count toward
    /// the epoch quorum (Zab phase 1: an epoch is promised once; ZooKeeper's ACKEPOCH of -1).
    AckEpoch {
        conn: u64,
        current_epoch: Epoch,
        last: Zxid,
        fresh: bool,
    },
    /// Leader → learner, phase 2: the proposals after the learner's last zxid follow.
    Diff { conn: u64 },
    /// Leader → learner, phase 2: drop the log after `after`; the proposals after it follow.
    Trunc { conn: u64, after: Zxid },
    /// Leader → learner, phase 2: the leader's state at `zxid`. The learner keeps its own
    /// log entries in (`zxid`, `keep`] (they are the leader's too) and drops the rest; the
    /// proposals after `keep` follow.
    Snap {
        conn: u64,
        zxid: Zxid,
        keep: Zxid,
        data: Payload,
    },
    /// A transaction; `prev` is the zxid before it in the leader's history, so a learner
    /// sees a lost message as a gap.
    Proposal {
        conn: u64,
        prev: Zxid,
        zxid: Zxid,
        data: Payload,
    },
    /// Leader → learner, phase 2: the synchronised history ends at `last`.
    NewLeader { conn: u64, epoch: Epoch, last: Zxid },
    /// Learner → leader: NEWLEADER's history and the current epoch are durable.
    AckNewLeader { conn: u64, epoch: Epoch },
    /// Leader → learner: synchronisation is over; everything through `committed` commits.
    UpToDate { conn: u64, committed: Zxid },
    /// Follower → leader: the log is durable through `zxid` (cumulative).
    Ack { conn: u64, zxid: Zxid },
    /// Leader → learner: everything through `zxid` is committed (cumulative).
    Commit { conn: u64, zxid: Zxid },
    /// Leader → observer: a committed transaction.
    Inform {
        conn: u64,
        prev: Zxid,
        zxid: Zxid,
        data: Payload,
    },
    /// Leader → learner, every tick and at the start of each read round; carries the commit
    /// point so an idle learner catches up, and the leader's current read round (etcd's
    /// ReadIndex heartbeat), which the learner echoes.
    Ping {
        conn: u64,
        committed: Zxid,
        round: u64,
    },
    /// Learner → leader, answering a ping; repeats the learner's cumulative ack and the ping's
    /// read round: a voter that echoes round `r` still followed this leader after `r` began.
    PingReply { conn: u64, acked: Zxid, round: u64 },
    /// Leader → learners: leadership moves to `target`, which holds the whole history
    /// through `last`; every voter goes Looking and votes for `target` in that election
    /// (Raft's TimeoutNow, told to every voter so that the election order does not pick
    /// another member with the same zxid and a higher myid).
    Handover {
        conn: u64,
        target: ServerId,
        last: Zxid,
    },
    /// Follower → leader: an operator asked this follower to lead (`rqld`).
    RequestLeadership { conn: u64 },
    /// A driver-level message between members that the replica does not interpret: client
    /// requests a learner forwards to its leader, session liveness (touches), sync markers
    /// (ZooKeeper's `Leader.REQUEST`, `PING` session data and `SYNC`). `Replica::step`
    /// ignores it; the driver decodes `data` itself.
    Forward { data: Payload },
}

/// Room for a message's fields beside its data when its frame is allocated (a proposal's
/// are 28 bytes with the data's length; a notification's grow with the members, and may
/// regrow the frame, as they are rare).
const ENCODED_FIELDS_BYTES: usize = 64;

/// Fills in the header of a frame whose payload follows `FRAME_HEADER_BYTES` of room.
fn finish_frame(mut buf: Vec<u8>, kind: u8) -> Vec<u8> {
    let len = buf.len() - FRAME_HEADER_BYTES;
    let header = header(&mut buf, kind, len);
    let crc = frame_crc(&header, &buf[FRAME_HEADER_BYTES..]);
    buf[12..16].copy_from_slice(&crc.to_be_bytes());
    buf
}

/// Writes the first 12 bytes of a frame's header (all but the checksum) for a payload of
/// `len` bytes into `buf`, and returns them.
fn header(buf: &mut [u8], kind: u8, len: usize) -> [u8; 12] {
    let len = u32::try_from(len).expect("payload fits in u32");
    assert!(
        len <= FRAME_PAYLOAD_BYTES_MAX,
        "payload of {len} bytes too large"
    );
    buf[0..4].copy_from_slice(&FRAME_MAGIC);
    buf[4] = FRAME_VERSION;
    buf[5] = kind;
    buf[6..8].copy_from_slice(&0u16.to_be_bytes());
    buf[8..12].copy_from_slice(&len.to_be_bytes());
    buf[0..12].try_into().expect("12 bytes")
}

/// An encoded message as a link sends it: its header and fields, then its data (a txn, a
/// snapshot, forwarded requests) where it has any, shared with the message rather than
/// copied in, so a proposal sent to every follower holds its txn once. The bytes, in
/// order, are one frame as [`Message::encode`] makes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    head: Vec<u8>,
    body: Payload,
}

impl Frame {
    /// Bytes of the whole frame.
    pub fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame's bytes, in order: the head, then the shared data (empty if none).
    pub fn parts(&self) -> [&[u8]; 2] {
        [&self.head, &self.body]
    }

    /// The frame in one buffer (the data copied after the head).
    pub fn into_vec(self) -> Vec<u8> {
        if self.body.is_empty() {
            return self.head;
        }
        let mut v = Vec::with_capacity(self.len());
        v.extend_from_slice(&self.head);
        v.extend_from_slice(&self.body);
        v
    }
}

impl From<Vec<u8>> for Frame {
    /// A frame already in one buffer.
    fn from(head: Vec<u8>) -> Self {
        Frame {
            head,
            body: Payload::new(),
        }
    }
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("bad frame magic {0:02x?}")]
    BadMagic([u8; 4]),
    #[error("unsupported frame version {0}")]
    BadVersion(u8),
    #[error("frame payload of {0} bytes exceeds the limit")]
    TooLarge(u32),
    #[error("frame checksum mismatch: stored {stored:08x}, computed {computed:08x}")]
    BadChecksum { stored: u32, computed: u32 },
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    #[error("a frame of {len} bytes whose header says {said}")]
    WrongLength { len: usize, said: usize },
    #[error("bad payload: {0}")]
    Payload(#[from] DecodeError),
}

mod kind {
    pub const NOTIFICATION: u8 = 1;
    pub const FOLLOWER_INFO: u8 = 2;
    pub const LEADER_INFO: u8 = 3;
    pub const ACK_EPOCH: u8 = 4;
    pub const DIFF: u8 = 5;
    pub const TRUNC: u8 = 6;
    pub const SNAP: u8 = 7;
    pub const PROPOSAL: u8 = 8;
    pub const NEW_LEADER: u8 = 9;
    pub const ACK_NEW_LEADER: u8 = 10;
    pub const UP_TO_DATE: u8 = 11;
    pub const ACK: u8 = 12;
    pub const COMMIT: u8 = 13;
    pub const INFORM: u8 = 14;
    pub const PING: u8 = 15;
    pub const PING_REPLY: u8 = 16;
    pub const FORWARD: u8 = 17;
    pub const HANDOVER: u8 = 18;
    pub const REQUEST_LEADERSHIP: u8 = 19;
}

fn write_zxid(w: &mut Writer, z: Zxid) {
    w.write_i64(z.0);
}

fn read_zxid(r: &mut Reader<'_>) -> Result<Zxid, DecodeError> {
    r.read_i64().map(Zxid)
}

fn write_epoch(w: &mut Writer, e: Epoch) {
    w.write_i32(e.0 as i32);
}

fn read_epoch(r: &mut Reader<'_>) -> Result<Epoch, DecodeError> {
    r.read_i32().map(|v| Epoch(v as u32))
}

fn write_u64(w: &mut Writer, v: u64) {
    w.write_i64(v as i64);
}

fn read_u64(r: &mut Reader<'_>) -> Result<u64, DecodeError> {
    r.read_i64().map(|v| v as u64)
}

fn state_code(s: PeerState) -> u8 {
    match s {
        PeerState::Looking => 0,
        PeerState::Following => 1,
        PeerState::Leading => 2,
        PeerState::Observing => 3,
    }
}

impl Message {
    fn kind(&self) -> u8 {
        match self {
            Message::Notification { .. } => kind::NOTIFICATION,
            Message::FollowerInfo { .. } => kind::FOLLOWER_INFO,
            Message::LeaderInfo { .. } => kind::LEADER_INFO,
            Message::AckEpoch { .. } => kind::ACK_EPOCH,
            Message::Diff { .. } => kind::DIFF,
            Message::Trunc { .. } => kind::TRUNC,
            Message::Snap { .. } => kind::SNAP,
            Message::Proposal { .. } => kind::PROPOSAL,
            Message::NewLeader { .. } => kind::NEW_LEADER,
            Message::AckNewLeader { .. } => kind::ACK_NEW_LEADER,
            Message::UpToDate { .. } => kind::UP_TO_DATE,
            Message::Ack { .. } => kind::ACK,
            Message::Commit { .. } => kind::COMMIT,
            Message::Inform { .. } => kind::INFORM,
            Message::Ping { .. } => kind::PING,
            Message::PingReply { .. } => kind::PING_REPLY,
            Message::Forward { .. } => kind::FORWARD,
            Message::Handover { .. } => kind::HANDOVER,
            Message::RequestLeadership { .. } => kind::REQUEST_LEADERSHIP,
        }
    }

    /// The payload (a txn, a snapshot, forwarded requests) the message carries, if any.
    fn data(&self) -> Option<&Payload> {
        match self {
            Message::Snap { data, .. }
            | Message::Proposal { data, .. }
            | Message::Inform { data, .. }
            | Message::Forward { data } => Some(data),
            _ => None,
        }
    }

    /// Bytes of the payload the message carries.
    fn data_len(&self) -> usize {
        self.data().map_or(0, |d| d.len())
    }

    /// The learner connection a session message belongs to; `None` for election messages
    /// and driver-level ones.
    pub fn conn(&self) -> Option<u64> {
        match self {
            Message::Notification { .. } | Message::Forward { .. } => None,
            Message::FollowerInfo { conn, .. }
            | Message::LeaderInfo { conn, .. }
            | Message::AckEpoch { conn, .. }
            | Message::Diff { conn }
            | Message::Trunc { conn, .. }
            | Message::Snap { conn, .. }
            | Message::Proposal { conn, .. }
            | Message::NewLeader { conn, .. }
            | Message::AckNewLeader { conn, .. }
            | Message::UpToDate { conn, .. }
            | Message::Ack { conn, .. }
            | Message::Commit { conn, .. }
            | Message::Inform { conn, .. }
            | Message::Ping { conn, .. }
            | Message::PingReply { conn, .. }
            | Message::Handover { conn, .. }
            | Message::RequestLeadership { conn } => Some(*conn),
        }
    }

    /// Writes the payload; without `with_data`, a message's data is left out after its
    /// length (it is always the last field), for a [`Frame`] to carry it beside.
    fn encode_payload(&self, w: &mut Writer, with_data: bool) {
        let data = |w: &mut Writer, data: &Payload| {
            if with_data {
                w.write_buffer(data);
            } else {
                w.write_i32(i32::try_from(data.len()).expect("data fits a jute length"));
            }
        };
        if let Some(conn) = self.conn() {
            write_u64(w, conn);
        }
        match self {
            Message::Notification {
                vote,
                round,
                state,
                config,
            } => {
                write_u64(w, vote.leader);
                write_zxid(w, vote.zxid);
                write_epoch(w, vote.peer_epoch);
                write_u64(w, *round);
                w.write_u8(state_code(*state));
                write_zxid(w, config.since);
                let voters: Vec<ServerId> = config.members.voters.iter().copied().collect();
                let observers: Vec<ServerId> = config.members.observers.iter().copied().collect();
                w.write_vec(&voters, |w, id| write_u64(w, *id));
                w.write_vec(&observers, |w, id| write_u64(w, *id));
            }
            Message::FollowerInfo {
                accepted_epoch,
                base,
                epochs,
                observer,
                ..
            } => {
                write_epoch(w, *accepted_epoch);
                write_zxid(w, *base);
                w.write_vec(epochs, |w, z| write_zxid(w, *z));
                w.write_bool(*observer);
            }
            Message::LeaderInfo { epoch, .. } => write_epoch(w, *epoch),
            Message::AckEpoch {
                current_epoch,
                last,
                fresh,
                ..
            } => {
                write_epoch(w, *current_epoch);
                write_zxid(w, *last);
                w.write_bool(*fresh);
            }
            Message::Diff { .. } => {}
            Message::Trunc { after, .. } => write_zxid(w, *after),
            Message::Snap {
                zxid,
                keep,
                data: payload,
                ..
            } => {
                write_zxid(w, *zxid);
                write_zxid(w, *keep);
                data(w, payload);
            }
            Message::Proposal {
                prev,
                zxid,
                data: payload,
                ..
            }
            | Message::Inform {
                prev,
                zxid,
                data: payload,
                ..
            } => {
                write_zxid(w, *prev);
                write_zxid(w, *zxid);
                data(w, payload);
            }
            Message::NewLeader { epoch, last, .. } => {
                write_epoch(w, *epoch);
                write_zxid(w, *last);
            }
            Message::AckNewLeader { epoch, .. } => write_epoch(w, *epoch),
            Message::UpToDate { committed, .. } => write_zxid(w, *committed),
            Message::Ping {
                committed, round, ..
            } => {
                write_zxid(w, *committed);
                write_u64(w, *round);
            }
            Message::Ack { zxid, .. } | Message::Commit { zxid, .. } => write_zxid(w, *zxid),
            Message::PingReply { acked, round, .. } => {
                write_zxid(w, *acked);
                write_u64(w, *round);
            }
            Message::Forward { data: payload } => data(w, payload),
            Message::Handover { target, last, .. } => {
                write_u64(w, *target);
                write_zxid(w, *last);
            }
            Message::RequestLeadership { .. } => {}
        }
    }

    /// `share` makes a payload field (a proposal's txn, a snapshot, a forwarded request) of
    /// bytes inside the frame: a copy, or a slice of the buffer the frame was read into.
    fn decode_payload(
        kind: u8,
        r: &mut Reader<'_>,
        share: Share<'_>,
    ) -> Result<Message, FrameError> {
        if kind == kind::NOTIFICATION {
            let vote = Vote {
                leader: read_u64(r)?,
                zxid: read_zxid(r)?,
                peer_epoch: read_epoch(r)?,
            };
            let round = read_u64(r)?;
            let offset = r.offset();
            let state = match r.read_u8()? {
                0 => PeerState::Looking,
                1 => PeerState::Following,
                2 => PeerState::Leading,
                3 => PeerState::Observing,
                other => {
                    return Err(DecodeError::Unknown {
                        what: "peer state",
                        value: i32::from(other),
                        offset,
                    }
                    .into())
                }
            };
            let since = read_zxid(r)?;
            let voters = r.read_vec(|r| read_u64(r))?;
            let observers = r.read_vec(|r| read_u64(r))?;
            return Ok(Message::Notification {
                vote,
                round,
                state,
                config: NotifiedConfig {
                    since,
                    members: Members::new(voters, observers),
                },
            });
        }
        if kind == kind::FORWARD {
            return Ok(Message::Forward {
                data: share(r.read_buffer()?),
            });
        }
        if !(kind::FOLLOWER_INFO..=kind::REQUEST_LEADERSHIP).contains(&kind) {
            return Err(FrameError::UnknownKind(kind));
        }
        let conn = read_u64(r)?;
        let msg = match kind {
            kind::FOLLOWER_INFO => Message::FollowerInfo {
                conn,
                accepted_epoch: read_epoch(r)?,
                base: read_zxid(r)?,
                epochs: r.read_vec(|r| read_zxid(r))?,
                observer: r.read_bool()?,
            },
            kind::LEADER_INFO => Message::LeaderInfo {
                conn,
                epoch: read_epoch(r)?,
            },
            kind::ACK_EPOCH => Message::AckEpoch {
                conn,
                current_epoch: read_epoch(r)?,
                last: read_zxid(r)?,
                fresh: r.read_bool()?,
            },
            kind::DIFF => Message::Diff { conn },
            kind::TRUNC => Message::Trunc {
                conn,
                after: read_zxid(r)?,
            },
            kind::SNAP => Message::Snap {
                conn,
                zxid: read_zxid(r)?,
                keep: read_zxid(r)?,
                data: share(r.read_buffer()?),
            },
            kind::PROPOSAL | kind::INFORM => {
                let prev = read_zxid(r)?;
                let zxid = read_zxid(r)?;
                let data: Payload = share(r.read_buffer()?);
                if kind == kind::PROPOSAL {
                    Message::Proposal {
                        conn,
                        prev,
                        zxid,
                        data,
                    }
                } else {
                    Message::Inform {
                        conn,
                        prev,
                        zxid,
                        data,
                    }
                }
            }
            kind::NEW_LEADER => Message::NewLeader {
                conn,
                epoch: read_epoch(r)?,
                last: read_zxid(r)?,
            },
            kind::ACK_NEW_LEADER => Message::AckNewLeader {
                conn,
                epoch: read_epoch(r)?,
            },
            kind::UP_TO_DATE => Message::UpToDate {
                conn,
                committed: read_zxid(r)?,
            },
            kind::ACK => Message::Ack {
                conn,
                zxid: read_zxid(r)?,
            },
            kind::COMMIT => Message::Commit {
                conn,
                zxid: read_zxid(r)?,
            },
            kind::PING => Message::Ping {
                conn,
                committed: read_zxid(r)?,
                round: read_u64(r)?,
            },
            kind::PING_REPLY => Message::PingReply {
                conn,
                acked: read_zxid(r)?,
                round: read_u64(r)?,
            },
            kind::HANDOVER => Message::Handover {
                conn,
                target: read_u64(r)?,
                last: read_zxid(r)?,
            },
            _ => Message::RequestLeadership { conn },
        };
        Ok(msg)
    }

    /// Encodes one frame into one buffer.
    pub fn encode(&self) -> Vec<u8> {
        // Sized for the data a message carries, so a proposal's frame is not regrown (and
        // its bytes copied again) while its data is written.
        let mut buf =
            Vec::with_capacity(FRAME_HEADER_BYTES + ENCODED_FIELDS_BYTES + self.data_len());
        buf.resize(FRAME_HEADER_BYTES, 0);
        let mut w = Writer::with_buffer(buf);
        self.encode_payload(&mut w, true);
        finish_frame(w.into_inner(), self.kind())
    }

    /// Encodes one frame as a [`Frame`]: the same bytes as [`Message::encode`], with the
    /// message's data shared with it instead of copied in.
    pub fn encode_frame(&self) -> Frame {
        let Some(body) = self.data() else {
            return Frame::from(self.encode());
        };
        let mut head = Vec::with_capacity(FRAME_HEADER_BYTES + ENCODED_FIELDS_BYTES);
        head.resize(FRAME_HEADER_BYTES, 0);
        let mut w = Writer::with_buffer(head);
        self.encode_payload(&mut w, false);
        let mut head = w.into_inner();
        let body = body.clone();
        let len = head.len() - FRAME_HEADER_BYTES + body.len();
        let crc = crc32c::crc32c_append(
            crc32c::crc32c_append(
                crc32c::crc32c(&header(&mut head, self.kind(), len)),
                &head[FRAME_HEADER_BYTES..],
            ),
            &body,
        );
        head[12..16].copy_from_slice(&crc.to_be_bytes());
        Frame { head, body }
    }

    /// The frame of a `Forward` whose data `write` encodes: what
    /// `Message::Forward { data }.encode()` makes, with the data written in place instead of
    /// into a buffer of its own first (a forwarded setData's value is copied once, not
    /// twice). `size_hint` is the data's expected length.
    pub fn encode_forward(size_hint: usize, write: impl FnOnce(&mut Writer)) -> Vec<u8> {
        const LEN_BYTES: usize = 4;
        let mut buf = Vec::with_capacity(FRAME_HEADER_BYTES + LEN_BYTES + size_hint);
        buf.resize(FRAME_HEADER_BYTES + LEN_BYTES, 0);
        let mut w = Writer::with_buffer(buf);
        write(&mut w);
        let mut buf = w.into_inner();
        let data_len = buf.len() - FRAME_HEADER_BYTES - LEN_BYTES;
        let data_len = i32::try_from(data_len).expect("jute length fits in i32");
        buf[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + LEN_BYTES]
            .copy_from_slice(&data_len.to_be_bytes());
        finish_frame(buf, kind::FORWARD)
    }

    /// Decodes the frame at the start of `buf`: `Ok(None)` if more bytes are needed, else
    /// the message and the number of bytes it took. Payload fields are copied out of `buf`.
    pub fn decode(buf: &[u8]) -> Result<Option<(Message, usize)>, FrameError> {
        let Some(end) = Message::frame_len(buf)? else {
            return Ok(None);
        };
        if buf.len() < end {
            return Ok(None);
        }
        let msg = Message::decode_frame(&buf[..end], &Payload::copy_from_slice)?;
        Ok(Some((msg, end)))
    }

    /// Decodes `frame`, one whole frame (its length from [`Message::frame_len`]); payload
    /// fields are slices of `frame`, sharing its buffer: a follower's proposal is not copied
    /// out of the bytes its link read.
    pub fn decode_shared(frame: &Payload) -> Result<Message, FrameError> {
        let said = Message::frame_len(frame)?.unwrap_or(FRAME_HEADER_BYTES);
        if said != frame.len() {
            return Err(FrameError::WrongLength {
                len: frame.len(),
                said,
            });
        }
        Message::decode_frame(frame, &|field| frame.slice_ref(field))
    }

    /// The whole length of the frame at the start of `buf`, once its header is there
    /// (`Ok(None)` before): the header is checked, so a reader may wait for, and allocate,
    /// that many bytes.
    pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
        if buf.len() < FRAME_HEADER_BYTES {
            return Ok(None);
        }
        let magic: [u8; 4] = buf[0..4].try_into().expect("4 bytes");
        if magic != FRAME_MAGIC {
            return Err(FrameError::BadMagic(magic));
        }
        if buf[4] != FRAME_VERSION {
            return Err(FrameError::BadVersion(buf[4]));
        }
        let len = u32::from_be_bytes(buf[8..12].try_into().expect("4 bytes"));
        if len > FRAME_PAYLOAD_BYTES_MAX {
            return Err(FrameError::TooLarge(len));
        }
        Ok(Some(FRAME_HEADER_BYTES + len as usize))
    }

    /// One whole frame, header checked by `frame_len`: its checksum, then its message.
    fn decode_frame(frame: &[u8], share: Share<'_>) -> Result<Message, FrameError> {
        let stored = u32::from_be_bytes(frame[12..16].try_into().expect("4 bytes"));
        let computed = frame_crc(&frame[0..12], &frame[FRAME_HEADER_BYTES..]);
        if stored != computed {
            return Err(FrameError::BadChecksum { stored, computed });
        }
        let mut r = Reader::new(&frame[FRAME_HEADER_BYTES..]);
        let msg = Message::decode_payload(frame[5], &mut r, share)?;
        r.finish()?;
        Ok(msg)
    }
}

fn frame_crc(header: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(header), payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn zxid() -> impl Strategy<Value = Zxid> {
        any::<i64>().prop_map(Zxid)
    }

    fn data() -> impl Strategy<Value = Payload> {
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Payload::from)
    }

    fn message() -> impl Strategy<Value = Message> {
        let c = any::<u64>();
        prop_oneof![
            (
                any::<u64>(),
                zxid(),
                any::<u32>(),
                any::<u64>(),
                0u8..4,
                (
                    zxid(),
                    proptest::collection::vec(any::<u64>(), 0..7),
                    proptest::collection::vec(any::<u64>(), 0..3)
                )
            )
                .prop_map(|(leader, zxid, e, round, s, (since, voters, observers))| {
                    Message::Notification {
                        vote: Vote {
                            leader,
                            zxid,
                            peer_epoch: Epoch(e),
                        },
                        round,
                        state: [
                            PeerState::Looking,
                            PeerState::Following,
                            PeerState::Leading,
                            PeerState::Observing,
                        ][s as usize],
                        config: NotifiedConfig {
                            since,
                            members: Members::new(voters, observers),
                        },
                    }
                }),
            (
                c,
                any::<u32>(),
                zxid(),
                proptest::collection::vec(zxid(), 0..5),
                any::<bool>()
            )
                .prop_map(|(conn, e, base, epochs, observer)| Message::FollowerInfo {
                    conn,
                    accepted_epoch: Epoch(e),
                    base,
                    epochs,
                    observer
                }),
            (c, any::<u32>()).prop_map(|(conn, e)| Message::LeaderInfo {
                conn,
                epoch: Epoch(e)
            }),
            (c, any::<u32>(), zxid(), any::<bool>()).prop_map(|(conn, e, last, fresh)| {
                Message::AckEpoch {
                    conn,
                    current_epoch: Epoch(e),
                    last,
                    fresh,
                }
            }),
            c.prop_map(|conn| Message::Diff { conn }),
            (c, zxid()).prop_map(|(conn, after)| Message::Trunc { conn, after }),
            (c, zxid(), zxid(), data()).prop_map(|(conn, zxid, keep, data)| Message::Snap {
                conn,
                zxid,
                keep,
                data
            }),
            (c, zxid(), zxid(), data()).prop_map(|(conn, prev, zxid, data)| {
                Message::Proposal {
                    conn,
                    prev,
                    zxid,
                    data,
                }
            }),
            (c, zxid(), zxid(), data()).prop_map(|(conn, prev, zxid, data)| {
                Message::Inform {
                    conn,
                    prev,
                    zxid,
                    data,
                }
            }),
            (c, any::<u32>(), zxid()).prop_map(|(conn, e, last)| Message::NewLeader {
                conn,
                epoch: Epoch(e),
                last
            }),
            (c, any::<u32>()).prop_map(|(conn, e)| Message::AckNewLeader {
                conn,
                epoch: Epoch(e)
            }),
            (c, zxid()).prop_map(|(conn, committed)| Message::UpToDate { conn, committed }),
            (c, zxid()).prop_map(|(conn, zxid)| Message::Ack { conn, zxid }),
            (c, zxid()).prop_map(|(conn, zxid)| Message::Commit { conn, zxid }),
            (c, zxid(), any::<u64>()).prop_map(|(conn, committed, round)| Message::Ping {
                conn,
                committed,
                round
            }),
            (c, zxid(), any::<u64>()).prop_map(|(conn, acked, round)| Message::PingReply {
                conn,
                acked,
                round
            }),
            data().prop_map(|data| Message::Forward { data }),
            (c, any::<u64>(), zxid()).prop_map(|(conn, target, last)| Message::Handover {
                conn,
                target,
                last
            }),
            c.prop_map(|conn| Message::RequestLeadership { conn }),
        ]
    }

    proptest! {
        /// A forward's frame written in place is the frame of the same data in a message.
        #[test]
        fn a_forward_written_in_place_is_the_same_frame(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            hint in 0usize..400,
        ) {
            let framed = Message::encode_forward(hint, |w| {
                for b in &bytes {
                    w.write_u8(*b);
                }
            });
            let whole = Message::Forward { data: Payload::from(bytes.clone()) }.encode();
            prop_assert_eq!(&framed, &whole);
            let (back, used) = Message::decode(&framed).unwrap().unwrap();
            prop_assert_eq!(used, framed.len());
            prop_assert_eq!(back, Message::Forward { data: Payload::from(bytes) });
        }

        #[test]
        fn round_trip(msg in message()) {
            let bytes = msg.encode();
            let (back, used) = Message::decode(&bytes).unwrap().unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(back, msg);
            prop_assert_eq!(Message::decode(&bytes[..bytes.len() - 1]).unwrap(), None);
        }

        /// A frame with its data shared holds the bytes of the frame in one buffer, the
        /// checksum included, and its data is the message's own buffer, not a copy.
        #[test]
        fn a_shared_frame_is_the_same_frame(msg in message()) {
            let frame = msg.encode_frame();
            prop_assert_eq!(frame.len(), msg.encode().len());
            let [head, body] = frame.parts();
            if let Some(data) = msg.data().filter(|d| !d.is_empty()) {
                prop_assert_eq!(body.as_ptr(), data.as_ptr());
                prop_assert_eq!(body.len(), data.len());
            }
            prop_assert!(!head.is_empty());
            prop_assert_eq!(frame.into_vec(), msg.encode());
        }

        /// A frame decoded in place is the same message, its data a slice of the frame's
        /// own buffer; a buffer that is not exactly one frame is an error, never a panic.
        #[test]
        fn a_frame_decoded_in_place_shares_its_buffer(msg in message(), cut in any::<usize>()) {
            let frame = Payload::from(msg.encode());
            let back = Message::decode_shared(&frame).unwrap();
            prop_assert_eq!(&back, &msg);
            if let Some(data) = back.data().filter(|d| !d.is_empty()) {
                let inside = frame.as_ptr_range();
                prop_assert!(inside.contains(&data.as_ptr()));
            }
            let cut = cut % frame.len();
            prop_assert!(Message::decode_shared(&frame.slice(..cut)).is_err());
            let mut longer = frame.to_vec();
            longer.push(0);
            prop_assert!(Message::decode_shared(&Payload::from(longer)).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Message::decode(&bytes);
            let _ = Message::decode_shared(&Payload::from(bytes));
        }

        #[test]
        fn flipped_bit_is_rejected(msg in message(), bit in any::<usize>()) {
            let mut bytes = msg.encode();
            let bit = bit % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            // A flip in the length may ask for more bytes; anything else must be an error.
            prop_assert!(!matches!(Message::decode(&bytes), Ok(Some(_))));
        }

        #[test]
        fn valid_header_with_arbitrary_payload_never_panics(
            kind in any::<u8>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut buf = Vec::new();
            buf.extend_from_slice(&FRAME_MAGIC);
            buf.push(FRAME_VERSION);
            buf.push(kind);
            buf.extend_from_slice(&[0, 0]);
            buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            let crc = frame_crc(&buf[0..12], &payload);
            buf.extend_from_slice(&crc.to_be_bytes());
            buf.extend_from_slice(&payload);
            let _ = Message::decode(&buf);
            let _ = Message::decode_shared(&Payload::from(buf));
        }
    }
}
