// SPDX-License-Identifier: GPL-2.0

//! The parent's one raw layer over the block layer.
//!
//! `kernel::block::mq` in 7.2 can end a request only with success and gives
//! no access to its data or to queue limits (discard, write zeroes, flush).
//! Everything the parent needs beyond that is here, wrapped once:
//! [`Disk`] (a gendisk with the limits hotup needs) and [`RawRequest`] (a
//! started request the parent owns until it ends it with a status).

use crate::state_abi::{IoDesc, IoOp, IoSegment};
use core::ptr::NonNull;
use kernel::{
    bindings,
    block::mq::{Operations, Request, TagSet},
    error::{from_err_ptr, to_result},
    prelude::*,
    sync::{aref::ARef, Arc},
    types::ForeignOwnable,
};

/// Most segments one request may carry (the queue limit says so to the block
/// layer, and the descriptor's segment array on the stack is this long).
pub(crate) const MAX_SEGS: usize = 64;
/// Largest request, in 512-byte sectors (256 KiB).
const MAX_HW_SECTORS: u32 = 512;
/// Largest discard or write-zeroes request, in 512-byte sectors (1 MiB): the
/// RAM child zeroes the range inside `submit`, so a bound here bounds the
/// time one request spends there (the block layer splits larger ones).
const MAX_ZEROING_SECTORS: u32 = 2048;
/// `BLK_FEAT_WRITE_CACHE` and `BLK_FEAT_FUA` (blkdev.h; bindgen cannot see
/// these `__force` casts): the device has a volatile cache, so it gets
/// REQ_OP_FLUSH, and honours FUA.
const BLK_FEAT_WRITE_CACHE: bindings::blk_features_t = 1 << 0;
const BLK_FEAT_FUA: bindings::blk_features_t = 1 << 1;

/// The disk's logical (and physical) block size: the children's namespace
/// LBA size (`child_driver/nvme.rs`, `LBA_SHIFT`).
pub(crate) const LBA_SIZE: u32 = 4096;

/// Geometry of the parent's disk.
#[derive(Clone, Copy)]
pub(crate) struct Geometry {
    pub(crate) capacity_bytes: u64,
    pub(crate) block_size: u32,
    pub(crate) nr_queues: u32,
    pub(crate) queue_depth: u32,
}

impl Geometry {
    /// The geometry the module parameters ask for: `capacity_mib` in
    /// 1..=2^20, `nr_queues` 0 (one per possible CPU) up to `max_queues`
    /// (a host with more CPUs shares queues between them), `queue_depth`
    /// 1..=1024; EINVAL, logged, for anything else.
    pub(crate) fn from_params(
        capacity_mib: u64,
        nr_queues: u32,
        queue_depth: u32,
        max_queues: u32,
    ) -> Result<Self> {
        let nr_queues = match nr_queues {
            0 => kernel::cpu::nr_cpu_ids().max(1).min(max_queues),
            n => n,
        };
        if capacity_mib == 0
            || capacity_mib > (1 << 20)
            || !(1..=max_queues).contains(&nr_queues)
            || !(1..=1024).contains(&queue_depth)
        {
            pr_err!(
                "invalid parameters: capacity_mib 1..=1048576, nr_queues 0..={}, queue_depth 1..=1024\n",
                max_queues
            );
            return Err(EINVAL);
        }
        Ok(Self {
            capacity_bytes: capacity_mib << 20,
            // The namespace's LBA size (Identify Namespace: one format of
            // 4096 bytes), so LBA n of an NVMe command and block n of the
            // disk are the same bytes.
            block_size: LBA_SIZE,
            nr_queues,
            queue_depth,
        })
    }
}

/// The disk's queue limits for `geo`.
fn queue_limits(geo: &Geometry) -> bindings::queue_limits {
    // SAFETY: `queue_limits` is a plain C struct for which all zeroes is
    // the documented "use defaults" value.
    let mut lim: bindings::queue_limits = unsafe { core::mem::zeroed() };
    lim.logical_block_size = geo.block_size;
    lim.physical_block_size = geo.block_size;
    lim.max_hw_sectors = MAX_HW_SECTORS;
    lim.max_segments = MAX_SEGS as u16;
    // Every segment but the first starts on a page and every one but the
    // last ends on one, so a hardware child can describe any request with
    // PRPs (the kernel's nvme driver sets the same boundary).
    lim.virt_boundary_mask = 4095;
    lim.max_hw_discard_sectors = MAX_ZEROING_SECTORS;
    lim.max_write_zeroes_sectors = MAX_ZEROING_SECTORS;
    lim.discard_granularity = geo.block_size;
    lim.features = BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA;
    lim
}

