// SPDX-License-Identifier: GPL-2.0

//! The standby switch (ABI 1.1), transactional:
//!
//! - **standby**: a child with `CAP_STANDBY` that registers while another
//!   child is active is checked (ABI, operations, name, version) and kept
//!   as the standby: it adopts nothing and takes no I/O. At most one.
//! - **switch** (the operator's command): freeze dispatch (new I/O parks)
//!   -> the old child hands over the requests it holds (`freeze`, when both
//!   children have `CAP_HANDOVER`) or drains them, within
//!   `switch_timeout_ms` -> export -> the standby adopts -> swap -> release
//!   parked I/O in order -> the old child is retired (`finish`): it stays
//!   loaded, takes nothing and may be unloaded at leisure.
//! - **rollback**: a failed export or adopt gives the device back to the
//!   old child (`abort`: it resumes with its own state, and completes what
//!   it held itself); the standby stays unadopted. A drain that does not
//!   end within the bound, or the operator's `abort` during it, calls the
//!   switch off before anything was exported. Nothing fails, nothing is
//!   lost.
//!
//! Requests handed over stay in the parent's cookie table and in flight on
//! their queue: only the child that completes them changes, and a cookie
//! is claimed once, whoever completes it.

use super::board::{ns, stash_str, Adopted, Blackout, Board};
use super::edge::{name_str, ActiveChild};
use super::hub::Hub;
use super::inflight::{Closed, Quiet};
use super::stash::{Offer, StashState};
use super::state_abi::{
    errno, held_in_blob, BlobError, BlobReader, ChildRegistration, EXPORT_TRIAL_HANDOVER, NAME_LEN,
};
use crate::hotup_event;
use kernel::{
    prelude::*,
    sync::ArcBorrow,
    time::{Delta, Instant, Monotonic},
};

/// What the freeze step leaves: whether the old child handed over (or
/// drained), how long its `freeze` took, and what was in flight after it.
struct Frozen {
    handed_over: bool,
    freeze_ns: u64,
    inflight_after: u64,
}

impl Frozen {
    /// How the blackout of a standby switch divided: `at` is when it began,
    /// when the drain (or freeze) and the export ended; `inflight` was in
    /// flight when it began, `held` handed over.
    fn blackout(
        &self,
        inflight: u64,
        held: u64,
        at: [Instant<Monotonic>; 3],
        a: &Adopted,
    ) -> Blackout {
        let [t0, drained_at, exported_at] = at;
        let h = self.handed_over;
        Blackout {
            mode: if h {
                "standby-handover"
            } else {
                "standby-drain"
            },
            drained: if h { 0 } else { inflight },
            handed_over: held,
            completing: if h {
                self.inflight_after.saturating_sub(held)
            } else {
                0
            },
            blackout_ns: ns(a.end - t0),
            drain_ns: ns(drained_at - t0),
            freeze_ns: self.freeze_ns,
            export_ns: ns(exported_at - drained_at),
            load_ns: 0,
            adopt_ns: ns(a.end - a.start),
        }
    }
}

impl Hub {
    /// A child registering while `active` is: it becomes the standby if
    /// both can switch and there is none yet; otherwise it is refused
    /// (EBUSY) with the reason.
    pub(crate) fn register_standby(
        this: ArcBorrow<'_, Hub>,
        board: &mut Board,
        child: ActiveChild,
        active: &ActiveChild,
    ) -> Result {
        let cname = child.name();
        if let Some(s) = &board.standby {
            hotup_event!(
                "refuse child={} version={} reason=standby-exists standby={} standby_version={}",
                cname,
                child.version,
                s.name(),
                s.version
            );
            return Err(EBUSY);
        }
        if !child.can_standby() || !active.can_standby() {
            hotup_event!(
                "refuse child={} version={} reason=busy active={} standby_capable={}",
                cname,
                child.version,
                active.name(),
                if child.can_standby() {
                    "active-cannot"
                } else {
                    "no"
                }
            );
            return Err(EBUSY);
        }
        let handover = child.can_hand_over() && active.can_hand_over();
        board.standby = Some(child);
        Hub::note_standby(this, Some(&child));
        hotup_event!(
            "standby child={} version={} abi=1.{} active={} active_version={} handover={}",
            cname,
            child.version,
            child.abi_minor,
            active.name(),
            active.version,
            if handover { "yes" } else { "no" }
        );
        Ok(())
    }

