// SPDX-License-Identifier: GPL-2.0

//! The child's edge to the parent: the C-ABI operations table
//! (`state_abi::ChildOps`), the registration record, and the module that
//! registers the device with `hotup_parent` on load and unregisters it on
//! unload. Every call from the parent enters the driver (`child.rs`) here.
//! `hotup_mono` builds the same driver without this file (`mono.rs`).

use super::{default_queue, flush_work, Dev, Setup, SCHEMA};
use crate::state_abi::{
    make_name, CVoid, CallDesc, ChildOps, ChildRegistration, ChildStats, IoDesc, ParentServices,
    CAP_DISCARD, CAP_EXPORT_OLDER_SCHEMA, CAP_FLUSH, CAP_HANDOVER, CAP_STANDBY, CAP_WRITE_ZEROES,
};
use kernel::{prelude::*, sync::Arc};
extern "C" {
    fn hotup_register_child(
        reg: *const ChildRegistration,
        services: *mut *const ParentServices,
    ) -> i32;
    fn hotup_unregister_child(reg: *const ChildRegistration) -> i32;
}

/// Recovers the device from the context pointer the parent hands back.
///
/// # Safety
///
/// `ctx` must be the context this child registered (`Arc::as_ptr` of a
/// `Dev` kept alive by `Child` until after unregistration).
unsafe fn dev_from(ctx: *mut CVoid) -> &'static Arc<Dev> {
    // SAFETY: per the function's contract, `ctx` points at the `Arc<Dev>`
    // stored in the `Child`'s box, which lives until the module exits,
    // after unregistration, after which the parent never calls us.
    unsafe { &*ctx.cast::<Arc<Dev>>() }
}

/// `ChildOps::submit`.
///
/// # Safety
///
/// `ctx` must be this child's registered context and `io` null or a valid
/// descriptor whose segments are valid for the call (the ABI contract).
unsafe extern "C" fn op_submit(ctx: *mut CVoid, io: *const IoDesc) -> i32 {
    if io.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: the parent passes back our registered context and a valid
    // descriptor for the duration of the call.
    unsafe { dev_from(ctx).submit(&*io) }
}

/// `ChildOps::quiesce`.
///
/// # Safety
///
/// `ctx` must be this child's registered context.
unsafe extern "C" fn op_quiesce(ctx: *mut CVoid) -> i32 {
    // SAFETY: our registered context.
    unsafe { dev_from(ctx) }.quiesce()
}

/// `ChildOps::export_state`.
///
/// # Safety
///
/// `ctx` must be this child's registered context; `buf` null or writable
/// for `cap` bytes; `out_len` null or writable.
unsafe extern "C" fn op_export(
    ctx: *mut CVoid,
    buf: *mut u8,
    cap: usize,
    schema: u32,
    out_len: *mut usize,
) -> i32 {
    if buf.is_null() || out_len.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: the parent passes a writable buffer of `cap` bytes.
    let buf = unsafe { core::slice::from_raw_parts_mut(buf, cap) };
    // SAFETY: our registered context.
    match unsafe { dev_from(ctx) }.export(buf, schema) {
        Ok(n) => {
            // SAFETY: checked non-null above.
            unsafe { *out_len = n };
            0
        }
        Err(e) => e,
    }
}

/// `ChildOps::adopt`.
///
/// # Safety
///
/// `ctx` must be this child's registered context; `blob` null or readable
/// for `len` bytes. The blob's content is never trusted.
unsafe extern "C" fn op_adopt(ctx: *mut CVoid, blob: *const u8, len: usize) -> i32 {
    let blob = if blob.is_null() || len == 0 {
        None
    } else {
        // SAFETY: the parent passes `len` readable bytes for the call.
        Some(unsafe { core::slice::from_raw_parts(blob, len) })
    };
    // SAFETY: our registered context.
    let dev = unsafe { dev_from(ctx) };
    match dev.adopt(blob, false) {
        Ok(()) => {
            if dev.irq.enabled {
                dev.start_irq_timer();
            }
            // Requests handed over are due without any new submission to
            // kick the worker (the writer may be waiting for exactly them).
            let _ = default_queue().enqueue(dev.clone());
            0
        }
        Err(e) => e,
    }
}