/// A registered gendisk on a tag set; removed from the system when dropped.
pub(crate) struct Disk<T: Operations> {
    gendisk: NonNull<bindings::gendisk>,
    _tagset: Arc<TagSet<T>>,
}

// SAFETY: `Disk` owns a pointer to a `struct gendisk`, which the block layer
// lets any thread use and delete; `T::QueueData` is dropped from `drop`, on
// whatever thread that is, which `Send` queue data allows.
unsafe impl<T: Operations> Send for Disk<T> where T::QueueData: Send {}
// SAFETY: `Disk` has no `&self` methods that touch the gendisk.
unsafe impl<T: Operations> Sync for Disk<T> where T::QueueData: Send {}

impl<T: Operations> Disk<T> {
    /// Allocates the disk on `tagset` with `geo` and hotup's limits and adds
    /// it to the system as `name`, with the sysfs attribute `groups`. Its
    /// requests and ioctls say `index` ([`RawRequest::disk`]): disks made
    /// on one tag set share its tags, so a tag names one request of them
    /// all on its hardware queue.
    pub(crate) fn new(
        name: &CStr,
        index: u32,
        geo: &Geometry,
        tagset: Arc<TagSet<T>>,
        queue_data: T::QueueData,
        groups: AttrGroups,
    ) -> Result<Self> {
        let mut lim = queue_limits(geo);
        let data = queue_data.into_foreign();
        // `TagSet` is `#[repr(transparent)]` over `Opaque<blk_mq_tag_set>`,
        // so a pointer to it is a pointer to the C tag set.
        let set = core::ptr::from_ref::<TagSet<T>>(&tagset)
            .cast::<bindings::blk_mq_tag_set>()
            .cast_mut();
        // SAFETY: `set` points to an initialised tag set kept alive by
        // `tagset` (stored in `Self`), `lim` is valid for the call, `data`
        // comes from `into_foreign` as the mq operations expect, and the lock
        // class is static.
        let gendisk = from_err_ptr(unsafe {
            bindings::__blk_mq_alloc_disk(
                set,
                &mut lim,
                data.cast(),
                kernel::static_lock_class!().as_ptr(),
            )
        });
        let gendisk = match gendisk {
            Ok(g) => g,
            Err(e) => {
                // SAFETY: `data` came from `into_foreign` and was not consumed.
                drop(unsafe { T::QueueData::from_foreign(data) });
                return Err(e);
            }
        };
        // SAFETY: `__blk_mq_alloc_disk` returned a valid gendisk.
        let g = unsafe { &mut *gendisk };
        g.fops = &FOPS.0;
        // The disk's index, for its requests and ioctls (`disk_index`).
        g.private_data = index as usize as *mut kernel::ffi::c_void;
        // No partition scan: with no child attached the scan's read would
        // park, and `device_add_disk` (so `insmod`) would wait for it.
        g.flags |= bindings::GENHD_FL_NO_PART as i32;
        let name = name.to_bytes_with_nul();
        if name.len() > g.disk_name.len() {
            // SAFETY: the disk was never added; `put_disk` frees it, and the
            // queue data (from `into_foreign`) is ours to drop.
            unsafe {
                bindings::put_disk(gendisk);
                drop(T::QueueData::from_foreign(data));
            }
            return Err(EINVAL);
        }
        for (d, s) in g.disk_name.iter_mut().zip(name) {
            *d = *s as kernel::ffi::c_char;
        }
        // SAFETY: `gendisk` is valid; capacity is in 512-byte sectors.
        unsafe { bindings::set_capacity(gendisk, geo.capacity_bytes >> 9) };
        // SAFETY: `gendisk` is fully set up and not yet added; `groups` is a
        // NULL-terminated list of static groups, so it outlives the disk.
        if let Err(e) = to_result(unsafe {
            bindings::device_add_disk(core::ptr::null_mut(), gendisk, groups.0)
        }) {
            // SAFETY: adding failed, so we still own the disk and its queue data.
            unsafe {
                bindings::put_disk(gendisk);
                drop(T::QueueData::from_foreign(data));
            }
            return Err(e);
        }
        Ok(Self {
            // SAFETY: `from_err_ptr` succeeded, so `gendisk` is not null.
            gendisk: unsafe { NonNull::new_unchecked(gendisk) },
            _tagset: tagset,
        })
    }
}