    /// Records the standby (or its absence) for status.
    pub(crate) fn note_standby(this: ArcBorrow<'_, Hub>, s: Option<&ActiveChild>) {
        let mut f = this.figures.lock();
        f.standby = s.map_or([0; NAME_LEN], |c| c.name);
        f.standby_version = s.map_or(0, |c| c.version);
    }

    /// The unregistration of a child that is not active: the standby or a
    /// retired child. Whether `reg` was one of them.
    pub(crate) fn forget_inactive(
        this: ArcBorrow<'_, Hub>,
        board: &mut Board,
        reg: *const ChildRegistration,
    ) -> bool {
        if let Some(s) = board.standby.filter(|s| s.is(reg)) {
            board.standby = None;
            Hub::note_standby(this, None);
            hotup_event!("standby-gone child={} version={}", s.name(), s.version);
            return true;
        }
        if let Some(r) = board.retired.take(reg) {
            this.figures.lock().retired = board.retired.len();
            hotup_event!("retired-gone child={} version={}", r.name(), r.version);
            return true;
        }
        false
    }

    /// The operator's `abort`: calls off a switch that is draining. ENOENT
    /// if no switch runs (one past its drain can no longer be aborted: it
    /// commits or rolls back by itself).
    pub(crate) fn abort_switch(&self) -> Result {
        if !self.switch_phase.abort() {
            return Err(ENOENT);
        }
        self.io.poke();
        hotup_event!("control abort");
        Ok(())
    }

    /// The operator's `switch`: from the active child to the standby.
    /// ENOENT without a standby, ENODEV without an active child, ETIMEDOUT
    /// or ECANCELED if the drain was called off, the old child's or the
    /// standby's errno after a rollback; 0 once the standby is active.
    ///
    /// Steps: check, prepare (a trial export the standby probes), freeze
    /// (close the gate; hand over or drain), export, check the handover,
    /// adopt, commit (swap, release, retire); abort or roll back.
    pub(crate) fn switch_to_standby(
        this: ArcBorrow<'_, Hub>,
        prepare: bool,
        timeout_ms: Option<u32>,
    ) -> Result {
        let mut board = this.switch.lock();
        let (old, new) = Hub::switch_check(this, &board)?;
        let asked = this.figures.lock().export_schema;
        let schema = switch_schema(&old, &new, asked)?;
        Hub::switch_prepare(this, &mut board, [&old, &new], schema, prepare)?;
        let handover = old.can_hand_over() && new.can_hand_over();
        let t0 = Instant::<Monotonic>::now();
        let timeout_ms = timeout_ms.unwrap_or(this.switch_timeout_ms);
        let mut closed = Hub::enter_switching(this, &board);
        let generation = this.figures.lock().generation;
        let inflight = this.io.totals().inflight;
        hotup_event!(
            "switch gen={} from={} from_version={} to={} to_version={} mode={} inflight={} timeout_ms={}",
            generation,
            old.name(),
            old.version,
            new.name(),
            new.version,
            if handover { "handover" } else { "drain" },
            inflight,
            timeout_ms
        );
        let deadline = t0 + Delta::from_millis(i64::from(timeout_ms));
        let frozen = match Hub::switch_freeze(this, &old, handover, deadline) {
            Ok(f) => f,
            Err(quiet) => {
                return Hub::switch_call_off(this, &board, closed, &old, quiet, generation, t0)
            }
        };
        let drained_at = Instant::<Monotonic>::now();
        let exported_at = match Hub::switch_export(this, &mut board, &old, schema) {
            Ok(t) => t,
            Err(why) => {
                return Hub::roll_back(this, &mut board, closed, [&old, &new], "export", why, EIO)
            }
        };
        // What the blob hands over; a completion the old child had started
        // before its freeze ends on its own and is not in it.
        let held = board.stash.held as u64;
        let adopted =
            match Hub::adopt_offer(this, &mut closed, &mut board.stash, &new, Offer::Stash) {
                Ok(a) => a,
                Err((err, _freed)) => {
                    return Hub::roll_back(
                        this,
                        &mut board,
                        closed,
                        [&old, &new],
                        "adopt",
                        "refused",
                        err,
                    );
                }
            };
        let b = frozen.blackout(inflight, held, [t0, drained_at, exported_at], &adopted);
        // The operator's one-shot setting, not the negotiated schema, is
        // what the commit clears.
        Hub::switch_commit(this, &mut board, closed, asked, [&old, &new], &adopted, &b);
        Ok(())
    }

