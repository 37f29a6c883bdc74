// SPDX-License-Identifier: GPL-2.0

//! The hotup child driver, shared by every version (`super::CHILD_VERSION`):
//! an NVMe-style RAM-backed block device. The parent hands it one descriptor
//! per request with the hardware queue it came from; the child moves the data
//! at submission and completes asynchronously from a work item, after
//! `latency_us` of simulated device latency, so I/O is genuinely in flight
//! when an upgrade starts. The data lives in memory the parent preserves; the
//! child keeps only a handle to it, which travels in the state blob.
//!
//! Versions differ in schema: v1 writes and reads device-state section v1;
//! v2 keeps per-queue statistics and byte counters (section v2 plus the
//! optional queue-stats section), migrates v1 on adopt and writes v1 when the
//! parent asks for a downgrade.

// Without a parent (`hotup_mono`) the upgrade half of the driver (export,
// freeze, probe, the fault knobs of the upgrade tests) has no caller.
#![cfg_attr(hotup_mono, allow(dead_code))]

use super::state_abi::{
    read_state_into, write_state_full, BlobError, BlobReader, ChildStats, ControllerState,
    DeviceStateV2, FileStates, HeldRequest, IoDesc, IoOp, IoSegment, MemHandle, ParentServices,
    QueueStats, StateOut, ABI_MAJOR, ABI_MINOR, EXPORT_TRIAL_HANDOVER, MAX_QUEUES,
};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, AtomicUsize};
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::{
    impl_has_hr_timer, new_condvar, new_mutex, new_spinlock, new_work,
    prelude::*,
    sync::{Arc, ArcBorrow, CondVar, Mutex, SpinLock},
    time::{
        delay::fsleep,
        hrtimer::{
            ArcHrTimerHandle, HrTimer, HrTimerCallback, HrTimerCallbackContext, HrTimerPointer,
            HrTimerRestart, RelativeMode,
        },
        Delta, Instant, Monotonic,
    },
    workqueue::{impl_has_work, Queue, Work, WorkItem},
};

// The front end: the C ABI to the parent, or (the `hotup_mono` build
// switch) a plain blk-mq driver of its own.
#[cfg(not(hotup_mono))]
#[path = "edge.rs"]
mod edge;
#[cfg(not(hotup_mono))]
pub(crate) use edge::Child;
#[cfg(hotup_mono)]
#[path = "mono.rs"]
mod mono;
#[cfg(hotup_mono)]
pub(crate) use mono::Mono;
// The controller's command set (the ioctls the parent forwards).
#[path = "nvme.rs"]
mod nvme;

/// The newest device-state schema this version reads and writes.
const SCHEMA: u32 = if super::CHILD_VERSION >= 2 { 2 } else { 1 };
/// Whether this version keeps per-queue statistics (the v2 feature).
const KEEPS_QUEUE_STATS: bool = super::CHILD_VERSION >= 2;

/// Defines the child's `module!` for one version (the crate roots call it
/// with their module type and name, so every build shares one definition
/// and one set of parameters).
#[macro_export]
macro_rules! hotup_child_module {
    ($type:ty, $name:literal, $desc:literal $(, { $($extra:tt)* })?) => {
        ::kernel::prelude::module! {
            type: $type,
            name: $name,
            authors: ["hotup developers"],
            description: $desc,
            license: "GPL",
            params: {
                latency_us: u32 {
                    default: 100,
                    description: "Simulated device latency per I/O, in microseconds",
                },
                corrupt_export: u32 {
                    default: 0,
                    description: "Fault injection (tests): 1 makes export write a corrupted blob (same as inject_export_fault=4)",
                },
                abi_major_override: u32 {
                    default: 0,
                    description: "Fault injection (tests): register claiming this ABI major (0: the real one)",
                },
                abi_minor_override: u32 {
                    default: 0,
                    description: "Compatibility tests: register as this older ABI minor, with that minor's operations table (1: no ioctl, so the parent answers ENOTTY); 0: the real one",
                },
                inject_complete_delay_us: u32 {
                    default: 0,
                    description: "Fault injection (tests): the completion worker waits this long (at most 1 s) between taking a request off its list and completing it (a standby switch then freezes this child with a completion under way)",
                },
                inject_submit_delay_us: u32 {
                    default: 0,
                    description: "Fault injection (tests): busy-wait this long in submit after the completion is visible (widens the window the parent's barrier closes)",
                },
                inject_lost_writes: u32 {
                    default: 0,
                    description: "Fault injection (tests): after adopting a state, acknowledge this many writes without storing them",
                },
                inject_export_fault: u32 {
                    default: 0,
                    description: "Fault injection (tests): export 1 fails with EIO, 2 truncates the blob, 3 adds an unknown mandatory section, 4 corrupts a byte, 5 hands over a request under a cookie the parent does not know, 6 one due beyond any device's latency",
                },
                complete_in_irq: u32 {
                    default: 0,
                    description: "Complete I/O from a hard-IRQ hrtimer instead of a work item (tests the parent's completion path in hard-IRQ context)",
                },
                standby: u32 {
                    default: 1,
                    description: "Advertise standby support (CAP_STANDBY): loaded next to an active child, register as its standby; 0: only classic upgrades",
                },
                handover: u32 {
                    default: 1,
                    description: "Advertise in-flight handover (CAP_HANDOVER; not with complete_in_irq): 0 makes a standby switch drain this child instead",
                },
                inject_call_delay_us: u32 {
                    default: 0,
                    description: "Fault injection (tests): every ioctl stays this long in the child (at most 1 s), as a slow admin command would: a switch then finds calls to drain",
                },
                inject_faulting_copies: u32 {
                    default: 0,
                    description: "Fault injection (tests): 1 copies ioctl user memory with ordinary, sleeping copies inside the parent's barrier (a fault on a page of this device then deadlocks a classic upgrade)",
                },
                inject_adopt_error: u32 {
                    default: 0,
                    description: "Fault injection (tests): 1 makes adopt fail with EIO after it allocated what it needs",
                },
                $($($extra)*)?
            },
        }
    };
}

