// SPDX-License-Identifier: GPL-2.0

//! The parent's core: the [`Hub`] every view and the C-ABI edge share, and
//! the request path through it. A request either enters the active child
//! through the gate (`inflight.rs`) or parks (`park.rs`); a child's
//! completion claims its request back by cookie and ends it. The switch
//! protocols are in `switch.rs`, the status snapshot in `status.rs`.

use super::blk::{default_queue, flush_delayed, Geometry, RawRequest, MAX_SEGS};
use super::board::{Board, Figures, SwitchPhase};
use super::disks::DiskSet;
use super::edge::ActiveChild;
use super::inflight::{Closed, InFlight, Mode};
use super::mem::Regions;
use super::park::ParkLot;
use super::state_abi::{IoSegment, ParentServices};
use crate::hotup_event;
use core::sync::atomic::Ordering::{Relaxed, SeqCst};
use kernel::{
    block::mq::{self, Operations},
    new_delayed_work, new_mutex, new_poll_condvar, new_spinlock,
    prelude::*,
    sync::{aref::ARef, poll::PollCondVar, Arc, ArcBorrow, Mutex, SpinLock},
    time::{msecs_to_jiffies, Instant, Monotonic},
    workqueue::{impl_has_delayed_work, DelayedWork, WorkItem},
};

/// The disks' request path: everything goes to the hub.
pub(crate) struct HotupBlk;

#[vtable]
impl Operations for HotupBlk {
    type QueueData = Arc<Hub>;

    fn queue_rq(hub: ArcBorrow<'_, Hub>, rq: ARef<mq::Request<Self>>, _is_last: bool) -> Result {
        Hub::dispatch(hub, RawRequest::take(rq));
        Ok(())
    }

    fn commit_rqs(_hub: ArcBorrow<'_, Hub>) {}

    fn complete(_rq: ARef<mq::Request<Self>>) {
        // Requests are ended by the hub with their status, never through
        // blk_mq_complete_request, so this is never called.
    }
}

/// Everything the parent shares between the block layer, the children and
/// the control node.
#[pin_data]
pub(crate) struct Hub {
    /// The gate, the in-flight counters and the cookie table.
    #[pin]
    pub(crate) io: InFlight,
    #[pin]
    pub(crate) park: SpinLock<ParkLot>,
    /// Parked calls sleep here (`calls.rs`), with `park` as their lock;
    /// `shutdown` waits here for the last caller; pollers of the
    /// controller node wait here for an active child.
    #[pin]
    pub(crate) calls_wait: PollCondVar,
    /// Tasks inside [`Hub::ioctl`] (parked, in the gate, or between).
    pub(crate) callers: core::sync::atomic::AtomicU64,
    /// The next controller-node file id (`calls.rs`).
    pub(crate) next_file: core::sync::atomic::AtomicU64,
    /// Controller-node files open whose calls may have left per-file
    /// state in a child (`calls.rs`): an adopt forgets any other.
    #[pin]
    pub(crate) open_files: Mutex<KVec<u64>>,
    #[pin]
    park_timer: DelayedWork<Hub>,
    /// The stuck-request watch ([`Hub::watch_fired`]): runs every half
    /// `stuck_ms` while anything is in flight.
    #[pin]
    stuck_timer: DelayedWork<Hub, 1>,
    /// The watch is queued or running (it re-arms itself while requests
    /// are in flight, and is armed again by the first submit after).
    watch_armed: core::sync::atomic::AtomicBool,
    /// A request a child holds longer than this is reported stuck
    /// (`hotup: error reason=stuck-request`); 0: no watch.
    pub(crate) stuck_ms: u32,
    /// Requests held past `stuck_ms` at the last look, and reports ever.
    pub(crate) stuck_now: core::sync::atomic::AtomicU32,
    pub(crate) stuck_total: core::sync::atomic::AtomicU64,
    /// Held for a whole switch (attach, detach, standby switch, discard):
    /// serialises them and owns the blob buffers and the standby.
    #[pin]
    pub(crate) switch: Mutex<Board>,
    /// The standby switch's phase, for the operator's `abort`
    /// (`standby.rs`, [`super::logic::phase`]).
    pub(crate) switch_phase: SwitchPhase,
    /// Figures for status, updated by switches, read by the views.
    #[pin]
    pub(crate) figures: SpinLock<Figures>,
    #[pin]
    pub(crate) regions: Mutex<Regions>,
    /// The disks: disk 0 at load (a RAM parent), or each hardware device's
    /// once a child said its geometry ([`Hub::make_disks`]), to the unload.
    #[pin]
    disks: Mutex<DiskSet<HotupBlk>>,
    /// Disks made so far (status reads it without the lock).
    disks_made: core::sync::atomic::AtomicU32,
    pub(crate) geo: Geometry,
    pub(crate) park_timeout_ms: u32,
    /// Longest a standby switch waits for the old child to drain.
    pub(crate) switch_timeout_ms: u32,
    pub(crate) services: ParentServices,
    /// Fault injection: allocate with GFP_KERNEL while the gate is closed.
    pub(crate) inject_blackout_alloc: bool,
}

impl_has_delayed_work! {
    impl HasDelayedWork<Self> for Hub { self.park_timer }
    impl HasDelayedWork<Self, 1> for Hub { self.stuck_timer }
}

impl WorkItem for Hub {
    type Pointer = Arc<Hub>;

