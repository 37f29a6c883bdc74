// SPDX-License-Identifier: GPL-2.0

//! The controller's command set: the NVMe ioctls of the kernel's NVMe
//! driver, enough for the stock `nvme` tool (nvme-cli) on the parent's
//! controller node (`/dev/hotup0`) and namespace (`/dev/hotupblk0`).
//!
//! - `NVME_IOCTL_ADMIN_CMD` (both nodes): Identify (CNS 0 namespace, 1
//!   controller, 2 active namespace list), Get Log Page (SMART / Health,
//!   error log, firmware slots), Get and Set Features (temperature
//!   threshold 0x04, volatile write cache 0x06, number of queues 0x07).
//! - `NVME_IOCTL_IO_CMD`: read, write and flush of namespace 1, through the
//!   same region the block path uses.
//! - `NVME_IOCTL_ID` (block device): namespace 1.
//!
//! Results follow the kernel's driver: 0, a positive NVMe status (status
//! code | type << 8, with Do Not Retry), or a negative errno. Permissions
//! follow `nvme_cmd_allowed`: with CAP_SYS_ADMIN everything; without it,
//! Identify of a namespace or the controller, and on the block device read
//! and flush, and write only through a file open for writing; anything
//! else is EACCES. Malformed commands: `flags`, metadata or
//! reserved fields set -> EINVAL; a data buffer shorter than the command
//! needs -> EINVAL; a bad user pointer -> EFAULT.
//!
//! The controller's counters and feature values (`ControllerState`) travel
//! in the blob's `NVMC` section, so they survive upgrades.
//!
//! The ioctl mechanics (decoding, checks, user copies with faults
//! disabled) are `passthru.rs`'s, shared with `hotup_nvme`.

use super::passthru::{
    self, copy_in, copy_out, finish, Done, Fail, Passthru, ADMIN_GET_FEATURES, ADMIN_GET_LOG_PAGE,
    ADMIN_IDENTIFY, ADMIN_SET_FEATURES, IO_FLUSH, IO_READ, IO_WRITE, NVME_IOCTL_ADMIN_CMD,
    NVME_IOCTL_ID, NVME_IOCTL_IO_CMD, SC_FEATURE_NOT_SAVEABLE, SC_INVALID_FIELD,
    SC_INVALID_LOG_PAGE, SC_INVALID_NS, SC_INVALID_OPCODE, SC_LBA_RANGE,
};
use super::{Dev, Region};
use crate::state_abi::{
    CallDesc, ControllerState, IoSegment, CALL_FLAG_ADMIN, CALL_FLAG_WRITE, NODE_BLOCK,
};
use kernel::{
    bindings,
    prelude::*,
    sync::Arc,
    time::{delay::fsleep, Delta},
};

/// hotup's own, on the controller node: `_IOW('H', 0x01, u64)`, set this
/// open file's value (a per-file setting, e.g. an event subscription).
const HOTUP_IOCTL_FILE_SET: u32 = 0x4008_4801;
/// `_IOR('H', 0x02, u64)`: read it back (ENODATA if never set).
const HOTUP_IOCTL_FILE_GET: u32 = 0x8008_4802;
/// The one LBA format: 4096-byte blocks (`lbads` 12).
pub(crate) const LBA_SHIFT: u32 = 12;
// The parent's disk has the same logical block size (`blk.rs`, `LBA_SIZE`):
// the child refuses a geometry with another (`take_blob`, the services).
/// Maximum data transfer: 2^6 pages of 4 KiB (`mdts`), 256 KiB.
const MDTS: u8 = 6;
const MAX_TRANSFER: usize = 4096 << MDTS;
/// Our namespace.
const NSID: u32 = 1;

const FEAT_TEMP_THRESHOLD: u8 = 0x04;
const FEAT_VOLATILE_WC: u8 = 0x06;
const FEAT_NUM_QUEUES: u8 = 0x07;

