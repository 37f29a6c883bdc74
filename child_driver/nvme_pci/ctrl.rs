// SPDX-License-Identifier: GPL-2.0

//! `hotup_nvme`: a driver of QEMU's emulated NVMe controller behind the
//! parent. The parent owns the PCI function, BAR0, the vectors and the DMA
//! arena (`state_abi` 1.3); this child owns the protocol: the bring-up of a
//! fresh controller, the queues' pointers, command ids and completions. An
//! upgrade hands the queues over as they are (the `NVQP` section): the
//! controller is never reset and no queue is deleted.
//!
//! One `Dev` drives one controller (the parent's device `index`; `drives.rs`
//! holds one per device and fans the child's operations out): the admin queue and
//! an I/O queue pair per vector after the admin's (a vCPU each, at most 8;
//! a request submits on the pair of the CPU it is issued on, CPU `c` on
//! pair `c % n`, serialised by that pair's spinlock, completions reaped by
//! its vector, which the parent delivers to CPU `p` for pair `p` (when
//! online)), reads, writes
//! (FUA), flushes; PRPs built from the request's segments mapped for DMA.
//! A classic upgrade drains: nothing is outstanding when the blob is
//! written.
//!
//! Arena layout (pages of 4 KiB): 0 identify controller, 1 identify
//! namespace, 2 admin SQ, 3 admin CQ, then per I/O pair (8 places) 4 pages
//! of SQ and 1 of CQ, then one PRP list page per command slot.

use super::hwio::{Arena, Services};
use crate::state_abi::{
    tag, BlobReader, BlobWriter, ChildStats, HwInfo, IoDesc, IoOp, IoSegment, IO_FLAGS_KNOWN,
    IO_FLAG_FUA, IRQ_DEVICE_GONE,
};
use core::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering::*};
use kernel::{
    new_mutex, new_spinlock,
    prelude::*,
    sync::{Mutex, MutexGuard, SpinLock},
    time::{delay::fsleep, Delta},
};

/// The parent's device this child drives.
pub(crate) const PAGE: usize = 4096;
pub(crate) const PG_ID_CTRL: usize = 0;
const PG_ID_NS: usize = 1;
const PG_ASQ: usize = 2;
const PG_ACQ: usize = 3;
/// Most I/O queue pairs.
const MAX_IOQ: usize = 8;
/// The first page of pair `q`'s SQ (4 pages) and CQ (1 page).
const fn pg_iosq(q: usize) -> usize {
    4 + 5 * q
}
const fn pg_iocq(q: usize) -> usize {
    pg_iosq(q) + 4
}
const PG_PRP: usize = pg_iosq(MAX_IOQ);
/// The shadow doorbells (Doorbell Buffer Config, NVMe 1.3): the host's
/// doorbell values and the controller's event indexes, a page each, in
/// the last pair's pages (at most `MAX_IOQ - 1` pairs are created).
const PG_DBS: usize = pg_iosq(MAX_IOQ - 1);
const PG_EIS: usize = PG_DBS + 1;
/// Admin queue entries (one page of SQ and of CQ).
const ADMIN_DEPTH: u16 = 32;
/// I/O queue entries: more than command slots, so the SQ is never full.
const IO_DEPTH: u16 = 256;
/// Command slots: the most commands outstanding (the parent's tags).
const SLOTS: usize = 128;
/// Segments per request (the parent's limit).
const MAX_MAPS: usize = 64;
/// Bits of a command id that name its slot; the rest is a generation.
const SLOT_BITS: u32 = 7;
/// Largest request the parent sends (bytes).
const MAX_REQUEST: u64 = 256 * 1024;
/// The largest discard or write zeroes (the parent's limit, 1 MiB).
const MAX_ZEROING: u64 = 1024 * 1024;

/// The blob section of this driver: the controller's queues as they are.
pub(crate) const SECTION: u32 = tag(b"NVQP");

/// The section of device `dev`'s queues: `NVQP` for device 0 (as before
/// there was more than one), `NVQ1`.. for the others, the same layout.
pub(crate) const fn section_of(dev: u32) -> u32 {
    match dev {
        0 => SECTION,
        d => tag(&[b'N', b'V', b'Q', b'0' + (d % 10) as u8]),
    }
}
/// Its version.
pub(crate) const SECTION_VERSION: u16 = 4;
/// The oldest version adopted: 3 (before the shadow doorbells; a child of
/// that time refuses version 4, so it never adopts a controller whose
/// doorbells it would ring only through MMIO).
const SECTION_VERSION_MIN: u16 = 3;
/// The queues' epoch, a u64 in the arena (parent memory: it outlives every
/// child) past the admin SQ's 32 entries: 1 at bring-up, one more at each
/// adopt. A state carries the epoch it was written at and only that epoch
/// is adopted, so a stale one (the parent's last good state, older than
/// what the controller has run since) is refused instead of making the
/// controller run old entries again.
const EPOCH_OFF: usize = PG_ASQ * PAGE + PAGE - 8;
/// The admin queue's bookkeeping, in the arena beside the epoch (past the
/// admin SQ's entries), so a successor inherits it with the queue: the
/// next command-id generation, and the id plus one of a command that timed
/// out and has not completed (0: none; an arena an older child left has 0).
/// Until that command's completion is consumed the controller may still
/// write the data page, so no other command runs (EBUSY). Under
/// `admin_lock`.
const ADMIN_GEN_OFF: usize = PG_ASQ * PAGE + PAGE - 16;
const ADMIN_STALE_OFF: usize = PG_ASQ * PAGE + PAGE - 12;
/// 1 once the controller takes its I/O doorbells from the shadow buffer
/// (the controller's state, so it stays in the arena with the queues).
const DBBUF_OFF: usize = PG_ASQ * PAGE + PAGE - 20;
const _: () = assert!(ADMIN_DEPTH as usize * 64 <= PAGE - 20);

/// The timed-out admin command's id, if one is outstanding (a word out of
/// range, which no child writes, reads as none).
fn stale_cid(a: &Arena) -> Option<u32> {
    match a.read32(ADMIN_STALE_OFF) {
        v @ 1..=0x1_0000 => Some(v - 1),
        _ => None,
    }
}

fn set_stale(a: &Arena, cid: Option<u32>) {
    a.write32(ADMIN_STALE_OFF, cid.map_or(0, |c| c + 1));
}
/// The device-state schema this child writes and reads.
pub(crate) const SCHEMA: u32 = 1;
/// `hotup_schema=SCHEMA` in the module file's `.modinfo` (`modinfo` shows
/// it; `hotupctl upgrade` reads it before a classic unload).
// `used(compiler)`, as `module!`'s own strings: a plain `#[used]` makes a
// second, retained `.modinfo` section, which modpost and the loader refuse.
#[link_section = ".modinfo"]
#[used(compiler)]
static MODINFO_SCHEMA: [u8; 15] = crate::state_abi::modinfo_schema(SCHEMA);

// Controller registers.
const REG_CAP: u32 = 0x0;
const REG_CC: u32 = 0x14;
const REG_CSTS: u32 = 0x1c;
const REG_AQA: u32 = 0x24;
const REG_ASQ: u32 = 0x28;
const REG_ACQ: u32 = 0x30;
/// CC for I/O: 64-byte SQ entries, 16-byte CQ entries, 4 KiB pages, NVM.
const CC_IO: u32 = (6 << 16) | (4 << 20);

/// One command slot: what its completion needs.
struct Cmd {
    cookie: AtomicU64,
    /// Generation in the command id it was submitted with.
    generation: AtomicU32,
    /// Mapped segments, and bit 31 for "towards the device".
    maps: AtomicU32,
    dma: [AtomicU64; MAX_MAPS],
    len: [AtomicU32; MAX_MAPS],
}

