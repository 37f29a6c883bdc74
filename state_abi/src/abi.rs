// SPDX-License-Identifier: GPL-2.0

//! The C ABI between the parent module and a child module.
//!
//! Only `#[repr(C)]` types and `unsafe extern "C"` function pointers cross
//! the boundary: the two sides may be built at different times by different
//! compilers. Every table that may grow carries its `size` first, so that a
//! reader can tell which trailing fields the writer knew about. Every
//! function pointer is an `Option`: a NULL slot is representable and must be
//! checked before a call. Sizes, alignments and field offsets are pinned by
//! compile-time assertions at the end of this file (x86_64).
//!
//! See the crate's README for what bumps [`ABI_MAJOR`] and [`ABI_MINOR`].

use super::CVoid;
use core::mem::{align_of, offset_of, size_of};
use core::ptr;

/// Major version of this ABI. The parent refuses a child of another major.
pub const ABI_MAJOR: u16 = 1;
/// Minor version of this ABI: backwards compatible additions.
///
/// - 1.0: the classic upgrade.
/// - 1.1: standby children ([`CAP_STANDBY`], [`ChildOps::probe`]) and
///   in-flight handover ([`CAP_HANDOVER`], [`ChildOps::freeze`], the blob's
///   `INFL` section). Before 1.1 was first released, `freeze` was changed
///   to not wait for a completion under way (`finish` waits for it): no
///   parent relied on the earlier wording.
/// - 1.2: syscalls on the device nodes ([`ChildOps::ioctl`], [`CallDesc`]):
///   the parent forwards the controller node's and the block device's
///   ioctls, parking the caller while no child is active, and the close of
///   a controller-node file ([`ChildOps::release`]).
/// - 1.3: hardware the parent owns ([`CAP_HW`]): a child that drives a PCI
///   function the parent bound (QEMU's NVMe controller) reaches it only
///   through the parent's services ([`ParentServices::hw_info`], MMIO,
///   the controller's enable, DMA mapping) and takes its interrupts
///   through [`ChildOps::irq`]. RAM children ignore all of it.
/// - 1.4: more than one disk: [`IoDesc::disk`] and [`CallDesc::disk`] say
///   which of the parent's block devices (and controller nodes) a request
///   or a call is for, and a hardware child tells the parent each
///   namespace's geometry ([`ParentServices::hw_disk`]), from which the
///   parent makes that device's disk after the adopt. RAM children have
///   disk 0 only and ignore it.
pub const ABI_MINOR: u16 = 4;

/// Whether a peer speaking ABI `major` (any minor) can talk to this side.
pub const fn abi_compatible(major: u16) -> bool {
    major == ABI_MAJOR
}

// ---------------------------------------------------------------------------
// I/O
// ---------------------------------------------------------------------------

/// [`IoDesc::opcode`]: read `len` bytes at `offset` into the segments.
pub const IO_OP_READ: u32 = 0;
/// [`IoDesc::opcode`]: write `len` bytes at `offset` from the segments.
pub const IO_OP_WRITE: u32 = 1;
/// [`IoDesc::opcode`]: make previous writes durable. No data, no range.
pub const IO_OP_FLUSH: u32 = 2;
/// [`IoDesc::opcode`]: the range's contents become undefined. No data.
pub const IO_OP_DISCARD: u32 = 3;
/// [`IoDesc::opcode`]: the range reads back as zeroes. No data.
pub const IO_OP_WRITE_ZEROES: u32 = 4;

/// [`IoDesc::flags`]: force unit access, the write is durable on completion.
pub const IO_FLAG_FUA: u32 = 1 << 0;
/// [`IoDesc::flags`]: flush previous writes before this one.
pub const IO_FLAG_PREFLUSH: u32 = 1 << 1;
/// [`IoDesc::flags`]: write-zeroes must not deallocate the range.
pub const IO_FLAG_NOUNMAP: u32 = 1 << 2;
/// All flag bits defined by this ABI version; a child rejects others.
pub const IO_FLAGS_KNOWN: u32 = IO_FLAG_FUA | IO_FLAG_PREFLUSH | IO_FLAG_NOUNMAP;

/// A decoded I/O opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoOp {
    /// [`IO_OP_READ`].
    Read,
    /// [`IO_OP_WRITE`].
    Write,
    /// [`IO_OP_FLUSH`].
    Flush,
    /// [`IO_OP_DISCARD`].
    Discard,
    /// [`IO_OP_WRITE_ZEROES`].
    WriteZeroes,
}

impl IoOp {
    /// Decodes a raw opcode; `None` for an opcode this ABI does not define.
    pub const fn from_raw(raw: u32) -> Option<IoOp> {
        match raw {
            IO_OP_READ => Some(IoOp::Read),
            IO_OP_WRITE => Some(IoOp::Write),
            IO_OP_FLUSH => Some(IoOp::Flush),
            IO_OP_DISCARD => Some(IoOp::Discard),
            IO_OP_WRITE_ZEROES => Some(IoOp::WriteZeroes),
            _ => None,
        }
    }

    /// The raw opcode for [`IoDesc::opcode`].
    pub const fn as_raw(self) -> u32 {
        match self {
            IoOp::Read => IO_OP_READ,
            IoOp::Write => IO_OP_WRITE,
            IoOp::Flush => IO_OP_FLUSH,
            IoOp::Discard => IO_OP_DISCARD,
            IoOp::WriteZeroes => IO_OP_WRITE_ZEROES,
        }
    }

    /// Whether the operation moves data through [`IoDesc::segs`].
    pub const fn has_data(self) -> bool {
        matches!(self, IoOp::Read | IoOp::Write)
    }
}

/// One piece of a request's data: a mapped kernel virtual address and its
/// length. Valid only until the request is completed.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoSegment {
    /// Kernel virtual address of the piece.
    pub addr: *mut u8,
    /// Length of the piece in bytes.
    pub len: u32,
    /// Zero.
    pub reserved: u32,
}

impl IoSegment {
    /// An empty segment (NULL, 0), to initialise arrays.
    pub const EMPTY: IoSegment = IoSegment {
        addr: ptr::null_mut(),
        len: 0,
        reserved: 0,
    };
}