/// Writes `s` into `dst`, space-padded (the ASCII fields of Identify).
fn ascii(dst: &mut [u8], s: &[u8]) {
    for (i, d) in dst.iter_mut().enumerate() {
        *d = s.get(i).copied().unwrap_or(b' ');
    }
}

/// Stores `v` little-endian at `off` of `page` (if it fits).
fn put(page: &mut [u8], off: usize, v: &[u8]) {
    if let Some(d) = page.get_mut(off..off + v.len()) {
        d.copy_from_slice(v);
    }
}

/// A zeroed 4 KiB buffer for a data-returning admin command.
fn page() -> Result<KVec<u8>> {
    let mut v = KVec::with_capacity(4096, GFP_KERNEL)?;
    v.resize(4096, 0, GFP_KERNEL)?;
    Ok(v)
}

impl Dev {
    /// An ioctl on one of the parent's nodes (`IoctlFn`).
    pub(super) fn ioctl(self: &Arc<Self>, call: &mut CallDesc) -> i64 {
        if self.faults.call_delay > Delta::ZERO {
            fsleep(self.faults.call_delay);
        }
        match call.cmd {
            NVME_IOCTL_ID if call.node == NODE_BLOCK => i64::from(NSID),
            NVME_IOCTL_ADMIN_CMD => self.passthru(call, true),
            NVME_IOCTL_IO_CMD => self.passthru(call, false),
            HOTUP_IOCTL_FILE_SET | HOTUP_IOCTL_FILE_GET if call.file != 0 => {
                let r = self.file_value(call).map(|()| 0);
                finish(call, r)
            }
            _ => i64::from(ENOTTY.to_errno()),
        }
    }

    /// One `struct nvme_passthru_cmd` ([`passthru::run`]).
    fn passthru(self: &Arc<Self>, call: &mut CallDesc, admin: bool) -> i64 {
        passthru::run(call, admin, self.faults.faulting_copies, |cmd| {
            if !admin {
                return self.io(cmd);
            }
            let done = self.admin(cmd)?;
            self.state.lock().ctrl.admin_cmds += 1;
            Ok(done)
        })
    }

    /// `HOTUP_IOCTL_FILE_SET` / `_GET`: the per-file value, kept by the
    /// parent's file id and carried in the blob (`FILE` section).
    fn file_value(&self, call: &CallDesc) -> Result<(), Fail> {
        let mut v = [0u8; 8];
        if call.cmd == HOTUP_IOCTL_FILE_SET {
            // A slot of the controller's (at most `MAX_FILES`): only a
            // writer or an administrator takes one.
            if call.flags & (CALL_FLAG_WRITE | CALL_FLAG_ADMIN) == 0 {
                return Err(EACCES.into());
            }
            copy_in(self.faults.faulting_copies, call.arg, &mut v)?;
            let mut g = self.state.lock();
            // At most `MAX_FILES` files keep a value.
            g.files
                .set(call.file, u64::from_le_bytes(v))
                .map_err(|_| ENOSPC)?;
            return Ok(());
        }
        let value = (self.state.lock().files.get(call.file))
            .ok_or(Error::from_errno(-(bindings::ENODATA as i32)))?;
        copy_out(self.faults.faulting_copies, call.arg, &value.to_le_bytes())
    }

    fn admin(&self, cmd: &Passthru) -> Result<Done, Fail> {
        match cmd.opcode {
            ADMIN_IDENTIFY => self.identify(cmd),
            ADMIN_GET_LOG_PAGE => self.get_log_page(cmd),
            ADMIN_GET_FEATURES => Ok(self.get_features(cmd)),
            ADMIN_SET_FEATURES => Ok(self.set_features(cmd)),
            _ => Ok(Done::status(SC_INVALID_OPCODE)),
        }
    }

    /// The namespace's size in logical blocks.
    fn nsze(&self) -> u64 {
        self.state
            .lock()
            .region
            .map_or(0, |r| r.len.min(self.capacity()) >> LBA_SHIFT)
    }