impl<T: Operations> Drop for Disk<T> {
    fn drop(&mut self) {
        let g = self.gendisk.as_ptr();
        // SAFETY: the disk was added in `new`; `del_gendisk` waits for all
        // requests to end (the parent ends every parked or in-flight request
        // before dropping the disk), then the queue data set from
        // `into_foreign` in `new` is ours to reclaim, and `put_disk` drops
        // our reference.
        unsafe {
            let data = (*(*g).queue).queuedata;
            bindings::del_gendisk(g);
            drop(T::QueueData::from_foreign(data.cast()));
            bindings::put_disk(g);
        }
    }
}

/// A NULL-terminated list of sysfs attribute groups for [`Disk::new`].
///
/// # Invariants
///
/// The pointer is NULL (no groups) or a NULL-terminated array of pointers
/// to attribute groups that live for the rest of the module's life
/// (`static`s).
#[derive(Clone, Copy)]
pub(crate) struct AttrGroups(*mut *const bindings::attribute_group);

impl AttrGroups {
    /// No attribute groups.
    #[allow(dead_code)] // hotup_mono's disk (child_driver/mono.rs)
    pub(crate) const NONE: Self = Self(core::ptr::null_mut());

    /// # Safety
    ///
    /// `list` must point to a NULL-terminated array of pointers to attribute
    /// groups, all of which (array included) are never freed or moved.
    pub(crate) const unsafe fn new(list: *mut *const bindings::attribute_group) -> Self {
        Self(list)
    }
}

/// The disk's operations table, `static` because the block layer keeps a
/// pointer to it.
struct Fops(bindings::block_device_operations);

// SAFETY: the table is never written after initialisation; its pointers
// (the owner module) are only read by the block layer.
unsafe impl Sync for Fops {}

/// The disk's operations: an owner, so an open `/dev/hotupblk0` holds a
/// reference on this module and `rmmod hotup_parent` fails with EBUSY
/// instead of pulling the disk from under it, and the ioctls the block
/// layer does not handle itself, which go to the crate's `disk_ioctl`.
static FOPS: Fops = Fops(bindings::block_device_operations {
    submit_bio: None,
    open: None,
    release: None,
    ioctl: Some(disk_ioctl),
    compat_ioctl: None,
    check_events: None,
    unlock_native_capacity: None,
    getgeo: None,
    set_read_only: None,
    swap_slot_free_notify: None,
    report_zones: None,
    devnode: None,
    alternative_gpt_sector: None,
    get_unique_id: None,
    owner: crate::THIS_MODULE.as_ptr(),
    pr_ops: core::ptr::null_mut(),
    free_disk: None,
    poll_bio: None,
});

/// `BLK_OPEN_WRITE` (blkdev.h; bindgen cannot see its `__force` cast).
const BLK_OPEN_WRITE: bindings::blk_mode_t = 1 << 1;

/// `block_device_operations::ioctl`: the crate's `disk_ioctl` with the
/// disk's queue data.
///
/// # Safety
///
/// Called by the block layer for an open block device of a disk made by
/// [`Disk::new`], in the caller's process context.
unsafe extern "C" fn disk_ioctl(
    bdev: *mut bindings::block_device,
    mode: bindings::blk_mode_t,
    cmd: kernel::ffi::c_uint,
    arg: kernel::ffi::c_ulong,
) -> kernel::ffi::c_int {
    // SAFETY: the block device is open, so its disk and queue are live, and
    // the queue data is what `Disk::new` set from `into_foreign`.
    let (data, disk) = unsafe {
        let g = (*bdev).bd_disk;
        ((*(*g).queue).queuedata, disk_index(g))
    };
    let write = mode & BLK_OPEN_WRITE != 0;
    // SAFETY: that queue data, of this crate's disk, in the caller's context.
    unsafe { crate::disk_ioctl(data, disk, write, cmd, arg as u64) }
}

/// The index [`Disk::new`] gave the disk `g`.
///
/// # Safety
///
/// `g` is a live gendisk made by [`Disk::new`].
unsafe fn disk_index(g: *const bindings::gendisk) -> u32 {
    // SAFETY: per the contract; `private_data` holds the index, set before
    // the disk was added and never written again.
    unsafe { (*g).private_data as usize as u32 }
}

