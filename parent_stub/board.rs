// SPDX-License-Identifier: GPL-2.0

//! What the switch protocols keep between and during switches, none of it
//! knowing the hub: the switch board under `Hub::switch` (the stash, the
//! standby, the retired children, scratch), the standby switch's phase for
//! the operator's `abort` (`logic/phase.rs`), the figures the views read,
//! and how a switch's blackout divides.

use super::edge::ActiveChild;
pub(crate) use super::logic::phase::SwitchPhase;
use super::stash::{Offer, Stash, StashState};
use super::state_abi::{ChildRegistration, NAME_LEN};
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{
    prelude::*,
    time::{Delta, Instant, Monotonic},
};

/// A non-negative duration in nanoseconds.
pub(crate) fn ns(d: Delta) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(0)
}

/// What the switch lock guards: the stash, the standby child and the
/// retired ones (`standby.rs`). At most one exists ([`BOARD_MADE`]), the
/// one in `Hub::switch`, so a `&Board` is proof that the switch lock is
/// held (`InFlight::child`, `InFlight::set_child`).
pub(crate) struct Board {
    pub(crate) stash: Stash,
    pub(crate) standby: Option<ActiveChild>,
    pub(crate) retired: Retired,
    /// A bit per tag, all clear between switches: scratch for checking the
    /// requests a blob hands over (`InFlight::check_handed_over`), made
    /// here because nothing may be allocated with the gate closed.
    pub(crate) seen: KVec<u64>,
}

/// Whether a [`Board`] exists (EBUSY for a second one).
static BOARD_MADE: AtomicBool = AtomicBool::new(false);

impl Board {
    pub(crate) fn new(tags: usize) -> Result<Self> {
        let words = tags.div_ceil(64);
        let mut seen = KVec::with_capacity(words, GFP_KERNEL)?;
        seen.resize(words, 0, GFP_KERNEL)?;
        let (stash, retired) = (Stash::new(tags)?, Retired::new()?);
        // Last, after everything that can fail: `drop` clears it.
        if BOARD_MADE.swap(true, Ordering::AcqRel) {
            return Err(EBUSY);
        }
        Ok(Self {
            stash,
            standby: None,
            retired,
            seen,
        })
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        BOARD_MADE.store(false, Ordering::Release);
    }
}

/// A successful adopt: when it ran, and what the child adopted.
pub(crate) struct Adopted {
    pub(crate) offer: Offer,
    pub(crate) start: Instant<Monotonic>,
    pub(crate) end: Instant<Monotonic>,
    pub(crate) blob_bytes: usize,
    pub(crate) from: ([u8; super::state_abi::NAME_LEN], u32),
    /// Closed files the adopted blob named, released in the child.
    pub(crate) pruned: usize,
}

/// How the blackout of a switch divides, for the `resume` line.
pub(crate) struct Blackout {
    pub(crate) mode: &'static str,
    pub(crate) drained: u64,
    pub(crate) handed_over: u64,
    /// A handover: completions the old child had under way at its freeze
    /// (they end on their own, not handed over, not waited for).
    pub(crate) completing: u64,
    pub(crate) blackout_ns: u64,
    pub(crate) drain_ns: u64,
    /// Of `drain_ns`, the time in the old child's `freeze` (a handover).
    pub(crate) freeze_ns: u64,
    pub(crate) export_ns: u64,
    pub(crate) load_ns: u64,
    pub(crate) adopt_ns: u64,
}

/// How many retired children the parent remembers (to recognise their
/// unregistration); an older one forgotten only makes its unload log
/// `unregister-unknown-child`.
const RETIRED_MAX: usize = 8;

/// Children switched away from and still loaded. The parent never calls
/// into them again.
/// On the heap, made at load (a switch allocates nothing): a kilobyte and
/// a half of children would weigh on `Hub::new`'s stack frame.
pub(crate) struct Retired {
    list: KVec<Option<ActiveChild>>,
    next: usize,
}

impl Retired {
    pub(crate) fn new() -> Result<Self> {
        let mut list = KVec::with_capacity(RETIRED_MAX, GFP_KERNEL)?;
        list.resize(RETIRED_MAX, None, GFP_KERNEL)?;
        Ok(Self { list, next: 0 })
    }

