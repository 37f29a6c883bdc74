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
    /// The namespace's geometry as the children said it ([`set_geometry`]):
    /// the LBA shift in the top byte, the blocks below; 0 until said.
    geometry: AtomicU64,
    /// Its disk was made from it ([`disk_made`]): kept from then on.
    made: AtomicBool,
}

impl Slot {
    const fn new() -> Self {
        Slot {
            dev: AtomicPtr::new(core::ptr::null_mut()),
            pending: AtomicU64::new(0),
            geometry: AtomicU64::new(0),
            made: AtomicBool::new(false),
        }
    }
}

/// Most blocks a namespace may have for the parent's disk: they fit below
/// the shift's byte of `Slot::geometry`.
const MAX_BLOCKS: u64 = (1 << 56) - 1;
/// The largest LBA the parent makes a disk of: a page.
const MAX_LBA_SHIFT: u32 = kernel::page::PAGE_SHIFT as u32;

/// Device `dev`'s namespace has `blocks` blocks of `1 << lba_shift` bytes
/// (the child's `ParentServices::hw_disk`): recorded the first time, and
/// then only ever confirmed (EINVAL for another geometry: the disk made
/// from the first one never changes). Its disk is made after the adopt
/// ([`geometry`], `Hub::make_disks`).
pub(crate) fn set_geometry(dev: u32, lba_shift: u32, blocks: u64) -> Result {
    let s = SLOTS.get(dev as usize).ok_or(ENODEV)?;
    if get(dev).is_none() {
        return Err(ENODEV);
    }
    // At most 2^63 bytes: the disk's 512-byte sectors fit a `sector_t`;
    // blocks of at most a page, which the block layer takes on any config
    // (`BLK_MAX_BLOCK_SIZE` is larger only with transparent huge pages).
    if !(9..=MAX_LBA_SHIFT).contains(&lba_shift)
        || blocks == 0
        || blocks > MAX_BLOCKS.min((1 << 63) >> lba_shift)
    {
        return Err(EINVAL);
    }
    let g = (u64::from(lba_shift) << 56) | blocks;
    match s.geometry.compare_exchange(0, g, SeqCst, SeqCst) {
        Ok(_) => Ok(()),
        Err(old) if old == g => Ok(()),
        Err(old) => {
            hotup_event!(
                "error reason=geometry-changed dev={} lba_bytes={} blocks={} disk_lba_bytes={} disk_blocks={}",
                dev,
                1u32 << lba_shift,
                blocks,
                1u64 << (old >> 56),
                old & MAX_BLOCKS
            );
            Err(EINVAL)
        }
    }
}

/// Device `dev`'s namespace geometry, once a child said it: the LBA shift
/// and the blocks.
pub(crate) fn geometry(dev: u32) -> Option<(u32, u64)> {
    let g = SLOTS.get(dev as usize)?.geometry.load(SeqCst);
    (g != 0).then_some(((g >> 56) as u32, g & MAX_BLOCKS))
}

/// Disk `dev` exists with this geometry, made for a RAM child (the
/// parent's `capacity_mib`): a hardware child must then say the same for
/// device `dev`, as for a disk made from its namespace.
pub(crate) fn note_disk(dev: u32, lba_shift: u32, blocks: u64) {
    if let Some(s) = SLOTS.get(dev as usize) {
        s.geometry
            .store((u64::from(lba_shift) << 56) | (blocks & MAX_BLOCKS), SeqCst);
        s.made.store(true, SeqCst);
    }
}

/// Device `dev`'s disk was made from its geometry, which stays.
pub(crate) fn disk_made(dev: u32) {
    if let Some(s) = SLOTS.get(dev as usize) {
        s.made.store(true, SeqCst);
    }
}

/// Forgets the geometry of every device that has no disk made from it: a
/// switch whose adopt failed leaves nothing a later child must agree with.
/// Lock-free: it runs inside the blackout (only the switch holder writes
/// these words).
pub(crate) fn forget_unmade_geometry() {
    for s in SLOTS.iter().filter(|s| !s.made.load(SeqCst)) {
        s.geometry.store(0, SeqCst);
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
    live_count() > 0
}

/// How many devices are bound and live.
pub(crate) fn live_count() -> usize {
    (0..MAX_HW as u32).filter(|i| get(*i).is_some()).count()
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
