// SPDX-License-Identifier: GPL-2.0

//! The NVMe child's edge to the parent: its C-ABI operations table, its
//! registration (`CAP_HW`, ABI 1.3) and the module that registers it on
//! load and unregisters it on unload. Every call from the parent enters
//! the driver (`ctrl.rs`) here.

use super::ctrl::SCHEMA;
use super::drives::Drives;
use super::hwio::SERVICES;
use crate::state_abi::{
    make_name, CVoid, CallDesc, ChildOps, ChildRegistration, ChildStats, IoDesc, ParentServices,
    ABI_MAJOR, ABI_MINOR, CAP_DISCARD, CAP_FLUSH, CAP_HW, CAP_STANDBY, CAP_WRITE_ZEROES,
};
use kernel::prelude::*;

extern "C" {
    fn hotup_register_child(
        reg: *const ChildRegistration,
        services: *mut *const ParentServices,
    ) -> i32;
    fn hotup_unregister_child(reg: *const ChildRegistration) -> i32;
}

/// Recovers the driver from the context pointer the parent hands back.
///
/// # Safety
///
/// `ctx` must be the context this child registered (a pointer to the
/// boxed `Drives` owned by `Child`, which outlives the registration).
unsafe fn dev_from<'a>(ctx: *mut CVoid) -> &'a Drives {
    // SAFETY: per the function's contract, `ctx` points at the boxed
    // `Drives`, alive until after unregistration, after which the parent
    // never calls this child.
    unsafe { &*ctx.cast::<Drives>() }
}

/// `ChildOps::submit`.
///
/// # Safety
///
/// `ctx` must be this child's registered context and `io` null or a valid
/// descriptor whose segment array is valid for the call (the ABI).
unsafe extern "C" fn op_submit(ctx: *mut CVoid, io: *const IoDesc) -> i32 {
    if io.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: the parent passes a valid descriptor for the call.
    let io = unsafe { &*io };
    let segs = if io.segs.is_null() || io.nr_segs == 0 {
        &[][..]
    } else {
        // SAFETY: `nr_segs` segments at `segs`, valid for the call (ABI).
        unsafe { core::slice::from_raw_parts(io.segs, io.nr_segs as usize) }
    };
    // SAFETY: our registered context.
    unsafe { dev_from(ctx) }.submit(io, segs)
}

/// `ChildOps::quiesce`: the parent drained; take nothing more.
///
/// # Safety
///
/// `ctx` must be this child's registered context.
unsafe extern "C" fn op_quiesce(ctx: *mut CVoid) -> i32 {
    // SAFETY: our registered context.
    unsafe { dev_from(ctx) }.quiesce();
    0
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
        Err(e) => e.to_errno(),
    }
}

/// `ChildOps::adopt`: the queues of a blob, or (none) a fresh controller.
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
    match unsafe { dev_from(ctx) }.adopt(blob) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `ChildOps::finish`: nothing is kept for an abort.
///
/// # Safety
///
/// Always safe.
unsafe extern "C" fn op_finish(_ctx: *mut CVoid) {}

/// `ChildOps::abort`: take I/O again.
///
/// # Safety
///
/// `ctx` must be this child's registered context.
unsafe extern "C" fn op_abort(ctx: *mut CVoid) {
    // SAFETY: our registered context.
    unsafe { dev_from(ctx) }.abort();
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
    unsafe { *out = dev_from(ctx).stats() };
    0
}

/// `ChildOps::irq` (ABI 1.3): a vector of the parent's device fired.
///
/// # Safety
///
/// `ctx` must be this child's registered context.
unsafe extern "C" fn op_irq(ctx: *mut CVoid, dev: u32, vector: u32) -> u32 {
    // SAFETY: our registered context.
    u32::from(unsafe { dev_from(ctx) }.irq(dev, vector))
}

/// `ChildOps::ioctl` (ABI 1.2): an ioctl on one of the parent's nodes.
///
/// # Safety
///
/// `ctx` must be this child's registered context and `call` null or a
/// valid descriptor, writable and used by nothing else for the call.
unsafe extern "C" fn op_ioctl(ctx: *mut CVoid, call: *mut CallDesc) -> i64 {
    // SAFETY: the parent passes null or a valid, writable descriptor for
    // the call, which nothing else touches meanwhile (the ABI).
    let Some(call) = (unsafe { crate::passthru::call_from(call) }) else {
        return i64::from(EINVAL.to_errno());
    };
    // SAFETY: our registered context.
    unsafe { dev_from(ctx) }.ioctl(call)
}

static OPS: ChildOps = ChildOps {
    size: core::mem::size_of::<ChildOps>() as u32,
    reserved: 0,
    submit: Some(op_submit),
    quiesce: Some(op_quiesce),
    export_state: Some(op_export),
    adopt: Some(op_adopt),
    finish: Some(op_finish),
    abort: Some(op_abort),
    stats: Some(op_stats),
    freeze: None,
    probe: None,
    ioctl: Some(op_ioctl),
    release: None,
    irq: Some(op_irq),
};

/// The registration record handed to the parent, at a stable address.
struct Registration(KBox<ChildRegistration>);

// SAFETY: written once in `init`, only read afterwards; its pointers name
// the static `OPS` and the boxed `Drives` of the same `Child`, both usable
// from any thread.
unsafe impl Send for Registration {}
// SAFETY: see `Send`; shared access is read-only.
unsafe impl Sync for Registration {}

/// The loaded child module.
pub(crate) struct Child {
    dev: KBox<Drives>,
    reg: Registration,
}

impl kernel::Module for Child {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // Everything the driver needs is allocated here, before the adopt
        // that runs inside the parent's blackout.
        let dev = KBox::new(Drives::new()?, GFP_KERNEL)?;
        let reg = Registration(KBox::new(
            ChildRegistration {
                size: core::mem::size_of::<ChildRegistration>() as u32,
                abi_major: ABI_MAJOR,
                abi_minor: ABI_MINOR,
                name: make_name(crate::MODULE_NAME),
                child_version: crate::CHILD_VERSION,
                schema_version: SCHEMA,
                // A standby (registered next to the active child, adopting at
                // the operator's switch) drains too: no handover of commands.
                capabilities: CAP_FLUSH | CAP_DISCARD | CAP_WRITE_ZEROES | CAP_HW | CAP_STANDBY,
                ops: &OPS,
                ctx: core::ptr::from_ref::<Drives>(&dev).cast_mut().cast(),
            },
            GFP_KERNEL,
        )?);
        pr_info!(
            "load version={} schema={} abi={}.{}\n",
            crate::CHILD_VERSION,
            SCHEMA,
            ABI_MAJOR,
            ABI_MINOR
        );
        let services = SERVICES.0.as_ptr().cast::<*const ParentServices>();
        // SAFETY: `reg` and `OPS` stay valid until `hotup_unregister_child`
        // in `drop` (the boxes are not moved out of `Child`), and
        // `services` points at a static `AtomicPtr` laid out as a pointer.
        let rc = unsafe { hotup_register_child(&*reg.0, services) };
        if rc != 0 {
            pr_err!(
                "the parent refused this child ({}); see the hotup: line above\n",
                rc
            );
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
        let (irqs, stray) = self.dev.irq_counts();
        pr_info!(
            "unload version={} irqs={} stray={}\n",
            crate::CHILD_VERSION,
            irqs,
            stray
        );
    }
}
