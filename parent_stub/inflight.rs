// SPDX-License-Identifier: GPL-2.0

//! In-flight tracking and the barrier around child code.
//!
//! **The gate.** Every call into a child's I/O path is bracketed: the
//! dispatching CPU raises its queue's `entered` count, then reads the mode;
//! only in `Active` does it go on into the child, and it lowers the count
//! when the child's `submit` has returned. A switch first stores a
//! non-active mode, then waits until every queue's `entered` *and*
//! `inflight` counts are zero ([`InFlight::wait`]). Both sides use
//! sequentially consistent operations (store mode / load counts against
//! raise count / load mode), so either the dispatcher sees the new mode and
//! backs out, or the switch sees its count and waits for it: after
//! `wait` no CPU is inside the old child's `submit`, and every request
//! it accepted has been completed. This is device-mapper's `io_barrier`
//! idea with per-queue counters in place of SRCU.
//!
//! **Cookies.** A request handed to a child is kept in the slot of its tag,
//! found again by the cookie `seq << 32 | slot`. Completion claims the slot
//! with one compare-and-swap on the cookie, so a request is ended at most
//! once however a broken child repeats or invents cookies, and completion
//! takes no lock: it is callable from any context, hard IRQ included.
//!
//! **Calls.** Syscalls forwarded to the child (`calls.rs`) use one more
//! lane of counters after the hardware queues: they are bracketed by the
//! same gate, and a call still inside the child when the gate closed is
//! counted drained.
//!
//! **Waking the switch.** Whoever brings a queue's count to zero while a
//! switch waits signals [`Event`], a counting wake-up (a signal given
//! before the waiter sleeps is not lost); the waiter re-checks all counts
//! after each wake-up.

use super::blk::{RawRequest, RqPtr};
use super::board::Board;
use super::edge::ActiveChild;
use super::sync::Event;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering::*};
use kernel::{
    prelude::*,
    time::{msecs_to_jiffies, Instant, Monotonic},
};

/// The parent's mode, as dispatch sees it.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Mode {
    /// A child is attached and takes I/O.
    Active = 0,
    /// No child: I/O parks.
    Parked = 1,
    /// A child is leaving or arriving: I/O parks.
    Switching = 2,
}

impl Mode {
    fn from_raw(v: u32) -> Self {
        match v {
            0 => Mode::Active,
            1 => Mode::Parked,
            _ => Mode::Switching,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Mode::Active => "active",
            Mode::Parked => "parked",
            Mode::Switching => "switching",
        }
    }
}

/// One hardware queue's counters, on a cache line of its own so queues on
/// different CPUs do not share one.
#[repr(align(64))]
struct QueueCounters {
    /// CPUs inside the child's `submit` for this queue (the gate).
    entered: AtomicU32,
    /// Requests handed to the child and not completed yet.
    inflight: AtomicU32,
    completed: AtomicU64,
    failed: AtomicU64,
}

/// The slot of one tag: the request handed to the child and its cookie.
struct Slot {
    /// The cookie of the request now in the slot; 0 when empty.
    cookie: AtomicU64,
    /// Sequence number of the slot's last use (never 0 in a cookie).
    seq: AtomicU32,
    rq: AtomicPtr<super::blk::RqTarget>,
    /// When the request now in the slot was handed to the child, in
    /// nanoseconds since [`InFlight`]'s epoch (the stuck-request watch).
    since_ns: AtomicU64,
    /// The cookie last reported stuck: each request is reported once.
    flagged: AtomicU64,
}

/// A request a child has held longer than the bound ([`InFlight::scan_stuck`]).
pub(crate) struct Stuck {
    pub(crate) q: u32,
    pub(crate) tag: u32,
    pub(crate) age_ms: u64,
}

/// The attached child as dispatch reads it: written only through
/// [`InFlight::set_child`] (the switch lock's data and the closed gate as
/// arguments), read by dispatchers inside the gate with mode `Active` and
/// by the switch holder ([`InFlight::child`]).
struct ChildCell(UnsafeCell<Option<ActiveChild>>);

// SAFETY: no write overlaps a read: see `set_child` and `child`; the
// mode's SeqCst store/load orders a write before every read that follows.
unsafe impl Sync for ChildCell {}