/// One I/O request handed from the parent to a child's `submit`.
///
/// The descriptor and its segment array are valid only during `submit`: a
/// child that completes later copies what it needs (the data pages the
/// segments point to stay valid until completion).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoDesc {
    /// One of the `IO_OP_*` values; see [`IoOp::from_raw`].
    pub opcode: u32,
    /// `IO_FLAG_*` bits.
    pub flags: u32,
    /// Start of the range, in bytes.
    pub offset: u64,
    /// Length of the range, in bytes.
    pub len: u64,
    /// `nr_segs` segments whose lengths add up to `len` (reads and writes);
    /// may be NULL when `nr_segs` is 0.
    pub segs: *const IoSegment,
    /// Number of entries at `segs`.
    pub nr_segs: u32,
    /// Hardware queue index the request came from.
    pub queue: u32,
    /// Opaque to the child; passed back to [`ParentServices::complete`].
    pub cookie: u64,
    /// Which of the parent's disks (`/dev/hotupblkN`) the request is for
    /// (ABI 1.4; a hardware child's device index). Only read by a child
    /// whose parent's [`ParentServices::abi_minor`] is 4 or more.
    pub disk: u32,
    /// Zero.
    pub reserved: u32,
}

/// Counters a child reports through its `stats` op.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChildStats {
    /// Requests accepted by `submit`.
    pub submitted: u64,
    /// Requests completed.
    pub completed: u64,
    /// Requests accepted but not yet completed.
    pub inflight: u64,
    /// Read requests.
    pub reads: u64,
    /// Write requests.
    pub writes: u64,
    /// Flush requests.
    pub flushes: u64,
    /// Discard requests.
    pub discards: u64,
    /// Write-zeroes requests.
    pub write_zeroes: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Requests completed with an error.
    pub errors: u64,
}

/// Opaque handle of a piece of memory the parent preserves across child
/// upgrades. An id, never a pointer: map it with [`ParentServices::mem_map`].
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemHandle(pub u64);

impl MemHandle {
    /// The handle no allocation ever gets.
    pub const NONE: MemHandle = MemHandle(0);
}

// ---------------------------------------------------------------------------
// Child operations
// ---------------------------------------------------------------------------

/// Submits one request. Returns 0 if accepted (its completion comes later,
/// through [`ParentServices::complete`] with `io.cookie`, possibly before
/// `submit` returns), or a negative errno if rejected (no completion).
pub type SubmitFn = unsafe extern "C" fn(ctx: *mut CVoid, io: *const IoDesc) -> i32;
/// Stops accepting new I/O and waits until every accepted request has been
/// completed, and until no context of the child's own (work item, timer,
/// interrupt handler) is still running its code: the parent's barrier
/// covers its calls into the child, not the child's calls into the parent,
/// and the module is freed once unregistration returns. Called with no
/// request in flight and no CPU inside `submit`. Returns 0 or a negative
/// errno.
pub type QuiesceFn = unsafe extern "C" fn(ctx: *mut CVoid) -> i32;
/// Writes the state blob for device-state schema `schema` (0: the child's
/// native one) into `buf[..cap]` and its length to `*out_len`. Returns 0,
/// `-ENOSPC` if `cap` is too small, `-EPROTO` for a schema it cannot write,
/// or another negative errno. ABI 1.1: the parent may also call it on a
/// child that still takes I/O (a standby switch's trial export, concurrent
/// with `submit`); it must then change nothing in the child.
pub type ExportStateFn = unsafe extern "C" fn(
    ctx: *mut CVoid,
    buf: *mut u8,
    cap: usize,
    schema: u32,
    out_len: *mut usize,
) -> i32;
/// ABI 1.1, a flag in `export_state`'s `schema`: a trial export for a
/// handover switch (the prepare step; the child still takes I/O): the child
/// writes the requests pending now into the `INFL` section, as a frozen
/// export would, and changes nothing. The parent passes it only to a child
/// with [`CAP_HANDOVER`], whose standby can read `INFL`; the standby's probe
/// then checks that part of the blob too.
pub const EXPORT_TRIAL_HANDOVER: u32 = 1 << 31;

/// Takes over the state in the blob `blob[..len]`. The child must validate
/// it completely and change nothing on failure. Returns 0 or a negative
/// errno.
pub type AdoptFn = unsafe extern "C" fn(ctx: *mut CVoid, blob: *const u8, len: usize) -> i32;
/// The upgrade is committed: the old child may release what it kept for an
/// abort. A child retired by a handover switch returns only once no
/// completion of its own is under way (one started before its `freeze`):
/// from then on it calls no parent service.
pub type FinishFn = unsafe extern "C" fn(ctx: *mut CVoid);
/// The upgrade is aborted: resume serving I/O as before the quiesce.
pub type AbortFn = unsafe extern "C" fn(ctx: *mut CVoid);
/// Handover (ABI 1.1, [`CAP_HANDOVER`]): stops accepting new I/O and stops
/// *starting* completions in every context of the child (work item, timer),
/// without completing what it holds: the requests it accepted and has not
/// completed stay held, and the next `export_state` writes them into the
/// blob's in-flight section, for the adopting child to complete. Called with
/// no CPU inside `submit`.
///
/// A completion already under way (a request the child took off what it
/// holds before the freeze) may still end after `freeze` returns: that
/// request is not in the blob, and the parent's `complete` ends it by its
/// cookie exactly once, as always. `freeze` does not wait for it, since that
/// wait would put the child's completion context (under load, preempted by
/// the very task it woke) inside the blackout; `finish` waits for it instead
/// (see [`FinishFn`]).
///
/// `abort` undoes a freeze (the child then completes what it holds itself);
/// `finish` after an export means the held requests now belong to the
/// successor and must never be completed by this child. Returns 0 or a
/// negative errno; a failing freeze must change nothing (the parent then
/// drains the child instead). Handover moves completions only: the child
/// must have moved each request's data at `submit`, or hand over queues its
/// successor can finish (the `INFL` section carries cookies).
pub type FreezeFn = unsafe extern "C" fn(ctx: *mut CVoid) -> i32;
/// Probe (ABI 1.1, optional): checks, changing nothing, whether the child
/// could adopt `blob[..len]`: 0, or the errno `adopt` would return. The
/// parent calls the standby's probe with a trial export of the active
/// child before a switch freezes anything, so an incompatible standby is
/// refused without a blackout (and both code paths are warm when the real
/// switch runs).
pub type ProbeFn = unsafe extern "C" fn(ctx: *mut CVoid, blob: *const u8, len: usize) -> i32;
/// [`CallDesc::node`]: the controller's character device (`/dev/hotup0`).
pub const NODE_CTRL: u32 = 0;
/// [`CallDesc::node`]: the namespace block device (`/dev/hotupblk0`).
pub const NODE_BLOCK: u32 = 1;
/// [`CallDesc::flags`]: the file was opened for writing.
pub const CALL_FLAG_WRITE: u32 = 1 << 0;
/// [`CallDesc::flags`]: the caller has `CAP_SYS_ADMIN`.
pub const CALL_FLAG_ADMIN: u32 = 1 << 1;

