// SPDX-License-Identifier: GPL-2.0

//! The parent's traffic policeman: dispatch to the active child, parking
//! while there is none, in-flight accounting, and the classic upgrade
//! protocol (detach: park, drain, export, stash; attach: adopt, resume).

use super::blk::{Geometry, RawRequest, MAX_SEGS};
use super::mem::Regions;
use super::state_abi::{
    BlobReader, CVoid, ChildOps, ChildRegistration, IoSegment, ParentServices, ABI_MAJOR, ABI_MINOR,
};
use crate::hotup_event;
use kernel::{
    new_condvar, new_delayed_work, new_mutex, new_spinlock,
    prelude::*,
    sync::{Arc, ArcBorrow, CondVar, Mutex, SpinLock, SpinLockGuard},
    time::{msecs_to_jiffies, Instant, Monotonic},
    workqueue::{impl_has_delayed_work, DelayedWork, WorkItem},
};

/// Upper bound of an exported blob; state_abi's bound for the largest state.
const STASH_CAP: usize = super::state_abi::MAX_BLOB_LEN;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A child is attached and takes I/O.
    Active,
    /// No child: I/O parks.
    Parked,
    /// A child is leaving or arriving: I/O parks.
    Switching,
    /// A child was adopted and parked I/O is being handed to it in order;
    /// new I/O still parks behind it so the order holds.
    Releasing,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Active => "active",
            Mode::Parked => "parked",
            Mode::Switching => "switching",
            Mode::Releasing => "releasing",
        }
    }
}

/// A C pointer from the child, only ever passed back to the child.
#[derive(Clone, Copy)]
struct ChildCtx(*mut CVoid);
// SAFETY: the context is opaque to the parent, which only hands it back to
// the child's own functions; the child's ABI contract makes them callable
// from any thread.
unsafe impl Send for ChildCtx {}

/// The attached child: its identity and a copy of its operations table.
#[derive(Clone, Copy)]
struct ActiveChild {
    name: [u8; 32],
    version: u32,
    ops: ChildOps,
    ctx: ChildCtx,
    reg: *const ChildRegistration,
}
// SAFETY: `ops` holds `extern "C"` function pointers, `ctx` is Send, and
// `reg` is only compared, never dereferenced after registration.
unsafe impl Send for ActiveChild {}

impl ActiveChild {
    fn name(&self) -> &str {
        name_str(&self.name)
    }
}

/// A non-negative duration in nanoseconds.
fn ns(d: kernel::time::Delta) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(0)
}

fn name_str(n: &[u8; 32]) -> &str {
    let len = n.iter().position(|b| *b == 0).unwrap_or(n.len());
    core::str::from_utf8(n.get(..len).unwrap_or_default()).unwrap_or("?")
}

/// A FIFO of parked requests with fixed capacity (every request holds a
/// tag, so there can never be more than `nr_queues * depth`).
struct Ring {
    buf: KVec<Option<RawRequest>>,
    head: usize,
    len: usize,
}

impl Ring {
    fn new(cap: usize) -> Result<Self> {
        let mut buf = KVec::with_capacity(cap, GFP_KERNEL)?;
        for _ in 0..cap {
            buf.push(None, GFP_KERNEL)?;
        }
        Ok(Self {
            buf,
            head: 0,
            len: 0,
        })
    }

    fn push(&mut self, rq: RawRequest) -> core::result::Result<(), RawRequest> {
        let cap = self.buf.len();
        if self.len >= cap {
            return Err(rq);
        }
        match self.buf.get_mut((self.head + self.len) % cap) {
            Some(slot @ None) => {
                *slot = Some(rq);
                self.len += 1;
                Ok(())
            }
            _ => Err(rq),
        }
    }

    fn pop(&mut self) -> Option<RawRequest> {
        if self.len == 0 {
            return None;
        }
        let rq = self.buf.get_mut(self.head)?.take();
        self.head = (self.head + 1) % self.buf.len();
        self.len -= 1;
        rq
    }
}

/// A request handed to the child, found again by its completion cookie.
struct Slot {
    rq: Option<RawRequest>,
    seq: u32,
}

