// SPDX-License-Identifier: GPL-2.0

//! The classic switch protocol, transactional:
//!
//! - **detach** (the old child's module exit): close the gate (new I/O
//!   parks), wait until no CPU is inside the child and nothing is in flight,
//!   quiesce, export into a preallocated buffer, forget the child, stay
//!   parked. It cannot fail once it has begun: module exit cannot.
//! - **attach** (the new child's module init): choose what it adopts (the
//!   stash, or the last good state, or nothing: `stash.rs`), let it adopt;
//!   on success make it the active child and release parked I/O in order;
//!   on failure free what its adopt allocated, keep the stash for a retry
//!   and stay parked: nothing fails, nothing is lost.
//!
//! One switch at a time: each holds `Hub::switch` throughout.

use super::board::{ns, stash_str, Adopted, Blackout, Board};
use super::edge::{name_str, read_ops, read_registration, ActiveChild, BadRegistration};
use super::hub::Hub;
use super::inflight::Closed;
use super::stash::{Offer, Stash, StashState};
use super::state_abi::{errno, ChildRegistration, ABI_MAJOR, ABI_MINOR};
use crate::hotup_event;
use kernel::{
    prelude::*,
    sync::ArcBorrow,
    time::{Instant, Monotonic},
};

impl Hub {
    /// Registration of a child: checks it; with no child active, lets it
    /// adopt and resumes; with one active, it becomes the standby
    /// (`standby.rs`).
    ///
    /// # Safety
    ///
    /// `reg` must satisfy `hotup_register_child`'s contract: a registration
    /// (and operations table) valid for its own size, until unregistration.
    pub(crate) unsafe fn attach(this: ArcBorrow<'_, Hub>, reg: *const ChildRegistration) -> Result {
        // SAFETY: per this function's contract.
        let r = match unsafe { read_registration(reg) } {
            Ok(r) => r,
            Err(e) => return Err(refuse_bad("?", 0, e)),
        };
        let cname = name_str(&r.name);
        if r.abi_major != ABI_MAJOR {
            hotup_event!(
                "refuse child={} version={} reason=abi-mismatch child_abi={}.{} parent_abi={}.{}",
                cname,
                r.child_version,
                r.abi_major,
                r.abi_minor,
                ABI_MAJOR,
                ABI_MINOR
            );
            return Err(Error::from_errno(-errno::EPROTO));
        }
        // SAFETY: `r` was read from a registration valid per our contract,
        // whose `ops` is then valid for its own size.
        let ops = match unsafe { read_ops(&r) } {
            Ok(o) => o,
            Err(e) => return Err(refuse_bad(cname, r.child_version, e)),
        };
        let child = ActiveChild::new(&r, ops, reg);
        if let Some(why) = child.hw_refusal(super::hw::any_live()) {
            hotup_event!(
                "refuse child={} version={} reason={} child_abi={}.{}",
                cname,
                r.child_version,
                why,
                r.abi_major,
                r.abi_minor
            );
            return Err(ENODEV);
        }
        let mut board = this.switch.lock();
        if let Some(active) = this.io.child(&board) {
            return Hub::register_standby(this, &mut board, child, &active);
        }
        if this.park.lock().unloading {
            return Err(ENODEV);
        }
        let closed = Hub::enter_switching(this, &board);
        Hub::adopt_and_resume(this, closed, &mut board, &child)
    }

    /// With no child active and the mode `Switching`: `child` adopts what
    /// the stash offers and becomes the active child, or, if it refuses,
    /// the device stays parked with the stash kept for the next one.
    pub(crate) fn adopt_and_resume(
        this: ArcBorrow<'_, Hub>,
        mut closed: Closed,
        board: &mut Board,
        child: &ActiveChild,
    ) -> Result {
        let stash = &mut board.stash;
        let cname = child.name();
        let regions_exist = this.regions.lock().usage().0 > 0;
        let offer = stash.choose(regions_exist);
        if offer == Offer::Refuse {
            Hub::enter_parked(this, &closed);
            hotup_event!(
                "refuse child={} version={} reason=no-state regions={} stash={}",
                cname,
                child.version,
                this.regions.lock().usage().0,
                stash_str(stash.state)
            );
            return Err(EINVAL);
        }
        let adopted = match Hub::adopt_offer(this, &mut closed, stash, child, offer) {
            Ok(a) => a,
            Err((e, freed)) => {
                let parked = this.park.lock().ring.len();
                Hub::enter_parked(this, &closed);
                hotup_event!(
                    "rollback child={} version={} err={} state=parked parked={} blob={} freed_regions={} step=adopt reason=refused from={}",
                    cname, child.version, e.to_errno(), parked,
                    if offer == Offer::Fresh { "none" } else { "kept" },
                    freed,
                    stash.producer_name()
                );
                return Err(e);
            }
        };
        // Where the blackout went: drain + export (detach), load (no child:
        // the old module's unload and the new one's load), adopt. A first
        // attach (nothing was parked by a detach) has no blackout.
        let b = {
            let mut f = this.figures.lock();
            let (blackout_ns, adopt_ns) = f.park_start.take().map_or((0, 0), |t| {
                (ns(adopted.end - t), ns(adopted.end - adopted.start))
            });
            Blackout {
                mode: "classic",
                drained: f.drained_last,
                handed_over: 0,
                completing: 0,
                blackout_ns,
                drain_ns: f.drain_ns,
                freeze_ns: 0,
                export_ns: f.export_ns,
                load_ns: f.detached_at.take().map_or(0, |t| ns(adopted.start - t)),
                adopt_ns,
            }
        };
        Hub::activate(this, board, closed, child, &adopted, &b);
        if offer != Offer::Fresh {
            child.finish();
        }
        Ok(())
    }

