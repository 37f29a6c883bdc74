// SPDX-License-Identifier: GPL-2.0

//! The mechanics of the NVMe passthrough ioctls, shared by every child
//! that answers them (the RAM child's model in `nvme.rs`, `hotup_nvme`'s
//! real controller in `nvme_pci/admin.rs`): the kernel's ioctl numbers and
//! `struct nvme_passthru_cmd`, its checks (reserved fields, the
//! permissions of `nvme_cmd_allowed`), the NVMe status codes, and user
//! copies with page faults disabled.
//!
//! User memory is copied with page faults disabled ([`copy_in`],
//! [`copy_out`]): a call runs inside the parent's barrier, and a fault on a
//! page that lives on the parent's own device would wait for a switch that
//! waits for the call. On a fault the command stops before it changed
//! anything and returns `CALL_FAULT_IN`; the parent faults the range in
//! outside the barrier and calls again.

use crate::state_abi::{CallDesc, CALL_FAULT_IN, CALL_FLAG_ADMIN, CALL_FLAG_WRITE, NODE_BLOCK};
use kernel::{
    bindings,
    prelude::*,
    uaccess::{UserPtr, UserSlice},
};

/// `_IO('N', 0x40)`.
pub(crate) const NVME_IOCTL_ID: u32 = 0x4e40;
/// `_IOWR('N', 0x41, struct nvme_passthru_cmd)`.
pub(crate) const NVME_IOCTL_ADMIN_CMD: u32 = 0xc048_4e41;
/// `_IOWR('N', 0x43, struct nvme_passthru_cmd)`.
pub(crate) const NVME_IOCTL_IO_CMD: u32 = 0xc048_4e43;
/// `sizeof(struct nvme_passthru_cmd)`.
pub(crate) const PASSTHRU_LEN: usize = 72;
/// Offset of `result` in it.
pub(crate) const RESULT_OFF: usize = 68;

/// Do Not Retry, set on every error status (as a real controller would
/// for these deterministic errors).
pub(crate) const DNR: i64 = 0x4000;
/// Generic command status: Invalid Command Opcode.
pub(crate) const SC_INVALID_OPCODE: i64 = 0x01 | DNR;
/// Generic command status: Invalid Field in Command.
pub(crate) const SC_INVALID_FIELD: i64 = 0x02 | DNR;
/// Generic command status: Invalid Namespace or Format.
pub(crate) const SC_INVALID_NS: i64 = 0x0b | DNR;
/// Generic command status: LBA Out of Range.
pub(crate) const SC_LBA_RANGE: i64 = 0x80 | DNR;
/// Command specific status: Invalid Log Page.
pub(crate) const SC_INVALID_LOG_PAGE: i64 = 0x109 | DNR;
/// Command specific status: Feature Identifier Not Saveable.
pub(crate) const SC_FEATURE_NOT_SAVEABLE: i64 = 0x10d | DNR;

pub(crate) const ADMIN_GET_LOG_PAGE: u8 = 0x02;
pub(crate) const ADMIN_IDENTIFY: u8 = 0x06;
pub(crate) const ADMIN_SET_FEATURES: u8 = 0x09;
pub(crate) const ADMIN_GET_FEATURES: u8 = 0x0a;
pub(crate) const IO_FLUSH: u8 = 0x00;
pub(crate) const IO_WRITE: u8 = 0x01;
pub(crate) const IO_READ: u8 = 0x02;

/// `struct nvme_passthru_cmd`, decoded.
pub(crate) struct Passthru {
    pub(crate) opcode: u8,
    pub(crate) flags: u8,
    pub(crate) rsvd1: u16,
    pub(crate) nsid: u32,
    pub(crate) cdw2: u32,
    pub(crate) cdw3: u32,
    pub(crate) metadata: u64,
    pub(crate) addr: u64,
    pub(crate) metadata_len: u32,
    pub(crate) data_len: u32,
    pub(crate) cdw: [u32; 6],
}