struct Inner {
    mode: Mode,
    child: Option<ActiveChild>,
    parked: Ring,
    slots: KVec<Slot>,
    inflight: u32,
    generation: u64,
    upgrades: u64,
    completed: u64,
    failed: u64,
    parked_total: u64,
    park_timeouts: u64,
    /// Requests parked since the current park began.
    parked_now: u64,
    /// In-flight requests the last detach waited for.
    drained_last: u64,
    parked_last: u64,
    last_blackout_ns: u64,
    park_start: Option<Instant<Monotonic>>,
    /// The last detach's phases: waiting for in-flight I/O, and quiesce +
    /// export; and when it ended (no child from then until the next attach).
    drain_ns: u64,
    export_ns: u64,
    detached_at: Option<Instant<Monotonic>>,
    /// The last child's exported state, waiting for the next child.
    stash: Option<KVec<u8>>,
    stash_from: ([u8; 32], u32),
    /// Whether the stash passed the parent's own check (header, CRC).
    stash_valid: bool,
    /// Adopts of the current stash that failed.
    stash_refusals: u32,
    /// The blob the current (or last) child adopted successfully: the
    /// fallback when its successor's export turns out corrupt.
    last_good: Option<KVec<u8>>,
    /// Device-state schema the next export should write (0: child's own).
    export_schema: u32,
    timer_armed: bool,
    /// When the oldest request now parked was parked.
    first_parked_at: Option<Instant<Monotonic>>,
    unloading: bool,
}

/// Everything the parent shares between the block layer, the children and
/// the control node.
#[pin_data]
pub(crate) struct Hub {
    #[pin]
    inner: SpinLock<Inner>,
    #[pin]
    drained: CondVar,
    /// Serialises attach and detach.
    #[pin]
    switch: Mutex<()>,
    #[pin]
    pub(crate) regions: Mutex<Regions>,
    #[pin]
    park_timer: DelayedWork<Hub>,
    pub(crate) geo: Geometry,
    park_timeout_ms: u32,
    pub(crate) services: ParentServices,
}

impl_has_delayed_work! {
    impl HasDelayedWork<Self> for Hub { self.park_timer }
}

impl WorkItem for Hub {
    type Pointer = Arc<Hub>;

    fn run(this: Arc<Hub>) {
        Hub::park_timeout_fired(this);
    }
}

/// A status snapshot for the control node.
pub(crate) struct Status {
    pub(crate) mode: &'static str,
    pub(crate) generation: u64,
    pub(crate) child: [u8; 32],
    pub(crate) child_version: u32,
    pub(crate) parked: u64,
    pub(crate) inflight: u32,
    pub(crate) upgrades: u64,
    pub(crate) completed: u64,
    pub(crate) failed: u64,
    pub(crate) parked_total: u64,
    pub(crate) park_timeouts: u64,
    pub(crate) last_blackout_ns: u64,
    pub(crate) drained_last: u64,
    pub(crate) parked_last: u64,
    pub(crate) stash_bytes: usize,
    pub(crate) export_schema: u32,
}

impl Status {
    /// The attached child's name, or `-` when none is attached.
    pub(crate) fn child_name(&self) -> &str {
        match name_str(&self.child) {
            "" => "-",
            name => name,
        }
    }
}

impl Hub {
    pub(crate) fn new(
        geo: Geometry,
        park_timeout_ms: u32,
        services: ParentServices,
    ) -> Result<Arc<Self>> {
        let tags = geo.nr_queues as usize * geo.queue_depth as usize;
        let mut slots = KVec::with_capacity(tags, GFP_KERNEL)?;
        for _ in 0..tags {
            slots.push(Slot { rq: None, seq: 0 }, GFP_KERNEL)?;
        }
        let inner = Inner {
            mode: Mode::Parked,
            child: None,
            parked: Ring::new(tags)?,
            slots,
            inflight: 0,
            generation: 0,
            upgrades: 0,
            completed: 0,
            failed: 0,
            parked_total: 0,
            park_timeouts: 0,
            parked_now: 0,
            drained_last: 0,
            parked_last: 0,
            last_blackout_ns: 0,
            park_start: None,
            drain_ns: 0,
            export_ns: 0,
            detached_at: None,
            stash: None,
            stash_from: ([0; 32], 0),
            stash_valid: false,
            stash_refusals: 0,
            last_good: None,
            export_schema: 0,
            timer_armed: false,
            first_parked_at: None,
            unloading: false,
        };
        Arc::pin_init(
            pin_init!(Hub {
                inner <- new_spinlock!(inner, "hotup_hub"),
                drained <- new_condvar!("hotup_drained"),
                switch <- new_mutex!((), "hotup_switch"),
                regions <- new_mutex!(Regions::new(), "hotup_regions"),
                park_timer <- new_delayed_work!("hotup_park_timer"),
                geo,
                park_timeout_ms,
                services,
            }),
            GFP_KERNEL,
        )
    }

