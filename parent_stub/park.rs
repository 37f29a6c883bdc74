// SPDX-License-Identifier: GPL-2.0

//! The parking lot: requests that arrive while no child is active wait here,
//! in arrival order, and are handed to the next child in that order. With a
//! park timeout, each request has its own deadline (`park_timeout_ms` after
//! it was parked); the timer fails expired requests only while the device
//! is parked with no child and no switch running, so a request never fails
//! sooner than the timeout after it was parked, and never once an attach
//! has begun.

use super::blk::RawRequest;
use kernel::{
    prelude::*,
    time::{Delta, Instant, Monotonic},
};

/// A parked request and the time after which it may be failed.
pub(crate) struct Parked {
    pub(crate) rq: RawRequest,
    /// The hardware queue it came from (for the counters).
    pub(crate) q: u32,
    pub(crate) deadline: Option<Instant<Monotonic>>,
}

/// The lot's FIFO (`logic/ring.rs`), allocated once: every parked request
/// holds a tag, so there can never be more than `nr_queues * depth`.
pub(crate) type Ring<T> = super::logic::ring::Ring<T, KVec<Option<T>>>;

fn ring<T>(cap: usize) -> Result<Ring<T>> {
    let mut buf = KVec::with_capacity(cap, GFP_KERNEL)?;
    for _ in 0..cap {
        buf.push(None, GFP_KERNEL)?;
    }
    Ok(Ring::over(buf))
}

/// Most controller-node closes kept for the next child.
const MAX_CLOSED: usize = 1024;

/// What the parking lot's lock protects.
pub(crate) struct ParkLot {
    pub(crate) ring: Ring<Parked>,
    /// A ring of the same capacity, empty except while a release drains
    /// the batch it swapped out of `ring` (only a release touches it, and
    /// releases are serialised by the switch lock).
    pub(crate) spare: Ring<Parked>,
    /// Requests parked since the current park began.
    pub(crate) parked_now: u64,
    /// Requests the last switch parked and released.
    pub(crate) parked_last: u64,
    pub(crate) parked_total: u64,
    pub(crate) timeouts: u64,
    /// Calls (`calls.rs`) asleep in the parking lot now.
    pub(crate) calls_waiting: u64,
    /// Calls asleep here when the last release made a child active.
    pub(crate) calls_parked_last: u64,
    /// Calls drained by the switch before the last release.
    pub(crate) calls_drained_last: u64,
    pub(crate) calls_parked_total: u64,
    /// Parked calls failed by `park_timeout_ms`.
    pub(crate) call_timeouts: u64,
    /// Controller-node files closed while no child was active, for the
    /// next active child's `release` (`calls.rs`); preallocated.
    pub(crate) closed: KVec<u64>,
    /// Closes that did not fit in `closed` since the last release.
    pub(crate) closed_dropped: u64,
    /// The parent is unloading: nothing parks, no timer is armed.
    pub(crate) unloading: bool,
}

impl ParkLot {
    pub(crate) fn new(cap: usize) -> Result<Self> {
        Ok(Self {
            ring: ring(cap)?,
            spare: ring(cap)?,
            parked_now: 0,
            parked_last: 0,
            parked_total: 0,
            timeouts: 0,
            calls_waiting: 0,
            calls_parked_last: 0,
            calls_drained_last: 0,
            calls_parked_total: 0,
            call_timeouts: 0,
            closed: KVec::with_capacity(MAX_CLOSED, GFP_KERNEL)?,
            closed_dropped: 0,
            unloading: false,
        })
    }

    /// Parks `rq` with a deadline `timeout_ms` from now (0: none). Gives it
    /// back if the lot is full (cannot happen: every request holds a tag).
    pub(crate) fn park(
        &mut self,
        rq: RawRequest,
        q: u32,
        timeout_ms: u32,
    ) -> Result<(), RawRequest> {
        let deadline = (timeout_ms > 0)
            .then(|| Instant::<Monotonic>::now() + Delta::from_millis(i64::from(timeout_ms)));
        self.ring
            .push(Parked { rq, q, deadline })
            .map_err(|p| p.rq)?;
        self.parked_now += 1;
        self.parked_total += 1;
        Ok(())
    }

    /// The oldest parked request if its deadline has passed.
    pub(crate) fn pop_expired(&mut self, now: Instant<Monotonic>) -> Option<Parked> {
        match self.ring.front()?.deadline {
            Some(d) if (d - now).as_nanos() <= 0 => self.ring.pop(),
            _ => None,
        }
    }

    /// Time until the oldest parked request's deadline (zero if passed);
    /// `None` with nothing parked or no deadline.
    pub(crate) fn next_deadline_in(&self, now: Instant<Monotonic>) -> Option<Delta> {
        let d = self.ring.front()?.deadline?;
        let left = d - now;
        Some(if left.as_nanos() > 0 {
            left
        } else {
            Delta::ZERO
        })
    }

    /// How long the oldest parked request has waited.
    pub(crate) fn oldest_waited(&self, now: Instant<Monotonic>, timeout_ms: u32) -> Delta {
        self.ring
            .front()
            .and_then(|p| p.deadline)
            .map_or(Delta::ZERO, |d| {
                (now - d) + Delta::from_millis(i64::from(timeout_ms))
            })
    }
}
