// SPDX-License-Identifier: GPL-2.0

//! `hotup_mono`: the child driver (`child.rs`) built as a plain blk-mq
//! driver, with no parent. It is the baseline `cargo xtask bench` measures
//! hotup against: the same submit, the same completion work item and the
//! same simulated latency, but `queue_rq` calls the driver directly and a
//! completion ends the request directly, where hotup goes through the
//! parent's gate, cookie table and the C-ABI vtable. It cannot be
//! upgraded; it exists to be compared.
//!
//! The driver still asks for "parent services" (complete, preserved
//! memory): this file provides them in-module. The cookie is the request
//! itself, and the one data region is a zeroed vmalloc area owned by the
//! module.

use super::{flush_work, Dev, Setup};
use crate::blk::{AttrGroups, Disk, Geometry, RawRequest, RqPtr, MAX_SEGS};
use crate::state_abi::{IoSegment, ParentServices, ABI_MAJOR, ABI_MINOR, MAX_QUEUES};
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use kernel::{
    alloc::flags,
    block::mq::{self, Operations, TagSet},
    prelude::*,
    sync::{aref::ARef, Arc},
};

/// The handle of the one data region (any non-zero id would do).
const REGION_HANDLE: u64 = 1;

/// The data region, for the services below (they get no context): its
/// base, null while the module has none, and its length.
static REGION_BASE: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
static REGION_LEN: AtomicU64 = AtomicU64::new(0);

/// `ParentServices::complete`: the cookie is the request; ends it.
///
/// # Safety
///
/// `cookie` must be a cookie `queue_rq` handed the driver and not
/// completed before (the driver completes each exactly once).
unsafe extern "C" fn mono_complete(cookie: u64, status: i32) {
    // SAFETY: per the contract, `cookie` is the pointer `queue_rq` gave up
    // with `into_raw`, taken back here exactly once.
    if let Some(rq) = unsafe { RawRequest::from_raw(cookie as usize as RqPtr) } {
        rq.end(status);
    }
}

/// `ParentServices::mem_alloc`: hands out the module's data region.
///
/// # Safety
///
/// `out_handle` must be null or valid for a write of a `u64`.
unsafe extern "C" fn mono_mem_alloc(len: u64, out_handle: *mut u64) -> i32 {
    if out_handle.is_null() || REGION_BASE.load(Ordering::Acquire).is_null() {
        return EINVAL.to_errno();
    }
    if len > REGION_LEN.load(Ordering::Acquire) {
        return ENOSPC.to_errno();
    }
    // SAFETY: checked non-null; the ABI requires a writable u64.
    unsafe { *out_handle = REGION_HANDLE };
    0
}

/// `ParentServices::mem_map`: base and length of the data region.
///
/// # Safety
///
/// `out_ptr` and `out_len` must be null or valid for writes.
unsafe extern "C" fn mono_mem_map(handle: u64, out_ptr: *mut *mut u8, out_len: *mut u64) -> i32 {
    let base = REGION_BASE.load(Ordering::Acquire);
    if out_ptr.is_null() || out_len.is_null() || handle != REGION_HANDLE || base.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: both checked non-null; the ABI requires them writable.
    unsafe {
        *out_ptr = base;
        *out_len = REGION_LEN.load(Ordering::Acquire);
    }
    0
}

/// The request path: straight into the driver.
struct MonoBlk;

#[vtable]
impl Operations for MonoBlk {
    type QueueData = KBox<Arc<Dev>>;

    fn queue_rq(dev: &Arc<Dev>, rq: ARef<mq::Request<Self>>, _is_last: bool) -> Result {
        let rq = RawRequest::take(rq);
        let queue = rq.queue();
        let cookie = rq.as_ptr() as usize as u64;
        let mut segs = [IoSegment::EMPTY; MAX_SEGS];
        let rc = match rq.descriptor(&mut segs, cookie, queue) {
            Ok(io) => dev.submit(&io),
            Err(e) => e.to_errno(),
        };
        if rc == 0 {
            // The driver owns it now: its completion ends it, maybe on
            // another CPU already, so `rq` is not touched again.
            let _ = rq.into_raw();
        } else {
            rq.end(rc);
        }
        Ok(())
    }

    fn commit_rqs(_dev: &Arc<Dev>) {}