    fn capacity(&self) -> u64 {
        self.services().map_or(0, |s| s.capacity_bytes)
    }

    fn identify(&self, cmd: &Passthru) -> Result<Done, Fail> {
        let cns = cmd.cdw10() & 0xff;
        let mut p = page()?;
        match cns {
            0 => {
                if cmd.nsid != NSID {
                    return Ok(Done::status(SC_INVALID_NS));
                }
                let n = self.nsze();
                put(&mut p, 0, &n.to_le_bytes()); // nsze
                put(&mut p, 8, &n.to_le_bytes()); // ncap
                put(&mut p, 16, &n.to_le_bytes()); // nuse
                                                   // dlfeat: deallocated blocks read zeroes, write zeroes
                                                   // can deallocate.
                put(&mut p, 33, &[0x09]);
                put(&mut p, 48, &u128::from(n << LBA_SHIFT).to_le_bytes()); // nvmcap
                                                                            // lbaf[0]: no metadata, 2^12-byte blocks, best performance.
                put(&mut p, 128, &[0, 0, LBA_SHIFT as u8, 0]);
            }
            1 => self.identify_controller(&mut p),
            2 => {
                // Active namespaces above `nsid`: ours, if it is above.
                if cmd.nsid < NSID {
                    put(&mut p, 0, &NSID.to_le_bytes());
                }
            }
            _ => return Ok(Done::status(SC_INVALID_FIELD)),
        }
        // An Identify page: the buffer must hold all 4 KiB.
        self.data_out(cmd, &p)
    }

    fn identify_controller(&self, p: &mut [u8]) {
        let svc = self.services();
        put(p, 0, &0x4854u16.to_le_bytes()); // vid
        put(p, 2, &0x4854u16.to_le_bytes()); // ssvid
        if let Some(d) = p.get_mut(4..24) {
            ascii(d, b"HOTUP0000000001");
        }
        if let Some(d) = p.get_mut(24..64) {
            ascii(d, b"hotup RAM-backed NVMe-style controller");
        }
        // fr: the child's version, so `nvme id-ctrl` shows which driver runs.
        put(p, 64, &firmware_revision());
        put(p, 72, &[6]); // rab
        put(p, 77, &[MDTS]);
        put(p, 78, &1u16.to_le_bytes()); // cntlid
        put(p, 80, &0x0001_0400u32.to_le_bytes()); // ver 1.4
        put(p, 111, &[1]); // cntrltype: I/O controller
        put(p, 258, &[3]); // acl
        put(p, 259, &[3]); // aerl
        put(p, 260, &[0x03]); // frmw: one slot, read-only
        put(p, 264, &[1]); // avscc
        put(p, 266, &343u16.to_le_bytes()); // wctemp
        put(p, 268, &373u16.to_le_bytes()); // cctemp
        put(p, 512, &[0x66]); // sqes
        put(p, 513, &[0x44]); // cqes
        let depth = svc.map_or(64, |s| s.queue_depth);
        put(p, 514, &(depth.min(0xffff) as u16).to_le_bytes()); // maxcmd
        put(p, 516, &NSID.to_le_bytes()); // nn
        put(p, 520, &0x000cu16.to_le_bytes()); // oncs: dsm, write zeroes
        put(p, 525, &[1]); // vwc present
        put(p, 530, &[1]); // nvscc
        if let Some(d) = p.get_mut(768..768 + 26) {
            d.copy_from_slice(b"nqn.2026-11.io.hotup:ctrl0");
        }
        put(p, 2048, &2500u16.to_le_bytes()); // psd0: 25.00 W
    }