/// Inside the gate with the active child ([`InFlight::enter`]): derefs
/// to it; dropping the guard leaves the gate, so the reference cannot
/// outlive the protection.
pub(crate) struct Entered<'a> {
    io: &'a InFlight,
    q: u32,
    call: bool,
    child: &'a ActiveChild,
}

impl core::ops::Deref for Entered<'_> {
    type Target = ActiveChild;

    fn deref(&self) -> &ActiveChild {
        self.child
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        if self.call && self.io.mode() != Mode::Active {
            self.io.calls_drained.fetch_add(1, Relaxed);
        }
        self.io.exit(self.q);
    }
}

/// Inside the gate whatever the mode ([`InFlight::enter_forced`]).
pub(crate) struct Forced<'a> {
    io: &'a InFlight,
    q: u32,
}

impl Drop for Forced<'_> {
    fn drop(&mut self) {
        self.io.exit(self.q);
    }
}

/// How [`InFlight::wait`] ended.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quiet {
    /// Quiet.
    Done,
    /// Not quiet within the bound.
    TimedOut,
    /// The operator aborted.
    Cancelled,
}

/// Totals over all queues, for status.
pub(crate) struct Totals {
    pub(crate) inflight: u64,
    pub(crate) completed: u64,
    pub(crate) failed: u64,
}

/// The gate, the per-queue counters and the cookie table.
#[pin_data]
pub(crate) struct InFlight {
    mode: AtomicU32,
    /// A switch is waiting in [`InFlight::wait`].
    draining: AtomicBool,
    /// One per hardware queue, then the calls' lane.
    queues: KVec<QueueCounters>,
    /// Calls that left the child after the gate closed on them, since the
    /// gate last closed on an active child.
    calls_drained: AtomicU64,
    slots: KVec<Slot>,
    depth: u32,
    child: ChildCell,
    /// The zero of the slots' `since_ns`.
    epoch: Instant<Monotonic>,
    /// Fault injection (tests only): `wait` ignores `entered`, i.e.
    /// waits for completions but not for CPUs inside the child: the defect
    /// the gate exists to fix, kept so a test can show it is caught.
    no_barrier: bool,
    #[pin]
    quiet: Event,
}

impl InFlight {
    /// Counters and slots for `nr_queues * depth` tags and the calls' lane,
    /// mode `Parked`.
    pub(crate) fn new(
        nr_queues: u32,
        depth: u32,
        no_barrier: bool,
    ) -> Result<impl PinInit<Self, Error>> {
        let lanes = nr_queues as usize + 1;
        let mut queues = KVec::with_capacity(lanes, GFP_KERNEL)?;
        for _ in 0..lanes {
            queues.push(
                QueueCounters {
                    entered: AtomicU32::new(0),
                    inflight: AtomicU32::new(0),
                    completed: AtomicU64::new(0),
                    failed: AtomicU64::new(0),
                },
                GFP_KERNEL,
            )?;
        }
        let tags = nr_queues as usize * depth as usize;
        let mut slots = KVec::with_capacity(tags, GFP_KERNEL)?;
        for _ in 0..tags {
            slots.push(
                Slot {
                    cookie: AtomicU64::new(0),
                    seq: AtomicU32::new(0),
                    rq: AtomicPtr::new(core::ptr::null_mut()),
                    since_ns: AtomicU64::new(0),
                    flagged: AtomicU64::new(0),
                },
                GFP_KERNEL,
            )?;
        }
        Ok(try_pin_init!(Self {
            mode: AtomicU32::new(Mode::Parked as u32),
            draining: AtomicBool::new(false),
            queues,
            calls_drained: AtomicU64::new(0),
            slots,
            depth,
            child: ChildCell(UnsafeCell::new(None)),
            epoch: Instant::<Monotonic>::now(),
            no_barrier,
            quiet <- Event::new(),
        }? Error))
    }

    pub(crate) fn mode(&self) -> Mode {
        Mode::from_raw(self.mode.load(SeqCst))
    }

    /// Stores a non-active mode; closing the gate on an active child
    /// starts a new count of drained calls.
    fn shut(&self, m: Mode) {
        if self.mode() == Mode::Active {
            self.calls_drained.store(0, SeqCst);
        }
        self.mode.store(m as u32, SeqCst);
    }