/// The preserved region holding the disk's bytes (owned by the parent).
#[derive(Clone, Copy)]
struct Region {
    handle: MemHandle,
    base: *mut u8,
    len: u64,
}

impl Region {
    /// Copies between the region at `off` and the request's segments.
    fn transfer(&self, off: u64, segs: &[IoSegment], write: bool) -> Result {
        let mut pos = off;
        for s in segs {
            let n = u64::from(s.len);
            let end = pos.checked_add(n).filter(|e| *e <= self.len).ok_or(EIO)?;
            if s.addr.is_null() {
                return Err(EIO);
            }
            // SAFETY: `pos..end` is inside the region (checked above), which
            // the parent keeps mapped while any child holds its handle; the
            // segment points at `s.len` bytes of a request's data page,
            // valid until the request completes (ABI contract). Concurrent
            // requests to overlapping ranges are the submitter's business,
            // as on any block device.
            unsafe {
                let at = self.base.add(pos as usize);
                if write {
                    core::ptr::copy_nonoverlapping(s.addr.cast_const(), at, s.len as usize);
                } else {
                    core::ptr::copy_nonoverlapping(at.cast_const(), s.addr, s.len as usize);
                }
            }
            pos = end;
        }
        Ok(())
    }

    /// Zeroes `len` bytes at `off` (discard and write-zeroes read back zeroes).
    fn zero(&self, off: u64, len: u64) -> Result {
        off.checked_add(len).filter(|e| *e <= self.len).ok_or(EIO)?;
        // SAFETY: the range is inside the region, checked above.
        unsafe { core::ptr::write_bytes(self.base.add(off as usize), 0, len as usize) };
        Ok(())
    }
}

/// A completion waiting for its simulated latency to pass.
struct Pending {
    cookie: u64,
    status: i32,
    due: Instant<Monotonic>,
}

struct State {
    accepting: bool,
    /// `freeze`d for a handover: completes nothing, holds what is pending.
    frozen: bool,
    /// Exported since it last took I/O (a `finish` then retires it).
    exported: bool,
    /// Switched away from: takes nothing, completes nothing, ever again.
    retired: bool,
    /// Completions taken off `pending` and not yet back from the parent's
    /// `complete`: `freeze` lets them end on their own, `finish` waits.
    completing: u32,
    inflight: u32,
    /// Writes that arrived with FUA since this child loaded (the export
    /// line reports it: proof that the flag reaches the child).
    fua_writes: u64,
    pending: KVVec<Pending>,
    region: Option<Region>,
    dev: DeviceStateV2,
    queues: QueueStats,
    stats: ChildStats,
    /// The NVMe controller's counters and features (`nvme.rs`).
    ctrl: ControllerState,
    /// When this child adopted its state, for `ctrl.power_on_ns`.
    started: Instant<Monotonic>,
    /// What open files of the controller node set (`nvme.rs`), by the
    /// parent's file id; forgotten at their `release`.
    files: FileStates,
}

impl State {
    /// The controller's power-on time until now, over every child.
    fn power_on_ns(&self) -> u64 {
        let here = u64::try_from((Instant::<Monotonic>::now() - self.started).as_nanos());
        self.ctrl.power_on_ns.saturating_add(here.unwrap_or(0))
    }
}

/// A completion waiting in hard-IRQ mode (`complete_in_irq=1`): lock-free,
/// because the hrtimer callback runs with interrupts off and the submit
/// path must not take a lock it could interrupt.
struct IrqSlot {
    /// The request's cookie; 0 when the slot is free.
    cookie: AtomicU64,
    status: AtomicI32,
    /// When it is due, in ns since `Irq::t0`.
    due_ns: AtomicI64,
}

/// Hard-IRQ completion: an hrtimer that fires every `period` while the
/// child takes I/O and completes the due requests from its callback.
struct Irq {
    enabled: bool,
    /// One slot per tag (the parent's cookie names it), allocated in
    /// `adopt` once the parent's geometry is known.
    slots: KVVec<IrqSlot>,
    /// How many slots are in use (`nr_queues * queue_depth`).
    used: AtomicUsize,
    t0: Instant<Monotonic>,
    period: Delta,
    /// Tells the callback not to restart (quiesce).
    stop: AtomicBool,
}

/// One loaded child.
#[pin_data]
struct Dev {
    #[pin]
    state: SpinLock<State>,
    #[pin]
    idle: CondVar,
    #[pin]
    work: Work<Dev>,
    #[pin]
    timer: HrTimer<Dev>,
    /// The running hard-IRQ timer (it holds a reference to this `Dev`;
    /// dropping the handle cancels the timer and waits for its callback).
    #[pin]
    timer_handle: Mutex<Option<ArcHrTimerHandle<Dev>>>,
    /// What the adopt fills in, allocated at load: the adopt runs while
    /// the parent's gate is closed, where no allocation may enter reclaim
    /// (it could write to this very device and wait for a parked tag).
    #[pin]
    adopt_box: SpinLock<Option<KBox<Taken>>>,
    irq: Irq,
    /// Written by the parent during registration.
    services: AtomicPtr<ParentServices>,
    latency: Delta,
    faults: Faults,
}

/// Fault injection, set by module parameters (tests only; all off by default).
struct Faults {
    export_fault: u32,
    submit_delay: Delta,
    /// Between popping a completion and completing it (`complete_due`).
    complete_delay: Delta,
    adopt_error: bool,
    /// Each ioctl sleeps this long in the child (`nvme.rs`).
    call_delay: Delta,
    /// Ioctls copy user memory with sleeping faults (`nvme.rs`).
    faulting_copies: bool,
    /// Writes still to be acknowledged without being stored.
    lost_writes: core::sync::atomic::AtomicU32,
    lost_writes_after_adopt: u32,
}

impl_has_work! {
    impl HasWork<Self> for Dev { self.work }
}

impl WorkItem for Dev {
    type Pointer = Arc<Dev>;

    fn run(this: Arc<Dev>) {
        this.complete_due();
    }
}

