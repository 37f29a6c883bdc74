// SPDX-License-Identifier: GPL-2.0

//! The hardware the parent owns, as the children see it (ABI 1.3): the
//! bound devices by index, and the interrupt gate that decides which child,
//! if any, an interrupt reaches.
//!
//! **Devices.** Each bound controller takes the first free slot (its `dev`
//! index for the children) and keeps it until the parent unloads: an
//! unbound device stays in its slot, dead (its registers are gone, its
//! arena is not, so a child that still holds addresses into it writes
//! nothing freed). The slots are freed by [`release_all`], after the PCI
//! driver is unregistered, when no child and no handler can run.
//!
//! **The interrupt gate.** A handler raises `entered`, then reads `on`:
//! on, it calls the owning child; off, it records its vector as pending in
//! the device's slot. The switch holder makes a child the owner with
//! [`own`] (after its adopt: the child, then `on`, then a wait until no
//! handler is inside, then the pending vectors replayed into the child,
//! so nothing recorded before is missed) and takes it away with [`disown`]
//! (before its quiesce: `on` off, then the wait, after which no CPU is in
//! the child's `irq` and the owner may change). Both sides use
//! sequentially consistent operations (store `on` / load `entered` against
//! raise `entered` / load `on`), as the I/O gate does (`inflight.rs`).

use super::edge::ActiveChild;
use super::pci::{HwDev, HwHooks, UNBIND_DRAIN_MS};
use super::state_abi::IRQ_DEVICE_GONE;
use crate::hotup_event;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering::*};
use kernel::{prelude::*, sync::Arc};

/// Most devices bound in one load of the parent (binds, not at once).
pub(crate) const MAX_HW: usize = 8;

struct Slot {
    /// `Arc::into_raw` of the device; null while free.
    dev: AtomicPtr<HwDev>,
    /// A bit per vector that fired while no child owned the hardware; bit
    /// 63: the device is gone (`IRQ_DEVICE_GONE`).
    pending: AtomicU64,
}

impl Slot {
    const fn new() -> Self {
        Slot {
            dev: AtomicPtr::new(core::ptr::null_mut()),
            pending: AtomicU64::new(0),
        }
    }
}

static SLOTS: [Slot; MAX_HW] = [const { Slot::new() }; MAX_HW];

/// The interrupt gate: see the module's documentation.
struct Owner {
    on: AtomicBool,
    entered: AtomicU32,
    child: UnsafeCell<Option<ActiveChild>>,
    /// Interrupts handled, and those recorded with no owner.
    irqs: AtomicU64,
    recorded: AtomicU64,
}

// SAFETY: `child` is written only by the switch holder with `on` off and
// no handler inside (`own`, `disown`), and read only by a handler that
// raised `entered` and then saw `on`: the SeqCst pair orders every write
// before the reads that follow it.
unsafe impl Sync for Owner {}

static OWNER: Owner = Owner {
    on: AtomicBool::new(false),
    entered: AtomicU32::new(0),
    child: UnsafeCell::new(None),
    irqs: AtomicU64::new(0),
    recorded: AtomicU64::new(0),
};

/// The live device at index `dev`. The reference is valid until
/// [`release_all`], which runs only once no child, service call or handler
/// can (the parent's unload, after the PCI driver is gone).
pub(crate) fn get(dev: u32) -> Option<&'static HwDev> {
    get_any(dev).filter(|d| d.is_alive())
}

/// The device at index `dev`, live or unbound (a mapping of an unbound
/// device is still undone). Valid as [`get`]'s.
pub(crate) fn get_any(dev: u32) -> Option<&'static HwDev> {
    let p = SLOTS.get(dev as usize)?.dev.load(Acquire);
    // SAFETY: a non-null slot holds a reference from `Arc::into_raw`
    // (`Hooks::bound`), dropped only by `release_all` (above).
    (!p.is_null()).then(|| unsafe { &*p })
}

/// The index of `hw`'s slot.
fn index_of(hw: &HwDev) -> Option<u32> {
    SLOTS
        .iter()
        .position(|s| core::ptr::eq(s.dev.load(Acquire), hw))
        .map(|i| i as u32)
}

/// Whether any device is bound and live.
pub(crate) fn any_live() -> bool {
    (0..MAX_HW as u32).any(|i| get(i).is_some())
}

/// Waits until no handler is inside the gate (they are short: a handler
/// only reaps completions).
fn wait_unentered() {
    while OWNER.entered.load(SeqCst) != 0 {
        core::hint::spin_loop();
    }
}

