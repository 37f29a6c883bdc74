// SPDX-License-Identifier: GPL-2.0

//! The C-ABI edge towards a child: reading its registration (size-prefixed
//! tables of any minor of this major) and every call into its code. Nothing
//! else in the parent calls a child's function pointer.
//!
//! Who may call, and when, is the in-flight gate's business (`inflight.rs`):
//! a child's functions are called only between its registration and the
//! return of its unregistration, and the unregistration does not return
//! while any CPU is inside one of them.

use super::state_abi::{
    sized_copy_len, CVoid, CallDesc, ChildOps, ChildRegistration, IoDesc, CAP_HANDOVER, CAP_HW,
    CAP_STANDBY, NAME_LEN,
};
use kernel::prelude::*;

/// A C pointer from the child, only ever passed back to the child.
#[derive(Clone, Copy)]
struct ChildCtx(*mut CVoid);

/// The attached child: its identity and a copy of its operations table.
#[derive(Clone, Copy)]
pub(crate) struct ActiveChild {
    pub(crate) name: [u8; NAME_LEN],
    pub(crate) version: u32,
    /// The ABI minor the child was built against.
    pub(crate) abi_minor: u16,
    /// `CAP_*` bits the child declared.
    pub(crate) caps: u64,
    /// The newest device-state schema it writes and reads.
    pub(crate) schema: u32,
    ops: ChildOps,
    ctx: ChildCtx,
    reg: *const ChildRegistration,
}

// SAFETY: `ops` holds `extern "C"` function pointers and `ctx` is opaque; the
// ABI contract makes the child's operations callable from any thread; `reg`
// is only compared, never dereferenced after registration.
unsafe impl Send for ActiveChild {}
// SAFETY: see `Send`; the struct is plain data, shared read-only.
unsafe impl Sync for ActiveChild {}

/// The name of a NUL-padded name array, `?` if it is not UTF-8.
pub(crate) fn name_str(n: &[u8; NAME_LEN]) -> &str {
    let len = n.iter().position(|b| *b == 0).unwrap_or(n.len());
    core::str::from_utf8(n.get(..len).unwrap_or_default()).unwrap_or("?")
}

/// A child's C return code as a `Result`: 0 is success, a negative errno
/// its error, anything else (which the ABI does not allow) EIO, mapped
/// here so that a broken child cannot make `from_errno` warn per request.
fn errno(rc: i32) -> Result {
    match rc {
        0 => Ok(()),
        -4095..=-1 => Err(Error::from_errno(rc)),
        _ => Err(EIO),
    }
}

/// Why a registration cannot be read.
pub(crate) enum BadRegistration {
    /// The registration's `size` is below [`ChildRegistration::MIN_SIZE`].
    RegistrationSize(u32),
    /// The operations table is missing or its `size` is too small.
    OpsSize(u32),
    /// A required operation is NULL.
    IncompleteOps,
}

/// Copies `src`, a size-prefixed table, over `base` (see
/// [`sized_copy_len`]); `Err(size)` if it is smaller than `min`.
///
/// # Safety
///
/// `src` must be readable for 4 bytes and, once its leading `u32` size has
/// been read, for `min(size, size_of::<T>())` bytes; those bytes must be a
/// valid prefix of a `T` (every function pointer valid or NULL).
unsafe fn read_sized<T: Copy>(src: *const T, base: T, min: u32) -> Result<T, u32> {
    // SAFETY: the caller guarantees 4 readable bytes at `src`.
    let claimed = unsafe { src.cast::<u32>().read_unaligned() };
    let n = sized_copy_len(claimed, min, core::mem::size_of::<T>())?;
    let mut out = base;
    // SAFETY: `src` is readable for `n` bytes (caller), `out` is a local `T`
    // of at least `n` bytes, they do not overlap, and the bytes form a
    // valid prefix of a `T` (caller); the rest of `out` keeps `base`.
    unsafe {
        core::ptr::copy_nonoverlapping(
            src.cast::<u8>(),
            core::ptr::from_mut(&mut out).cast::<u8>(),
            n,
        )
    };
    Ok(out)
}

/// Reads a child's registration, whatever minor of this ABI major wrote it.
///
/// # Safety
///
/// `reg` must point to a registration valid for its own `size` (at least 4
/// bytes): the registration contract of `hotup_register_child`.
pub(crate) unsafe fn read_registration(
    reg: *const ChildRegistration,
) -> Result<ChildRegistration, BadRegistration> {
    if reg.is_null() {
        return Err(BadRegistration::RegistrationSize(0));
    }
    // SAFETY: per this function's contract.
    unsafe { read_sized(reg, ChildRegistration::ZEROED, ChildRegistration::MIN_SIZE) }
        .map_err(BadRegistration::RegistrationSize)
}