    /// `queue_rq`: hand the request to the child, or park it.
    pub(crate) fn dispatch(this: ArcBorrow<'_, Hub>, rq: RawRequest) {
        let mut g = this.inner.lock();
        if g.mode != Mode::Active {
            if g.unloading {
                drop(g);
                rq.end(EIO.to_errno());
                return;
            }
            let first = g.parked.len == 0;
            match g.parked.push(rq) {
                Ok(()) if first => {
                    g.parked_now += 1;
                    g.parked_total += 1;
                    g.first_parked_at = Some(Instant::now());
                }
                Ok(()) => {
                    g.parked_now += 1;
                    g.parked_total += 1;
                }
                Err(rq) => {
                    drop(g);
                    hotup_event!("error reason=park-full");
                    rq.end(EIO.to_errno());
                    return;
                }
            }
            let arm = first && this.park_timeout_ms > 0 && !g.timer_armed;
            if arm {
                g.timer_armed = true;
            }
            drop(g);
            if arm {
                let delay = msecs_to_jiffies(this.park_timeout_ms);
                // Already queued means a timer is running: nothing to do.
                let _ = super::blk::default_queue().enqueue_delayed(Arc::from(this), delay);
            }
            return;
        }
        this.submit_locked(g, rq);
    }

    /// Registers `rq` as in flight, drops the lock and submits it.
    fn submit_locked(&self, mut g: SpinLockGuard<'_, Inner>, rq: RawRequest) {
        let Some(child) = g.child else {
            drop(g);
            rq.end(EIO.to_errno());
            return;
        };
        let Some((idx, queue)) = rq.slot(self.geo.queue_depth) else {
            drop(g);
            hotup_event!("error reason=bad-tag");
            rq.end(EIO.to_errno());
            return;
        };
        let mut segs = [IoSegment::EMPTY; MAX_SEGS];
        let Some(slot) = g.slots.get_mut(idx) else {
            drop(g);
            rq.end(EIO.to_errno());
            return;
        };
        slot.seq = slot.seq.wrapping_add(1);
        let cookie = (u64::from(slot.seq) << 32) | idx as u64;
        let desc = rq.descriptor(&mut segs, cookie, queue);
        slot.rq = Some(rq);
        g.inflight += 1;
        drop(g);
        let rc = match (desc, child.ops.submit) {
            // SAFETY: `submit` comes from the attached child's table, its
            // context is the one it registered, and `desc` with its
            // segments is valid for the call as the ABI requires.
            (Ok(desc), Some(submit)) => unsafe { submit(child.ctx.0, &desc) },
            (Err(e), _) => e.to_errno(),
            (_, None) => EIO.to_errno(),
        };
        if rc != 0 {
            self.complete(cookie, rc);
        }
    }

    /// The child finished the request behind `cookie`.
    pub(crate) fn complete(&self, cookie: u64, status: i32) {
        let idx = (cookie & 0xffff_ffff) as usize;
        let seq = (cookie >> 32) as u32;
        let mut g = self.inner.lock();
        let rq = match g.slots.get_mut(idx) {
            Some(slot) if slot.seq == seq => slot.rq.take(),
            _ => None,
        };
        let Some(rq) = rq else {
            drop(g);
            hotup_event!("error reason=bogus-completion cookie={:#x}", cookie);
            return;
        };
        g.inflight = g.inflight.saturating_sub(1);
        g.completed += 1;
        if status != 0 {
            g.failed += 1;
        }
        let wake = g.inflight == 0;
        drop(g);
        if wake {
            self.drained.notify_all();
        }
        rq.end(status);
    }