/// `ChildOps::finish`: the upgrade is committed; a child that exported
/// retires (what it held belongs to its successor).
///
/// # Safety
///
/// `ctx` must be this child's registered context.
unsafe extern "C" fn op_finish(ctx: *mut CVoid) {
    // SAFETY: our registered context.
    unsafe { dev_from(ctx) }.finish();
}

/// `ChildOps::probe`: could this child adopt the blob? Changes nothing.
///
/// # Safety
///
/// `ctx` must be this child's registered context; `blob` null or readable
/// for `len` bytes. The blob's content is never trusted.
unsafe extern "C" fn op_probe(ctx: *mut CVoid, blob: *const u8, len: usize) -> i32 {
    if blob.is_null() || len == 0 {
        return EINVAL.to_errno();
    }
    // SAFETY: the parent passes `len` readable bytes for the call.
    let blob = unsafe { core::slice::from_raw_parts(blob, len) };
    // SAFETY: our registered context.
    match unsafe { dev_from(ctx) }.adopt(Some(blob), true) {
        Ok(()) => 0,
        Err(e) => e,
    }
}

/// `ChildOps::freeze` (handover).
///
/// # Safety
///
/// `ctx` must be this child's registered context.
unsafe extern "C" fn op_freeze(ctx: *mut CVoid) -> i32 {
    // SAFETY: our registered context.
    unsafe { dev_from(ctx) }.freeze()
}

/// `ChildOps::abort`: take I/O again as before the upgrade began.
///
/// # Safety
///
/// `ctx` must be this child's registered context.
unsafe extern "C" fn op_abort(ctx: *mut CVoid) {
    // SAFETY: our registered context.
    unsafe { dev_from(ctx) }.unfreeze();
}

/// `ChildOps::stats`.
///
/// # Safety
///
/// `ctx` must be this child's registered context; `out` null or writable.
unsafe extern "C" fn op_stats(ctx: *mut CVoid, out: *mut ChildStats) -> i32 {
    if out.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: our registered context; `out` is writable per the ABI.
    unsafe { *out = dev_from(ctx).state.lock().stats };
    0
}

/// `ChildOps::ioctl` (ABI 1.2): an ioctl on one of the parent's nodes.
///
/// # Safety
///
/// `ctx` must be this child's registered context; `call` null or valid and
/// writable for the call; the caller's process context is current.
unsafe extern "C" fn op_ioctl(ctx: *mut CVoid, call: *mut CallDesc) -> i64 {
    // SAFETY: the parent passes null or a valid, writable descriptor for
    // the call, which nothing else touches meanwhile (the ABI).
    let Some(call) = (unsafe { super::passthru::call_from(call) }) else {
        return i64::from(EINVAL.to_errno());
    };
    // SAFETY: our registered context.
    unsafe { dev_from(ctx) }.ioctl(call)
}

/// `ChildOps::release` (ABI 1.2): a controller-node file was closed.
///
/// # Safety
///
/// `ctx` must be this child's registered context.
unsafe extern "C" fn op_release(ctx: *mut CVoid, file: u64) {
    // SAFETY: our registered context.
    unsafe { dev_from(ctx) }.state.lock().files.remove(file);
}

/// This version's operations table.
const OPS_TABLE: ChildOps = ChildOps {
    size: core::mem::size_of::<ChildOps>() as u32,
    reserved: 0,
    submit: Some(op_submit),
    quiesce: Some(op_quiesce),
    export_state: Some(op_export),
    adopt: Some(op_adopt),
    finish: Some(op_finish),
    abort: Some(op_abort),
    stats: Some(op_stats),
    freeze: Some(op_freeze),
    probe: Some(op_probe),
    ioctl: Some(op_ioctl),
    release: Some(op_release),
    irq: None,
};