    fn get_log_page(&self, cmd: &Passthru) -> Result<Done, Fail> {
        let lid = cmd.cdw10() & 0xff;
        let numd = u64::from((cmd.cdw10() >> 16) | (cmd.cdw11() & 0xffff) << 16) + 1;
        let len = numd * 4;
        let offset = u64::from(cmd.cdw12()) | u64::from(cmd.cdw13()) << 32;
        if len > u64::from(cmd.data_len) || len > 4096 {
            return Err(EINVAL.into());
        }
        let mut p = page()?;
        match lid {
            // Error information: no entries. Firmware slots: slot 1.
            0x01 => {}
            0x03 => {
                put(&mut p, 0, &[1]); // afi: slot 1 active
                put(&mut p, 8, &firmware_revision());
            }
            0x02 => self.smart_log(&mut p),
            _ => return Ok(Done::status(SC_INVALID_LOG_PAGE)),
        }
        // The page from `offset`, zeroes past its end.
        let off = offset.min(4096) as usize;
        let mut out = page()?;
        for (d, s) in out.iter_mut().zip(p.get(off..).unwrap_or_default()) {
            *d = *s;
        }
        self.data_out(cmd, out.get(..len as usize).unwrap_or_default())
    }

    fn smart_log(&self, p: &mut [u8]) {
        let (c, now) = {
            let g = self.state.lock();
            (g.ctrl, g.power_on_ns())
        };
        // Data units: thousands of 512-byte units, rounded up.
        let units = |bytes: u64| u128::from(bytes.div_ceil(512_000));
        put(p, 1, &313u16.to_le_bytes()); // temperature: 40 C
        put(p, 3, &[100, 10, 0]); // available spare, threshold, used
        put(p, 32, &units(c.bytes_read).to_le_bytes());
        put(p, 48, &units(c.bytes_written).to_le_bytes());
        put(p, 64, &u128::from(c.host_reads).to_le_bytes());
        put(p, 80, &u128::from(c.host_writes).to_le_bytes());
        put(p, 112, &u128::from(c.power_cycles).to_le_bytes());
        let hours = now / 3_600_000_000_000;
        put(p, 128, &u128::from(hours).to_le_bytes());
        put(p, 144, &u128::from(c.unsafe_shutdowns).to_le_bytes());
    }

    fn get_features(&self, cmd: &Passthru) -> Done {
        let fid = (cmd.cdw10() & 0xff) as u8;
        let sel = (cmd.cdw10() >> 8) & 7;
        let c = self.state.lock().ctrl;
        let default = self.default_ctrl();
        let (cur, def) = match fid {
            FEAT_TEMP_THRESHOLD => {
                if (cmd.cdw11() >> 16) & 0x3f != 0 {
                    // Only the composite temperature's over-threshold.
                    return Done::status(SC_INVALID_FIELD);
                }
                (c.temp_threshold, default.temp_threshold)
            }
            FEAT_VOLATILE_WC => (c.volatile_wc, default.volatile_wc),
            FEAT_NUM_QUEUES => (c.queues, default.queues),
            _ => return Done::status(SC_INVALID_FIELD),
        };
        let result = match sel {
            // Current, or saved (nothing is saveable: the current value).
            0 | 2 => cur,
            1 => def,
            // Supported capabilities: changeable.
            3 => 0x4,
            _ => return Done::status(SC_INVALID_FIELD),
        };
        Done { status: 0, result }
    }

    fn set_features(&self, cmd: &Passthru) -> Done {
        let fid = (cmd.cdw10() & 0xff) as u8;
        if cmd.cdw10() & (1 << 31) != 0 {
            return Done::status(SC_FEATURE_NOT_SAVEABLE);
        }
        let v = cmd.cdw11();
        let most = self.default_ctrl().queues & 0xffff;
        let mut g = self.state.lock();
        match fid {
            FEAT_TEMP_THRESHOLD => {
                if (v >> 16) & 0x3f != 0 {
                    return Done::status(SC_INVALID_FIELD);
                }
                g.ctrl.temp_threshold = v & 0xffff;
                Done::OK
            }
            FEAT_VOLATILE_WC => {
                g.ctrl.volatile_wc = v & 1;
                Done::OK
            }
            FEAT_NUM_QUEUES => {
                let (sq, cq) = (v & 0xffff, v >> 16);
                if sq == 0xffff || cq == 0xffff {
                    return Done::status(SC_INVALID_FIELD);
                }
                let granted = sq.min(most) | cq.min(most) << 16;
                g.ctrl.queues = granted;
                Done {
                    status: 0,
                    result: granted,
                }
            }
            _ => Done::status(SC_INVALID_FIELD),
        }
    }