    /// The prepare step, once the operator's `abort` is heard: the trial
    /// export the standby probes (unless `prepare` is off), then a check
    /// for an abort that came meanwhile.
    fn switch_prepare(
        this: ArcBorrow<'_, Hub>,
        board: &mut Board,
        [old, new]: [&ActiveChild; 2],
        schema: u32,
        prepare: bool,
    ) -> Result {
        if !this.switch_phase.begin() {
            return Err(EBUSY);
        }
        if prepare {
            if let Err(e) = Hub::prepare_switch(board, old, new, schema) {
                this.switch_phase.end();
                return Err(e);
            }
        }
        if this.switch_phase.aborted() {
            this.switch_phase.end();
            hotup_event!(
                "abort child={} version={} reason=operator step=prepare state=active",
                old.name(),
                old.version
            );
            return Err(Error::from_errno(-errno::ECANCELED));
        }
        Ok(())
    }

    /// The export step, with the old child frozen or drained: its blob
    /// into the stash (when it was written), the requests it hands over
    /// checked. `Err(reason)`.
    fn switch_export(
        this: ArcBorrow<'_, Hub>,
        board: &mut Board,
        old: &ActiveChild,
        schema: u32,
    ) -> core::result::Result<Instant<Monotonic>, &'static str> {
        let state = board.stash.export_with((old.name, old.version), |buf| {
            old.export(buf, schema).map_err(Error::to_errno)
        });
        let at = Instant::<Monotonic>::now();
        match state {
            StashState::Valid => Hub::switch_check_handover(this, board).map(|()| at),
            StashState::Corrupt(why) => Err(why),
            _ => Err("export-failed"),
        }
    }

    /// The check step: the active child and the standby, or why there is
    /// no switch to make.
    fn switch_check(this: ArcBorrow<'_, Hub>, board: &Board) -> Result<(ActiveChild, ActiveChild)> {
        let Some(old) = this.io.child(board) else {
            hotup_event!("refuse-switch reason=no-active-child");
            return Err(ENODEV);
        };
        let Some(new) = board.standby else {
            hotup_event!("refuse-switch reason=no-standby active={}", old.name());
            return Err(ENOENT);
        };
        if !old.can_standby() {
            // A standby that stayed after a promotion it refused, while an
            // older child became active: that one cannot be retired.
            hotup_event!(
                "refuse-switch reason=active-cannot-standby active={} standby={}",
                old.name(),
                new.name()
            );
            return Err(EBUSY);
        }
        if this.io.barrier_disabled() {
            hotup_event!("refuse-switch reason=inject_no_barrier");
            return Err(EINVAL);
        }
        if this.park.lock().unloading {
            return Err(ENODEV);
        }
        Ok((old, new))
    }

    /// The freeze step, with the gate closed: no CPU inside the old
    /// child's submit; with a handover the old child then starts no
    /// completion (one under way ends on its own), otherwise (or if its
    /// freeze fails) it drains, by `deadline`. Past it the operator's
    /// `abort` has no effect. `Err` if the switch is called off (drain
    /// timeout, abort): nothing of the old child is stopped then.
    fn switch_freeze(
        this: ArcBorrow<'_, Hub>,
        old: &ActiveChild,
        handover: bool,
        deadline: Instant<Monotonic>,
    ) -> core::result::Result<Frozen, Quiet> {
        let aborted = || this.switch_phase.aborted();
        let mut f = Frozen {
            handed_over: handover,
            freeze_ns: 0,
            inflight_after: 0,
        };
        let mut quiet = this.io.wait(handover, Some(deadline), aborted);
        if quiet == Quiet::Done && handover && this.switch_phase.aborted() {
            // Aborted already: no freeze to undo.
            f.handed_over = false;
        } else if quiet == Quiet::Done && handover {
            let at = Instant::<Monotonic>::now();
            let rc = old.freeze().err().map(|e| e.to_errno());
            f.freeze_ns = ns(Instant::<Monotonic>::now() - at);
            // No CPU in submit, new I/O parks and the old child starts no
            // completion: what is in flight now is what it holds plus the
            // completion it had under way (not yet claimed).
            f.inflight_after = this.io.totals().inflight;
            if let Some(rc) = rc {
                // A failing freeze changes nothing (`FreezeFn`); the old
                // child drains instead, within what is left of the bound.
                hotup_event!(
                    "switch-step step=freeze child={} err={} fallback=drain",
                    old.name(),
                    rc
                );
                f.handed_over = false;
            }
        }
        if quiet == Quiet::Done && !f.handed_over {
            quiet = this.io.wait(false, Some(deadline), aborted);
        }
        // Past the drain, `abort` has no effect; one that won the race
        // calls the switch off here.
        if quiet == Quiet::Done && !this.switch_phase.commit() {
            quiet = Quiet::Cancelled;
            if f.handed_over {
                old.abort();
            }
        }
        if quiet != Quiet::Done {
            return Err(quiet);
        }
        this.switch_phase.end();
        if !f.handed_over {
            super::switch::quiesce_drained(old);
        }
        Ok(f)
    }

    /// The switch called off before anything was exported (`quiet` says
    /// why): the old child takes I/O again. ETIMEDOUT or ECANCELED.
    fn switch_call_off(
        this: ArcBorrow<'_, Hub>,
        board: &Board,
        closed: Closed,
        old: &ActiveChild,
        mut quiet: Quiet,
        generation: u64,
        t0: Instant<Monotonic>,
    ) -> Result {
        let left = this.io.totals().inflight;
        if this.switch_phase.end() {
            // An abort that raced the timeout: it was delivered.
            quiet = Quiet::Cancelled;
        }
        // Nothing is stopped in the old child (a drain calls its quiesce
        // only once it is quiet; a freeze was undone): it just takes I/O
        // again.
        let parked = Hub::release(this, board, old, closed);
        let (reason, err) = match quiet {
            Quiet::Cancelled => ("operator", Error::from_errno(-errno::ECANCELED)),
            _ => ("drain-timeout", ETIMEDOUT),
        };
        hotup_event!(
            "abort gen={} child={} version={} reason={} waited_ms={} inflight={} parked={} state=resumed",
            generation,
            old.name(),
            old.version,
            reason,
            (Instant::<Monotonic>::now() - t0).as_millis(),
            left,
            parked
        );
        Err(err)
    }

    /// The requests the exported blob hands over, checked against the
    /// table before the standby sees them (`InFlight::check_handed_over`).
    fn switch_check_handover(
        this: ArcBorrow<'_, Hub>,
        board: &mut Board,
    ) -> core::result::Result<(), &'static str> {
        let Some(blob) = board.stash.bytes_of(Offer::Stash) else {
            return Err("no-blob");
        };
        BlobReader::parse(blob)
            .and_then(|r| held_in_blob(&r))
            .map_err(|e| match e {
                BlobError::InvalidField(field) => field,
                e => e.as_str(),
            })
            .and_then(|h| this.io.check_handed_over(h, &mut board.seen))
    }

    /// The commit step: the standby adopted; it becomes the active child,
    /// parked I/O goes to it, the old child is retired.
    fn switch_commit(
        this: ArcBorrow<'_, Hub>,
        board: &mut Board,
        closed: Closed,
        schema: u32,
        [old, new]: [&ActiveChild; 2],
        adopted: &Adopted,
        b: &Blackout,
    ) {
        // Committed: the old child holds nothing of the device any more.
        board.standby = None;
        {
            // One switch only, unless the operator set another schema since.
            let mut f = this.figures.lock();
            if f.export_schema == schema {
                f.export_schema = 0;
            }
        }
        Hub::activate(this, board, closed, new, adopted, b);
        old.finish();
        new.finish();
        board.retired.push(*old);
        {
            let mut f = this.figures.lock();
            f.standby = [0; NAME_LEN];
            f.standby_version = 0;
            f.retired = board.retired.len();
            f.switches += 1;
        }
        hotup_event!("retire child={} version={}", old.name(), old.version);
    }

    /// The prepare step, before anything freezes: a trial export of the
    /// active child, which the standby probes. A standby that could not
    /// adopt it is refused here, with no blackout at all; and both code
    /// paths have run once when the real switch comes.
    fn prepare_switch(
        board: &mut Board,
        old: &ActiveChild,
        new: &ActiveChild,
        schema: u32,
    ) -> Result {
        // A handover switch's trial includes what the old child holds now,
        // so the standby's probe checks (and warms) that part too.
        let flags = if old.can_hand_over() && new.can_hand_over() {
            EXPORT_TRIAL_HANDOVER
        } else {
            0
        };
        let blob = match board
            .stash
            .trial(|buf| old.export(buf, schema | flags).map_err(Error::to_errno))
        {
            Ok(b) => b,
            Err(e) => {
                hotup_event!(
                    "refuse-switch reason=trial-export child={} err={} state=active",
                    old.name(),
                    e
                );
                return Err(Error::from_errno(e));
            }
        };
        match new.probe(blob) {
            Some(Ok(())) | None => Ok(()),
            Some(Err(e)) => {
                hotup_event!(
                    "refuse-switch reason=probe standby={} err={} state=active active={}",
                    new.name(),
                    e.to_errno(),
                    old.name()
                );
                Err(e)
            }
        }
    }

    /// A switch that failed at `step` after the old child stopped: the old
    /// child resumes with its own state (`abort`), the standby stays
    /// unadopted, parked I/O goes back to the old child. Returns `err`.
    fn roll_back(
        this: ArcBorrow<'_, Hub>,
        board: &mut Board,
        closed: Closed,
        [old, new]: [&ActiveChild; 2],
        step: &str,
        why: &str,
        err: Error,
    ) -> Result {
        // The old child is still the state's owner: the blob it wrote is
        // not a stash to offer anyone.
        board.stash.withdraw_export();
        old.abort();
        if old.drives_hw() {
            // Its queues again, with what fired since its freeze.
            super::hw::own(old);
        }
        let parked = Hub::release(this, board, old, closed);
        {
            let mut f = this.figures.lock();
            f.rollbacks += 1;
            f.stash_bytes = board.stash.stash_bytes();
            f.stash_state = stash_str(board.stash.state);
        }
        hotup_event!(
            "rollback child={} version={} step={} reason={} err={} state=resumed active={} parked={} standby={}",
            new.name(),
            new.version,
            step,
            why,
            err.to_errno(),
            old.name(),
            parked,
            name_str(&new.name)
        );
        Err(err)
    }
}

/// The schema the old child exports at a standby switch, before anything
/// freezes: the operator's (`export-schema N`, 0 for none), else the old
/// child's own when the standby reads it, else (a downgrade) the standby's
/// newest, which the old child writes if it can export older schemas;
/// with no schema both read, the switch is refused here (`EPROTO`).
fn switch_schema(old: &ActiveChild, new: &ActiveChild, asked: u32) -> Result<u32> {
    if asked != 0 || new.schema >= old.schema {
        return Ok(asked);
    }
    if old.caps & super::state_abi::CAP_EXPORT_OLDER_SCHEMA != 0 && new.schema > 0 {
        hotup_event!(
            "schema-negotiated from={} from_schema={} to={} to_schema={} schema={}",
            old.name(),
            old.schema,
            new.name(),
            new.schema,
            new.schema
        );
        return Ok(new.schema);
    }
    hotup_event!(
        "refuse-switch reason=no-common-schema from={} from_schema={} to={} to_schema={}",
        old.name(),
        old.schema,
        new.name(),
        new.schema
    );
    Err(Error::from_errno(-errno::EPROTO))
}
