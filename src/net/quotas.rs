//! Connection limits across the whole broker, as Kafka has them:
//! `max.connections` (all listeners together; past it the listeners stop
//! accepting until a connection closes) and `max.connections.per.ip` with
//! `max.connections.per.ip.overrides` (a connection past its address's
//! limit is accepted and closed at once).
//!
//! Every shard accepts connections, so the counts are shared by all
//! shards: an atomic for the total and a mutex around the per-address
//! counts. They are touched only when a connection opens or closes, never
//! on the request path.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::BrokerConfig;

pub struct ConnectionQuotas {
    max: usize,
    per_ip_max: usize,
    per_ip_overrides: HashMap<IpAddr, usize>,
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("too many connections from {ip} (max.connections.per.ip = {max})")]
    PerIp { ip: IpAddr, max: usize },
}

/// A connection's place in the counts; given back on drop.
pub struct Admitted {
    quotas: Arc<ConnectionQuotas>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.quotas.total.fetch_sub(1, Ordering::SeqCst);
        let mut per_ip = self.quotas.per_ip.lock().expect("per-ip counts");
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

impl ConnectionQuotas {
    pub fn new(config: &BrokerConfig) -> Arc<Self> {
        Arc::new(ConnectionQuotas {
            max: config.max_connections,
            per_ip_max: config.max_connections_per_ip,
            per_ip_overrides: config.max_connections_per_ip_overrides.clone(),
            total: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    /// Whether the broker may accept another connection (max.connections).
    pub fn has_room(&self) -> bool {
        self.total.load(Ordering::SeqCst) < self.max
    }

    /// Open connections, broker-wide.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }

    /// Counts a new connection from `ip`, or refuses it past its address's
    /// limit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refused> {
        let max = *self.per_ip_overrides.get(&ip).unwrap_or(&self.per_ip_max);
        let mut per_ip = self.per_ip.lock().expect("per-ip counts");
        let n = per_ip.entry(ip).or_insert(0);
        if *n >= max {
            if *n == 0 {
                per_ip.remove(&ip);
            }
            return Err(Refused::PerIp { ip, max });
        }
        *n += 1;
        self.total.fetch_add(1, Ordering::SeqCst);
        Ok(Admitted {
            quotas: self.clone(),
            ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves per-address limits and their overrides are enforced and the
    // counts come back when connections close.
    #[test]
    fn per_ip_limits_and_overrides() {
        let special: IpAddr = "127.0.0.2".parse().unwrap();
        let config = BrokerConfig {
            max_connections_per_ip: 2,
            max_connections_per_ip_overrides: [(special, 0)].into(),
            ..BrokerConfig::default()
        };
        let q = ConnectionQuotas::new(&config);
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let a = q.admit(local).unwrap();
        let _b = q.admit(local).unwrap();
        assert!(matches!(q.admit(local), Err(Refused::PerIp { max: 2, .. })));
        assert!(q.admit(special).is_err(), "override 0 refuses everything");
        assert_eq!(q.open(), 2);
        drop(a);
        assert!(q.admit(local).is_ok());
        assert!(q.has_room());
    }
}
