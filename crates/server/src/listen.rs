//! Listening sockets, for the client port (every shard listens on it) and the quorum port.

use glommio::net::TcpListener;

/// The client port's listening socket of one shard: SO_REUSEPORT so every shard listens on
/// the same address, and SO_REUSEADDR so a restart can bind while the previous process's
/// connections linger in FIN-WAIT (glommio's own `bind` sets only the first).
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::os::fd::{FromRawFd, IntoRawFd};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    let fd = socket.into_raw_fd();
    // SAFETY: `fd` is a bound, listening TCP socket that this function created and whose
    // ownership `into_raw_fd` released; the listener becomes its only owner.
    #[allow(unsafe_code)]
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    Ok(listener)
}
