//! Each tenant's share of the server: a request rate (`[limits] tenant_requests_per_sec`, with
//! a burst), so one tenant's load cannot crowd out another's.
//!
//! A generic cell-rate algorithm per tenant: a request that comes early waits for its turn
//! (asleep, costing nothing) when that turn is at most `tenant_max_wait_ms` away, and is refused
//! with 429 and `Retry-After` otherwise. Waiting rather than refusing at once keeps a client that
//! retries at once from spending the server on refusals. Checked right after the caller's token,
//! before any other work; off (`0`) by default.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::TenantLimitSettings;
use crate::domain::TenantId;

/// What a tenant's request must do before it runs.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    Now,
    After(Duration),
    /// Over its rate by more than the longest wait: refused, to retry after this many seconds.
    Refused {
        retry_after_secs: u64,
    },
}

/// The per-tenant rates.
pub struct TenantLimits {
    /// Time between two requests at the tenant's rate; `None` when there is no limit.
    interval: Option<Duration>,
    /// How far ahead of its schedule a tenant may be (the burst).
    tolerance: Duration,
    max_wait: Duration,
    /// Each tenant's theoretical arrival time of its next request.
    next: Mutex<HashMap<TenantId, Instant>>,
}

impl TenantLimits {
    pub fn new(settings: TenantLimitSettings) -> Self {
        let interval = (settings.tenant_requests_per_sec > 0)
            .then(|| Duration::from_secs(1) / settings.tenant_requests_per_sec);
        Self {
            tolerance: interval.unwrap_or_default() * settings.tenant_burst,
            interval,
            max_wait: Duration::from_millis(settings.tenant_max_wait_ms),
            next: Mutex::new(HashMap::new()),
        }
    }

    /// Whether there is a limit at all (the hot path skips everything else when not).
    pub fn enabled(&self) -> bool {
        self.interval.is_some()
    }

    /// Takes `tenant`'s next turn: now, after a wait, or a 429 when the wait would be too long.
    pub fn admit(&self, tenant: TenantId) -> Admission {
        let Some(interval) = self.interval else {
            return Admission::Now;
        };
        self.admit_at(tenant, interval, Instant::now())
    }

    fn admit_at(&self, tenant: TenantId, interval: Duration, now: Instant) -> Admission {
        let mut next = self.next.lock().expect("tenant limits lock");
        let tat = next.get(&tenant).copied().unwrap_or(now).max(now);
        // How long until this request's turn, beyond what the burst allows.
        let wait = (tat - now).saturating_sub(self.tolerance);
        if wait > self.max_wait {
            let retry_after = (wait - self.max_wait).as_secs_f64().ceil().max(1.0) as u64;
            metrics::counter!("floe_tenant_requests_refused_total").increment(1);
            return Admission::Refused {
                retry_after_secs: retry_after,
            };
        }
        next.insert(tenant, tat + interval);
        if next.len() > 100_000 {
            // Tenants that have been quiet for longer than the burst are back to a fresh start.
            next.retain(|_, t| *t + self.tolerance > now);
        }
        if wait.is_zero() {
            Admission::Now
        } else {
            metrics::counter!("floe_tenant_requests_delayed_total").increment(1);
            Admission::After(wait)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: u32, burst: u32, max_wait_ms: u64) -> TenantLimits {
        TenantLimits::new(TenantLimitSettings {
            tenant_requests_per_sec: rate,
            tenant_burst: burst,
            tenant_max_wait_ms: max_wait_ms,
        })
    }

    #[test]
    fn a_tenant_over_its_rate_waits_then_is_refused_and_others_are_not_held_up() {
        // 10 per second (one per 100 ms), a burst of 2, waits of up to 250 ms.
        let l = limits(10, 2, 250);
        let interval = Duration::from_millis(100);
        let (a, b, now) = (TenantId::now_v7(), TenantId::now_v7(), Instant::now());
        let at = |t: &TenantLimits, who| t.admit_at(who, interval, now);
        // The burst and the first turn pass at once.
        for _ in 0..3 {
            assert_eq!(at(&l, a), Admission::Now);
        }
        // Then each next one waits a turn longer, up to the longest wait.
        assert_eq!(at(&l, a), Admission::After(Duration::from_millis(100)));
        assert_eq!(at(&l, a), Admission::After(Duration::from_millis(200)));
        assert_eq!(
            at(&l, a),
            Admission::Refused {
                retry_after_secs: 1
            }
        );
        // Another tenant is not held up by the first.
        assert_eq!(at(&l, b), Admission::Now);
        // Later, the first has its turns back.
        let later = now + Duration::from_secs(2);
        assert_eq!(l.admit_at(a, interval, later), Admission::Now);
    }

    #[test]
    fn no_rate_means_no_limit() {
        let l = limits(0, 1, 0);
        assert!(!l.enabled());
        for _ in 0..10_000 {
            assert_eq!(l.admit(TenantId::nil()), Admission::Now);
        }
    }
}