impl Cmd {
    const fn new() -> Self {
        Cmd {
            cookie: AtomicU64::new(0),
            generation: AtomicU32::new(0),
            maps: AtomicU32::new(0),
            dma: [const { AtomicU64::new(0) }; MAX_MAPS],
            len: [const { AtomicU32::new(0) }; MAX_MAPS],
        }
    }
}

/// One I/O queue pair: the submission tail under its lock, the completion
/// head and phase owned by whoever holds `reaping`.
#[pin_data]
struct IoQ {
    #[pin]
    sq: SpinLock<u16>,
    cq_head: AtomicU32,
    cq_phase: AtomicU32,
    reaping: AtomicBool,
    again: AtomicBool,
}

impl IoQ {
    fn new() -> impl PinInit<Self> {
        pin_init!(IoQ {
            sq <- new_spinlock!(0u16),
            cq_head: AtomicU32::new(0),
            cq_phase: AtomicU32::new(1),
            reaping: AtomicBool::new(false),
            again: AtomicBool::new(false),
        })
    }

    fn set(&self, tail: u32, cq: u32) {
        *self.sq.lock() = tail as u16;
        self.cq_head.store(cq & 0xffff, Relaxed);
        self.cq_phase.store(cq >> 16, Relaxed);
    }
}

/// What the driver keeps of a controller (set by adopt, read anywhere).
struct Geo {
    arena_cpu: AtomicPtr<u8>,
    arena_dma: AtomicU64,
    arena_len: AtomicU64,
    dstrd: AtomicU32,
    lba_shift: AtomicU32,
    nsze: AtomicU64,
    vectors: AtomicU32,
    /// I/O queue pairs in use.
    nr_io: AtomicU32,
    /// Identify Controller's ONCS: bit 2 Dataset Management (discard),
    /// bit 3 Write Zeroes.
    oncs: AtomicU32,
}

/// Counters.
#[derive(Default)]
struct Counters {
    submitted: AtomicU64,
    completed: AtomicU64,
    reads: AtomicU64,
    writes: AtomicU64,
    flushes: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    errors: AtomicU64,
    stray: AtomicU64,
    irqs: AtomicU64,
    /// Completions of commands found outstanding (`inject_lost_completion`).
    matched: AtomicU64,
}

/// The driver of one controller.
#[pin_data]
pub(crate) struct Dev {
    /// The parent's device index of this controller.
    pub(crate) index: u32,
    pub(crate) services: &'static Services,
    geo: Geo,
    #[pin]
    qs: [IoQ; MAX_IOQ],
    /// One admin command at a time: the adopt's (the switch holder) and
    /// the passthrough ioctls' (any number of callers).
    #[pin]
    pub(super) admin_lock: Mutex<()>,
    /// Admin commands this module sent (`inject_admin_timeout`).
    admin_sent: AtomicU32,
    /// Admin queue pointers (under `admin_lock` once adopted).
    asq_tail: AtomicU32,
    acq_head: AtomicU32,
    acq_phase: AtomicU32,
    /// A bit per busy slot.
    busy: [AtomicU64; SLOTS / 64],
    cmds: KVVec<Cmd>,
    next_gen: AtomicU32,
    ready: AtomicBool,
    /// Shadow doorbells on (read from the arena at adopt, set at bring-up).
    dbbuf: AtomicBool,
    stopped: AtomicBool,
    /// Submits under way (`submit`, `fail_all`).
    in_submit: AtomicU32,
    /// The epoch this child's adopt of a blob found (and advanced), so a
    /// switch that fails on another device can put it back ([`Dev::unadopt`]);
    /// 0: none taken.
    taken_epoch: AtomicU64,
    count: Counters,
}

/// An NVMe command: 16 dwords.
type Sqe = [u32; 16];

fn sqe(opcode: u8, nsid: u32, prp1: u64, cdw10: u32, cdw11: u32) -> Sqe {
    let mut c = [0u32; 16];
    c[0] = u32::from(opcode);
    c[1] = nsid;
    c[6] = prp1 as u32;
    c[7] = (prp1 >> 32) as u32;
    c[10] = cdw10;
    c[11] = cdw11;
    c
}

impl Dev {
    /// A driver of the parent's device `index`, with no controller yet
    /// (allocates: call before registering).
    pub(crate) fn new(index: u32) -> Result<Pin<KBox<Dev>>> {
        let mut cmds = KVVec::with_capacity(SLOTS, GFP_KERNEL)?;
        for _ in 0..SLOTS {
            cmds.push(Cmd::new(), GFP_KERNEL)?;
        }
        KBox::pin_init(
            try_pin_init!(Dev {
                index,
                services: &super::hwio::SERVICES,
                geo: Geo {
                    arena_cpu: AtomicPtr::new(core::ptr::null_mut()),
                    arena_dma: AtomicU64::new(0),
                    arena_len: AtomicU64::new(0),
                    dstrd: AtomicU32::new(0),
                    lba_shift: AtomicU32::new(12),
                    nsze: AtomicU64::new(0),
                    vectors: AtomicU32::new(1),
                    nr_io: AtomicU32::new(1),
                    oncs: AtomicU32::new(0),
                },
                qs <- pin_init::pin_init_array_from_fn(|_| IoQ::new()),
                admin_lock <- new_mutex!((), "hotup_nvme_admin"),
                admin_sent: AtomicU32::new(0),
                asq_tail: AtomicU32::new(0),
                acq_head: AtomicU32::new(0),
                acq_phase: AtomicU32::new(1),
                busy: [const { AtomicU64::new(0) }; SLOTS / 64],
                cmds,
                next_gen: AtomicU32::new(0),
                ready: AtomicBool::new(false),
                dbbuf: AtomicBool::new(false),
                stopped: AtomicBool::new(false),
                in_submit: AtomicU32::new(0),
                taken_epoch: AtomicU64::new(0),
                count: Counters::default(),
            }),
            GFP_KERNEL,
        )
    }

    pub(super) fn arena(&self) -> Option<Arena> {
        let info = HwInfo {
            arena_cpu: self.geo.arena_cpu.load(Acquire),
            arena_dma: self.geo.arena_dma.load(Relaxed),
            arena_len: self.geo.arena_len.load(Relaxed),
            ..HwInfo::ZEROED
        };
        Arena::new(&info)
    }

    /// The doorbell of queue `qid`: its SQ tail, or (`cq`) its CQ head.
    fn doorbell(&self, qid: u32, cq: bool) -> u32 {
        0x1000 + self.doorbell_index(qid, cq)
    }

    /// A doorbell's offset in the doorbell registers, and in the shadow
    /// buffers, which have their layout.
    fn doorbell_index(&self, qid: u32, cq: bool) -> u32 {
        (2 * qid + u32::from(cq)) * (4 << self.geo.dstrd.load(Relaxed))
    }