/// Reads the operations table of a registration (of this ABI major).
///
/// # Safety
///
/// `r.ops`, if not NULL, must point to an operations table valid for its
/// own `size`.
pub(crate) unsafe fn read_ops(r: &ChildRegistration) -> Result<ChildOps, BadRegistration> {
    if r.ops.is_null() {
        return Err(BadRegistration::OpsSize(0));
    }
    // SAFETY: per this function's contract.
    let ops = unsafe { read_sized(r.ops, ChildOps::EMPTY, ChildOps::MIN_SIZE) }
        .map_err(BadRegistration::OpsSize)?;
    if ops.submit.is_none()
        || ops.quiesce.is_none()
        || ops.export_state.is_none()
        || ops.adopt.is_none()
    {
        return Err(BadRegistration::IncompleteOps);
    }
    Ok(ops)
}

impl ActiveChild {
    /// The child behind a registration read by [`read_registration`]; `reg`
    /// is the caller's pointer, kept to recognise the unregistration.
    pub(crate) fn new(r: &ChildRegistration, ops: ChildOps, reg: *const ChildRegistration) -> Self {
        let mut name = r.name;
        if let Some(last) = name.last_mut() {
            *last = 0;
        }
        Self {
            name,
            version: r.child_version,
            abi_minor: r.abi_minor,
            caps: r.capabilities,
            schema: r.schema_version,
            ops,
            ctx: ChildCtx(r.ctx),
            reg,
        }
    }

    pub(crate) fn name(&self) -> &str {
        name_str(&self.name)
    }

    /// Whether the child can be a standby and be retired (ABI 1.1, with
    /// the `abort` a rollback needs and the `finish` that retires it).
    pub(crate) fn can_standby(&self) -> bool {
        self.abi_minor >= 1
            && self.caps & CAP_STANDBY != 0
            && self.ops.abort.is_some()
            && self.ops.finish.is_some()
    }

    /// Whether the child can hand its in-flight requests over (ABI 1.1:
    /// the capability and a `freeze` operation).
    pub(crate) fn can_hand_over(&self) -> bool {
        // Not for a hardware child yet: its interrupts leave it only once
        // it has drained (`quiesce_drained`), and a frozen one would keep
        // reaping the queues its successor adopts.
        self.can_standby()
            && self.caps & CAP_HANDOVER != 0
            && self.ops.freeze.is_some()
            && !self.drives_hw()
    }

    /// Whether the child drives the parent's hardware (ABI 1.3: the
    /// capability and an `irq` operation).
    pub(crate) fn drives_hw(&self) -> bool {
        self.abi_minor >= 4 && self.caps & CAP_HW != 0 && self.ops.irq.is_some()
    }

