//! Bounded request bodies. Every request body is counted against one
//! process-wide budget (`MAX_BODY_BYTES_IN_FLIGHT_MB`) for as long as the
//! request holds it (its [`BodyReservation`] lives with the converted
//! request, so retries and streams keep it); a body that does not fit is
//! refused with 503 and Retry-After instead of growing memory. While a
//! request is parsed and converted it briefly holds about three copies of
//! its body (the parsed request, the converted one, the serialized
//! upstream body), so it reserves that much, then shrinks to the upstream
//! body it keeps. Bodies must
//! also arrive within `REQUEST_BODY_TIMEOUT` (408), so a body trickled one
//! byte at a time cannot hold a connection forever.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Bytes held by all requests now.
#[derive(Debug, Default, Clone)]
pub struct BodyBudget {
    in_flight: Arc<AtomicUsize>,
}

/// Bytes one request holds; given back when dropped.
#[derive(Debug)]
pub struct BodyReservation {
    in_flight: Arc<AtomicUsize>,
    bytes: usize,
}

/// The budget is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget;

impl BodyBudget {
    /// An empty reservation, to grow as the body arrives.
    pub fn reserve(&self) -> BodyReservation {
        BodyReservation { in_flight: self.in_flight.clone(), bytes: 0 }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

impl BodyReservation {
    /// Adds `more` bytes if the total stays within `cap`.
    pub fn grow(&mut self, more: usize, cap: usize) -> Result<(), OverBudget> {
        let mut current = self.in_flight.load(Ordering::Relaxed);
        loop {
            let next = current.checked_add(more).filter(|next| *next <= cap).ok_or(OverBudget)?;
            match self.in_flight.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    self.bytes += more;
                    return Ok(());
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Gives back all but `bytes` (no-op when holding less).
    pub fn shrink_to(&mut self, bytes: usize) {
        if bytes < self.bytes {
            self.in_flight.fetch_sub(self.bytes - bytes, Ordering::AcqRel);
            self.bytes = bytes;
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for BodyReservation {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_one_cap_and_give_back_on_drop() {
        let budget = BodyBudget::default();
        let mut first = budget.reserve();
        let mut second = budget.reserve();
        assert_eq!(first.grow(60, 100), Ok(()));
        assert_eq!(second.grow(30, 100), Ok(()));
        assert_eq!(second.grow(20, 100), Err(OverBudget));
        assert_eq!(budget.in_flight(), 90);
        drop(first);
        assert_eq!(budget.in_flight(), 30);
        assert_eq!(second.grow(70, 100), Ok(()));
        assert_eq!(second.bytes(), 100);
        second.shrink_to(40);
        assert_eq!(budget.in_flight(), 40);
        second.shrink_to(90);
        assert_eq!(second.bytes(), 40, "shrinking never grows");
        drop(second);
        assert_eq!(budget.in_flight(), 0);
        assert_eq!(budget.reserve().grow(usize::MAX, usize::MAX), Ok(()));
        assert_eq!(budget.in_flight(), 0, "the reservation above was dropped");
    }
}