/// One syscall on a device node, forwarded by the parent (ABI 1.2).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallDesc {
    /// `size_of::<CallDesc>()` as the parent knew it.
    pub size: u32,
    /// `NODE_*`: which node the call came through.
    pub node: u32,
    /// The ioctl command number, as user space passed it.
    pub cmd: u32,
    /// `CALL_FLAG_*` bits.
    pub flags: u32,
    /// The ioctl argument, as user space passed it (for most commands a
    /// pointer into the caller's address space).
    pub arg: u64,
    /// An id of the open file, never reused (0 for the block device, whose
    /// opens the parent does not track).
    pub file: u64,
    /// Out, with [`CALL_FAULT_IN`]: the start of the user range to fault in.
    pub fault_addr: u64,
    /// Out, with [`CALL_FAULT_IN`]: its length in bytes.
    pub fault_len: u32,
    /// Out, with [`CALL_FAULT_IN`]: 1 to fault it in for writing.
    pub fault_write: u32,
    /// Which disk's node the call came through (ABI 1.4): `/dev/hotupN`
    /// or `/dev/hotupblkN`. Valid when [`Self::size`] covers it.
    pub disk: u32,
    /// Zero.
    pub reserved: u32,
}

/// An [`IoctlFn`] result: the call touched user memory that is not
/// resident, changed nothing, and asks the parent to fault in
/// `fault_addr..fault_addr + fault_len` outside the barrier and call again.
/// Not an errno, not a status: user space never sees it (the parent answers
/// EFAULT if the range cannot be faulted in).
pub const CALL_FAULT_IN: i64 = -(1 << 32);

/// An ioctl on one of the parent's device nodes (ABI 1.2, optional).
///
/// Called in the calling task's process context, inside the parent's
/// barrier: a switch waits for every call in the child before it exports,
/// so a call must not wait for anything that waits for a switch, and in
/// particular for I/O on the parent's own device (a user page that lives on
/// it, a swap-out to it):
///
/// - user memory at `call.arg` and the pointers it holds is copied with
///   page faults disabled (`copy_{from,to}_user_nofault`); when a copy
///   faults, the child returns [`CALL_FAULT_IN`] with the range in the
///   descriptor's `fault_*` fields, having changed nothing, and the parent
///   faults the range in outside the barrier and calls again;
/// - the parent runs the call in a `memalloc_noio` scope, so the child's
///   allocations never start I/O.
///
/// It may sleep otherwise, and may run concurrently with `submit`, with
/// other calls and with a trial export. Returns 0, a positive device
/// status (an NVMe status field, as the kernel's NVMe driver returns), a
/// negative errno (`-ENOTTY` for a command the child does not know), or
/// [`CALL_FAULT_IN`]. The parent answers `-ENOTTY` itself for a child
/// without this operation.
pub type IoctlFn = unsafe extern "C" fn(ctx: *mut CVoid, call: *mut CallDesc) -> i64;
/// The open file `file` (a [`CallDesc::file`] id) of the controller node
/// was closed: the child forgets what it kept for it (ABI 1.2, optional).
/// A file closed while no child was active, or during a switch, is reported
/// to the next active child once it is active; so a child may also hear of
/// a file it never saw, or that an older child kept state for (the blob
/// carries per-file state). Only files through which a call reached a
/// child are reported. File ids are never reused, but one file may be
/// reported more than once (a close racing the adopt that prunes closed
/// files from the blob): forgetting a file must be idempotent. Called in process
/// context, inside the barrier (possibly by the switch that activates the
/// child, before any call runs in it) and in a `memalloc_noio` scope: like
/// [`IoctlFn`], it must not wait for the parent device's I/O.
pub type ReleaseFn = unsafe extern "C" fn(ctx: *mut CVoid, file: u64);
/// An interrupt of vector `vector` of the parent's hardware device `dev`
/// (ABI 1.3, [`CAP_HW`]): the child reaps that vector's completion queues.
/// Called in hard-IRQ context (it must not sleep) by the parent's handler
/// while the child owns the hardware: from its adopt's end until its
/// detach has drained (so completions still arrive while a detach waits
/// for them), never after its `quiesce`. The parent also calls it from
/// process context, right after the adopt, for every vector that fired
/// while no child owned the hardware (the adopting child polls what
/// arrived meanwhile), concurrently with real interrupts of any vector:
/// a child locks each completion queue it reaps. Returns 1 if it found
/// work, 0 otherwise.
///
/// `vector` [`IRQ_DEVICE_GONE`]: the device was unbound and its controller
/// disabled; nothing it held will complete, so the child completes every
/// command it has outstanding on `dev` with an error (its later service
/// calls for `dev` fail with `-ENODEV`).
pub type IrqFn = unsafe extern "C" fn(ctx: *mut CVoid, dev: u32, vector: u32) -> u32;
/// [`IrqFn`]'s `vector` when the device is gone (unbound).
pub const IRQ_DEVICE_GONE: u32 = u32::MAX;
/// Fills `*out` with the child's counters. Returns 0 or a negative errno.
pub type StatsFn = unsafe extern "C" fn(ctx: *mut CVoid, out: *mut ChildStats) -> i32;

/// The operations a child offers the parent. Every call gets the child's
/// [`ChildRegistration::ctx`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ChildOps {
    /// `size_of::<ChildOps>()` as the child knew it, for forward
    /// compatibility: fields past `size` are absent.
    pub size: u32,
    /// Zero.
    pub reserved: u32,
    /// See [`SubmitFn`].
    pub submit: Option<SubmitFn>,
    /// See [`QuiesceFn`].
    pub quiesce: Option<QuiesceFn>,
    /// See [`ExportStateFn`].
    pub export_state: Option<ExportStateFn>,
    /// See [`AdoptFn`].
    pub adopt: Option<AdoptFn>,
    /// See [`FinishFn`].
    pub finish: Option<FinishFn>,
    /// See [`AbortFn`].
    pub abort: Option<AbortFn>,
    /// See [`StatsFn`].
    pub stats: Option<StatsFn>,
    /// See [`FreezeFn`] (ABI 1.1; absent in a 1.0 table).
    pub freeze: Option<FreezeFn>,
    /// See [`ProbeFn`] (ABI 1.1; absent in a 1.0 table).
    pub probe: Option<ProbeFn>,
    /// See [`IoctlFn`] (ABI 1.2; absent in older tables).
    pub ioctl: Option<IoctlFn>,
    /// See [`ReleaseFn`] (ABI 1.2; absent in older tables).
    pub release: Option<ReleaseFn>,
    /// See [`IrqFn`] (ABI 1.3; absent in older tables).
    pub irq: Option<IrqFn>,
}