    /// The feature values of a controller that was never set.
    pub(super) fn default_ctrl(&self) -> ControllerState {
        let q = self.services().map_or(1, |s| s.nr_queues.max(1)) - 1;
        ControllerState {
            queues: q | q << 16,
            ..ControllerState::FRESH
        }
    }

    /// An I/O command on namespace 1.
    fn io(&self, cmd: &Passthru) -> Result<Done, Fail> {
        if cmd.nsid != NSID {
            return Ok(Done::status(SC_INVALID_NS));
        }
        let slba = u64::from(cmd.cdw10()) | u64::from(cmd.cdw11()) << 32;
        let nlb = u64::from(cmd.cdw12() & 0xffff) + 1;
        let bytes = nlb << LBA_SHIFT;
        match cmd.opcode {
            IO_FLUSH => return Ok(Done::OK),
            IO_READ | IO_WRITE => {}
            _ => return Ok(Done::status(SC_INVALID_OPCODE)),
        }
        let write = cmd.opcode == IO_WRITE;
        if bytes > u64::from(cmd.data_len) {
            return Err(EINVAL.into());
        }
        if bytes > MAX_TRANSFER as u64 {
            return Ok(Done::status(SC_INVALID_FIELD));
        }
        if slba.checked_add(nlb).is_none_or(|end| end > self.nsze()) {
            return Ok(Done::status(SC_LBA_RANGE));
        }
        let region: Region = {
            let g = self.state.lock();
            if !g.accepting {
                return Err(EBUSY.into());
            }
            g.region.ok_or(ENXIO)?
        };
        let len = bytes as usize;
        let mut buf = KVVec::with_capacity(len, GFP_KERNEL)?;
        buf.resize(len, 0, GFP_KERNEL)?;
        let seg = [IoSegment {
            addr: buf.as_mut_ptr(),
            len: len as u32,
            reserved: 0,
        }];
        let off = slba << LBA_SHIFT;
        // A write takes the data in before touching the region; a read
        // changes nothing before its copy out: either may fault and retry.
        if write {
            copy_in(self.faults.faulting_copies, cmd.addr, &mut buf)?;
            region.transfer(off, &seg, true)?;
        } else {
            region.transfer(off, &seg, false)?;
            copy_out(self.faults.faulting_copies, cmd.addr, &buf)?;
        }
        let mut g = self.state.lock();
        if write {
            g.ctrl.host_writes += 1;
            g.ctrl.bytes_written += bytes;
        } else {
            g.ctrl.host_reads += 1;
            g.ctrl.bytes_read += bytes;
        }
        Ok(Done::OK)
    }

    /// Copies `data` to the command's buffer (`data_len` must hold it).
    fn data_out(&self, cmd: &Passthru, data: &[u8]) -> Result<Done, Fail> {
        if (cmd.data_len as usize) < data.len() {
            return Err(EINVAL.into());
        }
        copy_out(self.faults.faulting_copies, cmd.addr, data)?;
        Ok(Done::OK)
    }
}

/// The firmware revision field: `v<CHILD_VERSION>`, space-padded.
fn firmware_revision() -> [u8; 8] {
    let mut fr = [b' '; 8];
    let mut v = crate::CHILD_VERSION;
    let mut digits = [0u8; 10];
    let mut n = 0;
    loop {
        if let Some(d) = digits.get_mut(n) {
            *d = b'0' + (v % 10) as u8;
        }
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    fr[0] = b'v';
    for (i, d) in digits.iter().take(n.min(7)).rev().enumerate() {
        if let Some(slot) = fr.get_mut(i + 1) {
            *slot = *d;
        }
    }
    fr
}
