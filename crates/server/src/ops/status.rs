//! `zoocore status [zoo.cfg]`: what `zkServer.sh status` prints and how it exits, so init
//! scripts and runbooks written for ZooKeeper work unchanged.
//!
//! Like zkServer.sh it asks the configured client port with `srvr` and prints its `Mode:`
//! line: exit 0 when the server answers with a mode, 1 otherwise ("Error contacting
//! service. It is probably not running."). The client address is clientPortAddress, or the
//! server line's client part, or `localhost` when the server listens on every interface.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;

const TIMEOUT: Duration = Duration::from_secs(5);

pub fn run(args: &[String]) -> ExitCode {
    let cfg = match args {
        [] => Config::standalone_default(),
        [path] => {
            // zkServer.sh writes this to stderr too.
            eprintln!("Using config: {path}");
            match Config::load(&PathBuf::from(path)) {
                Ok(cfg) => cfg,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(1);
                }
            }
        }
        _ => {
            eprintln!("usage: zoocore status [zoo.cfg]");
            return ExitCode::from(2);
        }
    };
    let (addr, shown) = target(cfg.client_addr);
    println!(
        "Client port found: {}. Client address: {shown}. Client SSL: false.",
        addr.port()
    );
    match ask_srvr(addr).as_deref().and_then(mode_line) {
        Some(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        None => {
            println!("Error contacting service. It is probably not running.");
            ExitCode::from(1)
        }
    }
}

/// Where to ask, and the address as zkServer.sh names it.
fn target(listen: SocketAddr) -> (SocketAddr, String) {
    if listen.ip().is_unspecified() {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port());
        (addr, "localhost".to_string())
    } else {
        (listen, listen.ip().to_string())
    }
}

fn ask_srvr(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).ok()?;
    s.set_read_timeout(Some(TIMEOUT)).ok()?;
    s.write_all(b"srvr").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The `Mode: ...` line of a srvr answer (absent when the server is not serving).
fn mode_line(srvr: &str) -> Option<String> {
    srvr.lines()
        .find(|l| l.starts_with("Mode: "))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interface_is_asked_on_localhost() {
        let (addr, shown) = target("0.0.0.0:2181".parse().unwrap());
        assert_eq!(addr, "127.0.0.1:2181".parse().unwrap());
        assert_eq!(shown, "localhost");
        let (addr, shown) = target("127.0.0.5:2999".parse().unwrap());
        assert_eq!((addr.port(), shown.as_str()), (2999, "127.0.0.5"));
    }

    #[test]
    fn the_mode_line_is_taken_from_srvr() {
        let srvr = "Zookeeper version: 3.9.3\nLatency min/avg/max: 0/0.0/0\nMode: follower\nNode count: 5\n";
        assert_eq!(mode_line(srvr).as_deref(), Some("Mode: follower"));
        assert_eq!(
            mode_line("This ZooKeeper instance is not currently serving requests\n"),
            None
        );
    }
}
