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
#[path = "passthru.rs"]
mod passthru;
// The driver by concern.
#[path = "faults.rs"]
mod faults;
#[path = "io.rs"]
mod io;
#[path = "upgrade.rs"]
mod upgrade;
use upgrade::Taken;

/// The newest device-state schema this version reads and writes.
const SCHEMA: u32 = if super::CHILD_VERSION >= 2 { 2 } else { 1 };
/// `hotup_schema=SCHEMA` in the module file's `.modinfo` (`modinfo` shows
/// it; `hotupctl upgrade` reads it before a classic unload).
// `used(compiler)`, as `module!`'s own strings: a plain `#[used]` makes a
// second, retained `.modinfo` section, which modpost and the loader refuse.
#[link_section = ".modinfo"]
#[used(compiler)]
static MODINFO_SCHEMA: [u8; 15] = crate::state_abi::modinfo_schema(SCHEMA);
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