    /// Rings I/O queue `qid`'s SQ tail or CQ head doorbell with `value`:
    /// with shadow doorbells, the value goes to the shadow buffer and the
    /// register is written only when the controller's event index asks
    /// for it (it is not processing that queue already), as the kernel's
    /// driver does (`nvme_dbbuf_update_and_check_event`).
    /// With shadow doorbells the shadow write is the commit: the controller
    /// may fetch the entry from then on (it re-reads the shadow tail while
    /// it works on the queue), so the command counts as submitted even if
    /// the register write then fails. So the device's liveness is checked
    /// first (ENODEV, nothing written, once an unbind closed it: the
    /// unbind's drain waits only for what was submitted before its close,
    /// and nothing may reach the controller after).
    fn ring(&self, a: &Arena, qid: u32, cq: bool, value: u32) -> Result {
        if self.dbbuf.load(Relaxed) && qid != 0 {
            // After `submit`'s SeqCst `in_submit` count (a full barrier)
            // and the parent's tracking of the request before it; against
            // the close's SeqCst store and the drain's fence.
            if !self.services.live(self.index) {
                return Err(ENODEV);
            }
            let off = self.doorbell_index(qid, cq) as usize;
            // The queue entry (or the consumed CQ entries) before the
            // shadow value (wmb).
            fence(SeqCst);
            let old = a.read32(PG_DBS * PAGE + off);
            a.write32(PG_DBS * PAGE + off, value);
            // The shadow value before the event index is read (mb); the
            // controller orders its event index before its doorbell read.
            fence(SeqCst);
            let event = a.read32(PG_EIS * PAGE + off);
            if need_event(event as u16, value as u16, old as u16) {
                let _ = self
                    .services
                    .write32(self.index, self.doorbell(qid, cq), value);
            }
            return Ok(());
        }
        self.services
            .write32(self.index, self.doorbell(qid, cq), value)
    }

    fn write64(&self, off: u32, v: u64) -> Result {
        self.services.write32(self.index, off, v as u32)?;
        self.services.write32(self.index, off + 4, (v >> 32) as u32)
    }

    fn read64(&self, off: u32) -> Result<u64> {
        let lo = self.services.read32(self.index, off)?;
        Ok(u64::from(lo) | (u64::from(self.services.read32(self.index, off + 4)?) << 32))
    }

    // ---- adopt, export -------------------------------------------------

    /// The controller's description from the parent, and its arena.
    fn take_hw(&self) -> Result<(HwInfo, Arena)> {
        let info = self.services.hw_info(self.index).inspect_err(|_| {
            pr_err!("the parent owns no NVMe controller (load it with nvme_pci=1)\n");
        })?;
        let arena = Arena::new(&info).ok_or(EINVAL)?;
        if arena.len() < (PG_PRP + SLOTS) * PAGE {
            pr_err!(
                "the parent's DMA arena is too small: {} bytes\n",
                arena.len()
            );
            return Err(EINVAL);
        }
        self.geo.arena_dma.store(info.arena_dma, Relaxed);
        self.geo.arena_len.store(info.arena_len, Relaxed);
        self.geo.vectors.store(info.vectors.max(1), Relaxed);
        self.geo.arena_cpu.store(info.arena_cpu, Release);
        let cap = self.read64(REG_CAP)?;
        self.geo.dstrd.store(((cap >> 32) & 0xf) as u32, Relaxed);
        if (cap & 0xffff) + 1 < u64::from(IO_DEPTH) || cap & (1 << 37) == 0 {
            pr_err!(
                "controller cannot do {} entries per queue or the NVM command set (CAP 0x{:x})\n",
                IO_DEPTH,
                cap
            );
            return Err(EINVAL);
        }
        Ok((info, arena))
    }

    /// Runs an admin command and waits for its completion: the adopt's,
    /// and the passthrough ioctls' (`admin.rs`), one at a time (`admin_lock`).
    /// Fails (logged) if the controller reports an error status.
    fn admin(&self, a: &Arena, c: Sqe, what: &str) -> Result<u32> {
        let held = self.admin_lock.lock();
        let (status, dw0) = self.admin_locked(&held, a, c, what)?;
        if status != 0 {
            pr_err!("admin command {} failed: status 0x{:x}\n", what, status);
            return Err(EIO);
        }
        Ok(dw0)
    }

    /// Runs an admin command: its status field (status code, type, more,
    /// do not retry: the kernel driver's `nvme_req(rq)->status`) and its
    /// result dword. Polls the admin CQ (the admin queue's vector is not
    /// reaped by `irq`), for at most about 2 s. `held`: `admin_lock`.
    pub(super) fn admin_locked(
        &self,
        held: &MutexGuard<'_, ()>,
        a: &Arena,
        mut c: Sqe,
        what: &str,
    ) -> Result<(u32, u32)> {
        self.admin_settle(held, a, what)?;
        let tail = self.asq_tail.load(Relaxed);
        // The slot and a generation: a late completion of a command that
        // timed out is never taken for a later one's.
        let generation = a.read32(ADMIN_GEN_OFF);
        a.write32(ADMIN_GEN_OFF, generation.wrapping_add(1));
        let generation = generation & 0x7ff;
        let cid = tail | (generation << 5);
        c[0] |= cid << 16;
        for (i, w) in c.iter().enumerate() {
            a.write32(PG_ASQ * PAGE + tail as usize * 64 + i * 4, *w);
        }
        let next = (tail + 1) % u32::from(ADMIN_DEPTH);
        fence(SeqCst);
        // The tail moves only once the controller was told: a refused
        // doorbell leaves the entry unsubmitted, to be overwritten.
        self.services
            .write32(self.index, self.doorbell(0, false), next)?;
        self.asq_tail.store(next, Relaxed);
        let inject = crate::inject_admin_timeout();
        if inject != 0 && self.admin_sent.fetch_add(1, Relaxed).wrapping_add(1) == inject {
            pr_warn!(
                "inject_admin_timeout: admin command {} (cid {}) given up at once\n",
                what,
                cid
            );
            set_stale(a, Some(cid));
            return Err(ETIMEDOUT);
        }
        let mut waited = 0;
        loop {
            let Some((done, status, dw0)) = self.reap_admin(a) else {
                if waited > 20_000 {
                    pr_err!("admin command {} (cid {}) timed out\n", what, cid);
                    set_stale(a, Some(cid));
                    return Err(ETIMEDOUT);
                }
                fsleep(Delta::from_micros(100));
                waited += 1;
                continue;
            };
            if done == cid {
                return Ok((status, dw0));
            }
            // An earlier command's, which timed out: consumed, so the
            // queue is in step again; this one's is still to come.
            pr_warn!(
                "admin command {}: a late completion (cid {}) consumed\n",
                what,
                done
            );
        }
    }

    /// Whether the admin queue may take a command: if one timed out, its
    /// late completion (consumed here if it came) must be in first, as the
    /// controller may still write the data page until then (EBUSY). Before
    /// a command's data goes into that page. Under `admin_lock` (`held`).
    pub(super) fn admin_settle(&self, held: &MutexGuard<'_, ()>, a: &Arena, what: &str) -> Result {
        let _ = held;
        let Some(stale) = stale_cid(a) else {
            return Ok(());
        };
        while let Some((done, _, _)) = self.reap_admin(a) {
            if done == stale {
                set_stale(a, None);
                pr_info!(
                    "admin queue: the timed-out command (cid {}) completed at last\n",
                    done
                );
                return Ok(());
            }
        }
        pr_warn!(
            "admin command {} refused (EBUSY): cid {} timed out and has not completed, the controller may still write its data page\n",
            what,
            stale
        );
        Err(EBUSY)
    }