impl_has_hr_timer! {
    impl HasHrTimer<Self> for Dev {
        mode: RelativeMode<Monotonic>, field: self.timer
    }
}

impl HrTimerCallback for Dev {
    type Pointer<'a> = Arc<Dev>;

    /// Hard-IRQ context (a plain-mode hrtimer expires in hard IRQ on a
    /// non-RT kernel, as null_blk's do; hard mode would forbid the ordinary
    /// spinlocks that request completion takes, e.g. aio's): completes what
    /// is due, then fires again one period later unless the child is
    /// quiescing.
    fn run(this: ArcBorrow<'_, Dev>, mut ctx: HrTimerCallbackContext<'_, Dev>) -> HrTimerRestart {
        this.complete_due_irq();
        if this.irq.stop.load(core::sync::atomic::Ordering::Acquire) {
            return HrTimerRestart::NoRestart;
        }
        ctx.forward_now(this.irq.period);
        HrTimerRestart::Restart
    }
}

// SAFETY: `Region` holds a pointer into parent-owned memory that stays valid
// for the child's lifetime and is only accessed through `transfer`/`zero`.
unsafe impl Send for Region {}

impl Dev {
    fn services(&self) -> Option<&ParentServices> {
        let p = self.services.load(Ordering::Acquire);
        // SAFETY: the parent stores a pointer to its services table, which
        // lives as long as the parent module, which outlives this child.
        (!p.is_null()).then(|| unsafe { &*p })
    }

    /// Completes every pending I/O whose latency has passed, sleeping until
    /// the next one is due. Runs in the work item (process context).
    fn complete_due(&self) {
        let Some(complete) = self.services().and_then(|s| s.complete) else {
            return;
        };
        loop {
            let mut g = self.state.lock();
            if g.frozen || g.retired {
                // Held for the successor (or handed over already).
                return;
            }
            let Some(first) = g.pending.first() else {
                return;
            };
            let wait = first.due - Instant::<Monotonic>::now();
            if wait.as_nanos() > 0 {
                drop(g);
                fsleep(wait);
                continue;
            }
            let Ok(p) = g.pending.remove(0) else {
                return;
            };
            g.completing += 1;
            drop(g);
            if self.faults.complete_delay > Delta::ZERO {
                // Fault injection: a completion under way, for a while.
                fsleep(self.faults.complete_delay);
            }
            // SAFETY: `complete` is the parent's service; the cookie is the
            // one it gave us for this request, completed exactly once.
            unsafe { complete(p.cookie, p.status) };
            let mut g = self.state.lock();
            g.completing = g.completing.saturating_sub(1);
            g.inflight = g.inflight.saturating_sub(1);
            g.stats.completed += 1;
            g.stats.inflight = u64::from(g.inflight);
            // Quiesce waits for no I/O, a retiring child's `finish` for no
            // completion under way.
            let idle = g.inflight == 0 || (g.retired && g.completing == 0);
            drop(g);
            if idle {
                self.idle.notify_all();
            }
        }
    }

    /// Hard-IRQ mode: completes every request whose latency has passed.
    fn complete_due_irq(&self) {
        use core::sync::atomic::Ordering::*;
        let Some(complete) = self.services().and_then(|s| s.complete) else {
            return;
        };
        let now = (Instant::<Monotonic>::now() - self.irq.t0).as_nanos();
        let used = self.irq.used.load(Acquire);
        for slot in self.irq.slots.iter().take(used) {
            let c = slot.cookie.load(Acquire);
            if c == 0 || slot.due_ns.load(Relaxed) > now {
                continue;
            }
            if slot.cookie.compare_exchange(c, 0, AcqRel, Relaxed).is_ok() {
                // SAFETY: the parent's `complete` is callable from any
                // context (hard IRQ included); this cookie is completed
                // exactly once (the compare-and-swap above).
                unsafe { complete(c, slot.status.load(Relaxed)) };
            }
        }
    }

    /// Hard-IRQ mode: queues the completion of `cookie` for the timer.
    fn queue_irq_completion(&self, cookie: u64, status: i32) -> i32 {
        use core::sync::atomic::Ordering::*;
        let idx = (cookie & 0xffff_ffff) as usize;
        let Some(slot) = self
            .irq
            .slots
            .get(idx)
            .filter(|_| idx < self.irq.used.load(Acquire))
        else {
            return EINVAL.to_errno();
        };
        let due = (Instant::<Monotonic>::now() - self.irq.t0) + self.latency;
        slot.status.store(status, Relaxed);
        slot.due_ns.store(due.as_nanos(), Relaxed);
        // Publishes status and due time to the callback.
        slot.cookie.store(cookie, Release);
        0
    }

    /// Hard-IRQ mode: starts the periodic timer (adopt).
    fn start_irq_timer(self: &Arc<Self>) {
        let mut h = self.timer_handle.lock();
        if h.is_none() {
            self.irq
                .stop
                .store(false, core::sync::atomic::Ordering::Release);
            *h = Some(self.clone().start(self.irq.period));
        }
    }

    /// Hard-IRQ mode: stops the timer and waits until its callback has
    /// returned (dropping the handle cancels it).
    fn stop_irq_timer(&self) {
        self.irq
            .stop
            .store(true, core::sync::atomic::Ordering::Release);
        let handle = self.timer_handle.lock().take();
        drop(handle);
    }

