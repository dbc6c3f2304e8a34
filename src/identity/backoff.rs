//! Back-off for repeated failed sign-ins, per client id from one source address, and per source
//! address.
//!
//! A few failures cost nothing; after that every further failure shuts the door for twice as long
//! as the one before (1 s, 2 s, 4 s, ... at most [`MAX_BACKOFF`]), and while it is shut requests
//! from that address (for that client id, or for any when the address itself is shut) are
//! answered at once, without checking any secret. A success clears that client id's record at that
//! address (not the address's: one valid credential must not reset guessing from the same place).
//! Records are forgotten [`FORGET_AFTER`] after the last failure and at most [`MAX_TRACKED`] are
//! kept.
//!
//! No door is keyed by a client id alone: client ids are not secret, and failures sent from one
//! address never refuse the right secret sent from another. What guards a secret against guesses
//! spread over many addresses is its strength: generated secrets are 256-bit, and a chosen root
//! secret has at least 16 characters.

use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failures per client id from one address before back-off begins.
pub const CLIENT_FREE_FAILURES: u32 = 5;
/// Failures per source address before back-off begins (one address may serve many clients).
pub const ADDRESS_FREE_FAILURES: u32 = 20;
/// The longest a door stays shut after one failure.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long a record outlives its last failure.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Records kept per kind (client ids, addresses).
pub const MAX_TRACKED: u64 = 100_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    shut_until: Option<Instant>,
}

/// Failed sign-ins, remembered briefly.
pub struct SignInBackoff {
    /// By client id and the address it was sent from.
    clients: moka::sync::Cache<(String, Option<IpAddr>), Failures>,
    addresses: moka::sync::Cache<IpAddr, Failures>,
}

impl Default for SignInBackoff {
    fn default() -> Self {
        Self::new()
    }
}

fn cache<K>() -> moka::sync::Cache<K, Failures>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
{
    moka::sync::Cache::builder()
        .max_capacity(MAX_TRACKED)
        .time_to_idle(FORGET_AFTER)
        .build()
}

fn remaining(f: Option<Failures>, now: Instant) -> Option<Duration> {
    f?.shut_until
        .and_then(|until| until.checked_duration_since(now))
        .filter(|d| !d.is_zero())
}

fn after_failure(previous: Option<Failures>, free: u32, now: Instant) -> Failures {
    let count = previous.map_or(0, |f| f.count).saturating_add(1);
    let shut_until = (count > free).then(|| {
        let doublings = (count - free - 1).min(16);
        now + Duration::from_secs(1u64 << doublings).min(MAX_BACKOFF)
    });
    Failures { count, shut_until }
}

impl SignInBackoff {
    pub fn new() -> Self {
        Self {
            clients: cache(),
            addresses: cache(),
        }
    }

    /// How long a sign-in for `client_id` from `address` must still wait; `None` when it may
    /// proceed.
    pub fn wait(&self, client_id: &str, address: Option<IpAddr>) -> Option<Duration> {
        let now = Instant::now();
        let client = remaining(self.clients.get(&(client_id.to_owned(), address)), now);
        let address = address.and_then(|a| remaining(self.addresses.get(&a), now));
        client.max(address)
    }

    /// Records a failed sign-in.
    pub fn failed(&self, client_id: &str, address: Option<IpAddr>) {
        let now = Instant::now();
        let key = (client_id.to_owned(), address);
        let client = after_failure(self.clients.get(&key), CLIENT_FREE_FAILURES, now);
        self.clients.insert(key, client);
        if let Some(a) = address {
            let failures = after_failure(self.addresses.get(&a), ADDRESS_FREE_FAILURES, now);
            self.addresses.insert(a, failures);
        }
    }

    /// Records a successful sign-in: the client id starts afresh at that address.
    pub fn succeeded(&self, client_id: &str, address: Option<IpAddr>) {
        self.clients.invalidate(&(client_id.to_owned(), address));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_door_shuts_after_the_free_failures_and_longer_each_time() {
        let now = Instant::now();
        let mut f = None;
        for _ in 0..CLIENT_FREE_FAILURES {
            f = Some(after_failure(f, CLIENT_FREE_FAILURES, now));
            assert_eq!(remaining(f, now), None);
        }
        let mut waits = Vec::new();
        for _ in 0..10 {
            f = Some(after_failure(f, CLIENT_FREE_FAILURES, now));
            waits.push(remaining(f, now).unwrap().as_secs());
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
    }

    #[test]
    fn a_success_clears_the_client_but_not_the_address() {
        let b = SignInBackoff::new();
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..=ADDRESS_FREE_FAILURES {
            b.failed("c", Some(addr));
        }
        assert!(b.wait("c", Some(addr)).is_some());
        assert!(
            b.wait("other", Some(addr)).is_some(),
            "the address is shut too"
        );
        b.succeeded("c", Some(addr));
        assert!(b.wait("c", Some(addr)).is_some(), "the address stays shut");
        assert!(b.wait("c", Some("192.0.2.2".parse().unwrap())).is_none());
    }

    /// Issue 23, escape 9: 50 wrong secrets for one client id locked that client out from every
    /// address. Failures shut the door only at the address they came from.
    #[test]
    fn failures_from_one_address_never_shut_the_client_out_elsewhere() {
        let b = SignInBackoff::new();
        let attacker: IpAddr = "192.0.2.1".parse().unwrap();
        let engine: IpAddr = "198.51.100.7".parse().unwrap();
        for _ in 0..50 {
            b.failed("engine", Some(attacker));
        }
        assert!(b.wait("engine", Some(attacker)).is_some());
        assert_eq!(b.wait("engine", Some(engine)), None);
        assert_eq!(b.wait("engine", None), None);
        // Failures spread over many addresses shut none of them for the others.
        for i in 0..200u32 {
            let from = IpAddr::from([10, 0, (i / 250) as u8, (i % 250) as u8]);
            b.failed("engine", Some(from));
        }
        assert_eq!(b.wait("engine", Some(engine)), None);
    }
}
