//! Memory for plans in flight, bounded: a plan reserves what its answer occupies as it renders
//! it, and keeps the reservation until the answer is sent (its body holds it; for a plan finished
//! in the background, until it is fetched and sent, cancelled or expires). A plan that would pass the bound
//! stops and answers 503 with `Retry-After`; the server never runs out of memory for plans.
//!
//! Owns: the byte bound and reservations against it. Must not touch: what a plan computes.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::catalog::{CatalogError, CatalogResult, ErrorType};

/// A reservation is counted in units of this many bytes.
const UNIT: u64 = 1024;

/// What a plan reserves when it starts (its request, the state it builds).
pub use crate::config::PLAN_START_BYTES as START_BYTES;

/// The bound on memory for plans in flight.
#[derive(Clone)]
pub struct PlanBudget {
    units: Arc<Semaphore>,
}

/// Memory one plan holds against the bound; given back when dropped.
pub struct Reservation {
    budget: PlanBudget,
    permit: OwnedSemaphorePermit,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reservation({} bytes)", self.bytes())
    }
}

fn units(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX)
}

fn exhausted() -> CatalogError {
    CatalogError::new(
        ErrorType::ServiceUnavailable,
        "this server holds as much plan data as it may; retry shortly",
    )
}

impl PlanBudget {
    /// At most `bytes` for plans in flight.
    pub fn new(bytes: u64) -> Self {
        let units = units(bytes).min(u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        Self {
            units: Arc::new(Semaphore::new(units as usize)),
        }
    }

    /// Reserves `bytes`, or refuses at once when they are not free.
    pub fn reserve(&self, bytes: u64) -> CatalogResult<Reservation> {
        let permit = self
            .units
            .clone()
            .try_acquire_many_owned(units(bytes))
            .map_err(|_| exhausted())?;
        Ok(Reservation {
            budget: self.clone(),
            permit,
        })
    }

    /// Bytes free now.
    pub fn free_bytes(&self) -> u64 {
        self.units.available_permits() as u64 * UNIT
    }
}

impl Reservation {
    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        u64::from(self.permit.num_permits() as u32) * UNIT
    }

    /// Holds at least `bytes` in all, or refuses when the bound would be passed (what is held
    /// stays held until the reservation is dropped).
    pub fn grow_to(&mut self, bytes: u64) -> CatalogResult<()> {
        let held = self.permit.num_permits() as u32;
        let wanted = units(bytes);
        if wanted <= held {
            return Ok(());
        }
        // Grow by at least as much as is held: a growing answer reserves O(log n) times.
        let more = (wanted - held).max(held);
        let extra = match self.budget.units.clone().try_acquire_many_owned(more) {
            Ok(extra) => extra,
            Err(_) => self
                .budget
                .units
                .clone()
                .try_acquire_many_owned(wanted - held)
                .map_err(|_| exhausted())?,
        };
        self.permit.merge(extra);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_stay_within_the_bound_and_give_back_when_dropped() {
        let budget = PlanBudget::new(100 * 1024);
        let mut first = budget.reserve(10 * 1024).unwrap();
        first.grow_to(60 * 1024).unwrap();
        assert!(first.bytes() >= 60 * 1024);
        let second = budget.reserve(30 * 1024).unwrap();
        // What is left cannot hold another 30 KiB.
        let refused = budget.reserve(30 * 1024).unwrap_err();
        assert_eq!(refused.kind, ErrorType::ServiceUnavailable);
        assert!(first.grow_to(100 * 1024).is_err());
        drop(second);
        drop(first);
        assert_eq!(budget.free_bytes(), 100 * 1024);
        assert!(budget.reserve(100 * 1024).is_ok());
    }

    #[test]
    fn a_reservation_grows_by_doubling_when_it_can_and_exactly_when_it_must() {
        let budget = PlanBudget::new(10 * 1024);
        let mut r = budget.reserve(4 * 1024).unwrap();
        // Doubling (8 KiB) fits.
        r.grow_to(5 * 1024).unwrap();
        assert_eq!(r.bytes(), 8 * 1024);
        // Doubling again (16 KiB) does not; exactly what is asked does.
        r.grow_to(10 * 1024).unwrap();
        assert_eq!(r.bytes(), 10 * 1024);
        assert_eq!(budget.free_bytes(), 0);
    }
}