    fn submit(self: &Arc<Self>, io: &IoDesc) -> i32 {
        let Some(op) = IoOp::from_raw(io.opcode) else {
            return EINVAL.to_errno();
        };
        let segs: &[IoSegment] = if io.nr_segs == 0 || io.segs.is_null() {
            &[]
        } else {
            // SAFETY: the ABI guarantees `segs` points to `nr_segs` segments
            // valid for the duration of `submit`.
            unsafe { core::slice::from_raw_parts(io.segs, io.nr_segs as usize) }
        };
        let mut g = self.state.lock();
        if !g.accepting {
            return EBUSY.to_errno();
        }
        let Some(region) = g.region else {
            return ENXIO.to_errno();
        };
        let q = io.queue as usize;
        g.count_submitted(op, io.flags, q);
        drop(g);
        let seg_bytes: u64 = segs.iter().map(|s| u64::from(s.len)).sum();
        let res = match op {
            IoOp::Read | IoOp::Write if seg_bytes != io.len => Err(EIO),
            IoOp::Read => region.transfer(io.offset, segs, false),
            IoOp::Write if self.faults.lose_this_write() => Ok(()),
            IoOp::Write => region.transfer(io.offset, segs, true),
            IoOp::Flush => Ok(()),
            IoOp::Discard | IoOp::WriteZeroes => region.zero(io.offset, io.len),
        };
        let status = res.map_or_else(|e| e.to_errno(), |()| 0);
        let mut g = self.state.lock();
        g.count_done(op, io.len, q, status);
        if self.irq.enabled {
            // Completed by the hard-IRQ timer; counted as done here.
            g.inflight = g.inflight.saturating_sub(1);
            g.stats.completed += 1;
            g.stats.inflight = u64::from(g.inflight);
            drop(g);
            let rc = self.queue_irq_completion(io.cookie, status);
            if rc != 0 {
                return rc;
            }
            if self.faults.submit_delay > Delta::ZERO {
                busy_wait(self.faults.submit_delay);
                self.state.lock().stats.submitted += 0;
            }
            return 0;
        }
        let due = Instant::<Monotonic>::now() + self.latency;
        if let Err(e) = g.pending.push_within_capacity(Pending {
            cookie: io.cookie,
            status,
            due,
        }) {
            // Cannot happen: capacity covers every tag. Refuse rather than lose it.
            let _ = e;
            g.inflight = g.inflight.saturating_sub(1);
            let idle = g.inflight == 0;
            drop(g);
            if idle {
                self.idle.notify_all();
            }
            return ENOSPC.to_errno();
        }
        drop(g);
        if self.faults.submit_delay > Delta::ZERO {
            // Fault injection: the completion is visible and its worker
            // queued; stay in this module's code a while, then touch the
            // device, as the code after the unlock always does. Without the
            // parent's barrier the module can be freed under this CPU.
            let _ = default_queue().enqueue(self.clone());
            busy_wait(self.faults.submit_delay);
            self.state.lock().stats.submitted += 0;
        }
        // Already queued is fine: the running worker drains everything.
        let _ = default_queue().enqueue(self.clone());
        0
    }

    /// Stops taking I/O and waits until everything submitted has completed
    /// and no completion context of ours (work item, timer) is running.
    fn quiesce(&self) -> i32 {
        if self.irq.enabled {
            // The parent calls us once every request has completed; what is
            // left is a callback that may still be running: stopping the
            // timer waits for it.
            self.state.lock().accepting = false;
            self.stop_irq_timer();
            return 0;
        }
        let mut g = self.state.lock();
        g.accepting = false;
        while g.inflight > 0 {
            self.idle.wait(&mut g);
        }
        drop(g);
        flush_work(&self.work);
        0
    }

    /// Handover: stops taking I/O and starting completions; what is
    /// pending stays held for the export. A completion the worker has
    /// already started (taken off `pending`) ends on its own, maybe after
    /// we return (`FreezeFn`): waiting for it here would put the worker's
    /// scheduling latency inside the blackout. `finish` waits for it.
    fn freeze(&self) -> i32 {
        if self.irq.enabled {
            // The hard-IRQ slots are not handed over (no CAP_HANDOVER).
            return -super::state_abi::errno::EOPNOTSUPP;
        }
        let mut g = self.state.lock();
        g.accepting = false;
        g.frozen = true;
        let (held, completing) = (g.pending.len(), g.completing);
        drop(g);
        pr_info!(
            "freeze version={} held={} completing={}\n",
            super::CHILD_VERSION,
            held,
            completing
        );
        0
    }

    /// Resumes after a switch was called off: takes I/O again and
    /// completes what it held itself.
    fn unfreeze(self: &Arc<Self>) {
        let mut g = self.state.lock();
        if g.retired {
            return;
        }
        g.accepting = true;
        g.frozen = false;
        g.exported = false;
        let held = g.pending.len();
        drop(g);
        if self.irq.enabled {
            self.start_irq_timer();
        }
        let _ = default_queue().enqueue(self.clone());
        pr_info!("resume version={} held={}\n", super::CHILD_VERSION, held);
    }

    /// The switch that exported this child committed: what it held is the
    /// successor's now; it takes and completes nothing any more. Returns
    /// once a completion started before the freeze has come back from the
    /// parent (`FinishFn`). (For the child that just adopted, `finish`
    /// changes nothing.)
    fn finish(&self) {
        let mut g = self.state.lock();
        if !g.exported || g.accepting {
            return;
        }
        let handed = g.pending.len();
        g.pending.clear();
        g.inflight = 0;
        g.stats.inflight = 0;
        g.frozen = false;
        g.retired = true;
        // The worker takes nothing off `pending` any more (it is empty and
        // `retired`); one completion may still be under way.
        while g.completing > 0 {
            self.idle.wait(&mut g);
        }
        drop(g);
        self.idle.notify_all();
        pr_info!(
            "retired version={} handed_over={}\n",
            super::CHILD_VERSION,
            handed
        );
    }