    /// Registration of a child: checks, adopts the stash (if any), resumes.
    pub(crate) fn attach(&self, reg: &ChildRegistration) -> Result {
        let mut name = reg.name;
        if let Some(last) = name.last_mut() {
            *last = 0;
        }
        let cname = name_str(&name);
        if reg.abi_major != ABI_MAJOR {
            hotup_event!(
                "refuse child={} version={} reason=abi-mismatch child_abi={}.{} parent_abi={}.{}",
                cname,
                reg.child_version,
                reg.abi_major,
                reg.abi_minor,
                ABI_MAJOR,
                ABI_MINOR
            );
            return Err(Error::from_errno(-super::state_abi::errno::EPROTO));
        }
        let ops = if reg.ops.is_null() {
            None
        } else {
            // SAFETY: the child passed a pointer to its static operations
            // table, valid while it is registered; we copy it.
            Some(unsafe { *reg.ops })
        };
        let Some((ops, adopt)) = ops
            .filter(|o| o.submit.is_some() && o.quiesce.is_some() && o.export_state.is_some())
            .and_then(|o| Some((o, o.adopt?)))
        else {
            hotup_event!(
                "refuse child={} version={} reason=incomplete-ops",
                cname,
                reg.child_version
            );
            return Err(EINVAL);
        };
        let _switch = self.switch.lock();
        let mut g = self.inner.lock();
        if let Some(active) = g.child.as_ref() {
            hotup_event!(
                "refuse child={} version={} reason=busy active={} hint=\"rmmod {} first\"",
                cname,
                reg.child_version,
                active.name(),
                active.name()
            );
            return Err(EBUSY);
        }
        if g.unloading {
            return Err(ENODEV);
        }
        let stash = g.stash.take();
        let last_good = g.last_good.take();
        let from = g.stash_from;
        // A corrupt stash that was already refused once: if the version that
        // produced it comes back, it resumes from the last good state (the
        // data itself is in preserved memory and was never at risk).
        let recover = stash.is_some()
            && !g.stash_valid
            && g.stash_refusals > 0
            && last_good.is_some()
            && reg.child_version == from.1;
        g.mode = Mode::Switching;
        drop(g);
        let adopt_start = Instant::<Monotonic>::now();
        let child = ActiveChild {
            name,
            version: reg.child_version,
            ops,
            ctx: ChildCtx(reg.ctx),
            reg,
        };
        let offer = if recover {
            last_good.as_ref()
        } else {
            stash.as_ref()
        };
        let (ptr, len) = offer.map_or((core::ptr::null(), 0), |b| (b.as_ptr(), b.len()));
        // SAFETY: `adopt` is the child's; the blob is valid for the call (or
        // null with length 0 for "start empty").
        let rc = unsafe { adopt(child.ctx.0, ptr, len) };
        let adopted_at = Instant::<Monotonic>::now();
        let mut g = self.inner.lock();
        if rc != 0 {
            let had_blob = stash.is_some();
            if had_blob {
                g.stash_refusals += 1;
            }
            g.stash = stash;
            g.last_good = last_good;
            g.mode = Mode::Parked;
            let parked = g.parked.len;
            drop(g);
            hotup_event!(
                "rollback child={} version={} err={} state=parked parked={} blob={} hint=\"load a child that can adopt the stashed state, e.g. {}\"",
                cname, reg.child_version, rc, parked,
                if had_blob { "kept" } else { "none" },
                name_str(&from.0)
            );
            return Err(Error::from_errno(rc));
        }
        g.child = Some(child);
        g.generation += 1;
        g.stash_refusals = 0;
        let generation = g.generation;
        // A first attach (nothing was parked by a detach) has no blackout.
        let (blackout_ns, adopt_ns) = g.park_start.take().map_or((0, 0), |t| {
            (ns(adopted_at - t), ns(adopted_at - adopt_start))
        });
        // Where the blackout went: drain + export (detach), load (no child:
        // the old module's unload and the new one's load), adopt.
        let (drain_ns, export_ns) = (g.drain_ns, g.export_ns);
        let load_ns = g.detached_at.take().map_or(0, |t| ns(adopt_start - t));
        if recover {
            hotup_event!(
                "recover gen={} child={} version={} using=last-good discarded=corrupt-stash discarded_bytes={}",
                generation, cname, reg.child_version, stash.as_ref().map_or(0, |b| b.len())
            );
        }
        let stash = if recover {
            last_good
        } else {
            // What was just adopted is the new fallback; a fresh start keeps the old one.
            if stash.is_none() {
                g.last_good = last_good;
            }
            stash
        };
        if let Some(b) = &stash {
            g.upgrades += 1;
            g.last_blackout_ns = blackout_ns;
            hotup_event!(
                "adopt gen={} child={} version={} from={} from_version={} blob_bytes={}",
                generation,
                cname,
                reg.child_version,
                name_str(&from.0),
                from.1,
                b.len()
            );
        }
        hotup_event!(
            "attach gen={} child={} version={} abi={}.{} adopted={}",
            generation,
            cname,
            reg.child_version,
            reg.abi_major,
            reg.abi_minor,
            if stash.is_some() { "yes" } else { "no" }
        );
        g.mode = Mode::Releasing;
        let parked = g.parked_now;
        let drained = g.drained_last;
        drop(g);
        // Hand parked requests over in the order they arrived; anything new
        // parks behind them until the lot is empty.
        loop {
            let mut g = self.inner.lock();
            match g.parked.pop() {
                Some(rq) => self.submit_locked(g, rq),
                None => {
                    g.mode = Mode::Active;
                    g.parked_last = g.parked_now;
                    g.parked_now = 0;
                    break;
                }
            }
        }
        hotup_event!(
            "resume gen={} child={} version={} parked={} drained={} blackout_ns={} drain_ns={} export_ns={} load_ns={} adopt_ns={}",
            generation,
            cname,
            reg.child_version,
            parked,
            drained,
            blackout_ns,
            drain_ns,
            export_ns,
            load_ns,
            adopt_ns
        );
        if let Some(blob) = stash {
            self.inner.lock().last_good = Some(blob);
            if let Some(finish) = ops.finish {
                // SAFETY: the child's own `finish`, with its context.
                unsafe { finish(child.ctx.0) };
            }
        }
        Ok(())
    }

