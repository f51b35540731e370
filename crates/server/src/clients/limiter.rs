//! `maxClientCnxns`: connections per client IP, counted across all shards. Touched only when
//! a connection opens or closes, never on the request path.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Debug, Default)]
pub struct ConnectionLimiter {
    per_ip: Mutex<HashMap<IpAddr, u32>>,
}

/// Holds one connection's place; gives it back when dropped.
#[derive(Debug)]
pub struct Admitted {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl ConnectionLimiter {
    pub fn global() -> Arc<ConnectionLimiter> {
        static GLOBAL: OnceLock<Arc<ConnectionLimiter>> = OnceLock::new();
        GLOBAL.get_or_init(Arc::default).clone()
    }

    /// Admits a connection from `ip` unless it already has `max` (0: no limit).
    pub fn admit(self: &Arc<Self>, ip: IpAddr, max: u32) -> Option<Admitted> {
        let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if max != 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(Admitted {
            limiter: self.clone(),
            ip,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut map = self
            .limiter
            .per_ip
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_and_frees_on_drop() {
        let l = Arc::new(ConnectionLimiter::default());
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = l.admit(ip, 2).unwrap();
        let _b = l.admit(ip, 2).unwrap();
        assert!(l.admit(ip, 2).is_none());
        drop(a);
        assert!(l.admit(ip, 2).is_some());
        assert!(l.admit("127.0.0.2".parse().unwrap(), 2).is_some());
    }
}