impl Passthru {
    pub(crate) fn parse(b: &[u8; PASSTHRU_LEN]) -> Self {
        let u32_at = |o: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(b.get(o..o + 4).unwrap_or(&[0; 4]));
            u32::from_le_bytes(w)
        };
        let u64_at = |o: usize| u64::from(u32_at(o)) | u64::from(u32_at(o + 4)) << 32;
        Self {
            opcode: b[0],
            flags: b[1],
            rsvd1: u16::from_le_bytes([b[2], b[3]]),
            nsid: u32_at(4),
            cdw2: u32_at(8),
            cdw3: u32_at(12),
            metadata: u64_at(16),
            addr: u64_at(24),
            metadata_len: u32_at(32),
            data_len: u32_at(36),
            cdw: [
                u32_at(40),
                u32_at(44),
                u32_at(48),
                u32_at(52),
                u32_at(56),
                u32_at(60),
            ],
        }
    }

    pub(crate) fn cdw10(&self) -> u32 {
        self.cdw[0]
    }
    pub(crate) fn cdw11(&self) -> u32 {
        self.cdw[1]
    }
    pub(crate) fn cdw12(&self) -> u32 {
        self.cdw[2]
    }
    pub(crate) fn cdw13(&self) -> u32 {
        self.cdw[3]
    }
}

/// Why a command did not run to its end.
pub(crate) enum Fail {
    /// End the call with this errno.
    Errno(Error),
    /// A user copy faulted: fault this range in and call again.
    Fault { addr: u64, len: usize, write: bool },
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Errno(e)
    }
}

impl From<kernel::alloc::AllocError> for Fail {
    fn from(_: kernel::alloc::AllocError) -> Self {
        Fail::Errno(ENOMEM)
    }
}

/// A command's end as the ioctl's result: its status, an errno, or
/// `CALL_FAULT_IN` with the range that faulted in `call`.
pub(crate) fn finish(call: &mut CallDesc, r: Result<i64, Fail>) -> i64 {
    match r {
        Ok(status) => status,
        Err(Fail::Errno(e)) => i64::from(e.to_errno()),
        Err(Fail::Fault { addr, len, write }) => {
            call.fault_addr = addr;
            call.fault_len = u32::try_from(len).unwrap_or(u32::MAX);
            call.fault_write = u32::from(write);
            CALL_FAULT_IN
        }
    }
}