    pub(crate) fn push(&mut self, c: ActiveChild) {
        if let Some(slot) = self.list.get_mut(self.next % RETIRED_MAX) {
            *slot = Some(c);
        }
        self.next = self.next.wrapping_add(1);
    }

    pub(crate) fn take(&mut self, reg: *const ChildRegistration) -> Option<ActiveChild> {
        self.list
            .iter_mut()
            .find(|c| c.is_some_and(|c| c.is(reg)))
            .and_then(Option::take)
    }

    pub(crate) fn len(&self) -> usize {
        self.list.iter().filter(|c| c.is_some()).count()
    }
}

pub(crate) fn stash_str(s: StashState) -> &'static str {
    match s {
        StashState::Empty => "empty",
        StashState::Valid => "valid",
        StashState::Corrupt(_) => "corrupt",
        StashState::ExportFailed(_) => "export-failed",
    }
}

/// What the switch protocols record, under `Hub::figures`.
#[derive(Clone, Copy)]
pub(crate) struct Figures {
    pub(crate) generation: u64,
    pub(crate) child: [u8; NAME_LEN],
    pub(crate) child_version: u32,
    /// The active child's newest schema (`hotupctl upgrade` reads it), and
    /// whether it can export older ones (`CAP_EXPORT_OLDER_SCHEMA`).
    pub(crate) child_schema: u32,
    pub(crate) child_exports_older: bool,
    pub(crate) upgrades: u64,
    /// In flight when the last detach began (it waited for them).
    pub(crate) drained_last: u64,
    pub(crate) last_blackout_ns: u64,
    /// When the current park began (a detach); cleared by the next attach.
    pub(crate) park_start: Option<Instant<Monotonic>>,
    /// The last detach's phases: waiting for the gate to empty, and
    /// quiesce + export; and when it ended (no child from then on).
    pub(crate) drain_ns: u64,
    pub(crate) export_ns: u64,
    pub(crate) detached_at: Option<Instant<Monotonic>>,
    /// Device-state schema the next export writes (0: the child's own).
    pub(crate) export_schema: u32,
    pub(crate) stash_bytes: usize,
    pub(crate) stash_state: &'static str,
    pub(crate) last_good_bytes: usize,
    /// Handed over to the successor at the last switch (the blob's count).
    pub(crate) handed_over_last: u64,
    /// The standby child (`standby.rs`), all zero when none.
    pub(crate) standby: [u8; NAME_LEN],
    pub(crate) standby_version: u32,
    /// Retired children still loaded.
    pub(crate) retired: usize,
    /// Standby switches committed, and rolled back.
    pub(crate) switches: u64,
    pub(crate) rollbacks: u64,
}

impl Figures {
    pub(crate) const fn new() -> Self {
        Self {
            generation: 0,
            child: [0; NAME_LEN],
            child_version: 0,
            child_schema: 0,
            child_exports_older: false,
            upgrades: 0,
            drained_last: 0,
            last_blackout_ns: 0,
            park_start: None,
            drain_ns: 0,
            export_ns: 0,
            detached_at: None,
            export_schema: 0,
            stash_bytes: 0,
            stash_state: "empty",
            last_good_bytes: 0,
            handed_over_last: 0,
            standby: [0; NAME_LEN],
            standby_version: 0,
            retired: 0,
            switches: 0,
            rollbacks: 0,
        }
    }
}

impl Figures {
    /// `child` became active after adopting `offer`: a new generation
    /// (returned), and for an upgrade its blackout.
    pub(crate) fn activated(
        &mut self,
        stash: &Stash,
        child: &ActiveChild,
        offer: Offer,
        b: &Blackout,
    ) -> u64 {
        self.generation += 1;
        self.child = child.name;
        self.child_version = child.version;
        self.child_schema = child.schema;
        self.child_exports_older = child.caps & super::state_abi::CAP_EXPORT_OLDER_SCHEMA != 0;
        self.stash_bytes = stash.stash_bytes();
        self.stash_state = stash_str(stash.state);
        self.last_good_bytes = stash.last_good_bytes();
        if offer != Offer::Fresh {
            self.upgrades += 1;
            self.last_blackout_ns = b.blackout_ns;
            self.drained_last = b.drained;
            self.handed_over_last = b.handed_over;
        }
        self.generation
    }
}