    /// Consumes the admin completion queue's next entry, if the controller
    /// posted one: its command id, status field and result dword. Under
    /// `admin_lock`.
    fn reap_admin(&self, a: &Arena) -> Option<(u32, u32, u32)> {
        let (head, phase) = (self.acq_head.load(Relaxed), self.acq_phase.load(Relaxed));
        let off = PG_ACQ * PAGE + head as usize * 16;
        let dw3 = a.read32(off + 12);
        if (dw3 >> 16) & 1 != phase {
            return None;
        }
        fence(Acquire);
        let dw0 = a.read32(off);
        let nh = (head + 1) % u32::from(ADMIN_DEPTH);
        self.acq_head.store(nh, Relaxed);
        if nh == 0 {
            self.acq_phase.store(phase ^ 1, Relaxed);
        }
        // Consumed whatever the doorbell does (a dead device refuses it):
        // the entry is ours now, as in `reap`.
        let _ = self
            .services
            .write32(self.index, self.doorbell(0, true), nh);
        Some((dw3 & 0xffff, (dw3 >> 17) & 0x7fff, dw0))
    }

    /// A fresh controller: admin queue, enable (by the parent), identify,
    /// an I/O queue pair per vector after the first. Refused if someone enabled it already (there is
    /// no state to adopt, and this driver never resets a controller).
    fn bring_up(&self) -> Result {
        let (info, a) = self.take_hw()?;
        if self.services.read32(self.index, REG_CC)? & 1 != 0 {
            pr_err!("refuse: the controller is enabled but no state was handed over; reload hotup_parent to start it afresh\n");
            return Err(EBUSY);
        }
        for off in (0..PG_PRP * PAGE).step_by(4) {
            a.write32(off, 0);
        }
        a.write64(EPOCH_OFF, 1);
        let d = u32::from(ADMIN_DEPTH) - 1;
        self.services.write32(self.index, REG_AQA, (d << 16) | d)?;
        self.write64(REG_ASQ, a.dma(PG_ASQ * PAGE))?;
        self.write64(REG_ACQ, a.dma(PG_ACQ * PAGE))?;
        self.asq_tail.store(0, Relaxed);
        self.acq_head.store(0, Relaxed);
        self.acq_phase.store(1, Relaxed);
        self.services.enable(self.index, CC_IO)?;
        self.admin(
            &a,
            sqe(0x06, 0, a.dma(PG_ID_CTRL * PAGE), 1, 0),
            "identify-controller",
        )?;
        self.admin(
            &a,
            sqe(0x06, 1, a.dma(PG_ID_NS * PAGE), 0, 0),
            "identify-namespace",
        )?;
        self.check_identify(&a)?;
        self.geo
            .oncs
            .store(a.read32(PG_ID_CTRL * PAGE + 520) & 0xffff, Relaxed);
        self.shadow_doorbells(&a)?;
        let want = pairs_for(info.vectors);
        let w = want - 1;
        let got = self.admin(
            &a,
            sqe(0x09, 0, 0, 0x07, (w << 16) | w),
            "set-features-queues",
        )?;
        // Granted SQs and CQs, 0-based: the fewest of the three.
        let n = want.min((got & 0xffff) + 1).min((got >> 16) + 1);
        for q in 0..n as usize {
            self.create_pair(&a, q, info.vectors)?;
        }
        self.geo.nr_io.store(n, Release);
        // Last: a device that fails before this gets no disk.
        self.say_geometry(self.geo.lba_shift.load(Relaxed), self.geo.nsze.load(Relaxed))?;
        let mut serial = [0u8; 20];
        a.read_bytes(PG_ID_CTRL * PAGE + 4, &mut serial);
        let mut model = [0u8; 40];
        a.read_bytes(PG_ID_CTRL * PAGE + 24, &mut model);
        pr_info!(
            "bring-up dev={} model={} serial={} nsze={} lba_bytes={} vectors={} io_queues={} io_queue_depth={} shadow_doorbells={}\n",
            self.index,
            text(&model),
            text(&serial),
            self.geo.nsze.load(Relaxed),
            1u32 << self.geo.lba_shift.load(Relaxed),
            info.vectors,
            n,
            IO_DEPTH,
            u8::from(self.dbbuf.load(Relaxed))
        );
        Ok(())
    }