    /// Lets `child` adopt `offer`. On failure frees what its adopt
    /// allocated and notes the refusal (the offer stays for another
    /// child): the child's errno and how many regions were freed. On
    /// success commits its regions and makes the offer the last good state.
    pub(crate) fn adopt_offer(
        this: ArcBorrow<'_, Hub>,
        closed: &mut Closed,
        stash: &mut Stash,
        child: &ActiveChild,
        offer: Offer,
    ) -> core::result::Result<Adopted, (Error, usize)> {
        if this.inject_blackout_alloc {
            closed.allocate_outside_noio();
        }
        this.regions.lock().begin_adopt();
        let blob_bytes = stash.bytes_of(offer).map_or(0, |b| b.len());
        let start = Instant::<Monotonic>::now();
        let rc = child.adopt(stash.bytes_of(offer));
        let end = Instant::<Monotonic>::now();
        if let Err(e) = rc {
            // Inside the blackout: lock-free (the disks' lock is taken
            // around allocations, which may wait for this very gate).
            super::hw::forget_unmade_geometry();
            let freed = this.regions.lock().abort();
            stash.refused(offer, child.version);
            return Err((e, freed));
        }
        this.regions.lock().commit();
        // Before the stash is spent: the bytes the child adopted.
        let pruned = stash
            .bytes_of(offer)
            .map_or(0, |blob| this.prune_closed_files(child, blob));
        let from = stash.from;
        if offer == Offer::Fresh {
            // The last good state of a fresh start is the child's own
            // export, in schema 1 (which every version reads): the parent
            // never writes a child's device state.
            stash.adopted_fresh(|buf| child.export(buf, 1).map_err(Error::to_errno));
        } else {
            stash.adopted(offer);
        }
        Ok(Adopted {
            offer,
            start,
            end,
            blob_bytes,
            from,
            pruned,
        })
    }

    /// Makes `child`, which adopted, the active child: figures, the log
    /// lines, the release of parked I/O, the `resume` line.
    pub(crate) fn activate(
        this: ArcBorrow<'_, Hub>,
        board: &Board,
        mut closed: Closed,
        child: &ActiveChild,
        adopted: &Adopted,
        b: &Blackout,
    ) {
        let cname = child.name();
        let offer = adopted.offer;
        this.io.set_child(board, &mut closed, Some(*child));
        let generation = this.figures.lock().activated(&board.stash, child, offer, b);
        if let Offer::LastGood(reason) = offer {
            hotup_event!(
                "recover gen={} child={} version={} using=last-good reason={} blob_bytes={}",
                generation,
                cname,
                child.version,
                reason,
                adopted.blob_bytes
            );
        }
        if offer != Offer::Fresh {
            hotup_event!(
                "adopt gen={} child={} version={} from={} from_version={} blob_bytes={}",
                generation,
                cname,
                child.version,
                name_str(&adopted.from.0),
                adopted.from.1,
                adopted.blob_bytes
            );
        }
        hotup_event!(
            "attach gen={} child={} version={} abi={}.{} adopted={}",
            generation,
            cname,
            child.version,
            ABI_MAJOR,
            child.abi_minor,
            if offer == Offer::Fresh { "no" } else { "yes" }
        );
        if adopted.pruned > 0 {
            hotup_event!(
                "files-pruned gen={} child={} count={}",
                generation,
                cname,
                adopted.pruned
            );
        }
        if child.drives_hw() {
            // Before I/O is released: the child polls what fired meanwhile.
            super::hw::own(child);
        }
        let parked = Hub::release(this, board, child, closed);
        let (parked_calls, drained_calls) = {
            let p = this.park.lock();
            (p.calls_parked_last, p.calls_drained_last)
        };
        hotup_event!(
            "resume gen={} child={} version={} parked={} drained={} blackout_ns={} drain_ns={} freeze_ns={} export_ns={} load_ns={} adopt_ns={} mode={} handed_over={} completing={} parked_calls={} drained_calls={}",
            generation, cname, child.version, parked, b.drained, b.blackout_ns, b.drain_ns,
            b.freeze_ns, b.export_ns, b.load_ns, b.adopt_ns, b.mode, b.handed_over, b.completing,
            parked_calls, drained_calls
        );
        // Outside the blackout: the disks of the devices it named.
        Hub::make_disks(this, generation, child);
    }