    /// Closes the gate for the switch holder (`switch`, the switch lock's
    /// data): the window ([`Closed`]: NOIO, the gate's lockdep map) first,
    /// then `lock()` (the parking lot's, so a park timer already running
    /// sees the mode before failing anything more), then mode `Switching`.
    /// Only [`InFlight::open`] makes the mode `Active` again, and it takes
    /// the window: while a `Closed` lives the gate is closed.
    pub(crate) fn close<G>(&self, switch: &Board, lock: impl FnOnce() -> G) -> (Closed, G) {
        let _ = switch;
        let map = super::blk::GateMap::hold();
        let closed = Closed {
            noio: Some(super::blk::NoIo::enter()),
            _map: map,
        };
        let g = lock();
        self.shut(Mode::Switching);
        (closed, g)
    }

    /// Mode `Parked`, from a closed gate: a switch that left no child.
    pub(crate) fn set_parked(&self, closed: &Closed) {
        let _ = closed;
        self.shut(Mode::Parked);
    }

    /// Opens the gate (mode `Active`), under the parking lot's lock so
    /// nothing parks after the release. The `Closed` is spent; its NOIO
    /// scope and lockdep map go on in the returned [`Window`], which the
    /// caller drops once it has handed the parked requests over.
    pub(crate) fn open(&self, switch: &Board, closed: Closed) -> Window {
        let _ = switch;
        self.mode.store(Mode::Active as u32, SeqCst);
        Window(closed)
    }

    /// The lane calls enter the gate on (after the hardware queues).
    pub(crate) fn call_lane(&self) -> u32 {
        self.queues.len().saturating_sub(1) as u32
    }

    /// Calls drained since the gate last closed on an active child.
    pub(crate) fn calls_drained(&self) -> u64 {
        self.calls_drained.load(Relaxed)
    }

    fn queue(&self, q: u32) -> Option<&QueueCounters> {
        self.queues.get(q as usize)
    }