/// A started request that the parent owns until it calls [`RawRequest::end`].
///
/// # Invariants
///
/// `rq` points to a started blk-mq request that nobody else will end; the
/// Rust `ARef` it came from was consumed without touching the refcount, which
/// the mq abstraction resets on the request's next dispatch.
pub(crate) struct RawRequest {
    rq: NonNull<bindings::request>,
}

// SAFETY: a started request may be ended from any thread, and the parent
// hands it between threads only under its lock.
unsafe impl Send for RawRequest {}

/// The C request a [`RqPtr`] points to (opaque above the glue).
pub(crate) type RqTarget = bindings::request;
/// A started request as a raw pointer, while the in-flight table holds it.
pub(crate) type RqPtr = *mut RqTarget;

impl RawRequest {
    /// Gives the request up as a raw pointer (for the in-flight table).
    pub(crate) fn into_raw(self) -> RqPtr {
        self.rq.as_ptr()
    }

    /// Takes the request back from [`RawRequest::into_raw`]; `None` for NULL.
    ///
    /// # Safety
    ///
    /// A non-NULL `p` must come from [`RawRequest::into_raw`] and be taken
    /// back at most once.
    pub(crate) unsafe fn from_raw(p: RqPtr) -> Option<Self> {
        // By the type invariant of the `RawRequest` that gave `p` up, it is a
        // started request nobody else ends; ownership returns to the caller.
        NonNull::new(p).map(|rq| Self { rq })
    }

    /// Takes ownership of a request handed to `queue_rq`.
    pub(crate) fn take<T: Operations>(rq: ARef<Request<T>>) -> Self {
        // `Request<T>` is `#[repr(transparent)]` over `Opaque<request>`.
        let rq = ARef::into_raw(rq).cast::<bindings::request>();
        Self { rq }
    }

    /// The request as a raw pointer, without giving it up (e.g. as a
    /// cookie that names it).
    #[allow(dead_code)] // hotup_mono's cookie (child_driver/mono.rs)
    pub(crate) fn as_ptr(&self) -> RqPtr {
        self.rq.as_ptr()
    }

    /// The hardware queue the request was dispatched on.
    pub(crate) fn queue(&self) -> u32 {
        // SAFETY: a started request's hardware context is valid.
        unsafe { (*self.raw().mq_hctx).queue_num }
    }

    /// The index of the disk the request is for ([`Disk::new`]).
    pub(crate) fn disk(&self) -> u32 {
        // SAFETY: a started request's queue belongs to a live disk, one of
        // this crate's (only they dispatch to the parent).
        unsafe { disk_index((*self.raw().q).disk) }
    }

    fn raw(&self) -> &bindings::request {
        // SAFETY: by the type invariant `rq` is a live request we own.
        unsafe { self.rq.as_ref() }
    }

    /// Index of this request's slot among `nr_queues * depth` slots.
    pub(crate) fn slot(&self, depth: u32) -> Option<(usize, u32)> {
        let r = self.raw();
        let queue = self.queue();
        let tag = u32::try_from(r.tag).ok().filter(|t| *t < depth)?;
        Some((
            usize::try_from(u64::from(queue) * u64::from(depth) + u64::from(tag)).ok()?,
            queue,
        ))
    }