    /// At bring-up, before the I/O queues exist (their doorbells start at
    /// 0 in the zeroed pages): Doorbell Buffer Config, if Identify's OACS
    /// has it (bit 8) and every I/O doorbell fits a page at this stride.
    /// Without it, or refused with a status, the registers are rung; a
    /// command that did not answer fails the bring-up (the controller may
    /// still take it and then read only the shadow doorbells).
    fn shadow_doorbells(&self, a: &Arena) -> Result {
        let oacs = a.read32(PG_ID_CTRL * PAGE + 256) & 0xffff;
        let span = (2 * MAX_IOQ + 2) * (4usize << self.geo.dstrd.load(Relaxed));
        if oacs & (1 << 8) == 0 || span > PAGE {
            return Ok(());
        }
        let eis = a.dma(PG_EIS * PAGE);
        let mut c = sqe(0x7c, 0, a.dma(PG_DBS * PAGE), 0, 0);
        c[8] = eis as u32;
        c[9] = (eis >> 32) as u32;
        match self.admin(a, c, "doorbell-buffer-config") {
            Ok(_) => {
                a.write32(DBBUF_OFF, 1);
                self.dbbuf.store(true, Relaxed);
                Ok(())
            }
            // Refused with a status (logged): the registers it is.
            Err(e) if e == EIO => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Creates I/O pair `q` (queue id `q + 1`): its CQ on its vector, then
    /// its SQ on that CQ.
    fn create_pair(&self, a: &Arena, q: usize, vectors: u32) -> Result {
        let depth = (u32::from(IO_DEPTH) - 1) << 16;
        let qid = q as u32 + 1;
        let iv = vector_of(vectors, q);
        let cq = sqe(
            0x05,
            0,
            a.dma(pg_iocq(q) * PAGE),
            depth | qid,
            (iv << 16) | 3,
        );
        self.admin(a, cq, "create-io-cq")?;
        let sq = sqe(
            0x01,
            0,
            a.dma(pg_iosq(q) * PAGE),
            depth | qid,
            (qid << 16) | 1,
        );
        self.admin(a, sq, "create-io-sq")?;
        if let Some(ioq) = self.qs.get(q) {
            ioq.set(0, 1 << 16);
        }
        Ok(())
    }

    /// The namespace: its LBA size and capacity (which the parent makes
    /// the disk from, or checks against the disk it made: said at the end
    /// of the bring-up), and MDTS.
    fn check_identify(&self, a: &Arena) -> Result {
        let ns = PG_ID_NS * PAGE;
        let nsze = u64::from(a.read32(ns)) | (u64::from(a.read32(ns + 4)) << 32);
        let flbas = (a.read32(ns + 24) >> 16) & 0xf;
        let lbads = (a.read32(ns + 128 + 4 * flbas as usize) >> 16) & 0xff;
        let mdts = (a.read32(PG_ID_CTRL * PAGE + 76) >> 8) & 0xff;
        // The parent's disk takes blocks of 512 bytes up to a page; it is
        // told the geometry once the controller is up (`bring_up`).
        if !(9..=kernel::page::PAGE_SHIFT as u32).contains(&lbads) || nsze == 0 {
            pr_err!(
                "refuse: namespace of {} blocks of 2^{} bytes (a disk needs 512 bytes to a page)\n",
                nsze,
                lbads
            );
            return Err(EINVAL);
        }
        if mdts != 0 && mdts < 6 {
            pr_err!(
                "refuse: MDTS {} is below the disk's largest request ({} bytes)\n",
                mdts,
                MAX_REQUEST
            );
            return Err(EINVAL);
        }
        self.geo.nsze.store(nsze, Relaxed);
        self.geo.lba_shift.store(lbads, Relaxed);
        Ok(())
    }

    /// Tells the parent the namespace's geometry (it makes the disk from
    /// it after the adopt, or refuses one its disk does not have).
    fn say_geometry(&self, lba_shift: u32, blocks: u64) -> Result {
        self.services.disk(self.index, lba_shift, blocks).inspect_err(|e| {
            pr_err!(
                "refuse: the parent takes no disk of {} blocks of 2^{} bytes for device {} ({}: another disk is there, or an older parent)\n",
                blocks,
                lba_shift,
                self.index,
                e.to_errno()
            );
        })
    }

    /// Adopts `blob` (the queues as a predecessor left them) or, without
    /// one, brings a fresh controller up; takes no I/O until [`Dev::go`].
    /// A refused blob changes nothing; a bring-up that fails after the
    /// enable leaves the controller enabled, so the next fresh child
    /// refuses it (reload the parent).
    pub(crate) fn adopt(&self, blob: Option<&[u8]>) -> Result {
        self.taken_epoch.store(0, Relaxed);
        match blob {
            None => self.bring_up(),
            Some(b) => self.adopt_queues(b),
        }
    }

    /// Whether `blob` carries this device's queues (a section of its own).
    pub(crate) fn has_state(&self, blob: &[u8]) -> bool {
        BlobReader::parse(blob).is_ok_and(|r| r.find(section_of(self.index)).is_some())
    }

    /// Every device adopted: takes I/O.
    pub(crate) fn go(&self) {
        self.stopped.store(false, SeqCst);
        self.ready.store(true, SeqCst);
    }

    /// Another device refused the switch after this one adopted: gives
    /// the queues back as they were (the epoch the blob had, so the old
    /// child's state, offered again, is not stale). Nothing ran on them.
    pub(crate) fn unadopt(&self) {
        let e = self.taken_epoch.swap(0, Relaxed);
        if crate::inject_keep_epoch() {
            pr_warn!(
                "inject_keep_epoch: dev={} keeps epoch {} advanced\n",
                self.index,
                e.wrapping_add(1)
            );
            return;
        }
        if let (Some(a), true) = (self.arena(), e != 0) {
            a.write64(EPOCH_OFF, e);
            pr_info!("unadopt dev={} epoch={}\n", self.index, e);
        }
    }

    fn adopt_queues(&self, blob: &[u8]) -> Result {
        let b = parse_nvqp(blob, self.index)?;
        let (info, a) = self.take_hw()?;
        if b.dma != a.dma(0) || b.dstrd != self.geo.dstrd.load(Relaxed) {
            return Err(bad("the controller's arena or doorbell stride changed"));
        }
        if b.nr_io > pairs_for(info.vectors) {
            return Err(bad("more I/O queue pairs than the parent has vectors for"));
        }
        // The controller is running the queues this blob describes.
        let cc = self.services.read32(self.index, REG_CC)?;
        let csts = self.services.read32(self.index, REG_CSTS)?;
        if cc & 1 == 0 || csts & 3 != 1 {
            return Err(bad("the controller is not enabled and ready"));
        }
        if self.read64(REG_ASQ)? != a.dma(PG_ASQ * PAGE)
            || self.read64(REG_ACQ)? != a.dma(PG_ACQ * PAGE)
        {
            return Err(bad("the admin queue is not in the arena"));
        }
        // The disk the parent made from this namespace, or makes now.
        self.say_geometry(b.lba_shift, b.nsze)?;
        let epoch = u64::from(a.read32(EPOCH_OFF)) | (u64::from(a.read32(EPOCH_OFF + 4)) << 32);
        if b.epoch != epoch {
            pr_err!(
                "refuse: a stale state (epoch {}; the queues are at epoch {}: they ran on since it was written)\n",
                b.epoch,
                epoch
            );
            return Err(EINVAL);
        }
        // Checked: take it, and make every state written before stale.
        a.write64(EPOCH_OFF, epoch.wrapping_add(1));
        self.taken_epoch.store(epoch, Relaxed);
        self.geo.lba_shift.store(b.lba_shift, Relaxed);
        self.geo.nsze.store(b.nsze, Relaxed);
        self.asq_tail.store(b.asq_tail, Relaxed);
        self.acq_head.store(b.acq & 0xffff, Relaxed);
        self.acq_phase.store(b.acq >> 16, Relaxed);
        for (q, (tail, cq)) in self.qs.iter().zip(b.qs.iter()) {
            q.set(*tail, rewound(*cq));
        }
        self.geo.nr_io.store(b.nr_io, Release);
        self.geo.oncs.store(b.oncs, Relaxed);
        // The controller's doorbell mode, as bring-up left it.
        self.dbbuf.store(a.read32(DBBUF_OFF) == 1, Relaxed);
        self.next_gen.store(b.next_gen, Relaxed);
        pr_info!(
            "adopt dev={} io_queues={} io_sq_tail={} io_cq_head={} io_cq_phase={} admin_sq_tail={} from_version={} shadow_doorbells={}\n",
            self.index,
            b.nr_io,
            b.qs[0].0,
            b.qs[0].1 & 0xffff,
            b.qs[0].1 >> 16,
            b.asq_tail,
            b.from_version,
            u8::from(self.dbbuf.load(Relaxed))
        );
        Ok(())
    }

    /// Writes the queues' state as this device's section of `w`. Taken
    /// from a child still taking I/O (the parent's record of a fresh
    /// start), it is marked a live snapshot, which no successor adopts.
    pub(crate) fn export(&self, w: &mut BlobWriter<'_>) -> Result {
        let a = self.arena().ok_or(ENODEV)?;
        let live = u32::from(!self.stopped.load(SeqCst));
        let nsze = self.geo.nsze.load(Relaxed);
        let dma = a.dma(0);
        let nr_io = self.geo.nr_io.load(Acquire);
        let fields = [
            self.index,
            live,
            self.geo.lba_shift.load(Relaxed),
            self.geo.dstrd.load(Relaxed),
            self.asq_tail.load(Relaxed),
            self.acq_head.load(Relaxed) | (self.acq_phase.load(Relaxed) << 16),
            u32::from(ADMIN_DEPTH) << 16 | u32::from(IO_DEPTH),
            self.next_gen.load(Relaxed),
            nsze as u32,
            (nsze >> 32) as u32,
            dma as u32,
            (dma >> 32) as u32,
            nr_io,
            a.read32(EPOCH_OFF),
            a.read32(EPOCH_OFF + 4),
            self.geo.oncs.load(Relaxed),
        ];
        let mut s = w
            // Version 3 while the registers are rung and no admin command
            // was given up on: an older child may still adopt it (a
            // rollback to that build); it knows neither the shadow
            // doorbells nor the arena's stale command id.
            .begin_section(
                section_of(self.index),
                if self.dbbuf.load(Relaxed) || stale_cid(&a).is_some() {
                    SECTION_VERSION
                } else {
                    SECTION_VERSION_MIN
                },
                true,
            )
            .map_err(|_| EIO)?;
        for v in fields.iter() {
            s.put_u32(*v).map_err(|_| ENOSPC)?;
        }
        for q in self.qs.iter().take(nr_io as usize) {
            let tail = u32::from(*q.sq.lock());
            let cq = q.cq_head.load(Relaxed) | (q.cq_phase.load(Relaxed) << 16);
            s.put_u32(tail).map_err(|_| ENOSPC)?;
            s.put_u32(cq).map_err(|_| ENOSPC)?;
        }
        s.end().map_err(|_| ENOSPC)
    }

    /// Nothing is in flight (the parent drained): takes no more I/O.
    pub(crate) fn quiesce(&self) {
        self.stopped.store(true, SeqCst);
    }

    /// The upgrade was called off: takes I/O again.
    pub(crate) fn abort(&self) {
        self.stopped.store(false, SeqCst);
    }

    // ---- I/O -----------------------------------------------------------

    fn alloc_slot(&self) -> Option<usize> {
        for (w, word) in self.busy.iter().enumerate() {
            let mut cur = word.load(Relaxed);
            while cur != u64::MAX {
                let bit = (!cur).trailing_zeros();
                match word.compare_exchange_weak(cur, cur | (1 << bit), AcqRel, Relaxed) {
                    Ok(_) => return Some(w * 64 + bit as usize),
                    Err(now) => cur = now,
                }
            }
        }
        None
    }

    /// Frees `slot`; whether this call freed it (claimed its completion).
    fn free_slot(&self, slot: usize) -> bool {
        let bit = 1u64 << (slot % 64);
        self.busy
            .get(slot / 64)
            .is_some_and(|w| w.fetch_and(!bit, AcqRel) & bit != 0)
    }

    fn unmap(&self, cmd: &Cmd) {
        let m = cmd.maps.swap(0, AcqRel);
        let to_dev = m & (1 << 31) != 0;
        for i in 0..(m & 0xffff) as usize {
            if let (Some(d), Some(l)) = (cmd.dma.get(i), cmd.len.get(i)) {
                self.services
                    .dma_unmap(self.index, d.load(Relaxed), l.load(Relaxed), to_dev);
            }
        }
    }

    /// Submits one request. 0 or a negative errno (nothing submitted).
    pub(crate) fn submit(&self, io: &IoDesc, segs: &[IoSegment]) -> i32 {
        // Counted before `ready` is read, against `fail_all`'s store of it
        // (both sequentially consistent): the sweep waits for a submit
        // that saw the device ready, so no command lands behind it.
        self.in_submit.fetch_add(1, SeqCst);
        let rc = match self.try_submit(io, segs) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        };
        self.in_submit.fetch_sub(1, SeqCst);
        rc
    }

    fn try_submit(&self, io: &IoDesc, segs: &[IoSegment]) -> Result {
        if !self.ready.load(SeqCst) || self.stopped.load(Acquire) {
            return Err(EIO);
        }
        // Once, before anything is claimed: nothing to undo if it fails.
        let a = self.arena().ok_or(EIO)?;
        let op = IoOp::from_raw(io.opcode).ok_or(EINVAL)?;
        if io.flags & !IO_FLAGS_KNOWN != 0 {
            return Err(EINVAL);
        }
        let zeroing = matches!(op, IoOp::Discard | IoOp::WriteZeroes);
        if zeroing && !self.supports(op) {
            return Err(Error::from_errno(-crate::state_abi::errno::EOPNOTSUPP));
        }
        let slot = self.alloc_slot().ok_or(EBUSY)?;
        let Some(cmd) = self.cmds.get(slot) else {
            self.free_slot(slot);
            return Err(EIO);
        };
        let mut c = match self.command(&a, cmd, slot, op, io, segs) {
            Ok(c) => c,
            Err(e) => {
                self.unmap(cmd);
                self.free_slot(slot);
                return Err(e);
            }
        };
        let generation = self.next_gen.fetch_add(1, Relaxed) & ((1 << (16 - SLOT_BITS)) - 1);
        cmd.generation.store(generation, Relaxed);
        cmd.cookie.store(io.cookie, Release);
        let cid = slot as u32 | (generation << SLOT_BITS);
        c[0] |= cid << 16;
        let n = self.geo.nr_io.load(Acquire).max(1) as usize;
        // The pair of the CPU this runs on: the parent delivers pair p's
        // vector to CPU p, so the completion runs where the submitter
        // waits. Any pair is correct (its lock serialises the tail); a
        // stale CPU number (preempted meanwhile) only costs a wake-up.
        let qi = kernel::cpu::CpuId::current().as_u32() as usize % n;
        let rc = match self.qs.get(qi) {
            Some(q) => {
                let mut sq = q.sq.lock();
                let tail = usize::from(*sq);
                for (i, w) in c.iter().enumerate() {
                    a.write32(pg_iosq(qi) * PAGE + tail * 64 + i * 4, *w);
                }
                let next = ((tail + 1) % usize::from(IO_DEPTH)) as u16;
                // The doorbell write (writel) is ordered after the entry.
                let rung = self.ring(&a, qi as u32 + 1, false, u32::from(next));
                // Refused: the controller never saw the entry, the next
                // command takes its place.
                if rung.is_ok() {
                    *sq = next;
                }
                rung
            }
            None => Err(EIO),
        };
        if let Err(e) = rc {
            // Unbound: the controller will never see it. Unless the
            // device-gone pass claimed and completed it meanwhile.
            if self.free_slot(slot) {
                self.unmap(cmd);
                return Err(e);
            }
            return Ok(());
        }
        self.count_submitted(op, io.len);
        Ok(())
    }

    /// The blocks a read or write covers: aligned, not empty, at most the
    /// largest request, inside the namespace.
    fn blocks_of(&self, io: &IoDesc, shift: u32, max: u64) -> Result<u64> {
        let mask = (1u64 << shift) - 1;
        let blocks = io.len >> shift;
        let end = (io.offset >> shift).checked_add(blocks);
        if io.offset & mask != 0
            || io.len & mask != 0
            || blocks == 0
            || io.len > max
            || end.is_none_or(|e| e > self.geo.nsze.load(Relaxed))
        {
            return Err(EINVAL);
        }
        Ok(blocks)
    }

    /// The NVMe command for `io` in `slot` (its data mapped, with the PRPs;
    /// a discard's range in the slot's PRP page), but for its command id.
    /// On an error the caller unmaps and frees the slot.
    fn command(
        &self,
        a: &Arena,
        cmd: &Cmd,
        slot: usize,
        op: IoOp,
        io: &IoDesc,
        segs: &[IoSegment],
    ) -> Result<Sqe> {
        let shift = self.geo.lba_shift.load(Relaxed);
        let slba = io.offset >> shift;
        let (opcode, write) = match op {
            IoOp::Read => (0x02u8, false),
            IoOp::Write => (0x01, true),
            IoOp::Flush => (0x00, false),
            IoOp::Discard => (0x09, false),
            IoOp::WriteZeroes => (0x08, false),
        };
        let mut c = sqe(opcode, 1, 0, 0, 0);
        if matches!(op, IoOp::Discard | IoOp::WriteZeroes) {
            let blocks = self.blocks_of(io, shift, MAX_ZEROING)?;
            self.zeroing(a, slot, op, slba, blocks, &mut c);
        }
        if op.has_data() {
            let blocks = self.blocks_of(io, shift, MAX_REQUEST)?;
            self.map_and_prp(a, cmd, slot, segs, write, &mut c)?;
            let fua = if io.flags & IO_FLAG_FUA != 0 {
                1 << 30
            } else {
                0
            };
            c[10] = slba as u32;
            c[11] = (slba >> 32) as u32;
            c[12] = (blocks - 1) as u32 | fua;
        }
        Ok(c)
    }

    /// Whether the controller has the optional command behind `op`.
    fn supports(&self, op: IoOp) -> bool {
        let oncs = self.geo.oncs.load(Relaxed);
        match op {
            IoOp::Discard => oncs & (1 << 2) != 0,
            IoOp::WriteZeroes => oncs & (1 << 3) != 0,
            _ => true,
        }
    }

    /// The fields of a discard (Dataset Management, deallocate, one range
    /// written into the slot's PRP page) or a Write Zeroes of `blocks`
    /// blocks at `slba`.
    fn zeroing(&self, a: &Arena, slot: usize, op: IoOp, slba: u64, blocks: u64, c: &mut Sqe) {
        if op == IoOp::Discard {
            let range = (PG_PRP + slot) * PAGE;
            a.write32(range, 0);
            a.write32(range + 4, blocks as u32);
            a.write64(range + 8, slba);
            let prp1 = a.dma(range);
            c[6] = prp1 as u32;
            c[7] = (prp1 >> 32) as u32;
            // One range (NR 0), attribute Deallocate.
            c[10] = 0;
            c[11] = 1 << 2;
        } else {
            c[10] = slba as u32;
            c[11] = (slba >> 32) as u32;
            c[12] = (blocks - 1) as u32;
        }
    }

    /// Counts an accepted request.
    fn count_submitted(&self, op: IoOp, len: u64) {
        let n = &self.count;
        n.submitted.fetch_add(1, Relaxed);
        match op {
            IoOp::Read => {
                n.reads.fetch_add(1, Relaxed);
                n.bytes_read.fetch_add(len, Relaxed);
            }
            IoOp::Write => {
                n.writes.fetch_add(1, Relaxed);
                n.bytes_written.fetch_add(len, Relaxed);
            }
            _ => {
                n.flushes.fetch_add(1, Relaxed);
            }
        }
    }

    /// Maps the segments and writes PRP1/PRP2 (a list page per slot when
    /// more than two pages). The block layer keeps every interior segment
    /// page-aligned (the parent's virt boundary); anything else is EINVAL.
    fn map_and_prp(
        &self,
        a: &Arena,
        cmd: &Cmd,
        slot: usize,
        segs: &[IoSegment],
        write: bool,
        c: &mut Sqe,
    ) -> Result {
        if segs.is_empty() || segs.len() > MAX_MAPS {
            return Err(EINVAL);
        }
        let list = (PG_PRP + slot) * PAGE;
        let mut n = 0usize;
        let mut first = 0u64;
        let last = segs.len() - 1;
        for (i, s) in segs.iter().enumerate() {
            let dma = self.services.dma_map(self.index, s.addr, s.len, write)?;
            if let (Some(d), Some(l)) = (cmd.dma.get(i), cmd.len.get(i)) {
                d.store(dma, Relaxed);
                l.store(s.len, Relaxed);
            }
            cmd.maps
                .store((i as u32 + 1) | if write { 1 << 31 } else { 0 }, Release);
            let end = dma + u64::from(s.len);
            if (i > 0 && dma % PAGE as u64 != 0) || (i < last && end % PAGE as u64 != 0) {
                return Err(EINVAL);
            }
            let mut page = dma;
            while page < end {
                if n == 0 {
                    first = page;
                } else {
                    if n > 512 {
                        return Err(EINVAL);
                    }
                    a.write64(list + (n - 1) * 8, page);
                }
                n += 1;
                page = (page & !(PAGE as u64 - 1)) + PAGE as u64;
            }
        }
        let prp2 = match n {
            0 | 1 => 0,
            2 => {
                let mut w = [0u8; 8];
                a.read_bytes(list, &mut w);
                u64::from_le_bytes(w)
            }
            _ => a.dma(list),
        };
        c[6] = first as u32;
        c[7] = (first >> 32) as u32;
        c[8] = prp2 as u32;
        c[9] = (prp2 >> 32) as u32;
        Ok(())
    }

    /// Vector `vector` fired: reaps the I/O completion queues on it (the
    /// admin queue is polled by adopt). Any context.
    pub(crate) fn irq(&self, vector: u32) -> bool {
        if vector == IRQ_DEVICE_GONE {
            return self.fail_all();
        }
        self.count.irqs.fetch_add(1, Relaxed);
        if !self.ready.load(Acquire) {
            return false;
        }
        let vectors = self.geo.vectors.load(Relaxed);
        let n = self.geo.nr_io.load(Acquire) as usize;
        let mut found = false;
        for (qi, q) in self.qs.iter().enumerate().take(n) {
            if vector_of(vectors, qi) == vector {
                found |= self.reap_locked(qi, q);
            }
        }
        found
    }

    /// Reaps pair `qi`: whoever reaps finishes; a caller that finds it busy
    /// leaves `again` for it, so no completion waits for the next
    /// interrupt.
    fn reap_locked(&self, qi: usize, q: &IoQ) -> bool {
        let mut found = false;
        q.again.store(true, SeqCst);
        while q.again.load(SeqCst) {
            if AtomicBool::compare_exchange(&q.reaping, false, true, SeqCst, SeqCst).is_err() {
                return found;
            }
            q.again.store(false, SeqCst);
            found |= self.reap(qi, q);
            // SeqCst, with the store of `again` and the CAS: a caller that
            // found `reaping` set is seen by the `again` load above.
            q.reaping.store(false, SeqCst);
        }
        found
    }

    /// Takes every posted completion off pair `qi`'s CQ (holding
    /// `reaping`).
    fn reap(&self, qi: usize, q: &IoQ) -> bool {
        let Some(a) = self.arena() else {
            return false;
        };
        let mut head = q.cq_head.load(Relaxed);
        let mut phase = q.cq_phase.load(Relaxed);
        let mut n = 0;
        loop {
            let off = pg_iocq(qi) * PAGE + head as usize * 16;
            let dw3 = a.read32(off + 12);
            if (dw3 >> 16) & 1 != phase {
                break;
            }
            // The entry's other fields after its phase (dma_rmb).
            fence(Acquire);
            head += 1;
            if head == u32::from(IO_DEPTH) {
                head = 0;
                phase ^= 1;
            }
            self.finish_cmd(dw3 & 0xffff, (dw3 >> 17) & 0x7ff);
            n += 1;
        }
        q.cq_head.store(head, Relaxed);
        q.cq_phase.store(phase, Relaxed);
        if n > 0 {
            let _ = self.ring(&a, qi as u32 + 1, true, head);
        }
        n > 0
    }

    fn finish_cmd(&self, cid: u32, status: u32) {
        let slot = (cid & ((1 << SLOT_BITS) - 1)) as usize;
        let generation = cid >> SLOT_BITS;
        let busy = self
            .busy
            .get(slot / 64)
            .is_some_and(|w| w.load(Acquire) & (1 << (slot % 64)) != 0);
        let Some(cmd) = self
            .cmds
            .get(slot)
            .filter(|c| busy && c.generation.load(Relaxed) == generation)
        else {
            self.stray(cid, status);
            return;
        };
        if self.lose_this() {
            pr_warn!(
                "inject_lost_completion: the completion of cid={} dropped, its command stays outstanding\n",
                cid
            );
            return;
        }
        let cookie = cmd.cookie.load(Acquire);
        // Claimed by freeing: a completion is ended once, even against the
        // device-gone pass.
        if !self.free_slot(slot) {
            self.stray(cid, status);
            return;
        }
        self.unmap(cmd);
        self.count.completed.fetch_add(1, Relaxed);
        if status != 0 {
            self.count.errors.fetch_add(1, Relaxed);
            pr_warn!("command cid={} failed: status 0x{:x}\n", cid, status);
        }
        self.services
            .complete(cookie, if status == 0 { 0 } else { EIO.to_errno() });
    }

    /// Whether this completion is the one `inject_lost_completion=N` loses
    /// (the Nth of this module's): the defect the parent's stuck-request
    /// watch must catch.
    fn lose_this(&self) -> bool {
        let n = crate::inject_lost_completion();
        n != 0 && self.count.matched.fetch_add(1, Relaxed) + 1 == u64::from(n)
    }

    /// A completion with no command behind it (logged for the first few).
    fn stray(&self, cid: u32, status: u32) {
        if self.count.stray.fetch_add(1, Relaxed) < 8 {
            pr_warn!("stray completion cid={} status=0x{:x}\n", cid, status);
        }
    }

    /// The device is gone (unbound, its controller disabled): every
    /// command outstanding ends with EIO, none waits for a completion that
    /// cannot come. Whether there was any.
    fn fail_all(&self) -> bool {
        self.ready.store(false, SeqCst);
        // A submit that saw the device ready finishes first (short: it
        // never sleeps), so every command is in the table or never was.
        while self.in_submit.load(SeqCst) != 0 {
            core::hint::spin_loop();
        }
        let mut n = 0u32;
        for slot in 0..SLOTS {
            let Some(cmd) = self.cmds.get(slot) else {
                continue;
            };
            // The cookie before the claim: once freed, the slot may be
            // another command's.
            let cookie = cmd.cookie.load(Acquire);
            if !self.free_slot(slot) {
                continue;
            }
            self.unmap(cmd);
            self.count.completed.fetch_add(1, Relaxed);
            self.count.errors.fetch_add(1, Relaxed);
            self.services.complete(cookie, EIO.to_errno());
            n += 1;
        }
        pr_warn!("device gone: {} outstanding commands failed with EIO\n", n);
        n > 0
    }

    /// The counters for `stats`.
    pub(crate) fn stats(&self) -> ChildStats {
        let n = &self.count;
        let submitted = n.submitted.load(Relaxed);
        let completed = n.completed.load(Relaxed);
        ChildStats {
            submitted,
            completed,
            inflight: submitted.saturating_sub(completed),
            reads: n.reads.load(Relaxed),
            writes: n.writes.load(Relaxed),
            flushes: n.flushes.load(Relaxed),
            discards: 0,
            write_zeroes: 0,
            bytes_read: n.bytes_read.load(Relaxed),
            bytes_written: n.bytes_written.load(Relaxed),
            errors: n.errors.load(Relaxed),
        }
    }

    /// Interrupts and stray completions seen, for the unload line.
    pub(crate) fn irq_counts(&self) -> (u64, u64) {
        (
            self.count.irqs.load(Relaxed),
            self.count.stray.load(Relaxed),
        )
    }
}

/// I/O queue pairs for `vectors` MSI-X vectors: one per vector after the
/// admin's, or one sharing the only vector.
fn pairs_for(vectors: u32) -> u32 {
    // The last pair's pages hold the shadow doorbells.
    vectors.saturating_sub(1).clamp(1, MAX_IOQ as u32 - 1)
}

/// Whether a doorbell moving from `old` to `new` passes the controller's
/// event index (it asked to be told once the value moves past it).
fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

/// The vector of I/O pair `q` (0-based): its own, or the only one.
fn vector_of(vectors: u32, q: usize) -> u32 {
    if vectors > 1 {
        q as u32 + 1
    } else {
        0
    }
}

/// A handed-over CQ position, one entry early with `inject_cq_rewind=1`
/// (the fault: the entry before the head, reaped already by the
/// predecessor, looks new again).
fn rewound(cq: u32) -> u32 {
    if !crate::inject_cq_rewind() {
        return cq;
    }
    pr_warn!("inject_cq_rewind=1: taking an I/O CQ over one entry early\n");
    let (head, phase) = (cq & 0xffff, cq >> 16);
    if head == 0 {
        (u32::from(IO_DEPTH) - 1) | ((phase ^ 1) << 16)
    } else {
        (head - 1) | (phase << 16)
    }
}

/// Refuses a blob with a message.
fn bad(why: &str) -> Error {
    pr_err!("refuse blob: {}\n", why);
    EINVAL
}

/// An `NVQP` section, decoded and range-checked (no hardware yet).
struct Nvqp {
    from_version: u32,
    lba_shift: u32,
    dstrd: u32,
    asq_tail: u32,
    /// Admin CQ head | phase << 16.
    acq: u32,
    next_gen: u32,
    nsze: u64,
    dma: u64,
    nr_io: u32,
    epoch: u64,
    oncs: u32,
    /// Per I/O pair: SQ tail, CQ head | phase << 16.
    qs: [(u32, u32); MAX_IOQ],
}

/// Section layout (u32 words): device, live, LBA shift, doorbell stride,
/// admin SQ tail, admin CQ head|phase, depths (admin << 16 | I/O), next
/// generation, namespace size (lo, hi), arena address (lo, hi), pairs,
/// epoch (lo, hi; version 3), ONCS (version 3), then per pair its SQ tail
/// and CQ head|phase. Version 4 has the same words; its producer rings the
/// shadow doorbells when the arena says the controller has them, which a
/// version-3 child would not.
fn parse_nvqp(blob: &[u8], want: u32) -> Result<Nvqp> {
    if crate::inject_adopt_error() & (1u32 << want.min(31)) != 0 {
        pr_err!("refuse blob: inject_adopt_error (device {})\n", want);
        return Err(EINVAL);
    }
    let r = BlobReader::parse(blob).map_err(|_| bad("unreadable"))?;
    let s = r.find(section_of(want)).ok_or_else(|| {
        bad("no queue section for this device (not an NVMe child's state, or a device bound since)")
    })?;
    if !(SECTION_VERSION_MIN..=SECTION_VERSION).contains(&s.version) {
        return Err(bad("NVQP version"));
    }
    let mut rd = s.reader();
    let mut f = || rd.u32().map_err(|_| bad("NVQP too short"));
    let [dev, live, lba_shift, dstrd, asq_tail, acq, depths, next_gen] =
        [f()?, f()?, f()?, f()?, f()?, f()?, f()?, f()?];
    let [nsze_lo, nsze_hi, dma_lo, dma_hi, nr_io] = [f()?, f()?, f()?, f()?, f()?];
    let [epoch_lo, epoch_hi, oncs] = [f()?, f()?, f()?];
    let admin = u32::from(ADMIN_DEPTH);
    let io = u32::from(IO_DEPTH);
    if dev != want || depths != (admin << 16 | io) {
        return Err(bad("another device or queue sizes"));
    }
    if live != 0 {
        return Err(bad(
            "a snapshot taken while the child took I/O (queue pointers are stale)",
        ));
    }
    if asq_tail >= admin || acq & 0xffff >= admin || acq >> 16 > 1 {
        return Err(bad("admin queue pointers out of range"));
    }
    if !(1..=MAX_IOQ as u32).contains(&nr_io) {
        return Err(bad("I/O queue pairs out of range"));
    }
    let mut qs = [(0, 0); MAX_IOQ];
    for q in qs.iter_mut().take(nr_io as usize) {
        let (tail, cq) = (f()?, f()?);
        if tail >= io || cq & 0xffff >= io || cq >> 16 > 1 {
            return Err(bad("I/O queue pointers out of range"));
        }
        *q = (tail, cq);
    }
    Ok(Nvqp {
        from_version: r.producer_child_version(),
        lba_shift,
        dstrd,
        asq_tail,
        acq,
        next_gen,
        nsze: u64::from(nsze_lo) | (u64::from(nsze_hi) << 32),
        dma: u64::from(dma_lo) | (u64::from(dma_hi) << 32),
        nr_io,
        epoch: u64::from(epoch_lo) | (u64::from(epoch_hi) << 32),
        oncs,
        qs,
    })
}

/// A space-padded identify string, trimmed (`?` for what is not ASCII).
fn text(b: &[u8]) -> &str {
    let s = core::str::from_utf8(b).unwrap_or("?");
    s.trim_end_matches([' ', '\0'])
}