static OPS: ChildOps = OPS_TABLE;

/// The table of ABI 1.1 (`abi_minor_override=1`): up to `probe`, as a
/// child built then would hand over.
static OPS_1_1: ChildOps = ChildOps {
    size: 80,
    ioctl: None,
    release: None,
    ..OPS_TABLE
};

/// The registration record handed to the parent, at a stable address.
struct Registration(KBox<ChildRegistration>);

// SAFETY: the record is written once in `init` and only read afterwards; its
// pointers name the static `OPS` table and the `Arc<Dev>` box owned by the
// same `Child`, both of which are safe to use from any thread.
unsafe impl Send for Registration {}
// SAFETY: see `Send`; shared access is read-only.
unsafe impl Sync for Registration {}

/// The loaded child module.
pub(crate) struct Child {
    /// Boxed so the registration's `ctx` (a pointer to this `Arc`) is stable.
    dev: KBox<Arc<Dev>>,
    reg: Registration,
}

impl kernel::Module for Child {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let (dev, setup) = Dev::from_params()?;
        let Setup {
            latency_us,
            irq: irq_enabled,
            standby,
            handover,
            abi_major,
            abi_minor,
        } = setup;
        let dev = KBox::new(dev, GFP_KERNEL)?;
        let reg = Registration(KBox::new(
            ChildRegistration {
                size: core::mem::size_of::<ChildRegistration>() as u32,
                abi_major,
                abi_minor,
                name: make_name(crate::MODULE_NAME),
                child_version: crate::CHILD_VERSION,
                schema_version: SCHEMA,
                capabilities: CAP_FLUSH
                    | CAP_DISCARD
                    | CAP_WRITE_ZEROES
                    | if SCHEMA > 1 {
                        CAP_EXPORT_OLDER_SCHEMA
                    } else {
                        0
                    }
                    | if standby { CAP_STANDBY } else { 0 }
                    | if standby && handover { CAP_HANDOVER } else { 0 },
                ops: if abi_minor >= 2 { &OPS } else { &OPS_1_1 },
                ctx: core::ptr::from_ref::<Arc<Dev>>(&dev).cast_mut().cast(),
            },
            GFP_KERNEL,
        )?);
        pr_info!(
            "load version={} schema={} latency_us={} completion={} abi={}.{} standby={} handover={}\n",
            crate::CHILD_VERSION,
            SCHEMA,
            latency_us,
            if irq_enabled { "hardirq" } else { "work" },
            abi_major,
            abi_minor,
            if standby { "yes" } else { "no" },
            if standby && handover { "yes" } else { "no" }
        );
        let services = dev.services.as_ptr().cast::<*const ParentServices>();
        // SAFETY: `reg` and `OPS` stay valid until `hotup_unregister_child`
        // in `drop` (the box is not moved out of `Child`), and `services`
        // points at an `AtomicPtr` with the layout of a pointer.
        let rc = unsafe { hotup_register_child(&*reg.0, services) };
        if rc != 0 {
            pr_err!(
                "the parent refused this child ({}); see the hotup: line above\n",
                rc
            );
            dev.stop_irq_timer();
            flush_work(&dev.work);
            return Err(Error::from_errno(rc));
        }
        Ok(Child { dev, reg })
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: `reg` is the registration the parent accepted in `init`.
        let rc = unsafe { hotup_unregister_child(&*self.reg.0) };
        if rc != 0 {
            pr_err!("unregister failed: {}\n", rc);
        }
        // Stops the hard-IRQ timer if quiesce did not (its handle holds a
        // reference to the device).
        self.dev.stop_irq_timer();
        flush_work(&self.dev.work);
        pr_info!("unload version={}\n", crate::CHILD_VERSION);
    }
}