    /// Hands parked requests to `child` in the order they arrived. Under
    /// the lot's lock the whole batch is swapped out for the spare (empty)
    /// ring and the mode becomes `Active`, so the blackout ends there and
    /// new I/O goes straight to the child; the batch is then submitted in
    /// order. (Releasing one by one while new I/O parked behind would never
    /// end under a load that keeps every tag busy.) Returns how many the
    /// park held.
    pub(crate) fn release(
        this: ArcBorrow<'_, Hub>,
        board: &Board,
        child: &ActiveChild,
        closed: Closed,
    ) -> u64 {
        let (released, window) = {
            // Files closed meanwhile first: the lot comes back locked with
            // none queued, and the mode becomes active in this hold.
            let mut p = Hub::deliver_closed(&this, child);
            let p = &mut *p;
            core::mem::swap(&mut p.ring, &mut p.spare);
            p.calls_drained_last = this.io.calls_drained();
            let window = this.io.open(board, closed);
            p.parked_last = p.parked_now;
            p.parked_now = 0;
            p.calls_parked_last = p.calls_waiting;
            (p.spare.len() as u64, window)
        };
        // The parked calls (counted above) go into the child now.
        this.wake_calls();
        loop {
            let Some(x) = this.park.lock().spare.pop() else {
                break;
            };
            match x.rq.slot(this.geo.queue_depth) {
                Some((idx, q)) => {
                    let _inside = this.io.enter_forced(q);
                    Hub::submit(this, child, q, idx, x.rq);
                }
                None => {
                    hotup_event!("error reason=bad-tag");
                    x.rq.end(EIO.to_errno());
                    this.io.failed_without_child(x.q);
                }
            }
        }
        // The parked requests are handed over: the window ends.
        drop(window);
        released
    }

    /// Unregistration of the active child (its module is leaving): park,
    /// wait for the gate, quiesce, export into the stash. Infallible once
    /// the child is recognised: nothing here allocates or can give up.
    pub(crate) fn detach(this: ArcBorrow<'_, Hub>, reg: *const ChildRegistration) -> Result {
        let mut guard = this.switch.lock();
        let board = &mut *guard;
        let Some(child) = this.io.child(board).filter(|c| c.is(reg)) else {
            // A standby or a retired child leaving: nothing of the device's
            // is in it.
            let gone = Hub::forget_inactive(this, board, reg);
            drop(guard);
            if !gone {
                hotup_event!("error reason=unregister-unknown-child");
                return Err(EINVAL);
            }
            return Ok(());
        };
        let mut closed = Hub::enter_switching(this, board);
        Hub::detach_export(this, board, &mut closed, &child);
        // With a standby waiting the mode stays `Switching` (no park timer
        // fails anything) until it has adopted below.
        if board.standby.is_none() {
            Hub::enter_parked(this, &closed);
        }
        // A standby waiting: it takes over now, as a classic upgrade whose
        // new child needed no load.
        if let Some(next) = board.standby.take() {
            hotup_event!(
                "promote child={} version={} reason=active-child-unloaded",
                next.name(),
                next.version
            );
            if Hub::adopt_and_resume(this, closed, board, &next).is_err() {
                // It refused the state: it stays the standby (the stash is
                // kept), and the device stays parked until a child adopts.
                board.standby = Some(next);
                Hub::note_standby(this, Some(&next));
            } else {
                Hub::note_standby(this, None);
            }
        }
        Ok(())
    }