    /// Enters the gate of queue `q`: the active child, inside the gate
    /// until the guard drops; or, with nothing to undo, `Err(mode)`, the
    /// mode seen (`Active` only if no child is set: a broken invariant, or
    /// a bad queue). On the calls' lane with `call`, a call still inside
    /// when the gate closes is counted drained (a statistic: one leaving
    /// just as it closes may go uncounted).
    pub(crate) fn enter(&self, q: u32, call: bool) -> core::result::Result<Entered<'_>, Mode> {
        let Some(c) = self.queue(q) else {
            return Err(Mode::Active);
        };
        c.entered.fetch_add(1, SeqCst);
        let mode = self.mode();
        if mode == Mode::Active {
            // SAFETY: inside the gate with mode `Active` (ChildCell's
            // protocol): no writer runs until this CPU leaves, which the
            // guard's lifetime bounds the reference by.
            if let Some(child) = unsafe { (*self.child.0.get()).as_ref() } {
                return Ok(Entered {
                    io: self,
                    q,
                    call,
                    child,
                });
            }
        }
        self.exit(q);
        Err(mode)
    }

    /// Enters the gate of queue `q` whatever the mode, until the guard
    /// drops: the switch holder's calls into the child it holds a copy of
    /// (the cell is not read), which a later wait must still see.
    pub(crate) fn enter_forced(&self, q: u32) -> Forced<'_> {
        if let Some(c) = self.queue(q) {
            c.entered.fetch_add(1, SeqCst);
        }
        Forced { io: self, q }
    }

    fn exit(&self, q: u32) {
        if let Some(c) = self.queue(q) {
            if c.entered.fetch_sub(1, SeqCst) == 1 && self.draining.load(SeqCst) {
                self.quiet.signal();
            }
        }
    }

    /// The attached child, for the switch holder: `&Board` is the switch
    /// lock's data (`Hub::switch`, its only instance), so no write runs
    /// meanwhile ([`InFlight::set_child`] needs it too).
    pub(crate) fn child(&self, _switch: &Board) -> Option<ActiveChild> {
        // SAFETY: writers hold the switch lock, as the caller does: none
        // runs now, and concurrent reads of a `Copy` value are fine.
        unsafe { *self.child.0.get() }
    }

    /// Sets the attached child, with the gate closed (`closed`): waits
    /// until no CPU is inside the gate, so no dispatcher is reading the
    /// cell. Refused (logged) if the mode is `Active`. Requests may still
    /// be in flight: completion never reads the cell.
    pub(crate) fn set_child(
        &self,
        switch: &Board,
        closed: &mut Closed,
        child: Option<ActiveChild>,
    ) {
        let _ = (switch, closed);
        if self.mode() == Mode::Active {
            crate::hotup_event!("error reason=set-child-while-active");
            return;
        }
        self.wait(true, None, || false);
        // SAFETY: no other writer: the caller holds the switch lock
        // (`switch`). No reader: dispatchers read the cell only inside the
        // gate after seeing `Active`; the mode is not `Active` and only
        // `InFlight::open`, which takes this switch's `Closed` by value,
        // makes it so; every CPU inside has left (the wait above; the
        // test-only `inject_no_barrier` skips it on purpose), and one
        // entering now sees the mode and leaves without reading.
        unsafe { *self.child.0.get() = child };
    }

    /// The cookie the request in slot `idx` will get (the slot must be free:
    /// its tag is the caller's until the request ends).
    pub(crate) fn next_cookie(&self, idx: usize) -> Option<u64> {
        let slot = self.slots.get(idx)?;
        let seq = slot.seq.load(Relaxed).wrapping_add(1).max(1);
        Some((u64::from(seq) << 32) | idx as u64)
    }

    /// Puts `rq` in its slot under `cookie` (from [`InFlight::next_cookie`])
    /// and counts it in flight on queue `q`. Gives `rq` back if the slot is
    /// taken (a tag in use twice: a block-layer invariant broken).
    pub(crate) fn track(&self, q: u32, cookie: u64, rq: RawRequest) -> Result<(), RawRequest> {
        let idx = super::state_abi::cookie_slot(cookie);
        let (Some(slot), Some(c)) = (self.slots.get(idx), self.queue(q)) else {
            return Err(rq);
        };
        if slot.cookie.load(Acquire) != 0 {
            return Err(rq);
        }
        slot.seq.store((cookie >> 32) as u32, Relaxed);
        slot.rq.store(rq.into_raw(), Relaxed);
        slot.since_ns.store(self.now_ns(), Relaxed);
        c.inflight.fetch_add(1, SeqCst);
        // Publishes `rq` to whoever claims the cookie. Sequentially
        // consistent: an unbind's drain (a SeqCst fence after its close,
        // then this load) sees it, or the child's later liveness check
        // sees the close (the store-buffer pattern both sides must order).
        slot.cookie.store(cookie, SeqCst);
        Ok(())
    }

    /// Nanoseconds since this table's epoch (the slots' `since_ns` clock).
    pub(crate) fn now_ns(&self) -> u64 {
        u64::try_from((Instant::<Monotonic>::now() - self.epoch).as_nanos()).unwrap_or(0)
    }

    /// The stuck-request watch: how many requests a child has held for
    /// longer than `bound_ns`; `report` hears of each such request once.
    /// Lock-free beside completion: a slot reused meanwhile shows its new
    /// request's start (`track` stores it before the cookie), never an
    /// older one, so a request is never reported before its time.
    pub(crate) fn scan_stuck(&self, bound_ns: u64, mut report: impl FnMut(Stuck)) -> u32 {
        let now = self.now_ns();
        let depth = self.depth.max(1) as usize;
        let mut stuck = 0;
        for (idx, s) in self.slots.iter().enumerate() {
            let cookie = s.cookie.load(Acquire);
            let age = now.saturating_sub(s.since_ns.load(Relaxed));
            if cookie == 0 || age <= bound_ns {
                continue;
            }
            stuck += 1;
            if s.flagged.swap(cookie, Relaxed) != cookie {
                report(Stuck {
                    q: (idx / depth) as u32,
                    tag: (idx % depth) as u32,
                    age_ms: age / 1_000_000,
                });
            }
        }
        stuck
    }

    /// How many requests handed to the child at or before `t_ns` (from
    /// [`InFlight::now_ns`]) are still in flight: what the device may hold
    /// at an instant, not the requests that came after it.
    pub(crate) fn inflight_before(&self, t_ns: u64) -> usize {
        self.slots
            .iter()
            .filter(|s| s.cookie.load(Acquire) != 0 && s.since_ns.load(Relaxed) <= t_ns)
            .count()
    }

    /// Whether any request is in flight (sequentially consistent, against
    /// `track`'s count: the watch's re-arm, `Hub::watch_fired`).
    pub(crate) fn any_inflight(&self) -> bool {
        self.queues.iter().any(|c| c.inflight.load(SeqCst) != 0)
    }

    /// Claims the request behind `cookie`: `Some((rq, queue))` exactly once
    /// per tracked request, `None` for an unknown, stale or repeated cookie.
    pub(crate) fn claim(&self, cookie: u64) -> Option<(RawRequest, u32)> {
        if cookie == 0 {
            return None;
        }
        let idx = super::state_abi::cookie_slot(cookie);
        let slot = self.slots.get(idx)?;
        slot.cookie
            .compare_exchange(cookie, 0, AcqRel, Relaxed)
            .ok()?;
        let q = (idx / self.depth.max(1) as usize) as u32;
        let p: RqPtr = slot.rq.swap(core::ptr::null_mut(), Relaxed);
        // SAFETY: `p` was stored by `track` from `RawRequest::into_raw` for
        // this cookie, and the compare-and-swap above hands it to exactly
        // one claimer.
        match unsafe { RawRequest::from_raw(p) } {
            Some(rq) => Some((rq, q)),
            None => {
                // Cannot happen (`track` stores the request before the
                // cookie); still count it, or a switch would wait forever.
                self.finished(q, EIO.to_errno());
                None
            }
        }
    }

    /// Counts the end of a request claimed on queue `q`, waking a waiting
    /// switch when the queue has nothing in flight any more.
    pub(crate) fn finished(&self, q: u32, status: i32) {
        let Some(c) = self.queue(q) else { return };
        c.completed.fetch_add(1, Relaxed);
        if status != 0 {
            c.failed.fetch_add(1, Relaxed);
        }
        if c.inflight.fetch_sub(1, SeqCst) == 1 && self.draining.load(SeqCst) {
            self.quiet.signal();
        }
    }

    /// Counts a request the parent ended itself without the child.
    pub(crate) fn failed_without_child(&self, q: u32) {
        if let Some(c) = self.queue(q) {
            c.completed.fetch_add(1, Relaxed);
            c.failed.fetch_add(1, Relaxed);
        }
    }

    /// Whether a CPU is inside the child (its `submit`, or a call) or,
    /// unless `entry_only`, a request is in flight. The fault injection
    /// `no_barrier` ignores `submit` only: calls are always waited for.
    fn busy(&self, entry_only: bool) -> bool {
        let lane = self.call_lane() as usize;
        self.queues.iter().enumerate().any(|(i, c)| {
            ((!self.no_barrier || i == lane) && c.entered.load(SeqCst) != 0)
                || (!entry_only && c.inflight.load(SeqCst) != 0)
        })
    }

    /// Waits until no CPU is inside the child and, unless `entry_only` (a
    /// handover: requests in flight travel to the successor), nothing is
    /// in flight. The caller has set a non-active mode. With a `deadline`,
    /// gives up then, or once `cancelled()` says so (whoever makes it say
    /// so calls [`InFlight::poke`]).
    pub(crate) fn wait(
        &self,
        entry_only: bool,
        deadline: Option<Instant<Monotonic>>,
        cancelled: impl Fn() -> bool,
    ) -> Quiet {
        // Signals left from the last wait only cost extra rounds.
        self.quiet.clear();
        self.draining.store(true, SeqCst);
        let end = loop {
            if !self.busy(entry_only) {
                break Quiet::Done;
            }
            if cancelled() {
                break Quiet::Cancelled;
            }
            let Some(deadline) = deadline else {
                self.quiet.wait();
                continue;
            };
            let left = deadline - Instant::<Monotonic>::now();
            if left.as_nanos() <= 0 {
                break Quiet::TimedOut;
            }
            let ms = u32::try_from(left.as_millis()).unwrap_or(u32::MAX);
            // One jiffy more, so the last round does not wake early.
            self.quiet
                .wait_timeout(msecs_to_jiffies(ms).saturating_add(1));
        };
        self.draining.store(false, SeqCst);
        end
    }

    /// Checks the requests a frozen child's blob hands over against the
    /// table: each cookie names a request in flight now, none twice, and
    /// no more than are in flight. `seen` (a bit per slot, all clear) is
    /// scratch, cleared again before this returns. A blob is never
    /// trusted: an entry that fails this would complete another request,
    /// or none, in the successor.
    pub(crate) fn check_handed_over(
        &self,
        held: super::state_abi::HeldIter<'_>,
        seen: &mut [u64],
    ) -> core::result::Result<(), &'static str> {
        let inflight = self.totals().inflight;
        let mut verdict = Ok(());
        let mut n = 0u64;
        for h in held.clone() {
            let idx = super::state_abi::cookie_slot(h.cookie);
            let tracked = self
                .slots
                .get(idx)
                .is_some_and(|s| s.cookie.load(Acquire) == h.cookie);
            let (word, bit) = (idx / 64, 1u64 << (idx % 64));
            let Some(w) = seen.get_mut(word).filter(|_| tracked) else {
                verdict = Err("inflight-cookie-unknown");
                break;
            };
            if *w & bit != 0 {
                verdict = Err("inflight-cookie-repeated");
                break;
            }
            *w |= bit;
            n += 1;
        }
        if verdict.is_ok() && n > inflight {
            verdict = Err("inflight-count");
        }
        for h in held {
            let idx = super::state_abi::cookie_slot(h.cookie);
            if let Some(w) = seen.get_mut(idx / 64) {
                *w &= !(1u64 << (idx % 64));
            }
        }
        verdict
    }

    /// Whether the barrier is disabled (fault injection): then the gate
    /// proves nothing and a standby switch is refused.
    pub(crate) fn barrier_disabled(&self) -> bool {
        self.no_barrier
    }

    /// Wakes a bounded wait so it looks at its `cancelled` condition.
    pub(crate) fn poke(&self) {
        self.quiet.signal();
    }

    pub(crate) fn totals(&self) -> Totals {
        self.queues.iter().fold(
            Totals {
                inflight: 0,
                completed: 0,
                failed: 0,
            },
            |t, c| Totals {
                inflight: t.inflight + u64::from(c.inflight.load(Relaxed)),
                completed: t.completed + c.completed.load(Relaxed),
                failed: t.failed + c.failed.load(Relaxed),
            },
        )
    }
}