impl ChildOps {
    /// `size_of::<ChildOps>()` in this ABI version.
    pub const SIZE: u32 = size_of::<ChildOps>() as u32;
    /// A table with `size` set and every operation absent.
    pub const EMPTY: ChildOps = ChildOps {
        size: ChildOps::SIZE,
        reserved: 0,
        submit: None,
        quiesce: None,
        export_state: None,
        adopt: None,
        finish: None,
        abort: None,
        stats: None,
        freeze: None,
        probe: None,
        ioctl: None,
        release: None,
        irq: None,
    };

    /// Whether every operation this ABI version defines is present.
    pub const fn is_complete(&self) -> bool {
        self.submit.is_some()
            && self.quiesce.is_some()
            && self.export_state.is_some()
            && self.adopt.is_some()
            && self.finish.is_some()
            && self.abort.is_some()
            && self.stats.is_some()
    }
}

// ---------------------------------------------------------------------------
// Parent services
// ---------------------------------------------------------------------------

/// Completes the request whose [`IoDesc::cookie`] was `cookie` with `status`
/// (0 or a negative errno). Callable from any context, exactly once per
/// accepted request.
pub type CompleteFn = unsafe extern "C" fn(cookie: u64, status: i32);
/// Allocates `len` bytes of memory the parent keeps across child upgrades,
/// zero-filled, and stores its handle in `*out_handle`. Returns 0 or a
/// negative errno. May sleep.
pub type MemAllocFn = unsafe extern "C" fn(len: u64, out_handle: *mut u64) -> i32;
/// Maps preserved memory `handle`: stores its kernel address in `*out_ptr`
/// and its length in `*out_len`. The mapping stays valid until `mem_free`.
/// Returns 0 or a negative errno (`-ENOENT` for an unknown handle). May
/// sleep: call it from `adopt` or process context, never from `submit`.
pub type MemMapFn =
    unsafe extern "C" fn(handle: u64, out_ptr: *mut *mut u8, out_len: *mut u64) -> i32;
/// Frees preserved memory `handle`. Returns 0 or a negative errno. May sleep.
pub type MemFreeFn = unsafe extern "C" fn(handle: u64) -> i32;
/// Logs `msg[..len]` (UTF-8, no NUL needed) at kernel log `level` (0..=7).
pub type LogFn = unsafe extern "C" fn(level: u32, msg: *const u8, len: usize);

/// [`HwInfo::kind`]: an NVMe controller (PCI class 0x010802).
pub const HW_KIND_NVME: u32 = 1;

/// One hardware device the parent owns (ABI 1.3), as
/// [`ParentServices::hw_info`] describes it. Everything here lives from the
/// parent's probe to the parent's unload, across every child: the arena is
/// the device's DMA memory (coherent, zeroed at probe), which the children
/// carve up (queues, identify buffers, PRP lists) and never free.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HwInfo {
    /// `size_of::<HwInfo>()` as the parent knew it.
    pub size: u32,
    /// `HW_KIND_*`.
    pub kind: u32,
    /// PCI vendor id.
    pub vendor: u16,
    /// PCI device id.
    pub device: u16,
    /// Interrupt vectors the parent allocated and handles (MSI-X), 0-based:
    /// [`ChildOps::irq`] gets the index.
    pub vectors: u32,
    /// Bytes of BAR0 the MMIO services reach.
    pub bar_len: u64,
    /// The arena's kernel virtual address.
    pub arena_cpu: *mut u8,
    /// The arena's bus (DMA) address, as the device sees it.
    pub arena_dma: u64,
    /// The arena's length in bytes (a multiple of 4096).
    pub arena_len: u64,
    /// The device's name (PCI `DDDD:BB:DD.F`), NUL-padded.
    pub name: [u8; 16],
}

impl HwInfo {
    /// An all-zero description, to fill.
    pub const ZEROED: HwInfo = HwInfo {
        size: 0,
        kind: 0,
        vendor: 0,
        device: 0,
        vectors: 0,
        bar_len: 0,
        arena_cpu: ptr::null_mut(),
        arena_dma: 0,
        arena_len: 0,
        name: [0; 16],
    };
}

/// Describes the parent's hardware device `dev` (0, 1, ... in the order
/// the parent bound them) into `*out`. Returns 0, or `-ENODEV` if there is
/// no such device or it was unbound. Any context.
pub type HwInfoFn = unsafe extern "C" fn(dev: u32, out: *mut HwInfo) -> i32;
/// Reads the 32-bit register at byte offset `off` of device `dev`'s BAR0
/// into `*out`. Returns 0, `-EINVAL` (unaligned, out of range) or
/// `-ENODEV` (unbound). Any context.
pub type MmioReadFn = unsafe extern "C" fn(dev: u32, off: u32, out: *mut u32) -> i32;
/// Writes `val` to the 32-bit register at `off` of device `dev`'s BAR0
/// (doorbells, the admin queue's attributes and bases). Returns 0,
/// `-EINVAL`, `-ENODEV`, or `-EPERM` for the controller configuration
/// register (NVMe CC, offset 0x14), which only the parent writes
/// ([`HwEnableFn`]). Any context; ordered after the CPU's earlier writes
/// to the arena (a doorbell write publishes the entries before it).
pub type MmioWriteFn = unsafe extern "C" fn(dev: u32, off: u32, val: u32) -> i32;
/// Enables controller `dev`: the parent writes CC = `cc` with EN set and
/// waits for CSTS.RDY, within the controller's own timeout (CAP.TO).
/// Returns 0, `-EALREADY` if it is enabled already (an adopted controller
/// stays enabled across children: only the parent's unbind disables it),
/// `-EIO` on a fatal controller status, `-ETIMEDOUT`, `-ENODEV`. May sleep.
pub type HwEnableFn = unsafe extern "C" fn(dev: u32, cc: u32) -> i32;
/// Maps `len` bytes at kernel address `addr` (a request's data segment)
/// for DMA by device `dev`, towards the device if `to_device` is 1, from it
/// if 0; stores the bus address in `*out`. Returns 0, `-ENOMEM` (no
/// mapping), `-EINVAL`, `-ENODEV`. Any context; every mapping is undone
/// by [`DmaUnmapFn`] with the same length and direction.
pub type DmaMapFn =
    unsafe extern "C" fn(dev: u32, addr: *mut u8, len: u32, to_device: u32, out: *mut u64) -> i32;