    fn run(this: Arc<Hub>) {
        Hub::park_timeout_fired(this);
    }
}

impl WorkItem<1> for Hub {
    type Pointer = Arc<Hub>;

    fn run(this: Arc<Hub>) {
        Hub::watch_fired(this);
    }
}

impl Hub {
    pub(crate) fn new(
        geo: Geometry,
        park_timeout_ms: u32,
        switch_timeout_ms: u32,
        stuck_ms: u32,
        services: ParentServices,
        no_barrier: bool,
        inject_blackout_alloc: bool,
    ) -> Result<Arc<Self>> {
        let tags = geo.nr_queues as usize * geo.queue_depth as usize;
        let io = InFlight::new(geo.nr_queues, geo.queue_depth, no_barrier)?;
        let park = ParkLot::new(tags)?;
        let board = Board::new(tags)?;
        let disks = DiskSet::new(&geo)?;
        Arc::pin_init(
            try_pin_init!(Hub {
                io <- io,
                park <- new_spinlock!(park, "hotup_park"),
                calls_wait <- new_poll_condvar!("hotup_calls_wait"),
                callers: core::sync::atomic::AtomicU64::new(0),
                next_file: core::sync::atomic::AtomicU64::new(1),
                open_files <- new_mutex!(KVec::new(), "hotup_open_files"),
                park_timer <- new_delayed_work!("hotup_park_timer"),
                stuck_timer <- new_delayed_work!("hotup_stuck_timer"),
                watch_armed: core::sync::atomic::AtomicBool::new(false),
                stuck_ms,
                stuck_now: core::sync::atomic::AtomicU32::new(0),
                stuck_total: core::sync::atomic::AtomicU64::new(0),
                switch <- new_mutex!(board, "hotup_switch"),
                switch_phase: SwitchPhase::new(),
                figures <- new_spinlock!(Figures::new(), "hotup_figures"),
                regions <- new_mutex!(Regions::new(), "hotup_regions"),
                disks <- new_mutex!(disks, "hotup_disks"),
                disks_made: core::sync::atomic::AtomicU32::new(0),
                geo,
                park_timeout_ms,
                switch_timeout_ms,
                services,
                inject_blackout_alloc,
            }? Error),
            GFP_KERNEL,
        )
    }