    fn complete(_rq: ARef<mq::Request<Self>>) {
        // Requests are ended with their status by `mono_complete`, never
        // through blk_mq_complete_request.
    }
}

/// The module: the disk, then the driver, then the memory, dropped in
/// that order (`drop`).
pub(crate) struct Mono {
    disk: Option<Disk<MonoBlk>>,
    dev: Arc<Dev>,
    /// The services table the driver points at.
    _services: KBox<ParentServices>,
    mem: VVec<u8>,
}

impl kernel::Module for Mono {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let capacity_mib = *crate::module_parameters::capacity_mib.value();
        let geo = Geometry::from_params(
            capacity_mib,
            *crate::module_parameters::nr_queues.value(),
            *crate::module_parameters::queue_depth.value(),
            MAX_QUEUES as u32,
        )?;
        let (nr_queues, queue_depth) = (geo.nr_queues, geo.queue_depth);
        let len = usize::try_from(geo.capacity_bytes).map_err(|_| EINVAL)?;
        let mut mem = VVec::<u8>::with_capacity(len, GFP_KERNEL | flags::__GFP_ZERO)?;
        // SAFETY: the capacity is at least `len` and `__GFP_ZERO` zeroed the
        // allocation, so the first `len` bytes are initialised `u8`s.
        unsafe { mem.inc_len(len) };
        let (dev, setup) = Dev::from_params()?;
        let Setup {
            latency_us, irq, ..
        } = setup;
        if irq {
            // Hard-IRQ slots are indexed by the parent's tag-based cookie;
            // here the cookie is the request's address.
            pr_err!("complete_in_irq=1 is not supported without a parent\n");
            return Err(EINVAL);
        }
        let services = KBox::new(services(&geo), GFP_KERNEL)?;
        REGION_LEN.store(geo.capacity_bytes, Ordering::Release);
        REGION_BASE.store(mem.as_mut_ptr(), Ordering::Release);
        let services_ptr = core::ptr::from_ref::<ParentServices>(&services).cast_mut();
        dev.services.store(services_ptr, Ordering::Release);
        let fail = |dev: &Arc<Dev>, e: Error| {
            dev.stop_irq_timer();
            flush_work(&dev.work);
            REGION_BASE.store(core::ptr::null_mut(), Ordering::Release);
            e
        };
        if let Err(rc) = dev.adopt(None, false) {
            return Err(fail(&dev, Error::from_errno(rc)));
        }
        let disk = Arc::pin_init(TagSet::new(nr_queues, queue_depth, 1), GFP_KERNEL)
            .and_then(|tagset| {
                Disk::new(
                    c"hotupmono0",
                    0,
                    &geo,
                    tagset,
                    KBox::new(dev.clone(), GFP_KERNEL)?,
                    AttrGroups::NONE,
                )
            })
            .map_err(|e| fail(&dev, e))?;
        pr_info!(
            "load mono version={} capacity_mib={} nr_queues={} queue_depth={} latency_us={} completion=work (no parent: not upgradable)\n",
            crate::CHILD_VERSION,
            capacity_mib,
            nr_queues,
            queue_depth,
            latency_us
        );
        Ok(Mono {
            disk: Some(disk),
            dev,
            _services: services,
            mem,
        })
    }
}

/// The services mono gives its driver in place of a parent's.
fn services(geo: &Geometry) -> ParentServices {
    ParentServices {
        size: ParentServices::SIZE,
        abi_major: ABI_MAJOR,
        abi_minor: ABI_MINOR,
        capacity_bytes: geo.capacity_bytes,
        block_size: geo.block_size,
        nr_queues: geo.nr_queues,
        queue_depth: geo.queue_depth,
        reserved: 0,
        complete: Some(mono_complete),
        mem_alloc: Some(mono_mem_alloc),
        mem_map: Some(mono_mem_map),
        mem_free: None,
        log: None,
        ..ParentServices::EMPTY
    }
}

impl Drop for Mono {
    fn drop(&mut self) {
        // `del_gendisk` waits for every request to end; the completion work
        // item (or timer) may still be returning from the last one.
        drop(self.disk.take());
        self.dev.stop_irq_timer();
        flush_work(&self.dev.work);
        REGION_BASE.store(core::ptr::null_mut(), Ordering::Release);
        pr_info!(
            "unload mono version={} region_bytes={}\n",
            crate::CHILD_VERSION,
            self.mem.len()
        );
    }
}