/// Undoes a [`DmaMapFn`] mapping. Any context.
pub type DmaUnmapFn = unsafe extern "C" fn(dev: u32, dma: u64, len: u32, to_device: u32);
/// Device `dev`'s namespace has `blocks` logical blocks of `1 << lba_shift`
/// bytes (ABI 1.4): the parent makes its block device (`/dev/hotupblkN`,
/// with the controller node `/dev/hotupN`) from it once the adopt that
/// said so has succeeded (a disk is never made inside the blackout), and
/// keeps it to its unload. Said again by every adopt; a geometry other
/// than the one the disk has is refused (a disk never changes under its
/// users). Returns 0, `-EINVAL` (out of range: `lba_shift` 9 up to the
/// page shift (12 on x86), at least one block, at most 2^63 bytes; or
/// another geometry), `-ENODEV`.
/// Any context.
pub type HwDiskFn = unsafe extern "C" fn(dev: u32, lba_shift: u32, blocks: u64) -> i32;
/// 1 while device `dev` is bound and not closed, else 0 (ABI 1.4). An
/// unbind closes the device (MMIO and DMA mapping refused from then), then
/// waits for the requests in flight at the close, then disables it: a child
/// checks this before a commit the parent's refusals cannot reach (a
/// shadow doorbell written to the arena), so that no I/O command reaches
/// the controller after the close. (An admin command whose doorbell was
/// checked before the close may still land after it: its data goes to the
/// arena, which lives until the parent unloads.) Sequentially consistent
/// against the close; any context.
pub type HwLiveFn = unsafe extern "C" fn(dev: u32) -> u32;

/// What the parent offers a registered child.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ParentServices {
    /// `size_of::<ParentServices>()` as the parent knew it.
    pub size: u32,
    /// The parent's [`ABI_MAJOR`].
    pub abi_major: u16,
    /// The parent's [`ABI_MINOR`].
    pub abi_minor: u16,
    /// Size of the parent's block device in bytes; a child starting without
    /// a blob sizes its data by it, a child adopting one checks against it.
    pub capacity_bytes: u64,
    /// Logical block size of the device in bytes.
    pub block_size: u32,
    /// Hardware queues the parent submits on (`IoDesc::queue` is below this).
    pub nr_queues: u32,
    /// Tags per hardware queue: the most I/Os in flight on one queue.
    pub queue_depth: u32,
    /// Zero.
    pub reserved: u32,
    /// See [`CompleteFn`].
    pub complete: Option<CompleteFn>,
    /// See [`MemAllocFn`].
    pub mem_alloc: Option<MemAllocFn>,
    /// See [`MemMapFn`].
    pub mem_map: Option<MemMapFn>,
    /// See [`MemFreeFn`].
    pub mem_free: Option<MemFreeFn>,
    /// See [`LogFn`].
    pub log: Option<LogFn>,
    /// Hardware devices the parent owns now (ABI 1.3): `dev` indexes are
    /// below this. 0 for a RAM-only parent.
    pub hw_count: u32,
    /// Zero.
    pub reserved2: u32,
    /// See [`HwInfoFn`] (ABI 1.3).
    pub hw_info: Option<HwInfoFn>,
    /// See [`MmioReadFn`] (ABI 1.3).
    pub mmio_read: Option<MmioReadFn>,
    /// See [`MmioWriteFn`] (ABI 1.3).
    pub mmio_write: Option<MmioWriteFn>,
    /// See [`HwEnableFn`] (ABI 1.3).
    pub hw_enable: Option<HwEnableFn>,
    /// See [`DmaMapFn`] (ABI 1.3).
    pub dma_map: Option<DmaMapFn>,
    /// See [`DmaUnmapFn`] (ABI 1.3).
    pub dma_unmap: Option<DmaUnmapFn>,
    /// See [`HwDiskFn`] (ABI 1.4).
    pub hw_disk: Option<HwDiskFn>,
    /// See [`HwLiveFn`] (ABI 1.4).
    pub hw_live: Option<HwLiveFn>,
}

impl ParentServices {
    /// `size_of::<ParentServices>()` in this ABI version.
    pub const SIZE: u32 = size_of::<ParentServices>() as u32;
    /// A table with size and version set and every service absent.
    pub const EMPTY: ParentServices = ParentServices {
        size: ParentServices::SIZE,
        abi_major: ABI_MAJOR,
        abi_minor: ABI_MINOR,
        capacity_bytes: 0,
        block_size: 0,
        nr_queues: 0,
        queue_depth: 0,
        reserved: 0,
        complete: None,
        mem_alloc: None,
        mem_map: None,
        mem_free: None,
        log: None,
        hw_count: 0,
        reserved2: 0,
        hw_info: None,
        mmio_read: None,
        mmio_write: None,
        hw_enable: None,
        dma_map: None,
        dma_unmap: None,
        hw_disk: None,
        hw_live: None,
    };

    /// The size of an ABI 1.2 table (up to `log`): a child reads the
    /// hardware services only from a parent whose table is longer.
    pub const SIZE_1_2: u32 = 72;
    /// The size of an ABI 1.3 table (up to `dma_unmap`): a child reads
    /// `hw_disk` only from a parent whose table is longer.
    pub const SIZE_1_3: u32 = 128;
}

// ---------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------

/// Length of [`ChildRegistration::name`], terminating NUL included.
pub const NAME_LEN: usize = 32;

/// [`ChildRegistration::capabilities`]: the child implements flush.
pub const CAP_FLUSH: u64 = 1 << 0;
/// [`ChildRegistration::capabilities`]: the child implements discard.
pub const CAP_DISCARD: u64 = 1 << 1;
/// [`ChildRegistration::capabilities`]: the child implements write-zeroes.
pub const CAP_WRITE_ZEROES: u64 = 1 << 2;
/// [`ChildRegistration::capabilities`]: `export_state` can write schema
/// versions older than the child's native one (downgrade).
pub const CAP_EXPORT_OLDER_SCHEMA: u64 = 1 << 3;
/// [`ChildRegistration::capabilities`] (ABI 1.1): the child can be loaded
/// next to an active child as its **standby** (it registers, adopts nothing
/// and takes no I/O until the operator's `switch`), and, once it has been
/// switched away from, stays loaded **retired**: after its export and
/// `finish` it takes no I/O, completes nothing and touches no preserved
/// memory, until its module leaves. A switch needs it on both children,
/// and both must implement `abort` (rollback) and `finish` (retirement).
pub const CAP_STANDBY: u64 = 1 << 4;
/// [`ChildRegistration::capabilities`] (ABI 1.1): the child implements
/// [`ChildOps::freeze`], writes the requests it holds into the blob's `INFL`
/// section, and completes the `INFL` requests of a blob it adopts. A switch
/// hands in-flight I/O over when both children have it, and drains
/// otherwise.
pub const CAP_HANDOVER: u64 = 1 << 5;
/// [`ChildRegistration::capabilities`] (ABI 1.3): the child drives the
/// parent's hardware devices and implements [`ChildOps::irq`]. Its adopt
/// of no blob (a fresh start) brings the devices up; its adopt of a blob
/// takes the queues over as they are, never resetting a device. The
/// parent refuses it when it owns no device, or without `irq`.
pub const CAP_HW: u64 = 1 << 6;
/// All capability bits defined by this ABI version.
pub const CAP_KNOWN: u64 = CAP_FLUSH
    | CAP_DISCARD
    | CAP_WRITE_ZEROES
    | CAP_EXPORT_OLDER_SCHEMA
    | CAP_STANDBY
    | CAP_HANDOVER
    | CAP_HW;