    /// The I/O descriptor for this request. `segs` receives its data
    /// segments; fails with EIO on an unknown opcode or too many segments.
    pub(crate) fn descriptor(
        &self,
        segs: &mut [IoSegment; MAX_SEGS],
        cookie: u64,
        queue: u32,
    ) -> Result<IoDesc> {
        let r = self.raw();
        let op = match r.cmd_flags & ((1 << bindings::REQ_OP_BITS) - 1) {
            bindings::req_op_REQ_OP_READ => IoOp::Read,
            bindings::req_op_REQ_OP_WRITE => IoOp::Write,
            bindings::req_op_REQ_OP_FLUSH => IoOp::Flush,
            bindings::req_op_REQ_OP_DISCARD => IoOp::Discard,
            bindings::req_op_REQ_OP_WRITE_ZEROES => IoOp::WriteZeroes,
            _ => return Err(EIO),
        };
        let mut nr = 0usize;
        if matches!(op, IoOp::Read | IoOp::Write) {
            let mut bio = r.bio;
            while !bio.is_null() {
                // SAFETY: the bios of a started request stay valid until it ends.
                let b = unsafe { &*bio };
                let mut iter = b.bi_iter;
                while iter.bi_size > 0 {
                    // SAFETY: `bi_idx` indexes the bio's vector while `bi_size > 0`.
                    let bv = unsafe { &*b.bi_io_vec.add(iter.bi_idx as usize) };
                    let len = (bv.bv_len - iter.bi_bvec_done).min(iter.bi_size);
                    let base = direct_map(bv.bv_page).ok_or(EIO)?;
                    // SAFETY: offset + done < bv_len stays inside the bvec.
                    let addr = unsafe { base.add((bv.bv_offset + iter.bi_bvec_done) as usize) };
                    let seg = segs.get_mut(nr).ok_or(EIO)?;
                    *seg = IoSegment {
                        addr,
                        len,
                        reserved: 0,
                    };
                    nr += 1;
                    iter.bi_size -= len;
                    iter.bi_bvec_done += len;
                    if iter.bi_bvec_done == bv.bv_len {
                        iter.bi_idx += 1;
                        iter.bi_bvec_done = 0;
                    }
                }
                bio = b.bi_next;
            }
        }
        Ok(IoDesc {
            opcode: op.as_raw(),
            flags: io_flags(r.cmd_flags),
            offset: r.__sector << 9,
            len: u64::from(r.__data_len),
            segs: segs.as_ptr(),
            nr_segs: nr as u32,
            queue,
            cookie,
            disk: self.disk(),
            reserved: 0,
        })
    }

    /// Ends the request: `status` 0 is success, a negative errno an error.
    pub(crate) fn end(self, status: i32) {
        let sts = if status == 0 {
            bindings::BLK_STS_OK as bindings::blk_status_t
        } else {
            // SAFETY: a pure mapping function.
            unsafe { bindings::errno_to_blk_status(status) }
        };
        // SAFETY: by the type invariant we own this started request, and
        // `self` is consumed so it is ended exactly once.
        unsafe { bindings::blk_mq_end_request(self.rq.as_ptr(), sts) };
    }
}

// The C half of the glue (`glue.c`): inline C facilities, each wrapped
// once below. Do not call these anywhere else.
extern "C" {
    fn hotup_page_address(page: *mut kernel::ffi::c_void) -> *mut kernel::ffi::c_void;
    fn hotup_noio_save() -> kernel::ffi::c_uint;
    fn hotup_noio_restore(flags: kernel::ffi::c_uint);
    fn hotup_gate_map_prime();
    fn hotup_gate_map_acquire();
    fn hotup_gate_map_release();
}

/// The kernel address of `page` (`page_address`), which covers a bvec's
/// physically contiguous pages as one range; `None` for a highmem page
/// that is not mapped.
///
/// The segments the child gets must stay valid until the request completes,
/// on another CPU and thread: a `kmap_local_page` mapping cannot (it is
/// per-thread and stacked, and with `CONFIG_DEBUG_KMAP_LOCAL_FORCE_MAP`
/// always a fixmap slot), so only pages with a permanent address are
/// handed out. x86_64 has no highmem (the guest kernel's only
/// architecture).
fn direct_map(page: *mut bindings::page) -> Option<*mut u8> {
    // With highmem a page may have a transient kmap address only, and a
    // multi-page bvec would not be virtually contiguous: refuse (EIO).
    if cfg!(CONFIG_HIGHMEM) {
        return None;
    }
    // SAFETY: `page` is a bvec's page, valid while its request is started;
    // `page_address` only reads it.
    let p = unsafe { hotup_page_address(page.cast()) }.cast::<u8>();
    (!p.is_null()).then_some(p)
}

/// A scope in which the current task's allocations do not start I/O
/// (`memalloc_noio_save` / `memalloc_noio_restore`): every GFP_KERNEL
/// allocation made in it behaves as GFP_NOIO. Scopes nest.
pub(crate) struct NoIo(kernel::ffi::c_uint, core::marker::PhantomData<*mut ()>);

impl NoIo {
    pub(crate) fn enter() -> Self {
        // SAFETY: sets a flag of the current task and returns its old value.
        NoIo(unsafe { hotup_noio_save() }, core::marker::PhantomData)
    }
}

impl Drop for NoIo {
    fn drop(&mut self) {
        // SAFETY: restores what `enter` saved, on the same task (a `NoIo`
        // is not `Send`), in scope order.
        unsafe { hotup_noio_restore(self.0) };
    }
}