    fn export(&self, buf: &mut [u8], schema: u32) -> Result<usize, i32> {
        let (schema, trial_held) = export_schema(schema);
        if self.faults.export_fault == 1 {
            pr_warn!("export: failing on purpose (inject_export_fault=1)\n");
            return Err(EIO.to_errno());
        }
        let mut g = self.state.lock();
        let Some(region) = g.region else {
            return Err(ENXIO.to_errno());
        };
        let mut dev = g.dev;
        dev.data_handle = region.handle;
        dev.data_len = region.len;
        // By reference: the array is kilobytes (a kernel stack is 16).
        let qs = KEEPS_QUEUE_STATS.then_some(&g.queues);
        // Frozen (a handover): the pending requests go into the blob, with
        // the device time each has left. Under the lock, though nothing
        // changes them while frozen.
        let now = Instant::<Monotonic>::now();
        let src: &[Pending] = if g.frozen || trial_held {
            &g.pending
        } else {
            &[]
        };
        let held = src.iter().enumerate().map(|(i, p)| {
            self.faults.forge_held(
                i,
                HeldRequest {
                    cookie: p.cookie,
                    remaining_ns: u64::try_from((p.due - now).as_nanos()).unwrap_or(0),
                    status: p.status,
                },
            )
        });
        let n_held = src.len();
        let n_files = g.files.len();
        let fua_writes = g.fua_writes;
        let ctrl = ControllerState {
            power_on_ns: g.power_on_ns(),
            ..g.ctrl
        };
        let written = write_state_full(
            buf,
            super::CHILD_VERSION,
            &dev,
            qs,
            schema,
            held,
            Some(&ctrl),
            (n_files > 0).then_some(&g.files),
        );
        // A trial export (the switch's prepare step, while the child still
        // takes I/O) changes nothing; only a real one can lead to `finish`
        // retiring the child.
        if written.is_ok() && !g.accepting {
            g.exported = true;
        }
        drop(g);
        let len = written.map_err(|e| {
            pr_err!("export failed: {}\n", e.as_str());
            e.errno()
        })?;
        let len = self.faults.mangle_export(buf, len, n_held);
        pr_info!(
            "export version={} schema={} blob_bytes={} handle={:#x} held={} files={} fua_writes={}\n",
            super::CHILD_VERSION,
            schema,
            len,
            region.handle.0,
            n_held,
            n_files,
            fua_writes
        );
        Ok(len)
    }

    /// Adopts `blob` (None: start empty). With `probe`, only checks that it
    /// could (the whole blob, the handed-over requests, the preserved
    /// memory it names) and changes nothing.
    fn adopt(&self, blob: Option<&[u8]>, probe: bool) -> Result<(), i32> {
        let svc = self.services().ok_or(ENODEV.to_errno())?;
        let what = if probe { "probe" } else { "adopt" };
        if probe && blob.is_none() {
            return Err(EINVAL.to_errno());
        }
        // What the blob (or a fresh start) gives, on the heap: the queue
        // statistics and per-file states are fixed arrays of kilobytes,
        // and this runs on a kernel stack.
        let (t, held) = match blob {
            None => (self.fresh(svc)?, super::state_abi::HeldIter::EMPTY),
            Some(blob) => self.take_blob(blob, svc, what)?,
        };
        let dev = t.out.dev;
        let map = svc.mem_map.ok_or(EINVAL.to_errno())?;
        let (mut base, mut len) = (core::ptr::null_mut(), 0u64);
        // SAFETY: the parent's lookup; both out pointers are valid. The
        // parent checks the handle, so a forged handle is refused, not used.
        let rc = unsafe { map(dev.data_handle.0, &mut base, &mut len) };
        if rc != 0 || base.is_null() || len < dev.capacity_bytes {
            pr_err!(
                "{} refused: preserved memory handle {:#x} is not valid ({})\n",
                what,
                dev.data_handle.0,
                rc
            );
            return Err(if rc != 0 { rc } else { EINVAL.to_errno() });
        }
        if probe {
            return Ok(());
        }
        if self.faults.adopt_error {
            pr_warn!("adopt: failing on purpose (inject_adopt_error=1)\n");
            return Err(EIO.to_errno());
        }
        let mut dev = dev;
        if blob.is_some() {
            dev.adopt_count = dev.adopt_count.saturating_add(1);
            self.faults.arm_lost_writes();
        }
        let mut g = self.state.lock();
        g.region = Some(Region {
            handle: dev.data_handle,
            base,
            len,
        });
        g.dev = dev;
        g.ctrl = t.ctrl;
        g.files = t.out.files;
        g.started = Instant::<Monotonic>::now();
        g.queues = t.out.queues;
        let n_held = held.len();
        g.take_held(held);
        g.stats.inflight = u64::from(g.inflight);
        g.accepting = true;
        drop(g);
        if n_held > 0 {
            pr_info!(
                "adopt version={} handed_over={}\n",
                super::CHILD_VERSION,
                n_held
            );
        }
        if self.irq.enabled {
            let used = (svc.nr_queues as usize)
                .saturating_mul(svc.queue_depth as usize)
                .min(self.irq.slots.len());
            self.irq
                .used
                .store(used, core::sync::atomic::Ordering::Release);
        }
        log_adopt(blob, &t, dev);
        Ok(())
    }
}

impl State {
    /// Counts a request of `op` with `flags` accepted on queue `q`.
    fn count_submitted(&mut self, op: IoOp, flags: u32, q: usize) {
        self.inflight += 1;
        self.stats.submitted += 1;
        if op == IoOp::Write && flags & super::state_abi::IO_FLAG_FUA != 0 {
            // The RAM child has no volatile cache: a FUA write is durable
            // when stored, like any other.
            self.fua_writes += 1;
        }
        self.stats.inflight = u64::from(self.inflight);
        if KEEPS_QUEUE_STATS {
            let inflight = u64::from(self.inflight);
            if let Some(qs) = self.queues.as_mut_slice().get_mut(q) {
                qs.submitted += 1;
                qs.max_inflight = qs.max_inflight.max(inflight);
            }
        }
    }

    /// Counts a request of `op` and `len` bytes on queue `q` done with
    /// `status`, in the controller's, the device's and the queue's figures.
    fn count_done(&mut self, op: IoOp, len: u64, q: usize, status: i32) {
        match op {
            IoOp::Read => {
                self.ctrl.host_reads += 1;
                self.ctrl.bytes_read += len;
            }
            IoOp::Write => {
                self.ctrl.host_writes += 1;
                self.ctrl.bytes_written += len;
            }
            _ => {}
        }
        let d = &mut self.dev;
        match op {
            IoOp::Read => {
                d.reads += 1;
                d.bytes_read += len;
            }
            IoOp::Write => {
                d.writes += 1;
                d.bytes_written += len;
            }
            IoOp::Flush => d.flushes += 1,
            IoOp::Discard => d.discards += 1,
            IoOp::WriteZeroes => d.write_zeroes += 1,
        }
        if status != 0 {
            self.stats.errors += 1;
        }
        if KEEPS_QUEUE_STATS {
            if let Some(qs) = self.queues.as_mut_slice().get_mut(q) {
                qs.completed += 1;
            }
        }
    }
}

