// SPDX-License-Identifier: GPL-2.0

//! The C ABI the parent offers children: the exported entry points
//! (`hotup_register_child`, `hotup_unregister_child`, EXPORT_SYMBOL_GPL'd by
//! exports.c) and the services table handed back on registration.

use super::hub::Hub;
use super::state_abi::{
    ChildRegistration, HwInfo, ParentServices, ABI_MAJOR, ABI_MINOR, HW_KIND_NVME,
};
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::{ffi::c_void, types::ForeignOwnable};
use kernel::{
    prelude::*,
    sync::{Arc, ArcBorrow},
};

/// The parent's hub while the module is loaded (`Arc::into_foreign`).
static HUB: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());

/// Publishes `hub` to the C entry points.
pub(crate) fn publish(hub: &Arc<Hub>) {
    HUB.store(hub.clone().into_foreign(), Ordering::Release);
}

/// Withdraws the hub published by [`publish`] and drops its reference.
pub(crate) fn withdraw() {
    let p = HUB.swap(core::ptr::null_mut(), Ordering::AcqRel);
    if !p.is_null() {
        // SAFETY: `p` came from `into_foreign` in `publish` and was swapped
        // out, so this reference is reclaimed exactly once.
        drop(unsafe { Arc::<Hub>::from_foreign(p) });
    }
}