    /// `queue_rq`: hand the request to the active child, or park it.
    pub(crate) fn dispatch(this: ArcBorrow<'_, Hub>, rq: RawRequest) {
        let Some((idx, q)) = rq.slot(this.geo.queue_depth) else {
            hotup_event!("error reason=bad-tag");
            rq.end(EIO.to_errno());
            this.io.failed_without_child(0);
            return;
        };
        let mut rq = rq;
        // A request given back by `park` (a child became active meanwhile)
        // tries again: every round means a switch completed, so this ends.
        // `Active` with no child would be a broken invariant: it fails the
        // request rather than spin.
        loop {
            match this.io.enter(q, false) {
                Ok(child) => return Hub::submit(this, &child, q, idx, rq),
                Err(Mode::Active) => return this.fail(q, rq, "active-without-child"),
                Err(_) => {}
            }
            match Hub::park(this, q, rq) {
                Some(back) => rq = back,
                None => return,
            }
        }
    }

    /// Hands `rq` (tag slot `idx` of queue `q`) to `child`. The caller is
    /// inside the gate of queue `q`.
    pub(crate) fn submit(
        this: ArcBorrow<'_, Hub>,
        child: &ActiveChild,
        q: u32,
        idx: usize,
        rq: RawRequest,
    ) {
        let Some(cookie) = this.io.next_cookie(idx) else {
            return this.fail(q, rq, "bad-slot");
        };
        let mut segs = [IoSegment::EMPTY; MAX_SEGS];
        let desc = match rq.descriptor(&mut segs, cookie, q) {
            Ok(d) => d,
            Err(_) => return this.fail(q, rq, "bad-request"),
        };
        if let Err(rq) = this.io.track(q, cookie, rq) {
            return this.fail(q, rq, "tag-in-use");
        }
        // After `track`'s count, against the watch's re-arm check.
        if !this.watch_armed.load(SeqCst) {
            Hub::arm_watch(this);
        }
        if let Err(e) = child.submit(&desc) {
            this.complete(cookie, e.to_errno());
        }
    }

    /// Queues the stuck-request watch unless it is queued or the parent
    /// unloads; under the parking lot's lock, as `shutdown` sets
    /// `unloading`, so nothing queues it after `shutdown`'s flush.
    fn arm_watch(this: ArcBorrow<'_, Hub>) {
        if this.stuck_ms == 0 {
            return;
        }
        let p = this.park.lock();
        if !p.unloading && !this.watch_armed.swap(true, SeqCst) {
            let half = msecs_to_jiffies(this.stuck_ms / 2).max(1);
            let _ = default_queue().enqueue_delayed::<_, 1>(Arc::<Hub>::from(this), half);
        }
    }

    /// The stuck-request watch: reports each request a child has held
    /// longer than `stuck_ms` (once), then runs again in half that while
    /// anything is in flight. The submit that finds it idle arms it: the
    /// flag is cleared before the in-flight count is read, and a submit
    /// counts before it reads the flag (both sequentially consistent), so
    /// a request is never left unwatched.
    fn watch_fired(this: Arc<Hub>) {
        let bound_ns = u64::from(this.stuck_ms) * 1_000_000;
        let now = this.io.scan_stuck(bound_ns, |s| {
            this.stuck_total.fetch_add(1, Relaxed);
            hotup_event!(
                "error reason=stuck-request q={} tag={} age_ms={} bound_ms={}",
                s.q,
                s.tag,
                s.age_ms,
                this.stuck_ms
            );
        });
        this.stuck_now.store(now, Relaxed);
        this.watch_armed.store(false, SeqCst);
        if this.io.any_inflight() {
            Hub::arm_watch(this.as_arc_borrow());
        } else {
            this.stuck_now.store(0, Relaxed);
        }
    }

    /// Ends a request the parent cannot hand to a child, with EIO.
    fn fail(&self, q: u32, rq: RawRequest, why: &str) {
        hotup_event!("error reason={}", why);
        rq.end(EIO.to_errno());
        self.io.failed_without_child(q);
    }