/// The gate closed for a switch: from the mode leaving `Active` (I/O parks
/// from then) until the switch's task is done with it, after parked I/O is
/// released or the device is left parked. Two guarantees travel with it:
///
/// - every allocation the task makes meanwhile (the parent's, or a child's
///   in `freeze`, `export`, `adopt`) is GFP_NOIO: reclaim that wrote to
///   this device would wait for a tag only the switch can free;
/// - lockdep's map "the gate is closed" is held (`blk::GateMap`), so on a
///   debug kernel any allocation that could still enter reclaim here is
///   reported as a lock inversion.
///
/// Only [`InFlight::close`] makes one, and only [`InFlight::open`] (which
/// spends it) makes the mode `Active`: while one lives the gate is closed.
/// Adopting and setting the child require it.
pub(crate) struct Closed {
    noio: Option<super::blk::NoIo>,
    _map: super::blk::GateMapHeld,
}

/// The NOIO scope and the gate's lockdep map of a spent [`Closed`], after
/// [`InFlight::open`], until the parked requests are handed over. Nothing
/// takes it: it only ends when dropped.
pub(crate) struct Window(#[allow(dead_code)] Closed);

impl Closed {
    /// Fault injection (`inject_blackout_alloc=1`, tests only): one
    /// GFP_KERNEL allocation outside the NOIO scope while the gate is
    /// closed, the mistake the gate map is there to catch.
    pub(crate) fn allocate_outside_noio(&mut self) {
        self.noio = None;
        let v = KVec::<u8>::with_capacity(4096, GFP_KERNEL);
        pr_warn!(
            "inject_blackout_alloc=1: a GFP_KERNEL allocation with the gate closed (ok={})\n",
            v.is_ok()
        );
        drop(v);
        self.noio = Some(super::blk::NoIo::enter());
    }
}
