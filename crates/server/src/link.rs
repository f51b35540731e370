//! The channels between the core and the shards, as the topology declares them: shared
//! channels when a shard has an executor of its own, local ones when the sessions live on the
//! core's executor (`zoocore.shards=0`, the default of a server given one CPU: two threads
//! on one CPU would pay a context switch for every hand-over). Either way they are bounded
//! by `limits::CHANNEL_CAPACITY` and carry the same typed messages.

use std::rc::Rc;
use std::time::Duration;

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::channels::shared_channel::{
    self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender,
};

use crate::limits;
use crate::msg::{FromCore, ToCore};

/// The other end is gone (its executor stopped).
#[derive(Debug)]
pub(crate) struct Closed;

/// A sending end, connected.
pub(crate) enum Sender<T: Send> {
    Cross(ConnectedSender<T>),
    Local(LocalSender<T>),
}

impl<T: Send> Sender<T> {
    /// Waits for room in the channel.
    pub(crate) async fn send(&self, item: T) -> Result<(), Closed> {
        match self {
            Self::Cross(s) => s.send(item).await.map_err(|_| Closed),
            Self::Local(s) => s.send(item).await.map_err(|_| Closed),
        }
    }
}

/// A receiving end, connected.
pub(crate) enum Receiver<T: Send> {
    Cross(ConnectedReceiver<T>),
    Local(LocalReceiver<T>),
}

impl<T: Send> Receiver<T> {
    /// The next message; `None` once the other end is gone.
    pub(crate) async fn recv(&self) -> Option<T> {
        match self {
            Self::Cross(r) => r.recv().await,
            Self::Local(r) => r.recv().await,
        }
    }
}

/// The core's connected ends, in shard order.
pub(crate) struct CoreLinks {
    pub(crate) senders: Vec<Sender<FromCore>>,
    pub(crate) receivers: Vec<Receiver<ToCore>>,
}

/// A shard's connected ends: where commit batches arrive, and where its requests go.
pub(crate) struct ShardLinks {
    pub(crate) from_core: Receiver<FromCore>,
    pub(crate) to_core: LocalSender<ToCore>,
}

/// The core's ends of every shard's shared channels, made before any executor starts.
pub(crate) struct CoreEnds {
    rxs: Vec<SharedReceiver<ToCore>>,
    txs: Vec<SharedSender<FromCore>>,
}

/// One shard's ends of its shared channels, made before any executor starts.
pub(crate) struct ShardEnds {
    tx: SharedSender<ToCore>,
    rx: SharedReceiver<FromCore>,
}

/// Both sides' ends for `shards` shards on executors of their own.
pub(crate) fn cross(shards: usize) -> (CoreEnds, Vec<ShardEnds>) {
    let (mut rxs, mut txs, mut ends) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..shards {
        let (tx, rx) = shared_channel::new_bounded::<ToCore>(limits::CHANNEL_CAPACITY);
        let (ftx, frx) = shared_channel::new_bounded::<FromCore>(limits::CHANNEL_CAPACITY);
        rxs.push(rx);
        txs.push(ftx);
        ends.push(ShardEnds { tx, rx: frx });
    }
    (CoreEnds { rxs, txs }, ends)
}

/// Both sides' links for the one shard that runs on the core's executor: local channels,
/// tied to the executor that uses them, so this is called on it. The shard's requests go
/// straight into the core's receiver, with no forwarding task.
pub(crate) fn local() -> (CoreLinks, ShardLinks) {
    let (tx, rx) = local_channel::new_bounded::<ToCore>(limits::CHANNEL_CAPACITY);
    let (ftx, frx) = local_channel::new_bounded::<FromCore>(limits::CHANNEL_CAPACITY);
    (
        CoreLinks {
            senders: vec![Sender::Local(ftx)],
            receivers: vec![Receiver::Local(rx)],
        },
        ShardLinks {
            from_core: Receiver::Local(frx),
            to_core: tx,
        },
    )
}

impl CoreEnds {
    /// Connected on the core's executor, senders first (the shards connect their receivers
    /// first).
    pub(crate) async fn connect(self) -> CoreLinks {
        let Self { rxs, txs } = self;
        awake_while(async move {
            let mut senders = Vec::new();
            for tx in txs {
                senders.push(Sender::Cross(tx.connect().await));
            }
            let mut receivers = Vec::new();
            for rx in rxs {
                receivers.push(Receiver::Cross(rx.connect().await));
            }
            CoreLinks { senders, receivers }
        })
        .await
    }
}

impl ShardEnds {
    /// Connected on the shard's executor. Its requests queue in a local channel that a
    /// task forwards to the core, waiting when the shared channel is full.
    pub(crate) async fn connect(self) -> ShardLinks {
        let Self { tx, rx } = self;
        // Same order as the core connects its ends (its senders first), or both would wait.
        let (from_core, to_core) =
            awake_while(async move { (rx.connect().await, tx.connect().await) }).await;
        let (local_tx, local_rx) = local_channel::new_bounded::<ToCore>(limits::CHANNEL_CAPACITY);
        glommio::spawn_local(async move {
            while let Some(msg) = local_rx.recv().await {
                if to_core.send(msg).await.is_err() {
                    break;
                }
            }
        })
        .detach();
        ShardLinks {
            from_core: Receiver::Cross(from_core),
            to_core: local_tx,
        }
    }
}

/// Runs `f` while a 1 ms timer keeps this executor's reactor turning. A task waiting for its
/// shared channel's peer to connect is woken only when its own reactor turns, and a reactor
/// with nothing else to do parks: without the timer, start-up could wait forever when the
/// peer connects after this executor parked (seen with three shards).
async fn awake_while<F: std::future::Future>(f: F) -> F::Output {
    let done = Rc::new(std::cell::Cell::new(false));
    let flag = done.clone();
    let ticker = glommio::spawn_local(async move {
        while !flag.get() {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
    });
    let out = f.await;
    done.set(true);
    ticker.await;
    out
}
