//! What the latest calls say about reaching each warehouse's storage and its token service: the
//! readiness detail (`/management/v1/tenants/{tenant}/health`), where the load balancer's
//! `/health/ready` only asks whether the store answers.
//!
//! Owns: one record per warehouse and upstream (calls and failures since start, the latest
//! success and failure, what the latest failure was), filled in by the owners of the calls (the
//! catalog's storage IO through [`crate::storage::io::ObservedIo`], vending's STS and token exchanges) and forgotten
//! with the warehouse. Nothing here calls out: a warehouse nobody used since start is `unknown`.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::domain::WarehouseId;
use crate::domain::now_ms;
use crate::outbound::CallError;

/// What a warehouse calls out to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Upstream {
    /// Its object storage (metadata reads and writes, purges).
    Storage,
    /// The token service vending asks for table-scoped credentials (AWS STS, Google's token
    /// exchange, Entra ID for user-delegation keys).
    TokenService,
}

/// How a call that got no usable answer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// A timeout, a lost connection, throttling, a 5xx: worth retrying.
    Unavailable,
    /// The upstream refuses the server's credential, or the bucket does not exist: an operator
    /// must fix the warehouse.
    Refused,
}

impl From<&CallError> for Failure {
    fn from(e: &CallError) -> Self {
        match e {
            CallError::Transient(_) => Self::Unavailable,
            CallError::Refused(_) => Self::Refused,
        }
    }
}

/// What the calls to one upstream of one warehouse said.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct UpstreamRecord {
    /// Calls since the server started.
    pub calls: u64,
    /// Of those, the ones that failed.
    pub failures: u64,
    /// When a call last succeeded (ms since the epoch).
    pub last_success_ms: Option<i64>,
    /// When a call last failed (ms since the epoch).
    pub last_failure_ms: Option<i64>,
    /// How the latest failure failed.
    pub last_failure: Option<Failure>,
}

/// Whether an upstream is reachable, from its latest call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The latest call succeeded.
    Reachable,
    /// The latest call failed with trouble worth retrying.
    Unavailable,
    /// The latest call was refused: an operator must fix the warehouse.
    Refused,
    /// No call since the server started.
    Unknown,
}

impl UpstreamRecord {
    /// The state its latest call says.
    pub fn state(&self) -> State {
        match (self.last_success_ms, self.last_failure_ms) {
            (None, None) => State::Unknown,
            (Some(ok), Some(failed)) if ok >= failed => State::Reachable,
            (Some(_), None) => State::Reachable,
            _ => match self.last_failure {
                Some(Failure::Refused) => State::Refused,
                _ => State::Unavailable,
            },
        }
    }
}

/// The records of every warehouse this replica has called out for.
#[derive(Default)]
pub struct Reachability {
    records: Mutex<HashMap<(WarehouseId, Upstream), UpstreamRecord>>,
}

impl Reachability {
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes one call's outcome.
    pub fn record(&self, warehouse: WarehouseId, upstream: Upstream, outcome: Result<(), Failure>) {
        let now = now_ms();
        let mut records = self.records.lock().expect("reachability lock");
        let record = records.entry((warehouse, upstream)).or_default();
        record.calls += 1;
        match outcome {
            Ok(()) => record.last_success_ms = Some(now),
            Err(failure) => {
                record.failures += 1;
                record.last_failure_ms = Some(now);
                record.last_failure = Some(failure);
            }
        }
    }

    /// What the calls to `upstream` of `warehouse` said (an empty record if none was made).
    pub fn of(&self, warehouse: WarehouseId, upstream: Upstream) -> UpstreamRecord {
        self.records
            .lock()
            .expect("reachability lock")
            .get(&(warehouse, upstream))
            .cloned()
            .unwrap_or_default()
    }

    /// Forgets a warehouse (deleted, or its storage changed).
    pub fn forget(&self, warehouse: WarehouseId) {
        self.records
            .lock()
            .expect("reachability lock")
            .retain(|(w, _), _| *w != warehouse);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_call_decides_the_state() {
        let r = Reachability::new();
        let w = WarehouseId::now_v7();
        assert_eq!(r.of(w, Upstream::Storage).state(), State::Unknown);
        r.record(w, Upstream::Storage, Err(Failure::Unavailable));
        assert_eq!(r.of(w, Upstream::Storage).state(), State::Unavailable);
        std::thread::sleep(std::time::Duration::from_millis(2));
        r.record(w, Upstream::Storage, Ok(()));
        let storage = r.of(w, Upstream::Storage);
        assert_eq!(
            (storage.state(), storage.calls, storage.failures),
            (State::Reachable, 2, 1)
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
        r.record(w, Upstream::TokenService, Err(Failure::Refused));
        assert_eq!(r.of(w, Upstream::TokenService).state(), State::Refused);
        r.forget(w);
        assert_eq!(r.of(w, Upstream::TokenService).state(), State::Unknown);
    }
}