    /// The child finished the request behind `cookie` (any context).
    pub(crate) fn complete(&self, cookie: u64, status: i32) {
        match self.io.claim(cookie) {
            Some((rq, q)) => {
                rq.end(status);
                self.io.finished(q, status);
            }
            None => hotup_event!("error reason=bogus-completion cookie={:#x}", cookie),
        }
    }

    /// Parks `rq` unless a child became active meanwhile (then gives it back
    /// to dispatch it). The mode becomes `Active` only under this lock, so a
    /// request parked here is always seen by the release that follows.
    fn park(this: ArcBorrow<'_, Hub>, q: u32, rq: RawRequest) -> Option<RawRequest> {
        let mut p = this.park.lock();
        if this.io.mode() == Mode::Active {
            return Some(rq);
        }
        if p.unloading {
            drop(p);
            this.fail(q, rq, "parent-unloading");
            return None;
        }
        let first = p.ring.len() == 0;
        match p.park(rq, q, this.park_timeout_ms) {
            Ok(()) if first => Hub::arm_timer(this.into(), &p),
            Ok(()) => {}
            Err(rq) => {
                drop(p);
                this.fail(q, rq, "park-full");
            }
        }
        None
    }

    /// Arms the park timer for the oldest parked request's deadline. Called
    /// with the parking lot locked, so it cannot race `shutdown`.
    pub(crate) fn arm_timer(this: Arc<Hub>, p: &ParkLot) {
        if p.unloading || this.park_timeout_ms == 0 {
            return;
        }
        let Some(wait) = p.next_deadline_in(Instant::<Monotonic>::now()) else {
            return;
        };
        let ms = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX);
        // One jiffy more: the timer must not fire before the deadline.
        let delay = msecs_to_jiffies(ms).saturating_add(1);
        // Already pending means it fires no later than this deadline (the
        // oldest request's), and re-arms for the next one then.
        let _ = default_queue().enqueue_delayed::<_, 0>(this, delay);
    }

    /// The park timer: fails parked requests whose deadline has passed, if
    /// no child is attached and no switch is running (a switch that ends
    /// parked re-arms the timer).
    fn park_timeout_fired(this: Arc<Hub>) {
        let mut failed = 0u64;
        let mut p = this.park.lock();
        let now = Instant::<Monotonic>::now();
        let waited = p.oldest_waited(now, this.park_timeout_ms);
        while !p.unloading && this.io.mode() == Mode::Parked {
            let Some(x) = p.pop_expired(now) else { break };
            failed += 1;
            p.timeouts += 1;
            drop(p);
            x.rq.end(EIO.to_errno());
            this.io.failed_without_child(x.q);
            p = this.park.lock();
        }
        if this.io.mode() == Mode::Parked {
            Hub::arm_timer(this.clone(), &p);
        }
        drop(p);
        if failed > 0 {
            hotup_event!(
                "park-timeout failed={} timeout_ms={} waited_ms={} status=EIO",
                failed,
                this.park_timeout_ms,
                waited.as_millis()
            );
        }
    }

    /// Closes the gate for a switch ([`InFlight::close`]) and starts
    /// counting what parks from now on. The window it returns ends at the
    /// release, or when the caller drops it with the device parked.
    pub(crate) fn enter_switching(this: ArcBorrow<'_, Hub>, board: &Board) -> Closed {
        let (closed, mut p) = this.io.close(board, || this.park.lock());
        p.parked_now = 0;
        closed
    }

    /// Sets mode `Parked` after a switch that left no child active, and arms
    /// the park timer for what is parked.
    pub(crate) fn enter_parked(this: ArcBorrow<'_, Hub>, closed: &Closed) {
        let p = this.park.lock();
        this.io.set_parked(closed);
        if p.ring.len() > 0 {
            Hub::arm_timer(this.into(), &p);
        }
        drop(p);
        // Parked calls past their deadline wait for the switch to end.
        this.wake_calls();
    }