/// The lockdep map "the gate is closed" (`glue.c`): [`GateMap::prime`]
/// once at load records that reclaim may wait for the gate;
/// [`GateMap::hold`] while I/O parks. No-ops without `CONFIG_LOCKDEP`.
pub(crate) struct GateMap;

impl GateMap {
    pub(crate) fn prime() {
        // SAFETY: acquires and releases two lockdep maps in order.
        unsafe { hotup_gate_map_prime() };
    }

    /// Holds the map until the returned value drops (on this task, before
    /// it returns to user space).
    pub(crate) fn hold() -> GateMapHeld {
        // SAFETY: paired with the release in `GateMapHeld::drop`.
        unsafe { hotup_gate_map_acquire() };
        GateMapHeld(core::marker::PhantomData)
    }
}

/// The gate map held (see [`GateMap::hold`]); not `Send`: released by the
/// task that took it.
pub(crate) struct GateMapHeld(core::marker::PhantomData<*mut ()>);

impl Drop for GateMapHeld {
    fn drop(&mut self) {
        // SAFETY: this task acquired the map in `GateMap::hold`.
        unsafe { hotup_gate_map_release() };
    }
}

/// The request flags a child must honour, as [`IoDesc::flags`]: FUA (the
/// disk advertises it: a child with a volatile cache must make the write
/// durable before completing it), PREFLUSH, NOUNMAP (write-zeroes must not
/// deallocate).
fn io_flags(cmd_flags: bindings::blk_opf_t) -> u32 {
    use crate::state_abi::{IO_FLAG_FUA, IO_FLAG_NOUNMAP, IO_FLAG_PREFLUSH};
    let has = |bit: u32| cmd_flags & (1 << bit) != 0;
    let mut f = 0;
    if has(bindings::req_flag_bits___REQ_FUA) {
        f |= IO_FLAG_FUA;
    }
    if has(bindings::req_flag_bits___REQ_PREFLUSH) {
        f |= IO_FLAG_PREFLUSH;
    }
    if has(bindings::req_flag_bits___REQ_NOUNMAP) {
        f |= IO_FLAG_NOUNMAP;
    }
    f
}

/// Whether the calling task has CAP_SYS_ADMIN.
pub(crate) fn capable_sys_admin() -> bool {
    // SAFETY: `capable` only reads the current task's credentials.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) }
}

/// Runs `work` now if its timer is pending and waits until it has finished,
/// so no instance of it is queued or running afterwards.
pub(crate) fn flush_delayed<T: ?Sized, const ID: u64>(
    work: &kernel::workqueue::DelayedWork<T, ID>,
) {
    // `DelayedWork` is `#[repr(transparent)]` over `Opaque<delayed_work>`.
    let dw = core::ptr::from_ref(work)
        .cast::<bindings::delayed_work>()
        .cast_mut();
    // SAFETY: `dw` points to an initialised delayed work that outlives the
    // call; flushing is allowed whether or not it is queued.
    unsafe { bindings::flush_delayed_work(dw) };
}

/// The kernel's default workqueue, `system_dfl_wq`: 7.2 marks the queues
/// `workqueue::system()` and `system_unbound()` return as deprecated.
pub(crate) fn default_queue() -> &'static kernel::workqueue::Queue {
    // SAFETY: `system_dfl_wq` is allocated during boot, before any module
    // loads, and never freed; `Queue` is a transparent wrapper of it.
    unsafe { kernel::workqueue::Queue::from_raw(bindings::system_dfl_wq) }
}

/// Faults in `len` bytes of the current task's memory at `addr` (for
/// writing if `write`): whether all of it is now resident. False for a
/// task with no user memory (a kernel thread).
pub(crate) fn fault_in(addr: u64, len: u32, write: bool) -> bool {
    if kernel::current!().mm().is_none() {
        return false;
    }
    let p = addr as usize as *mut kernel::ffi::c_char;
    let len = len as usize;
    // SAFETY: both functions take any user address and length and report
    // how much they could not fault in; they touch only user memory of
    // the current task, which has some (checked above), in its context.
    let left = unsafe {
        if write {
            // Not `fault_in_writeable`, which writes zeroes into the
            // range: the call must change nothing if it does not go on.
            bindings::fault_in_safe_writeable(p, len)
        } else {
            bindings::fault_in_readable(p, len)
        }
    };
    left == 0
}