    /// Unregistration of the active child (its module is leaving): park,
    /// drain, export its state into the stash.
    pub(crate) fn detach(&self, reg: *const ChildRegistration) -> Result {
        let _switch = self.switch.lock();
        let mut g = self.inner.lock();
        let Some(child) = g.child.filter(|c| c.reg == reg) else {
            drop(g);
            hotup_event!("error reason=unregister-unknown-child");
            return Err(EINVAL);
        };
        g.mode = Mode::Switching;
        let park_start = Instant::<Monotonic>::now();
        g.park_start = Some(park_start);
        g.parked_now = 0;
        let drained = g.inflight;
        let generation = g.generation;
        // One detach only: a later upgrade by hand gets the child's own schema
        // unless it asks again.
        let schema = core::mem::take(&mut g.export_schema);
        drop(g);
        hotup_event!(
            "park gen={} child={} version={} reason=detach inflight={}",
            generation,
            child.name(),
            child.version,
            drained
        );
        // Requests already handed to the child finish first.
        let mut g = self.inner.lock();
        while g.inflight > 0 {
            self.drained.wait(&mut g);
        }
        g.drained_last = u64::from(drained);
        drop(g);
        let drained_at = Instant::<Monotonic>::now();
        if let Some(quiesce) = child.ops.quiesce {
            // SAFETY: the child's own `quiesce`, with its context.
            let rc = unsafe { quiesce(child.ctx.0) };
            if rc != 0 {
                hotup_event!(
                    "error reason=quiesce-failed child={} err={}",
                    child.name(),
                    rc
                );
            }
        }
        let mut blob = KVec::<u8>::from_elem(0u8, STASH_CAP, GFP_KERNEL)?;
        let mut len = 0usize;
        let rc = match child.ops.export_state {
            // SAFETY: the child's own `export_state`; `blob` is a writable
            // buffer of `blob.len()` bytes and `len` a valid out pointer.
            Some(export) => unsafe {
                export(child.ctx.0, blob.as_mut_ptr(), blob.len(), schema, &mut len)
            },
            None => EINVAL.to_errno(),
        };
        let detached_at = Instant::<Monotonic>::now();
        let mut g = self.inner.lock();
        g.child = None;
        g.mode = Mode::Parked;
        g.drain_ns = ns(drained_at - park_start);
        g.export_ns = ns(detached_at - drained_at);
        g.detached_at = Some(detached_at);
        if rc == 0 && len <= blob.len() {
            blob.truncate(len);
            let check = BlobReader::parse(&blob).err();
            g.stash = Some(blob);
            g.stash_from = (child.name, child.version);
            g.stash_valid = check.is_none();
            g.stash_refusals = 0;
            drop(g);
            hotup_event!(
                "detach gen={} child={} version={} drained={} blob_bytes={} schema={} blob={}",
                generation,
                child.name(),
                child.version,
                drained,
                len,
                schema,
                check.map_or("ok", |e| e.as_str())
            );
        } else {
            drop(g);
            hotup_event!(
                "detach gen={} child={} version={} drained={} export=failed err={} hint=\"the data stays preserved; load the same version to recover\"",
                generation, child.name(), child.version, drained, rc
            );
        }
        Ok(())
    }

