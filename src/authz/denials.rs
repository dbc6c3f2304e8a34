//! Which denials reach the audit trail one by one, and which only as a count.
//!
//! Every denial is logged, but a principal that is refused again and again must not fill the
//! tenant's trail (each event is a durable write, kept for the audit retention). Per principal, in
//! each minute, the first `per_minute` denials are recorded as they happen; the rest are counted,
//! and one summary event (`action` = `denied-repeatedly`) records how many, when the minute is over
//! (at the principal's next denial or the next [`DenialLog::due_summaries`]). Per tenant, at most
//! `per_day` denials a day (UTC) are recorded one by one; past that the tenant's denials are only
//! counted into summaries. Management changes never pass through here: they are always recorded.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

use crate::domain::PrincipalId;
use crate::domain::TenantId;

use crate::store::AuditEvent;

/// Length of a principal's counting window.
const WINDOW_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// One principal's current minute.
#[derive(Debug, Clone, Copy)]
struct Window {
    tenant: TenantId,
    started_ms: i64,
    recorded: u32,
    counted: u64,
}

/// What to write for a denial.
#[derive(Debug, Default, PartialEq)]
pub struct ToRecord {
    /// The denial itself, when it is recorded one by one.
    pub event: Option<AuditEvent>,
    /// The summary of the principal's previous minute, when it ended with denials only counted.
    pub summary: Option<AuditEvent>,
}

/// Denials per principal and per tenant, in memory (each replica counts its own).
pub struct DenialLog {
    per_minute: u32,
    per_day: u32,
    principals: Mutex<HashMap<PrincipalId, Window>>,
    /// Each tenant's denials recorded one by one on the current UTC day: (day, count).
    tenants: Mutex<HashMap<TenantId, (i64, u32)>>,
}

fn summary(actor: PrincipalId, w: &Window, until_ms: i64) -> AuditEvent {
    AuditEvent {
        id: Uuid::now_v7(),
        tenant_id: w.tenant,
        at_ms: until_ms,
        actor,
        action: "denied-repeatedly".into(),
        resource: format!(
            "{} more denials, not recorded one by one, from {} to {} (ms since the epoch)",
            w.counted, w.started_ms, until_ms
        ),
        outcome: "denied".into(),
    }
}

impl DenialLog {
    pub fn new(per_minute: u32, per_day: u32) -> Self {
        Self {
            per_minute,
            per_day,
            principals: Mutex::default(),
            tenants: Mutex::default(),
        }
    }

    /// What to record for `denial` (its `at_ms` is now).
    pub fn record(&self, denial: AuditEvent) -> ToRecord {
        let now = denial.at_ms;
        let mut out = ToRecord::default();
        let within_day = self.count_for_tenant(denial.tenant_id, now);
        let mut principals = self.principals.lock().unwrap_or_else(|e| e.into_inner());
        let window = principals.entry(denial.actor).or_insert(Window {
            tenant: denial.tenant_id,
            started_ms: now,
            recorded: 0,
            counted: 0,
        });
        if now - window.started_ms >= WINDOW_MS {
            if window.counted > 0 {
                out.summary = Some(summary(denial.actor, window, now));
            }
            *window = Window {
                tenant: denial.tenant_id,
                started_ms: now,
                recorded: 0,
                counted: 0,
            };
        }
        if window.recorded < self.per_minute && within_day {
            window.recorded += 1;
            out.event = Some(denial);
        } else {
            window.counted += 1;
            if within_day {
                self.uncount_for_tenant(denial.tenant_id);
            }
        }
        out
    }

    /// Summaries of every minute that is over and ended with denials only counted; those
    /// principals start afresh.
    pub fn due_summaries(&self, now_ms: i64) -> Vec<AuditEvent> {
        let mut principals = self.principals.lock().unwrap_or_else(|e| e.into_inner());
        let mut due = Vec::new();
        principals.retain(|actor, w| {
            if now_ms - w.started_ms < WINDOW_MS {
                return true;
            }
            if w.counted > 0 {
                due.push(summary(*actor, w, now_ms));
            }
            false
        });
        self.tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (day, _)| *day == now_ms.div_euclid(DAY_MS));
        due
    }

    /// Counts one denial against the tenant's day; false when its day's budget is spent.
    fn count_for_tenant(&self, tenant: TenantId, now_ms: i64) -> bool {
        let today = now_ms.div_euclid(DAY_MS);
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        let (day, count) = tenants.entry(tenant).or_insert((today, 0));
        if *day != today {
            (*day, *count) = (today, 0);
        }
        if *count >= self.per_day {
            return false;
        }
        *count += 1;
        true
    }

    /// Gives back a count taken for a denial that was not recorded one by one after all.
    fn uncount_for_tenant(&self, tenant: TenantId) {
        if let Some((_, count)) = self
            .tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&tenant)
        {
            *count = count.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial(tenant: TenantId, actor: PrincipalId, at_ms: i64) -> AuditEvent {
        AuditEvent {
            id: Uuid::now_v7(),
            tenant_id: tenant,
            at_ms,
            actor,
            action: "TableReadData".into(),
            resource: "table ns.t".into(),
            outcome: "denied".into(),
        }
    }

    /// Issue 23, escape 11: 2,000 denials in 2.3 s wrote and fsynced 2,000 events. A principal's
    /// minute records a few, and one summary counts the rest.
    #[test]
    fn repeated_denials_are_recorded_a_few_then_counted() {
        let log = DenialLog::new(10, 10_000);
        let (tenant, actor) = (TenantId::now_v7(), PrincipalId::now_v7());
        let mut recorded = 0;
        for i in 0..2000 {
            let out = log.record(denial(tenant, actor, 1_000 + i));
            recorded += usize::from(out.event.is_some());
            assert!(out.summary.is_none());
        }
        assert_eq!(recorded, 10);
        assert!(
            log.due_summaries(30_000).is_empty(),
            "the minute is not over"
        );
        let summaries = log.due_summaries(61_000);
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].action, "denied-repeatedly");
        assert!(
            summaries[0].resource.starts_with("1990 more denials"),
            "{:?}",
            summaries[0]
        );
        // A new minute records again; the next minute's summary comes with a later denial too.
        let out = log.record(denial(tenant, actor, 70_000));
        assert!(out.event.is_some());
        for i in 0..20 {
            log.record(denial(tenant, actor, 70_001 + i));
        }
        let out = log.record(denial(tenant, actor, 140_000));
        assert!(out.event.is_some());
        assert!(out.summary.unwrap().resource.starts_with("11 more denials"));
    }

    #[test]
    fn a_tenant_records_at_most_its_daily_budget_one_by_one() {
        let log = DenialLog::new(10, 25);
        let tenant = TenantId::now_v7();
        let mut recorded = 0;
        for _ in 0..10 {
            let actor = PrincipalId::now_v7();
            for i in 0..10 {
                recorded +=
                    usize::from(log.record(denial(tenant, actor, 1_000 + i)).event.is_some());
            }
        }
        assert_eq!(recorded, 25);
        // Another tenant has its own budget; the next day the first has one again.
        let other = log.record(denial(TenantId::now_v7(), PrincipalId::now_v7(), 1_000));
        assert!(other.event.is_some());
        let next_day = log.record(denial(tenant, PrincipalId::now_v7(), DAY_MS + 5));
        assert!(next_day.event.is_some());
    }
}