    /// Before the disk goes away: fail parked I/O (there is no child and
    /// there will be none) and make sure no timer runs afterwards: once
    /// `unloading` is set under the lock nothing arms it again, and the
    /// flush waits for a pending or running one.
    pub(crate) fn shutdown(&self) {
        let mut p = self.park.lock();
        p.unloading = true;
        let mut failed = 0;
        while let Some(x) = p.ring.pop() {
            failed += 1;
            drop(p);
            x.rq.end(EIO.to_errno());
            self.io.failed_without_child(x.q);
            p = self.park.lock();
        }
        drop(p);
        // Parked calls would end with ENODEV; none can be here (open files
        // pin the module, `calls.rs`): a guard. The hub outlives them.
        self.wake_calls();
        self.wait_callers_gone();
        if failed > 0 {
            hotup_event!("unload-failed-parked count={}", failed);
        }
        flush_delayed(&self.park_timer);
        flush_delayed(&self.stuck_timer);
    }

    /// Makes disk `index` with `geo` (see `DiskSet::add`); process
    /// context, outside the blackout.
    pub(crate) fn make_disk(this: ArcBorrow<'_, Hub>, index: u32, geo: &Geometry) -> Result {
        this.disks.lock().add(
            index,
            geo,
            this.into(),
            super::sysfs::disk_groups(),
            &super::misc::CTRL_FOPS,
            super::hw::live_count() > 1,
        )?;
        this.disks_made.fetch_add(1, Relaxed);
        Ok(())
    }

    /// After an adopt, with I/O released: the disk of every hardware
    /// device whose geometry `child` said (`hw::set_geometry`) and that
    /// has none yet, and a `resume-disk` line per device's disk. A RAM
    /// child on a parent that owns controllers drives disk 0, made here
    /// from `capacity_mib` if it is not there yet.
    pub(crate) fn make_disks(this: ArcBorrow<'_, Hub>, generation: u64, child: &ActiveChild) {
        if !child.drives_hw() {
            if !this.disks.lock().has(0) {
                if let Err(e) = Hub::make_disk(this, 0, &this.geo) {
                    hotup_event!("error reason=disk-not-made disk=0 err={}", e.to_errno());
                    return;
                }
            }
            // A hardware child after it must say this geometry for device 0.
            let shift = this.geo.block_size.trailing_zeros();
            super::hw::note_disk(0, shift, this.geo.capacity_bytes >> shift);
            return;
        }
        let child = child.name();
        for dev in 0..super::hw::MAX_HW as u32 {
            // A device unbound since the adopt gets no disk now.
            let (Some((shift, blocks)), Some(_)) = (super::hw::geometry(dev), super::hw::get(dev))
            else {
                continue;
            };
            let geo = Geometry {
                capacity_bytes: blocks << shift,
                block_size: 1 << shift,
                ..this.geo
            };
            let made = !this.disks.lock().has(dev);
            if !made {
                super::hw::disk_made(dev);
            } else {
                if let Err(e) = Hub::make_disk(this, dev, &geo) {
                    hotup_event!(
                        "error reason=disk-not-made disk={} err={}",
                        dev,
                        e.to_errno()
                    );
                    continue;
                }
                super::hw::disk_made(dev);
            }
            hotup_event!(
                "resume-disk gen={} disk={} child={} name=hotupblk{} lba_bytes={} blocks={} made={}",
                generation,
                dev,
                child,
                dev,
                geo.block_size,
                blocks,
                u8::from(made)
            );
        }
    }

    /// How many disks there are now (without the disks' lock, which is
    /// held across a disk's whole making).
    pub(crate) fn disk_count(&self) -> u64 {
        self.disks_made.load(Relaxed).into()
    }

    /// The parent's unload: fails parked I/O ([`Hub::shutdown`]), then
    /// removes every disk, each waiting for its requests.
    pub(crate) fn remove_disks(&self) {
        self.shutdown();
        let gone = self.disks.lock().take();
        drop(gone);
    }
}
