// SPDX-License-Identifier: GPL-2.0

//! The controller node's NVMe ioctls on the real controller: nvme-cli's
//! admin commands (`NVME_IOCTL_ADMIN_CMD` on `/dev/hotup0` and on
//! `/dev/hotupblk0`) go to QEMU's controller through its admin queue, so
//! `id-ctrl` shows its model and serial, and SMART and features come from
//! the device. `NVME_IOCTL_ID` on the block device answers namespace 1.
//!
//! Only commands that leave the child's view of the controller true pass:
//! Identify, Get Log Page, Get Features, and Set Features but for Number
//! of Queues (the I/O queues are this child's, created at bring-up and
//! handed over at upgrades). Anything else (queue creation or deletion,
//! Abort, Asynchronous Event Request, which would hold the polled admin
//! queue, Format, firmware) is refused with Invalid Command Opcode, as is
//! I/O passthrough (`NVME_IOCTL_IO_CMD`: block I/O goes through the block
//! device). A command moves at most one page of data, through the arena's
//! identify page (the DMA buffer), under the admin queue's lock.
//!
//! Decoding, reserved-field and permission checks and the user copies with
//! page faults disabled are `passthru.rs`'s, shared with the RAM child.

use super::ctrl::{Dev, PAGE, PG_ID_CTRL};
use crate::passthru::{
    self, copy_in, copy_out, Done, Fail, Passthru, ADMIN_GET_FEATURES, ADMIN_GET_LOG_PAGE,
    ADMIN_IDENTIFY, ADMIN_SET_FEATURES, NVME_IOCTL_ADMIN_CMD, NVME_IOCTL_ID, NVME_IOCTL_IO_CMD,
    SC_INVALID_FIELD, SC_INVALID_OPCODE,
};
use crate::state_abi::{CallDesc, NODE_BLOCK};
use kernel::prelude::*;

/// The namespace QEMU's controller has (`-device nvme-ns` or the drive).
const NSID: u32 = 1;

impl Dev {
    /// An ioctl on one of the parent's nodes (`IoctlFn`).
    pub(crate) fn ioctl(&self, call: &mut CallDesc) -> i64 {
        match call.cmd {
            NVME_IOCTL_ID if call.node == NODE_BLOCK => i64::from(NSID),
            NVME_IOCTL_ADMIN_CMD => passthru::run(call, true, false, |cmd| self.passthrough(cmd)),
            // Block I/O goes through the block device.
            NVME_IOCTL_IO_CMD => i64::from(ENOTTY.to_errno()),
            _ => i64::from(ENOTTY.to_errno()),
        }
    }

    /// One admin command to the controller: checked, its data bounced
    /// through the arena's identify page, run on the admin queue.
    fn passthrough(&self, cmd: &Passthru) -> Result<Done, Fail> {
        if let Some(refused) = refusal(cmd) {
            return Ok(Done::status(refused));
        }
        let len = cmd.data_len as usize;
        // Data direction: opcode bit 0 host to controller, bit 1 back.
        let to_device = cmd.opcode & 1 != 0;
        let from_device = cmd.opcode & 2 != 0;
        let arena = self.arena().ok_or(ENODEV)?;
        let mut buf = KVec::with_capacity(PAGE, GFP_KERNEL)?;
        buf.resize(PAGE, 0, GFP_KERNEL)?;
        let user = buf.get_mut(..len.min(PAGE)).ok_or(EINVAL)?;
        if to_device {
            copy_in(false, cmd.addr, user)?;
        }
        if from_device {
            // Resident before the command runs: a fault after it would
            // make the parent call again, and run it twice.
            copy_out(false, cmd.addr, user)?;
        }
        let off = PG_ID_CTRL * PAGE;
        let mut sqe = [0u32; 16];
        sqe[0] = u32::from(cmd.opcode);
        sqe[1] = cmd.nsid;
        for (d, w) in sqe.iter_mut().skip(10).zip(cmd.cdw) {
            *d = w;
        }
        // Always the bounce page: the controller transfers what the
        // command says (a whole page for Identify), whatever `data_len`
        // says, and must never DMA to address 0.
        let prp1 = arena.dma(off);
        sqe[6] = prp1 as u32;
        sqe[7] = (prp1 >> 32) as u32;
        let (status, result) = {
            let held = self.admin_lock.lock();
            // The page is ours only once a timed-out command's late
            // completion is in (else EBUSY).
            self.admin_settle(&held, &arena, "passthrough")?;
            // The whole page: no byte of an earlier command goes out or
            // comes back.
            arena.write_bytes(off, &buf);
            let r = self.admin_locked(&held, &arena, sqe, "passthrough")?;
            if from_device && r.0 == 0 {
                arena.read_bytes(off, &mut buf);
            }
            r
        };
        if from_device && status == 0 {
            let user = buf.get(..len.min(PAGE)).ok_or(EINVAL)?;
            // Faulted in above: a fault now (evicted meanwhile) cannot be
            // retried, the command ran.
            copy_out(false, cmd.addr, user).map_err(|_| Fail::Errno(EFAULT))?;
        }
        Ok(Done {
            status: i64::from(status),
            result,
        })
    }
}

/// Why `cmd` does not go to the controller (an NVMe status), if it does
/// not: the opcodes and features that leave the child's view of the
/// controller true, transferring at most the one bounce page.
fn refusal(cmd: &Passthru) -> Option<i64> {
    let fid = cmd.cdw10() & 0xff;
    match cmd.opcode {
        ADMIN_IDENTIFY | ADMIN_GET_FEATURES => None,
        // NUMD: dwords - 1, upper half in cdw11.
        ADMIN_GET_LOG_PAGE => {
            let numd = (cmd.cdw10() >> 16) | ((cmd.cdw[1] & 0xffff) << 16);
            (u64::from(numd) + 1 > (PAGE / 4) as u64).then_some(SC_INVALID_FIELD)
        }
        ADMIN_SET_FEATURES if SETTABLE.contains(&fid) => None,
        ADMIN_SET_FEATURES => Some(SC_INVALID_FIELD),
        _ => Some(SC_INVALID_OPCODE),
    }
}

/// Features a caller may set: arbitration, power management, temperature
/// threshold, error recovery, volatile write cache, interrupt coalescing,
/// interrupt vector configuration, write atomicity, asynchronous event
/// configuration, timestamp. Not Number of Queues (the I/O queues are the
/// child's), Host Memory Buffer (DMA to addresses the caller names), Keep
/// Alive (a controller that stops without it) or vendor features.
const SETTABLE: [u32; 10] = [0x01, 0x02, 0x04, 0x05, 0x06, 0x08, 0x09, 0x0a, 0x0b, 0x0e];