/// How a child introduces itself to the parent. It must stay valid from
/// registration until unregistration returns.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildRegistration {
    /// `size_of::<ChildRegistration>()` as the child knew it.
    pub size: u32,
    /// The child's [`ABI_MAJOR`].
    pub abi_major: u16,
    /// The child's [`ABI_MINOR`].
    pub abi_minor: u16,
    /// Printable ASCII, NUL-terminated and NUL-padded; see [`Self::name_str`].
    pub name: [u8; NAME_LEN],
    /// The child's own version (1, 2, ...).
    pub child_version: u32,
    /// Newest device-state section version the child writes and reads.
    pub schema_version: u32,
    /// `CAP_*` bits.
    pub capabilities: u64,
    /// The child's operations; must not be NULL.
    pub ops: *const ChildOps,
    /// Passed to every operation.
    pub ctx: *mut CVoid,
}

impl ChildRegistration {
    /// `size_of::<ChildRegistration>()` in this ABI version.
    pub const SIZE: u32 = size_of::<ChildRegistration>() as u32;

    /// The name, if it is well formed: 1 to 31 printable ASCII bytes, then
    /// NUL bytes up to the end of the array. `None` otherwise.
    pub fn name_str(&self) -> Option<&str> {
        name_str(&self.name)
    }

    /// Whether the child declares every capability in `caps`.
    pub const fn has_caps(&self, caps: u64) -> bool {
        self.capabilities & caps == caps
    }
}

/// Validates a NUL-padded name as [`ChildRegistration::name_str`] does.
pub fn name_str(name: &[u8; NAME_LEN]) -> Option<&str> {
    let end = name.iter().position(|&b| b == 0)?;
    let (text, pad) = name.split_at_checked(end)?;
    if text.is_empty() || !text.iter().all(|&b| (0x20..=0x7E).contains(&b)) {
        return None;
    }
    if !pad.iter().all(|&b| b == 0) {
        return None;
    }
    core::str::from_utf8(text).ok()
}

/// The `.modinfo` string `hotup_schema=N` (N of one digit, NUL ended): a
/// child puts it in its module file (`#[link_section = ".modinfo"]`), so
/// tools read the newest device-state schema it reads before loading it
/// (`hotupctl upgrade` picks the schema the leaving child exports from it).
pub const fn modinfo_schema(schema: u32) -> [u8; 15] {
    // Evaluated at compile time for the module's static: a schema of two
    // digits fails the build rather than write the wrong one.
    assert!(schema < 10, "hotup_schema takes one digit");
    let mut b = *b"hotup_schema=0\0";
    b[13] = b'0'.wrapping_add((schema % 10) as u8);
    b
}

/// Builds a name array from `s`: at most 31 bytes are kept (the last byte is
/// always NUL), copying stops at a NUL in `s`, and bytes that are not
/// printable ASCII become `?`. An empty `s` gives an all-NUL (invalid) name.
pub const fn make_name(s: &str) -> [u8; NAME_LEN] {
    let src = s.as_bytes();
    let mut out = [0u8; NAME_LEN];
    let mut i = 0;
    while i < NAME_LEN - 1 && i < src.len() {
        // `i < src.len()` and `i < NAME_LEN - 1`: both in bounds, and a
        // const evaluation would fail the build otherwise.
        #[allow(clippy::indexing_slicing)]
        {
            let b = src[i];
            if b == 0 {
                break;
            }
            out[i] = if b >= 0x20 && b <= 0x7E { b } else { b'?' };
        }
        #[allow(clippy::arithmetic_side_effects)]
        {
            i += 1;
        }
    }
    out
}

/// The parent's `hotup_register_child` entry point (exported with
/// `EXPORT_SYMBOL_GPL`).
///
/// A child calls it from its module init with its registration. The parent
/// checks `reg.size` and `reg.abi_major` (refusing another major with a
/// clear log line), requires a complete [`ChildOps`], and, if it holds a
/// state blob from a previous child, calls the new child's `adopt` before
/// returning. On success it stores a pointer to its [`ParentServices`] in
/// `*services` (valid until the child unregisters) and returns 0; otherwise
/// a negative errno, and the child must fail its init. `reg`, `*reg.ops` and
/// `reg.ctx` must stay valid until [`UnregisterChildFn`] returns.
///
/// `adopt` may run during this call: the parent stores `*services` before
/// it calls `adopt`, so a child that keeps `services` pointing into its
/// context can use the services from within `adopt`.
pub type RegisterChildFn = unsafe extern "C" fn(
    reg: *const ChildRegistration,
    services: *mut *const ParentServices,
) -> i32;

/// The parent's `hotup_unregister_child` entry point (exported with
/// `EXPORT_SYMBOL_GPL`).
///
/// A child calls it from its module exit with the same `reg` it registered.
/// The parent parks new I/O, waits until no CPU is inside the child's
/// `submit` and every accepted request has completed, quiesces the child
/// (`quiesce`), asks for its state (`export_state`) into a buffer it
/// allocated beforehand, and keeps the blob (or, if the export fails, its
/// last good state) for the next child. This cannot fail for a registered
/// child. When it returns 0 the parent no longer calls into the child and
/// `reg`, the ops and `ctx` may be freed. A negative errno means `reg` was
/// not registered.
pub type UnregisterChildFn = unsafe extern "C" fn(reg: *const ChildRegistration) -> i32;

// ---------------------------------------------------------------------------
// Size-prefixed tables across minors
// ---------------------------------------------------------------------------

impl ChildOps {
    /// The smallest `size` a reader of this version accepts: the table of
    /// ABI 1.0, whose operations are all required.
    pub const MIN_SIZE: u32 = 64;
}

impl ChildRegistration {
    /// The smallest `size` a reader of this version accepts (ABI 1.0).
    pub const MIN_SIZE: u32 = 72;
    /// A registration with every field zero and both pointers NULL: the
    /// base [`read_sized`] fills from a peer's shorter table.
    pub const ZEROED: ChildRegistration = ChildRegistration {
        size: 0,
        abi_major: 0,
        abi_minor: 0,
        name: [0; NAME_LEN],
        child_version: 0,
        schema_version: 0,
        capabilities: 0,
        ops: ptr::null(),
        ctx: ptr::null_mut(),
    };
}