impl Faults {
    /// Fault injection on the `i`th request handed over: the first names a
    /// request the parent has no such cookie for (5), or is due far beyond
    /// any device's latency (6). The parent must refuse the blob.
    fn forge_held(&self, i: usize, mut h: HeldRequest) -> HeldRequest {
        match (i, self.export_fault) {
            (0, 5) => h.cookie ^= 1 << 40,
            (0, 6) => h.remaining_ns = u64::MAX / 2,
            _ => {}
        }
        h
    }

    /// Fault injection on an exported blob of `len` bytes in `buf` that
    /// hands over `n_held` requests: the blob's new length.
    fn mangle_export(&self, buf: &mut [u8], mut len: usize, n_held: usize) -> usize {
        match self.export_fault {
            2 => {
                len = len.saturating_sub(8);
                pr_warn!("export: truncating the blob on purpose (inject_export_fault=2)\n");
            }
            3 => {
                len = add_unknown_mandatory_section(buf, len);
                pr_warn!("export: adding an unknown mandatory section on purpose (inject_export_fault=3)\n");
            }
            4 => {
                if let Some(b) = buf.get_mut(len / 2) {
                    *b ^= 0x5a;
                }
                pr_warn!("export: corrupting the blob on purpose (inject_export_fault=4)\n");
            }
            5 | 6 if n_held > 0 => {
                let what = match self.export_fault {
                    5 => "unknown cookie",
                    _ => "remaining_ns beyond any device",
                };
                pr_warn!(
                    "export: a forged handed-over entry on purpose (inject_export_fault={}): {}\n",
                    self.export_fault,
                    what
                );
            }
            _ => {}
        }
        len
    }
}

impl Faults {
    /// The fault-injection module parameters (all off by default).
    fn from_params() -> Self {
        let p = |v: &u32| *v;
        Faults {
            // corrupt_export=1 is the older spelling of inject_export_fault=4.
            export_fault: match p(crate::module_parameters::inject_export_fault.value()) {
                0 if p(crate::module_parameters::corrupt_export.value()) != 0 => 4,
                f => f,
            },
            submit_delay: Delta::from_micros(i64::from(p(
                crate::module_parameters::inject_submit_delay_us.value(),
            ))),
            complete_delay: Delta::from_micros(i64::from(
                p(crate::module_parameters::inject_complete_delay_us.value()).min(1_000_000),
            )),
            adopt_error: p(crate::module_parameters::inject_adopt_error.value()) != 0,
            faulting_copies: p(crate::module_parameters::inject_faulting_copies.value()) != 0,
            call_delay: Delta::from_micros(i64::from(
                p(crate::module_parameters::inject_call_delay_us.value()).min(1_000_000),
            )),
            lost_writes: core::sync::atomic::AtomicU32::new(0),
            lost_writes_after_adopt: p(crate::module_parameters::inject_lost_writes.value()),
        }
    }
}

impl State {
    /// Queues the requests handed over: ours to complete, first.
    fn take_held(&mut self, held: super::state_abi::HeldIter<'_>) {
        // Requests handed over: ours to complete, first (their device
        // time started before any request submitted from now on).
        let now = Instant::<Monotonic>::now();
        for h in held {
            // Bounded by the reader (`MAX_REMAINING_NS`, 10 s): no overflow.
            let left = h.remaining_ns.min(super::state_abi::MAX_REMAINING_NS);
            let due = now + Delta::from_nanos(i64::try_from(left).unwrap_or(0));
            // Room was checked above; a failure cannot happen.
            if self
                .pending
                .push_within_capacity(Pending {
                    cookie: h.cookie,
                    status: h.status,
                    due,
                })
                .is_ok()
            {
                self.inflight += 1;
            }
        }
    }
}

impl Irq {
    /// The hard-IRQ completion slots (`complete_in_irq=1`; none otherwise),
    /// the timer firing at the device latency.
    fn new(enabled: bool, latency_us: u32) -> Result<Self> {
        let mut slots = KVVec::new();
        if enabled {
            // One slot per possible tag; `adopt` says how many are in use.
            let n = MAX_QUEUES * 1024;
            slots = KVVec::with_capacity(n, GFP_KERNEL)?;
            for _ in 0..n {
                slots.push(
                    IrqSlot {
                        cookie: AtomicU64::new(0),
                        status: AtomicI32::new(0),
                        due_ns: AtomicI64::new(0),
                    },
                    GFP_KERNEL,
                )?;
            }
        }
        Ok(Irq {
            enabled,
            slots,
            used: AtomicUsize::new(0),
            t0: Instant::<Monotonic>::now(),
            // Fires at the device latency, but not more than every 50 us.
            period: Delta::from_micros(i64::from(latency_us.max(50))),
            stop: AtomicBool::new(false),
        })
    }
}

/// The schema an export asked for `schema` writes (0 or one newer than
/// this version's: its own), and whether it is a trial for a handover
/// switch (which writes what is pending now).
fn export_schema(schema: u32) -> (u32, bool) {
    let trial_held = schema & EXPORT_TRIAL_HANDOVER != 0;
    let schema = schema & !EXPORT_TRIAL_HANDOVER;
    if schema == 0 || schema > SCHEMA {
        (SCHEMA, trial_held)
    } else {
        (schema, trial_held)
    }
}

/// The child's `adopt` line: what it adopted from `blob` (or fresh).
fn log_adopt(blob: Option<&[u8]>, t: &Taken, dev: DeviceStateV2) {
    match blob {
        None => pr_info!("adopt version={} fresh capacity_bytes={}\n", super::CHILD_VERSION, dev.capacity_bytes),
        Some(b) => pr_info!(
            "adopt version={} from_version={} schema={} migrated={} blob_bytes={} reads={} writes={} adopt_count={} files={}\n",
            super::CHILD_VERSION,
            t.producer,
            t.out.version,
            if u32::from(t.out.version) < SCHEMA { "yes" } else { "no" },
            b.len(),
            dev.reads,
            dev.writes,
            dev.adopt_count,
            t.out.files.len()
        ),
    }
}