/// Makes `child` the owner of the hardware and replays into it every
/// vector that fired while there was none. For the switch holder only
/// (`switch.rs`, after the child's adopt, before I/O is released).
pub(crate) fn own(child: &ActiveChild) {
    if OWNER.on.load(SeqCst) {
        // A broken sequence (own without disown): never write the cell a
        // handler may be reading.
        hotup_event!("error reason=hw-own-while-owned child={}", child.name());
        disown(child);
    }
    // SAFETY: `on` is off and stays off until the store below (only the
    // switch holder changes it), so no handler reads the cell now.
    unsafe { *OWNER.child.get() = Some(*child) };
    OWNER.on.store(true, SeqCst);
    // A handler that saw `on` off has recorded its vector once it leaves.
    wait_unentered();
    let mut replayed = 0u32;
    for (i, s) in SLOTS.iter().enumerate() {
        let mut bits = s.pending.swap(0, SeqCst);
        while bits != 0 {
            let b = bits.trailing_zeros();
            bits &= bits - 1;
            child.irq(i as u32, if b == 63 { IRQ_DEVICE_GONE } else { b });
            replayed += 1;
        }
    }
    hotup_event!(
        "hw-own child={} version={} replayed={} irqs={} recorded={}",
        child.name(),
        child.version,
        replayed,
        OWNER.irqs.load(Relaxed),
        OWNER.recorded.load(Relaxed)
    );
}

/// Takes the hardware away from its owner: once this returns no CPU is in
/// its `irq`, and later interrupts are recorded. For the switch holder
/// (`switch.rs`, once the child drained, before its quiesce).
pub(crate) fn disown(child: &ActiveChild) {
    OWNER.on.store(false, SeqCst);
    wait_unentered();
    // SAFETY: `on` is off and no handler is inside: none reads the cell.
    unsafe { *OWNER.child.get() = None };
    hotup_event!(
        "hw-disown child={} version={} irqs={} recorded={}",
        child.name(),
        child.version,
        OWNER.irqs.load(Relaxed),
        OWNER.recorded.load(Relaxed)
    );
}

/// Drops every device's slot reference. Only at the parent's unload, after
/// the PCI driver was unregistered (every device unbound, every handler
/// freed) and with no child registered (a child holds the module).
pub(crate) fn release_all() {
    for s in SLOTS.iter() {
        let p = s.dev.swap(core::ptr::null_mut(), SeqCst);
        if !p.is_null() {
            // SAFETY: from `Arc::into_raw` in `Hooks::bound`, swapped out
            // here once.
            drop(unsafe { Arc::from_raw(p) });
        }
    }
}

/// The PCI driver's hooks (`pci::NvmeDriver<Hooks, services::Drain>`).
pub(crate) struct Hooks;

impl HwHooks for Hooks {
    fn bound(dev: &Arc<HwDev>) -> Result {
        let p = Arc::into_raw(dev.clone()).cast_mut();
        for s in SLOTS.iter() {
            if s.dev
                .compare_exchange(core::ptr::null_mut(), p, SeqCst, SeqCst)
                .is_ok()
            {
                return Ok(());
            }
        }
        // SAFETY: from `into_raw` above, stored nowhere.
        drop(unsafe { Arc::from_raw(p) });
        Err(ENOSPC)
    }

    fn closing(dev: &HwDev, waited_ms: u32, left: usize) {
        let Some(i) = index_of(dev) else {
            return;
        };
        hotup_event!(
            "hw-closing dev={} waited_ms={} inflight={} bound_ms={}",
            i,
            waited_ms,
            left,
            UNBIND_DRAIN_MS
        );
    }

    fn gone(dev: &HwDev) {
        let Some(i) = index_of(dev) else {
            return;
        };
        // As an interrupt: the owner hears it now, or the next one when it
        // owns the hardware (the pending bit of IRQ_DEVICE_GONE).
        Self::irq(dev, IRQ_DEVICE_GONE);
        hotup_event!("hw-gone dev={}", i);
    }

    fn irq(dev: &HwDev, vector: u32) -> bool {
        let Some(i) = index_of(dev) else {
            return false;
        };
        OWNER.entered.fetch_add(1, SeqCst);
        if OWNER.on.load(SeqCst) {
            // SAFETY: inside the gate with `on` seen (`Owner`'s protocol).
            if let Some(c) = unsafe { *OWNER.child.get() } {
                c.irq(i, vector);
            }
            OWNER.irqs.fetch_add(1, Relaxed);
        } else if let Some(s) = SLOTS.get(i as usize) {
            s.pending.fetch_or(1u64 << vector.min(63), SeqCst);
            OWNER.recorded.fetch_add(1, Relaxed);
        }
        OWNER.entered.fetch_sub(1, SeqCst);
        // The vector is this device's alone (MSI-X): always ours, even if
        // the child found nothing new (a replay got there first).
        true
    }
}