/// How many bytes of a size-prefixed table to copy when its writer says
/// it is `claimed` bytes long, this side's type is `ours` bytes long and this
/// side needs at least `min` (its oldest accepted minor): `min(claimed,
/// ours)`, so fields the writer did not know keep this side's defaults and
/// fields this side does not know are ignored. `Err(claimed)` if the
/// writer's table is smaller than `min`.
pub const fn sized_copy_len(claimed: u32, min: u32, ours: usize) -> Result<usize, u32> {
    if claimed < min {
        return Err(claimed);
    }
    let c = claimed as usize;
    Ok(if c < ours { c } else { ours })
}

// ---------------------------------------------------------------------------
// Layout pins (x86_64). A failing assertion here is an ABI break.
// ---------------------------------------------------------------------------

const _: () = assert!(size_of::<IoSegment>() == 16 && align_of::<IoSegment>() == 8);
const _: () = assert!(offset_of!(IoSegment, len) == 8);
const _: () = assert!(offset_of!(IoSegment, reserved) == 12);

const _: () = assert!(size_of::<IoDesc>() == 56 && align_of::<IoDesc>() == 8);
const _: () = assert!(offset_of!(IoDesc, disk) == 48);
const _: () = assert!(offset_of!(IoDesc, flags) == 4);
const _: () = assert!(offset_of!(IoDesc, offset) == 8);
const _: () = assert!(offset_of!(IoDesc, len) == 16);
const _: () = assert!(offset_of!(IoDesc, segs) == 24);
const _: () = assert!(offset_of!(IoDesc, nr_segs) == 32);
const _: () = assert!(offset_of!(IoDesc, queue) == 36);
const _: () = assert!(offset_of!(IoDesc, cookie) == 40);

const _: () = assert!(size_of::<ChildStats>() == 88 && align_of::<ChildStats>() == 8);
const _: () = assert!(offset_of!(ChildStats, errors) == 80);

const _: () = assert!(size_of::<MemHandle>() == 8 && align_of::<MemHandle>() == 8);

const _: () = assert!(size_of::<Option<SubmitFn>>() == 8);
const _: () = assert!(size_of::<ChildOps>() == 104 && align_of::<ChildOps>() == 8);
const _: () = assert!(offset_of!(ChildOps, submit) == 8);
const _: () = assert!(offset_of!(ChildOps, quiesce) == 16);
const _: () = assert!(offset_of!(ChildOps, export_state) == 24);
const _: () = assert!(offset_of!(ChildOps, adopt) == 32);
const _: () = assert!(offset_of!(ChildOps, finish) == 40);
const _: () = assert!(offset_of!(ChildOps, abort) == 48);
const _: () = assert!(offset_of!(ChildOps, stats) == 56);
const _: () = assert!(offset_of!(ChildOps, freeze) == 64);
const _: () = assert!(offset_of!(ChildOps, probe) == 72);
const _: () = assert!(offset_of!(ChildOps, ioctl) == 80);
const _: () = assert!(offset_of!(ChildOps, release) == 88);
const _: () = assert!(offset_of!(ChildOps, irq) == 96);
const _: () = assert!(size_of::<HwInfo>() == 64 && align_of::<HwInfo>() == 8);
const _: () = assert!(offset_of!(HwInfo, vendor) == 8);
const _: () = assert!(offset_of!(HwInfo, vectors) == 12);
const _: () = assert!(offset_of!(HwInfo, bar_len) == 16);
const _: () = assert!(offset_of!(HwInfo, arena_cpu) == 24);
const _: () = assert!(offset_of!(HwInfo, arena_dma) == 32);
const _: () = assert!(offset_of!(HwInfo, arena_len) == 40);
const _: () = assert!(offset_of!(HwInfo, name) == 48);
const _: () = assert!(size_of::<CallDesc>() == 56 && align_of::<CallDesc>() == 8);
const _: () = assert!(offset_of!(CallDesc, disk) == 48);
const _: () = assert!(offset_of!(CallDesc, node) == 4);
const _: () = assert!(offset_of!(CallDesc, cmd) == 8);
const _: () = assert!(offset_of!(CallDesc, flags) == 12);
const _: () = assert!(offset_of!(CallDesc, arg) == 16);
const _: () = assert!(offset_of!(CallDesc, file) == 24);
const _: () = assert!(offset_of!(CallDesc, fault_addr) == 32);
const _: () = assert!(offset_of!(CallDesc, fault_len) == 40);
const _: () = assert!(offset_of!(CallDesc, fault_write) == 44);

const _: () = assert!(size_of::<ParentServices>() == 144 && align_of::<ParentServices>() == 8);
const _: () = assert!(offset_of!(ParentServices, hw_disk) == ParentServices::SIZE_1_3 as usize);
const _: () = assert!(offset_of!(ParentServices, abi_major) == 4);
const _: () = assert!(offset_of!(ParentServices, abi_minor) == 6);
const _: () = assert!(offset_of!(ParentServices, capacity_bytes) == 8);
const _: () = assert!(offset_of!(ParentServices, block_size) == 16);
const _: () = assert!(offset_of!(ParentServices, nr_queues) == 20);
const _: () = assert!(offset_of!(ParentServices, queue_depth) == 24);
const _: () = assert!(offset_of!(ParentServices, reserved) == 28);
const _: () = assert!(offset_of!(ParentServices, complete) == 32);
const _: () = assert!(offset_of!(ParentServices, mem_alloc) == 40);
const _: () = assert!(offset_of!(ParentServices, mem_map) == 48);
const _: () = assert!(offset_of!(ParentServices, mem_free) == 56);
const _: () = assert!(offset_of!(ParentServices, log) == 64);
const _: () = assert!(offset_of!(ParentServices, hw_count) == ParentServices::SIZE_1_2 as usize);
const _: () = assert!(offset_of!(ParentServices, hw_info) == 80);
const _: () = assert!(offset_of!(ParentServices, mmio_read) == 88);
const _: () = assert!(offset_of!(ParentServices, mmio_write) == 96);
const _: () = assert!(offset_of!(ParentServices, hw_enable) == 104);
const _: () = assert!(offset_of!(ParentServices, dma_map) == 112);
const _: () = assert!(offset_of!(ParentServices, dma_unmap) == 120);