/// What an adopt takes over (from a blob, or fresh), boxed: see `adopt`.
struct Taken {
    /// The state read (for a fresh start: made up), queue statistics sized
    /// for the parent's queues, the controller's state filled in.
    out: StateOut,
    /// The blob producer's child version (0 for fresh).
    producer: u32,
    /// The controller: the blob's, or (fresh, an older producer) one just
    /// powered on.
    ctrl: ControllerState,
}

impl Taken {
    const EMPTY: Taken = Taken {
        out: StateOut::EMPTY,
        producer: 0,
        ctrl: ControllerState::FRESH,
    };
}

impl Taken {
    /// A box for what an adopt takes, written in place (no kilobyte-sized
    /// value on the stack).
    fn new_box() -> Result<KBox<Taken>> {
        let mut b = KBox::<Taken>::new_uninit(GFP_KERNEL)?;
        // SAFETY: `b` is a fresh allocation for one `Taken`, written here
        // from a constant before it is assumed initialised.
        Ok(unsafe {
            b.as_mut_ptr().write(Taken::EMPTY);
            b.assume_init()
        })
    }
}

impl Dev {
    /// The box an adopt fills in: the one allocated at load (a probe, which
    /// runs before the parent closes the gate, allocates its own; a second
    /// adopt after a refused one too, GFP_NOIO in the parent's scope).
    fn taken(&self, probe: bool) -> Result<KBox<Taken>, i32> {
        let kept = if probe {
            None
        } else {
            self.adopt_box.lock().take()
        };
        let mut t = match kept {
            Some(mut t) => {
                *t = Taken::EMPTY;
                t
            }
            None => Taken::new_box().map_err(|e| e.to_errno())?,
        };
        t.ctrl = self.default_ctrl();
        Ok(t)
    }

    /// A fresh start: preserved memory for the whole device, zeroed.
    #[inline(never)]
    fn fresh(&self, svc: &ParentServices) -> Result<KBox<Taken>, i32> {
        if svc.block_size != 1 << nvme::LBA_SHIFT {
            pr_err!(
                "adopt refused: the parent's block size {} is not the namespace's LBA size {}\n",
                svc.block_size,
                1u32 << nvme::LBA_SHIFT
            );
            return Err(EINVAL.to_errno());
        }
        let mut t = self.taken(false)?;
        t.out.dev.capacity_bytes = svc.capacity_bytes;
        t.out.dev.block_size = svc.block_size;
        t.out.dev.nr_queues = svc.nr_queues;
        t.out.queues.reset(svc.nr_queues as usize);
        let alloc = svc.mem_alloc.ok_or(EINVAL.to_errno())?;
        let mut h = 0u64;
        // SAFETY: the parent's allocator; `h` is a valid out pointer.
        let rc = unsafe { alloc(svc.capacity_bytes, &mut h) };
        if rc != 0 {
            pr_err!(
                "adopt: cannot allocate {} bytes of preserved memory: {}\n",
                svc.capacity_bytes,
                rc
            );
            return Err(rc);
        }
        t.out.dev.data_handle = MemHandle(h);
        t.out.dev.data_len = svc.capacity_bytes;
        Ok(t)
    }

    /// Reads and checks `blob` (for `what`, "adopt" or "probe"): what it
    /// gives, and the requests it hands over.
    #[inline(never)]
    fn take_blob<'b>(
        &self,
        blob: &'b [u8],
        svc: &ParentServices,
        what: &str,
    ) -> Result<(KBox<Taken>, super::state_abi::HeldIter<'b>), i32> {
        let refuse = |e: BlobError| {
            pr_err!(
                "{} refused: {} (this is v{}, reading schema <= {})\n",
                what,
                e.as_str(),
                super::CHILD_VERSION,
                SCHEMA
            );
            e.errno()
        };
        let mut t = self.taken(what == "probe")?;
        let h = read_state_into(blob, SCHEMA, &mut t.out).map_err(refuse)?;
        if !h.is_empty() && (self.irq.enabled || h.len() > self.pending_room()) {
            pr_err!(
                "{} refused: {} requests handed over, which this child cannot complete (complete_in_irq={})\n",
                what,
                h.len(),
                u8::from(self.irq.enabled)
            );
            return Err(-super::state_abi::errno::EPROTO);
        }
        t.producer = BlobReader::parse(blob)
            .map_err(refuse)?
            .producer_child_version();
        let dev = &t.out.dev;
        if dev.capacity_bytes != svc.capacity_bytes || dev.block_size != svc.block_size {
            pr_err!(
                "{} refused: blob geometry {} bytes/{} does not match the parent's {} bytes/{}\n",
                what,
                dev.capacity_bytes,
                dev.block_size,
                svc.capacity_bytes,
                svc.block_size
            );
            return Err(EINVAL.to_errno());
        }
        // Queue statistics travel only between versions that keep them,
        // and only for the same number of queues.
        let n = svc.nr_queues as usize;
        if !(KEEPS_QUEUE_STATS && t.out.has_queues && t.out.queues.len() == n) {
            t.out.queues.reset(n);
        }
        if let Some(c) = t.out.ctrl {
            t.ctrl = c;
        }
        Ok((t, h))
    }
}

impl Dev {
    /// How many more requests `pending` can hold without allocating.
    fn pending_room(&self) -> usize {
        let g = self.state.lock();
        g.pending.capacity().saturating_sub(g.pending.len())
    }
}