    /// Why a child that declares `CAP_HW` cannot drive the parent's
    /// hardware (`live`: the parent has a live device), if it cannot: an
    /// ABI 1.3 child knows one device and no disk index (it would send
    /// every disk's I/O to device 0, and never say a namespace's geometry).
    pub(crate) fn hw_refusal(&self, live: bool) -> Option<&'static str> {
        if !self.claims_hw() {
            None
        } else if self.abi_minor < 4 {
            Some("hw-needs-abi-1.4")
        } else if self.ops.irq.is_none() {
            Some("hw-without-irq")
        } else if !live {
            Some("no-hw")
        } else {
            None
        }
    }

    /// Whether the child declares `CAP_HW`, with or without what it needs.
    pub(crate) fn claims_hw(&self) -> bool {
        self.caps & CAP_HW != 0
    }

    /// `irq`: vector `vector` of hardware device `dev` fired (or fired
    /// while no child owned the hardware). Whether the child found work.
    pub(crate) fn irq(&self, dev: u32, vector: u32) -> bool {
        match self.ops.irq {
            // SAFETY: the child's own function and context, while it owns
            // the hardware (`hw.rs`: between its adopt and its detach's
            // drain, which waits for every CPU inside this call).
            Some(f) if self.abi_minor >= 3 => unsafe { f(self.ctx.0, dev, vector) != 0 },
            _ => false,
        }
    }

    /// Whether `reg` is the registration this child was attached with.
    pub(crate) fn is(&self, reg: *const ChildRegistration) -> bool {
        core::ptr::eq(self.reg, reg)
    }

    /// `submit`: the child takes the I/O `desc` describes, or refuses it
    /// (the parent then completes it with that error).
    pub(crate) fn submit(&self, desc: &IoDesc) -> Result {
        match self.ops.submit {
            // SAFETY: the child's own `submit`, with its registered context,
            // called while it is registered (the gate); `desc` and its
            // segments are valid for the call as the ABI requires.
            Some(f) => errno(unsafe { f(self.ctx.0, desc) }),
            None => Err(EIO),
        }
    }

    /// `quiesce`: the child stops taking I/O and finishes what it has.
    pub(crate) fn quiesce(&self) -> Result {
        match self.ops.quiesce {
            // SAFETY: the child's own function and context, while registered.
            Some(f) => errno(unsafe { f(self.ctx.0) }),
            None => Err(EIO),
        }
    }

    /// `export_state` into `buf`: the blob's length, or a negative errno. A
    /// length beyond `buf` (a broken child) is an error too.
    pub(crate) fn export(&self, buf: &mut [u8], schema: u32) -> Result<usize> {
        let Some(f) = self.ops.export_state else {
            return Err(EIO);
        };
        let mut len = 0usize;
        // SAFETY: the child's own function and context, while registered;
        // `buf` is writable for `buf.len()` bytes and `len` is a valid out
        // pointer for the duration of the call.
        let rc = unsafe { f(self.ctx.0, buf.as_mut_ptr(), buf.len(), schema, &mut len) };
        match errno(rc) {
            Ok(()) if len <= buf.len() => Ok(len),
            Ok(()) => Err(EOVERFLOW),
            Err(e) => Err(e),
        }
    }

    /// `adopt` of `blob` (None: start empty).
    pub(crate) fn adopt(&self, blob: Option<&[u8]>) -> Result {
        let Some(f) = self.ops.adopt else {
            return Err(EIO);
        };
        let (p, len) = blob.map_or((core::ptr::null(), 0), |b| (b.as_ptr(), b.len()));
        // SAFETY: the child's own function and context, during its
        // registration; the blob is readable for `len` bytes for the call
        // (or NULL with length 0 for "start empty").
        errno(unsafe { f(self.ctx.0, p, len) })
    }

    /// `freeze`: the child stops taking I/O and starts no completion,
    /// holding what it accepted for its export (a completion under way
    /// ends on its own).
    pub(crate) fn freeze(&self) -> Result {
        match self.ops.freeze {
            // SAFETY: the child's own function and context, while registered.
            Some(f) => errno(unsafe { f(self.ctx.0) }),
            None => Err(Error::from_errno(-super::state_abi::errno::EOPNOTSUPP)),
        }
    }

    /// `probe` of `blob`: whether the child could adopt it, changing
    /// nothing; `None` if the child has no probe (ABI 1.0 table).
    pub(crate) fn probe(&self, blob: &[u8]) -> Option<Result> {
        let f = self.ops.probe?;
        // SAFETY: the child's own function and context, while registered;
        // the blob is readable for its length for the call.
        Some(errno(unsafe { f(self.ctx.0, blob.as_ptr(), blob.len()) }))
    }

    /// `abort`: the switch is called off; the child takes I/O again as
    /// before its `quiesce` or `freeze`.
    pub(crate) fn abort(&self) {
        if let Some(f) = self.ops.abort {
            // SAFETY: the child's own function and context, while registered.
            unsafe { f(self.ctx.0) };
        }
    }

    /// `ioctl` (ABI 1.2): a syscall on a device node, in the caller's
    /// context. `-ENOTTY` for a child without it (an older minor).
    pub(crate) fn ioctl(&self, call: &mut CallDesc) -> i64 {
        match self.ops.ioctl {
            // SAFETY: the child's own function and context, while registered
            // (the caller is inside the gate); `call` is valid and writable
            // for the call and the caller's process context is current, as
            // the ABI says.
            Some(f) if self.abi_minor >= 2 => unsafe { f(self.ctx.0, call) },
            _ => i64::from(ENOTTY.to_errno()),
        }
    }

    /// `release` (ABI 1.2): the controller-node file `file` was closed.
    pub(crate) fn release(&self, file: u64) {
        match self.ops.release {
            // SAFETY: the child's own function and context, while registered
            // (the caller is inside the gate), in process context.
            Some(f) if self.abi_minor >= 2 => unsafe { f(self.ctx.0, file) },
            _ => {}
        }
    }

    /// `finish`: the upgrade that brought this child is committed.
    pub(crate) fn finish(&self) {
        if let Some(f) = self.ops.finish {
            // SAFETY: the child's own function and context, while registered.
            unsafe { f(self.ctx.0) };
        }
    }
}