/// Copies `dst.len()` bytes of the caller's memory at `addr`, faults
/// disabled (or, with the fault injection `faulting`, as an ordinary
/// `copy_from_user` that may sleep on a fault inside the barrier).
pub(crate) fn copy_in(faulting: bool, addr: u64, dst: &mut [u8]) -> Result<(), Fail> {
    if faulting {
        let user = UserSlice::new(UserPtr::from_addr(addr as usize), dst.len());
        return Ok(user.reader().read_slice(dst)?);
    }
    // SAFETY: `dst` is writable for its length; the source is a user
    // address, which `copy_from_user_nofault` checks (`access_ok`) and
    // reads with faults disabled, failing instead of faulting.
    let rc = unsafe {
        bindings::copy_from_user_nofault(
            dst.as_mut_ptr().cast(),
            addr as usize as *const kernel::ffi::c_void,
            dst.len(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Fail::Fault {
            addr,
            len: dst.len(),
            write: false,
        })
    }
}

/// Copies `src` to the caller's memory at `addr`, faults disabled (or, with
/// `faulting`, as an ordinary `copy_to_user`).
pub(crate) fn copy_out(faulting: bool, addr: u64, src: &[u8]) -> Result<(), Fail> {
    if faulting {
        let user = UserSlice::new(UserPtr::from_addr(addr as usize), src.len());
        return Ok(user.writer().write_slice(src)?);
    }
    // SAFETY: `src` is readable for its length; the destination is a user
    // address, which `copy_to_user_nofault` checks (`access_ok`) and writes
    // with faults disabled, failing instead of faulting.
    let rc = unsafe {
        bindings::copy_to_user_nofault(
            addr as usize as *mut kernel::ffi::c_void,
            src.as_ptr().cast(),
            src.len(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Fail::Fault {
            addr,
            len: src.len(),
            write: true,
        })
    }
}

/// What a command produced: its status and the `result` dword.
pub(crate) struct Done {
    pub(crate) status: i64,
    pub(crate) result: u32,
}

impl Done {
    pub(crate) const OK: Done = Done {
        status: 0,
        result: 0,
    };

    pub(crate) fn status(status: i64) -> Done {
        Done { status, result: 0 }
    }
}

/// The descriptor an `IoctlFn` received, checked: `None` if `p` is null
/// or the parent's descriptor is shorter than this child's.
///
/// # Safety
///
/// `p` is null or points to a descriptor that is valid and writable for
/// `'a`, and nothing else accesses it meanwhile (the parent's promise for
/// the call).
pub(crate) unsafe fn call_from<'a>(p: *mut CallDesc) -> Option<&'a mut CallDesc> {
    // SAFETY: per the contract, non-null means valid and exclusive.
    let call = unsafe { p.as_mut() }?;
    (call.size as usize >= core::mem::size_of::<CallDesc>()).then_some(call)
}

/// One `struct nvme_passthru_cmd` at `call.arg`: copied in, checked
/// (reserved fields: EINVAL; permissions: EACCES), `result` made writable,
/// run by `exec`, and its `result` written back. `faulting`: ordinary
/// copies (a fault injection). Returns the ioctl's result ([`finish`]).
pub(crate) fn run(
    call: &mut CallDesc,
    admin: bool,
    faulting: bool,
    exec: impl FnOnce(&Passthru) -> Result<Done, Fail>,
) -> i64 {
    let r = run_checked(call, admin, faulting, exec);
    finish(call, r)
}

fn run_checked(
    call: &CallDesc,
    admin: bool,
    faulting: bool,
    exec: impl FnOnce(&Passthru) -> Result<Done, Fail>,
) -> Result<i64, Fail> {
    let mut raw = [0u8; PASSTHRU_LEN];
    copy_in(faulting, call.arg, &mut raw)?;
    let cmd = Passthru::parse(&raw);
    if cmd.flags != 0
        || cmd.rsvd1 != 0
        || cmd.metadata != 0
        || cmd.metadata_len != 0
        || cmd.cdw2 != 0
        || cmd.cdw3 != 0
    {
        return Err(EINVAL.into());
    }
    let privileged = call.flags & CALL_FLAG_ADMIN != 0;
    let writable = call.flags & CALL_FLAG_WRITE != 0;
    if !privileged && !allowed_unprivileged(call.node, admin, &cmd, writable) {
        return Err(EACCES.into());
    }
    // `result` must be writable before the command changes anything:
    // a fault here is retried, one after it could not be.
    let result_at = call.arg.wrapping_add(RESULT_OFF as u64);
    copy_out(faulting, result_at, &0u32.to_le_bytes())?;
    let done = exec(&cmd)?;
    match copy_out(faulting, result_at, &done.result.to_le_bytes()) {
        Ok(()) => Ok(done.status),
        // Evicted since the check above: the command ran, so no retry.
        Err(_) => Err(EFAULT.into()),
    }
}

/// `nvme_cmd_allowed` for a caller without CAP_SYS_ADMIN: Identify of a
/// namespace or the controller; on the namespace's block device, the I/O
/// commands this controller supports, a write only through a file open for
/// writing. Nothing else.
pub(crate) fn allowed_unprivileged(node: u32, admin: bool, cmd: &Passthru, writable: bool) -> bool {
    if admin {
        return cmd.opcode == ADMIN_IDENTIFY && matches!(cmd.cdw10() & 0xff, 0 | 1);
    }
    node == NODE_BLOCK
        && match cmd.opcode {
            IO_READ | IO_FLUSH => true,
            IO_WRITE => writable,
            _ => false,
        }
}