impl Faults {
    /// Whether to acknowledge this write without storing it (fault injection).
    fn lose_this_write(&self) -> bool {
        use core::sync::atomic::Ordering::Relaxed;
        self.lost_writes
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    /// A state was adopted: the next `inject_lost_writes` writes are lost.
    fn arm_lost_writes(&self) {
        if self.lost_writes_after_adopt > 0 {
            self.lost_writes.store(
                self.lost_writes_after_adopt,
                core::sync::atomic::Ordering::Relaxed,
            );
            pr_warn!(
                "adopt: the next {} writes will be acknowledged and not stored (inject_lost_writes)\n",
                self.lost_writes_after_adopt
            );
        }
    }
}

/// Fault injection: appends an empty section with an unknown tag (`XUNK`)
/// marked mandatory to the blob `buf[..len]` and re-seals it, so its
/// checksum holds and only a reader's section check can refuse it. Returns
/// the new length (the old one if it does not fit).
fn add_unknown_mandatory_section(buf: &mut [u8], len: usize) -> usize {
    fn bump(buf: &mut [u8], at: usize, by: u32) -> Option<()> {
        let f = buf.get_mut(at..at + 4)?;
        let v = u32::from_le_bytes([f[0], f[1], f[2], f[3]]).checked_add(by)?;
        f.copy_from_slice(&v.to_le_bytes());
        Some(())
    }
    let mut sec = [0u8; 16];
    sec[..4].copy_from_slice(&super::state_abi::tag(b"XUNK").to_le_bytes());
    sec[4..6].copy_from_slice(&1u16.to_le_bytes());
    sec[6..8].copy_from_slice(&super::state_abi::SECTION_MANDATORY.to_le_bytes());
    let new_len = len + sec.len();
    let done = buf
        .get_mut(len..new_len)
        .map(|d| d.copy_from_slice(&sec))
        .and_then(|()| bump(buf, 12, 1))
        .and_then(|()| bump(buf, 16, sec.len() as u32))
        .and_then(|()| super::state_abi::reseal(buf.get_mut(..new_len)?).ok());
    if done.is_some() {
        new_len
    } else {
        len
    }
}

/// Spins for `d` (in steps `udelay` accepts): no sleeping in `submit`.
fn busy_wait(d: Delta) {
    let step = Delta::from_micros(1000);
    let mut left = d;
    while left > Delta::ZERO {
        let now = if left < step { left } else { step };
        kernel::time::delay::udelay(now);
        left -= now;
    }
}

/// The kernel's default workqueue, `system_dfl_wq`: 7.2 marks the queues
/// `workqueue::system()` and `system_unbound()` return as deprecated.
fn default_queue() -> &'static Queue {
    // SAFETY: `system_dfl_wq` is allocated during boot, before any module
    // loads, and never freed; `Queue` is a transparent wrapper of it.
    unsafe { Queue::from_raw(kernel::bindings::system_dfl_wq) }
}

/// Waits until `work` is neither queued nor running.
fn flush_work<T: ?Sized, const ID: u64>(work: &Work<T, ID>) {
    // SAFETY: `Work::raw_get` turns a pointer to an initialised `Work` into
    // its `work_struct`; flushing an idle or queued work item is allowed.
    unsafe { kernel::bindings::flush_work(Work::raw_get(work)) };
}

/// What the module parameters ask of this load.
struct Setup {
    latency_us: u32,
    /// Completes from a hard-IRQ hrtimer (`complete_in_irq=1`).
    irq: bool,
    /// Advertises `CAP_STANDBY`.
    standby: bool,
    /// Advertises `CAP_HANDOVER` (never with `irq`).
    handover: bool,
    /// The ABI major it registers with (a test may claim another).
    abi_major: u16,
    /// The ABI minor it registers with (a test may claim an older one).
    abi_minor: u16,
}

impl Dev {
    /// The device the module parameters describe, adopting nothing yet.
    /// Shared by the child's edge to the parent and by `hotup_mono`.
    fn from_params() -> Result<(Arc<Dev>, Setup)> {
        let latency_us = *crate::module_parameters::latency_us.value();
        let p = |v: &u32| *v;
        let faults = Faults::from_params();
        let abi_major = match *crate::module_parameters::abi_major_override.value() {
            0 => ABI_MAJOR,
            n => u16::try_from(n).map_err(|_| EINVAL)?,
        };
        let abi_minor = match *crate::module_parameters::abi_minor_override.value() {
            0 => ABI_MINOR,
            n if n < u32::from(ABI_MINOR) => n as u16,
            _ => return Err(EINVAL),
        };
        // Every tag of every queue may be pending at once.
        let cap = MAX_QUEUES * 1024;
        let state = State {
            accepting: false,
            frozen: false,
            exported: false,
            retired: false,
            completing: 0,
            inflight: 0,
            fua_writes: 0,
            pending: KVVec::with_capacity(cap, GFP_KERNEL)?,
            region: None,
            dev: DeviceStateV2::default(),
            queues: QueueStats::default(),
            stats: ChildStats::default(),
            ctrl: ControllerState::FRESH,
            started: Instant::<Monotonic>::now(),
            files: FileStates::new(),
        };
        let irq_enabled = p(crate::module_parameters::complete_in_irq.value()) != 0;
        let standby = p(crate::module_parameters::standby.value()) != 0;
        // Hard-IRQ completions live in lock-free slots, not in `pending`:
        // they are drained, never handed over.
        let handover = p(crate::module_parameters::handover.value()) != 0 && !irq_enabled;
        let irq = Irq::new(irq_enabled, latency_us)?;
        let adopt_box = Taken::new_box()?;
        let dev = Arc::pin_init(
            pin_init!(Dev {
                state <- new_spinlock!(state, "hotup_child_state"),
                idle <- new_condvar!("hotup_child_idle"),
                work <- new_work!("hotup_child_complete"),
                timer <- HrTimer::new(),
                timer_handle <- new_mutex!(None, "hotup_child_timer"),
                adopt_box <- new_spinlock!(Some(adopt_box), "hotup_child_adopt_box"),
                irq,
                services: AtomicPtr::new(core::ptr::null_mut()),
                latency: Delta::from_micros(i64::from(latency_us)),
                faults,
            }),
            GFP_KERNEL,
        )?;
        Ok((
            dev,
            Setup {
                latency_us,
                irq: irq_enabled,
                standby,
                handover,
                abi_major,
                abi_minor,
            },
        ))
    }
}