    /// The drain and export steps of a detach, with the gate closed: wait
    /// until no CPU is inside `child` and nothing is in flight, quiesce,
    /// export into the stash, forget the child; the figures and the
    /// `park` and `detach` lines. Cannot fail.
    fn detach_export(
        this: ArcBorrow<'_, Hub>,
        board: &mut Board,
        closed: &mut Closed,
        child: &ActiveChild,
    ) {
        let park_start = Instant::<Monotonic>::now();
        let (generation, schema) = {
            let mut f = this.figures.lock();
            f.park_start = Some(park_start);
            // One detach only: a later upgrade by hand gets the child's own
            // schema unless it asks again.
            (f.generation, core::mem::take(&mut f.export_schema))
        };
        let drained = this.io.totals().inflight;
        hotup_event!(
            "park gen={} child={} version={} reason=detach inflight={}",
            generation,
            child.name(),
            child.version,
            drained
        );
        // No CPU inside the child's submit, nothing in flight.
        this.io.wait(false, None, || false);
        let drained_at = Instant::<Monotonic>::now();
        quiesce_drained(child);
        let state = board.stash.export_with((child.name, child.version), |buf| {
            child.export(buf, schema).map_err(Error::to_errno)
        });
        let detached_at = Instant::<Monotonic>::now();
        this.io.set_child(board, closed, None);
        let stash = &board.stash;
        {
            let mut f = this.figures.lock();
            f.child = [0; super::state_abi::NAME_LEN];
            f.child_version = 0;
            f.child_schema = 0;
            f.child_exports_older = false;
            f.drained_last = drained;
            f.drain_ns = ns(drained_at - park_start);
            f.export_ns = ns(detached_at - drained_at);
            f.detached_at = Some(detached_at);
            f.stash_bytes = stash.stash_bytes();
            f.stash_state = stash_str(state);
            f.last_good_bytes = stash.last_good_bytes();
        }
        match state {
            StashState::ExportFailed(e) => hotup_event!(
                "detach gen={} child={} version={} drained={} export=failed err={} fallback={}",
                generation,
                child.name(),
                child.version,
                drained,
                e,
                if stash.last_good_bytes() > 0 {
                    "last-good"
                } else {
                    "none"
                }
            ),
            _ => hotup_event!(
                "detach gen={} child={} version={} drained={} blob_bytes={} schema={} blob={}",
                generation,
                child.name(),
                child.version,
                drained,
                stash.stash_bytes(),
                schema,
                match state {
                    StashState::Corrupt(why) => why,
                    _ => "ok",
                }
            ),
        }
    }

    /// The operator's `discard-stash`: forget every state and free every
    /// preserved region, so the next child starts with an empty device.
    /// Refused (EBUSY) while a child is attached.
    pub(crate) fn discard_stash(this: ArcBorrow<'_, Hub>) -> Result {
        let mut board = this.switch.lock();
        if this.io.child(&board).is_some() {
            return Err(EBUSY);
        }
        let stash = &mut board.stash;
        let blob_bytes = stash.discard();
        let (regions, region_bytes) = this.regions.lock().free_all();
        {
            let mut f = this.figures.lock();
            f.stash_bytes = 0;
            f.stash_state = stash_str(stash.state);
            f.last_good_bytes = 0;
        }
        hotup_event!(
            "discard-stash blob_bytes={} regions={} region_bytes={}",
            blob_bytes,
            regions,
            region_bytes
        );
        Ok(())
    }

    /// Sets the schema the next export writes (0, or one newer than the
    /// child's: the child's newest). Refused (`EPROTO`, before anything
    /// freezes) when the active child cannot write it: older than its own
    /// without `CAP_EXPORT_OLDER_SCHEMA`.
    pub(crate) fn set_export_schema(&self, schema: u32) -> Result {
        let mut f = self.figures.lock();
        let own = f.child_schema;
        // Only an active child's: with none, the next child decides.
        let active = self.io.mode() == super::inflight::Mode::Active;
        if active && schema != 0 && schema < own && !f.child_exports_older {
            let (child, version) = (f.child, f.child_version);
            drop(f);
            hotup_event!(
                "refuse-schema reason=no-common-schema child={} version={} child_schema={} schema={}",
                name_str(&child),
                version,
                own,
                schema
            );
            return Err(Error::from_errno(-errno::EPROTO));
        }
        f.export_schema = schema;
        Ok(())
    }
}

/// Quiesces `child`, which drained: a hardware child's interrupts stop
/// reaching it first.
pub(crate) fn quiesce_drained(child: &ActiveChild) {
    if child.drives_hw() {
        super::hw::disown(child);
    }
    if let Err(e) = child.quiesce() {
        hotup_event!(
            "error reason=quiesce-failed child={} err={}",
            child.name(),
            e.to_errno()
        );
    }
}

/// Logs the refusal of an unreadable registration; the error to return.
fn refuse_bad(name: &str, version: u32, e: BadRegistration) -> Error {
    match e {
        BadRegistration::RegistrationSize(n) => hotup_event!(
            "refuse child={} version={} reason=registration-size size={} min={}",
            name,
            version,
            n,
            ChildRegistration::MIN_SIZE
        ),
        BadRegistration::OpsSize(n) => hotup_event!(
            "refuse child={} version={} reason=ops-size size={} min={}",
            name,
            version,
            n,
            super::state_abi::ChildOps::MIN_SIZE
        ),
        BadRegistration::IncompleteOps => hotup_event!(
            "refuse child={} version={} reason=incomplete-ops",
            name,
            version
        ),
    }
    EINVAL
}