const _: () = assert!(size_of::<ChildRegistration>() == 72);
const _: () = assert!(align_of::<ChildRegistration>() == 8);
const _: () = assert!(offset_of!(ChildRegistration, abi_major) == 4);
const _: () = assert!(offset_of!(ChildRegistration, abi_minor) == 6);
const _: () = assert!(offset_of!(ChildRegistration, name) == 8);
const _: () = assert!(offset_of!(ChildRegistration, child_version) == 40);
const _: () = assert!(offset_of!(ChildRegistration, schema_version) == 44);
const _: () = assert!(offset_of!(ChildRegistration, capabilities) == 48);
const _: () = assert!(offset_of!(ChildRegistration, ops) == 56);
const _: () = assert!(offset_of!(ChildRegistration, ctx) == 64);
const _: () = assert!(ChildOps::MIN_SIZE as usize <= size_of::<ChildOps>());
const _: () = assert!(ChildRegistration::MIN_SIZE as usize <= size_of::<ChildRegistration>());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_copy_len_takes_older_and_newer_tables() {
        let ours = size_of::<ChildOps>();
        // A newer minor's larger table: only what this side knows.
        assert_eq!(sized_copy_len(112, ChildOps::MIN_SIZE, ours), Ok(ours));
        // This version's own table, and a 1.0 table (no `freeze`, `probe`).
        assert_eq!(sized_copy_len(80, ChildOps::MIN_SIZE, ours), Ok(80));
        assert_eq!(sized_copy_len(64, ChildOps::MIN_SIZE, ours), Ok(64));
        // An older minor's smaller table, when this side accepts it.
        assert_eq!(sized_copy_len(48, 40, ours), Ok(48));
        // Smaller than the oldest accepted minor: refused, with its size.
        assert_eq!(sized_copy_len(40, ChildOps::MIN_SIZE, ours), Err(40));
        assert_eq!(sized_copy_len(0, ChildRegistration::MIN_SIZE, 72), Err(0));
    }

    #[test]
    fn io_op_round_trip() {
        for raw in 0..=4 {
            let op = IoOp::from_raw(raw).unwrap();
            assert_eq!(op.as_raw(), raw);
        }
        assert_eq!(IoOp::from_raw(IO_OP_READ), Some(IoOp::Read));
        assert_eq!(IoOp::from_raw(IO_OP_WRITE), Some(IoOp::Write));
        assert_eq!(IoOp::from_raw(IO_OP_FLUSH), Some(IoOp::Flush));
        assert_eq!(IoOp::from_raw(IO_OP_DISCARD), Some(IoOp::Discard));
        assert_eq!(IoOp::from_raw(IO_OP_WRITE_ZEROES), Some(IoOp::WriteZeroes));
        assert!(IoOp::Read.has_data() && IoOp::Write.has_data());
        assert!(!IoOp::Flush.has_data() && !IoOp::Discard.has_data());
    }

    #[test]
    fn io_op_rejects_unknown() {
        for raw in [5, 6, 100, 0x8000_0000, u32::MAX] {
            assert_eq!(IoOp::from_raw(raw), None);
        }
    }

    #[test]
    fn abi_versions() {
        assert!(abi_compatible(ABI_MAJOR));
        assert!(!abi_compatible(ABI_MAJOR + 1));
        assert!(!abi_compatible(0));
    }

    #[test]
    fn modinfo_schema_string() {
        assert_eq!(&modinfo_schema(2), b"hotup_schema=2\0");
        assert_eq!(&modinfo_schema(1), b"hotup_schema=1\0");
    }

    #[test]
    fn sizes_in_tables() {
        assert_eq!(ChildOps::SIZE, 104);
        assert_eq!(ChildOps::EMPTY.size, 104);
        // An ABI 1.2 table (96 bytes) is read up to `release`: no `irq`.
        assert_eq!(
            sized_copy_len(96, ChildOps::MIN_SIZE, size_of::<ChildOps>()),
            Ok(96)
        );
        // An ABI 1.1 table (80 bytes) is read up to `probe`: its `ioctl`
        // stays absent, and the parent answers ENOTTY for it.
        assert_eq!(
            sized_copy_len(80, ChildOps::MIN_SIZE, size_of::<ChildOps>()),
            Ok(80)
        );
        assert_eq!(offset_of!(ChildOps, ioctl), 80);
        assert!(!ChildOps::EMPTY.is_complete());
        assert_eq!(ParentServices::SIZE, 144);
        assert!(ParentServices::EMPTY.hw_disk.is_none());
        assert_eq!(ParentServices::EMPTY.hw_count, 0);
        assert!(ParentServices::EMPTY.hw_info.is_none());
        assert_eq!(HwInfo::ZEROED.size, 0);
        assert_eq!(ParentServices::EMPTY.abi_major, ABI_MAJOR);
        assert_eq!(ChildRegistration::SIZE, 72);
        assert!(IoSegment::EMPTY.addr.is_null());
    }

    fn reg(name: [u8; NAME_LEN]) -> ChildRegistration {
        ChildRegistration {
            size: ChildRegistration::SIZE,
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            name,
            child_version: 1,
            schema_version: 1,
            capabilities: CAP_FLUSH | CAP_DISCARD,
            ops: core::ptr::null(),
            ctx: core::ptr::null_mut(),
        }
    }

    #[test]
    fn name_helpers() {
        let r = reg(make_name("hotup_child_v1"));
        assert_eq!(r.name_str(), Some("hotup_child_v1"));
        assert!(r.has_caps(CAP_FLUSH));
        assert!(r.has_caps(CAP_FLUSH | CAP_DISCARD));
        assert!(!r.has_caps(CAP_WRITE_ZEROES));

        // Truncation keeps 31 bytes and a final NUL.
        let long = "abcdefghijklmnopqrstuvwxyz0123456789";
        let n = make_name(long);
        assert_eq!(n[31], 0);
        assert_eq!(name_str(&n), Some(&long[..31]));

        // Exactly 31 and 32 bytes.
        let n31 = "a".repeat(31);
        assert_eq!(name_str(&make_name(&n31)), Some(n31.as_str()));
        assert_eq!(
            name_str(&make_name(&"b".repeat(32))),
            Some("b".repeat(31).as_str())
        );

        // Non-ASCII bytes (including a split multi-byte char) become '?'.
        let n = make_name("caf\u{e9}-\u{1F600}");
        assert_eq!(name_str(&n), Some("caf??-????"));
        // Control characters too; an embedded NUL stops the copy.
        assert_eq!(name_str(&make_name("a\tb")), Some("a?b"));
        assert_eq!(name_str(&make_name("ab\0cd")), Some("ab"));

        // Empty is invalid.
        assert_eq!(name_str(&make_name("")), None);
    }

    #[test]
    fn name_str_rejects_malformed() {
        // No NUL terminator.
        assert_eq!(name_str(&[b'a'; NAME_LEN]), None);
        // Garbage after the terminator.
        let mut n = make_name("abc");
        n[10] = b'x';
        assert_eq!(name_str(&n), None);
        // Non-ASCII inside.
        let mut n = make_name("abc");
        n[1] = 0xC3;
        assert_eq!(name_str(&n), None);
        // Control character inside.
        let mut n = make_name("abc");
        n[1] = b'\n';
        assert_eq!(name_str(&n), None);
        // Leading NUL.
        let mut n = make_name("abc");
        n[0] = 0;
        assert_eq!(name_str(&n), None);
    }
}