/// Runs `f` on the published hub, if any. The C entry points use it, the
/// nodes' `open` and sysfs, and the PCI unbind's drain: none can run once
/// [`withdraw`] has begun (a child holds a reference on this module
/// through the symbols it uses; the nodes and the disk go before the
/// withdrawal, waiting for their callers; the module's drop unregisters
/// the PCI driver, which runs every unbind, before the hub is withdrawn),
/// so the hub stays alive for the call.
fn with_hub<R>(f: impl FnOnce(ArcBorrow<'_, Hub>) -> R) -> Option<R> {
    let p = HUB.load(Ordering::Acquire);
    // SAFETY: a non-null pointer is from `publish`, and `withdraw` cannot
    // reclaim it during the call (above).
    (!p.is_null()).then(|| f(unsafe { Arc::<Hub>::borrow(p) }))
}

/// Waits until none of the requests in flight now is left, at most
/// `bound_ms` (polled every millisecond: the unbind of a controller,
/// which may sleep); returns the milliseconds waited and how many of them
/// are still in flight (of every disk: the hub's table is not by device,
/// so unbinding one controller also waits for the others' requests,
/// within the same bound). Requests that come
/// later are not waited for: the caller has closed the device, so they
/// fail before they reach it. With no hub (none published) nothing is
/// in flight.
fn drain_inflight(bound_ms: u32) -> (u32, usize) {
    use kernel::time::{Instant, Monotonic};
    // The close (a sequentially consistent store of `dead`) before the
    // scan of the in-flight table: a submit either saw the device closed
    // (its child checks `hw_live` or is refused by the MMIO service after
    // its request was tracked; the child's own SeqCst counter orders that
    // check after the tracking) or was tracked before this fence, so the
    // scan sees it.
    core::sync::atomic::fence(Ordering::SeqCst);
    let Some(t) = with_hub(|h| h.io.now_ns()) else {
        return (0, 0);
    };
    let start = Instant::<Monotonic>::now();
    loop {
        let left = with_hub(|h| h.io.inflight_before(t)).unwrap_or(0);
        let waited = u32::try_from(start.elapsed().as_millis()).unwrap_or(u32::MAX);
        if left == 0 || waited >= bound_ms {
            return (waited, left);
        }
        kernel::time::delay::fsleep(kernel::time::Delta::from_millis(1));
    }
}

/// The PCI unbind's wait ([`drain_inflight`]).
pub(crate) struct Drain;

impl super::pci::HwDrain for Drain {
    fn drain(bound_ms: u32) -> (u32, usize) {
        drain_inflight(bound_ms)
    }
}

/// The services table a child gets on registration; `hw` if the parent
/// owns hardware (`nvme_pci=1`).
pub(crate) fn table(geo: &super::blk::Geometry, hw: bool) -> ParentServices {
    ParentServices {
        size: core::mem::size_of::<ParentServices>() as u32,
        abi_major: ABI_MAJOR,
        abi_minor: ABI_MINOR,
        capacity_bytes: geo.capacity_bytes,
        block_size: geo.block_size,
        nr_queues: geo.nr_queues,
        queue_depth: geo.queue_depth,
        reserved: 0,
        complete: Some(svc_complete),
        mem_alloc: Some(svc_mem_alloc),
        mem_map: Some(svc_mem_map),
        mem_free: Some(svc_mem_free),
        log: Some(svc_log),
        hw_count: if hw { super::hw::MAX_HW as u32 } else { 0 },
        reserved2: 0,
        hw_info: Some(svc_hw_info),
        mmio_read: Some(svc_mmio_read),
        mmio_write: Some(svc_mmio_write),
        hw_enable: Some(svc_hw_enable),
        dma_map: Some(svc_dma_map),
        dma_unmap: Some(svc_dma_unmap),
        hw_disk: Some(svc_hw_disk),
        hw_live: Some(svc_hw_live),
    }
}

/// Registers a child; on success `*services` points at the parent's table.
///
/// # Safety
///
/// `reg` must point to a valid registration that stays valid (with its
/// operations table) until `hotup_unregister_child(reg)` returns;
/// `services` must be valid for a write.
#[no_mangle]
pub(crate) unsafe extern "C" fn hotup_register_child(
    reg: *const ChildRegistration,
    services: *mut *const ParentServices,
) -> i32 {
    if reg.is_null() || services.is_null() {
        return EINVAL.to_errno();
    }
    with_hub(|hub| {
        // Published before `attach`: the child's `adopt` already needs the
        // services (preserved memory).
        // SAFETY: `services` is valid for a write per this function's
        // contract; the table lives in the hub, which outlives every child.
        unsafe { *services = &hub.services };
        // SAFETY: `reg` is valid for its own size until unregistration, per
        // this function's contract, which is `attach`'s.
        unsafe { Hub::attach(hub, reg) }.map_or_else(|e| e.to_errno(), |()| 0)
    })
    .unwrap_or(ENODEV.to_errno())
}

/// Unregisters the child `reg`: the parent parks new I/O, waits for the
/// child's in-flight I/O, and takes its exported state into the stash.
///
/// # Safety
///
/// `reg` must be the pointer the child registered with.
#[no_mangle]
pub(crate) unsafe extern "C" fn hotup_unregister_child(reg: *const ChildRegistration) -> i32 {
    with_hub(|hub| Hub::detach(hub, reg).map_or_else(|e| e.to_errno(), |()| 0))
        .unwrap_or(ENODEV.to_errno())
}

/// `ParentServices::complete`: the child finished the I/O behind `cookie`.
///
/// # Safety
///
/// Callable from any context a child completes in, hard IRQ included (it
/// takes no lock); `cookie` is checked, so any value is safe (an unknown or
/// repeated one is logged and ignored).
unsafe extern "C" fn svc_complete(cookie: u64, status: i32) {
    with_hub(|hub| hub.complete(cookie, status));
}

/// `ParentServices::mem_alloc`: a zeroed preserved region of `len` bytes.
///
/// # Safety
///
/// `out_handle` must be null or valid for a write of a `u64`.
unsafe extern "C" fn svc_mem_alloc(len: u64, out_handle: *mut u64) -> i32 {
    if out_handle.is_null() {
        return EINVAL.to_errno();
    }
    // NOIO under the lock: a switch takes `regions` with the gate closed,
    // so whoever holds it must not wait for reclaim that writes to this
    // device (a child may call this from any task).
    let _noio = super::blk::NoIo::enter();
    with_hub(|hub| match hub.regions.lock().alloc(len) {
        Ok(h) => {
            // SAFETY: checked non-null; the ABI requires a writable u64.
            unsafe { *out_handle = h };
            0
        }
        Err(e) => e.to_errno(),
    })
    .unwrap_or(ENODEV.to_errno())
}

/// `ParentServices::mem_map`: base and length of the region `handle` names.
///
/// # Safety
///
/// `out_ptr` and `out_len` must be null or valid for writes.
unsafe extern "C" fn svc_mem_map(handle: u64, out_ptr: *mut *mut u8, out_len: *mut u64) -> i32 {
    if out_ptr.is_null() || out_len.is_null() {
        return EINVAL.to_errno();
    }
    with_hub(|hub| match hub.regions.lock().map(handle) {
        Ok((p, l)) => {
            // SAFETY: both checked non-null; the ABI requires them writable.
            unsafe {
                *out_ptr = p;
                *out_len = l;
            }
            0
        }
        Err(e) => e.to_errno(),
    })
    .unwrap_or(ENODEV.to_errno())
}

/// `ParentServices::mem_free`: frees the region `handle` names.
///
/// # Safety
///
/// Always safe: the handle is checked.
unsafe extern "C" fn svc_mem_free(handle: u64) -> i32 {
    with_hub(|hub| {
        hub.regions
            .lock()
            .free(handle)
            .map_or_else(|e| e.to_errno(), |()| 0)
    })
    .unwrap_or(ENODEV.to_errno())
}

/// `ParentServices::log`: a line from the child, logged as `hotup: child-log`.
///
/// # Safety
///
/// `msg` must be null or point to `len` readable bytes.
unsafe extern "C" fn svc_log(_level: u32, msg: *const u8, len: usize) {
    if msg.is_null() {
        return;
    }
    // SAFETY: the ABI requires `msg` to point to `len` readable bytes.
    let bytes = unsafe { core::slice::from_raw_parts(msg, len.min(256)) };
    let text = core::str::from_utf8(bytes).unwrap_or("<non-utf8>");
    crate::hotup_event!("child-log {}", text);
}

/// A new reference to the hub (for `open`, and sysfs).
pub(crate) fn current() -> Option<Arc<Hub>> {
    with_hub(|hub| hub.into())
}

/// `ParentServices::hw_info`: describes device `dev`.
///
/// # Safety
///
/// `out` must be null or valid for a write of a `HwInfo`.
unsafe extern "C" fn svc_hw_info(dev: u32, out: *mut HwInfo) -> i32 {
    if out.is_null() {
        return EINVAL.to_errno();
    }
    let Some(hw) = super::hw::get(dev) else {
        return ENODEV.to_errno();
    };
    let (cpu, dma, len) = hw.arena();
    let info = HwInfo {
        size: core::mem::size_of::<HwInfo>() as u32,
        kind: HW_KIND_NVME,
        vendor: hw.ids.0,
        device: hw.ids.1,
        vectors: hw.vectors,
        bar_len: super::pci::BAR0_SIZE as u64,
        arena_cpu: cpu,
        arena_dma: dma,
        arena_len: len as u64,
        name: hw.name,
    };
    // SAFETY: checked non-null; the ABI requires it writable.
    unsafe { *out = info };
    0
}

/// `ParentServices::mmio_read`: a 32-bit register of device `dev`.
///
/// # Safety
///
/// `out` must be null or valid for a write of a `u32`.
unsafe extern "C" fn svc_mmio_read(dev: u32, off: u32, out: *mut u32) -> i32 {
    if out.is_null() {
        return EINVAL.to_errno();
    }
    match super::hw::get(dev)
        .ok_or(ENODEV)
        .and_then(|h| h.read32(off as usize))
    {
        Ok(v) => {
            // SAFETY: checked non-null; the ABI requires it writable.
            unsafe { *out = v };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `ParentServices::mmio_write`: a 32-bit register of device `dev`, never
/// CC.
///
/// # Safety
///
/// Always safe: the device, offset and register are checked.
unsafe extern "C" fn svc_mmio_write(dev: u32, off: u32, val: u32) -> i32 {
    super::hw::get(dev)
        .ok_or(ENODEV)
        .and_then(|h| h.write32(off as usize, val))
        .map_or_else(|e| e.to_errno(), |()| 0)
}

/// `ParentServices::hw_enable`: the parent enables controller `dev`.
///
/// # Safety
///
/// Always safe: the device is checked. May sleep.
unsafe extern "C" fn svc_hw_enable(dev: u32, cc: u32) -> i32 {
    let Some(hw) = super::hw::get(dev) else {
        return ENODEV.to_errno();
    };
    let rc = hw.enable(cc);
    crate::hotup_event!(
        "hw-enable dev={} cc=0x{:x} err={}",
        dev,
        cc,
        rc.err().map_or(0, |e| e.to_errno())
    );
    rc.map_or_else(|e| e.to_errno(), |()| 0)
}

/// `ParentServices::dma_map`: maps a request's data for device `dev`.
///
/// # Safety
///
/// `addr` must be a kernel address valid for `len` bytes until the
/// matching unmap (a segment of a request in flight); `out` null or valid
/// for a write of a `u64`.
unsafe extern "C" fn svc_dma_map(
    dev: u32,
    addr: *mut u8,
    len: u32,
    to_device: u32,
    out: *mut u64,
) -> i32 {
    if out.is_null() || addr.is_null() {
        return EINVAL.to_errno();
    }
    match super::hw::get(dev)
        .ok_or(ENODEV)
        .and_then(|h| h.dma_map(addr, len, to_device != 0))
    {
        Ok(d) => {
            // SAFETY: checked non-null; the ABI requires it writable.
            unsafe { *out = d };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `ParentServices::dma_unmap`: undoes a `dma_map` of device `dev`.
///
/// # Safety
///
/// `dma`, `len` and `to_device` must be those of a mapping `dma_map` made
/// for `dev` and not yet undone.
unsafe extern "C" fn svc_dma_unmap(dev: u32, dma: u64, len: u32, to_device: u32) {
    // An unbound device's mappings are undone too (its slot stays).
    if let Some(hw) = super::hw::get_any(dev) {
        hw.dma_unmap(dma, len, to_device != 0);
    }
}

/// `ParentServices::hw_disk`: device `dev`'s namespace geometry, recorded
/// (`hw::set_geometry`) for its disk, which the switch makes after the
/// adopt (`Hub::make_disks`).
///
/// # Safety
///
/// Always safe: every argument is checked. Any context (it only compares
/// and stores one word).
unsafe extern "C" fn svc_hw_disk(dev: u32, lba_shift: u32, blocks: u64) -> i32 {
    super::hw::set_geometry(dev, lba_shift, blocks).map_or_else(|e| e.to_errno(), |()| 0)
}

/// `ParentServices::hw_live`: device `dev` is bound and not closed.
///
/// # Safety
///
/// Always safe: `dev` is checked. Any context (one atomic load).
unsafe extern "C" fn svc_hw_live(dev: u32) -> u32 {
    u32::from(super::hw::get(dev).is_some())
}