    /// The park timeout expired: fail what is parked if no child is coming;
    /// during a switch, look again one timeout later.
    fn park_timeout_fired(this: Arc<Hub>) {
        let mut failed = 0u64;
        let mut g = this.inner.lock();
        g.timer_armed = false;
        if matches!(g.mode, Mode::Switching | Mode::Releasing) && g.parked.len > 0 && !g.unloading {
            g.timer_armed = true;
            drop(g);
            let delay = msecs_to_jiffies(this.park_timeout_ms);
            let _ = super::blk::default_queue().enqueue_delayed(this, delay);
            return;
        }
        let waited_ms = g
            .first_parked_at
            .take()
            .map_or(0, |t| t.elapsed().as_millis());
        if g.mode == Mode::Parked {
            while let Some(rq) = g.parked.pop() {
                failed += 1;
                g.failed += 1;
                g.park_timeouts += 1;
                drop(g);
                rq.end(EIO.to_errno());
                g = this.inner.lock();
            }
        }
        drop(g);
        if failed > 0 {
            hotup_event!(
                "park-timeout failed={} timeout_ms={} waited_ms={} status=EIO",
                failed,
                this.park_timeout_ms,
                waited_ms
            );
        }
    }

    /// Before the disk goes away: fail parked I/O (there is no child and
    /// there will be none) and make sure no timer runs afterwards.
    pub(crate) fn shutdown(&self) {
        let mut g = self.inner.lock();
        g.unloading = true;
        let mut failed = 0;
        while let Some(rq) = g.parked.pop() {
            failed += 1;
            drop(g);
            rq.end(EIO.to_errno());
            g = self.inner.lock();
        }
        drop(g);
        if failed > 0 {
            hotup_event!("unload-failed-parked count={}", failed);
        }
        super::blk::flush_delayed(&self.park_timer);
    }

    /// Sets the schema the next export writes (0: the child's newest).
    pub(crate) fn set_export_schema(&self, schema: u32) {
        self.inner.lock().export_schema = schema;
    }

    pub(crate) fn status(&self) -> Status {
        let g = self.inner.lock();
        Status {
            mode: g.mode.as_str(),
            generation: g.generation,
            child: g.child.map_or([0; 32], |c| c.name),
            child_version: g.child.map_or(0, |c| c.version),
            parked: g.parked.len as u64,
            inflight: g.inflight,
            upgrades: g.upgrades,
            completed: g.completed,
            failed: g.failed,
            parked_total: g.parked_total,
            park_timeouts: g.park_timeouts,
            last_blackout_ns: g.last_blackout_ns,
            drained_last: g.drained_last,
            parked_last: g.parked_last,
            stash_bytes: g.stash.as_ref().map_or(0, |s| s.len()),
            export_schema: g.export_schema,
        }
    }
}
