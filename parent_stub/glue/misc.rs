// SPDX-License-Identifier: GPL-2.0

//! The parent's character devices, registered with an owner.
//!
//! The 7.2 kernel crate's `MiscDeviceRegistration` builds its
//! `file_operations` without `.owner`, so an open file does not pin the
//! module: `rmmod hotup_parent` succeeds while a node is open, and the next
//! `read` or `close` runs freed code. This registers each node through a
//! static table whose owner is this module, so the VFS holds a module
//! reference from open to release:
//!
//! - [`CTL_FOPS`], `/dev/hotup-ctl`: the [`Ctl`] operations (its
//!   `MiscDevice` impl), status and commands.
//! - [`CTRL_FOPS`], `/dev/hotup0`, the controller node: its ioctls go to
//!   the active child through the hub, parking while there is none
//!   (`calls.rs`).

use crate::calls::CallSite;
use crate::ctl::Ctl;
use crate::hub::Hub;
use crate::state_abi::NODE_CTRL;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{
    bindings,
    error::to_result,
    ffi::{c_int, c_long, c_uint, c_ulong},
    fs::Kiocb,
    iov::{IovIterDest, IovIterSource},
    miscdevice::MiscDevice,
    prelude::*,
    sync::Arc,
    types::{ForeignOwnable, Opaque},
};

/// The private data of an open control file.
type Ptr = <Ctl as MiscDevice>::Ptr;

/// A registered misc device; deregistered on drop.
///
/// # Invariants
///
/// `inner` holds a `miscdevice` registered with `misc_register` and one of
/// the static tables of this file, until `drop`; it is the first field of
/// a `repr(C)` struct, so the `miscdevice` that `misc_open` gives the
/// table's `open` is the start of its `Node` ([`node_index`]).
#[repr(C)]
#[pin_data(PinnedDrop)]
pub(crate) struct Node {
    #[pin]
    inner: Opaque<bindings::miscdevice>,
    /// The disk whose controller node this is (`/dev/hotupN`: calls say
    /// it); 0 for the control node.
    index: u32,
}

// SAFETY: `misc_deregister` may run on any thread.
unsafe impl Send for Node {}
// SAFETY: `Node` has no `&self` methods that touch the device.
unsafe impl Sync for Node {}

impl Node {
    /// Registers `/dev/<name>` with the operations `fops` (one of the
    /// tables of this file: their `open` sets the private data the others
    /// read back).
    pub(crate) fn register(
        name: &'static CStr,
        fops: &'static Fops,
        index: u32,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            index,
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                // SAFETY: all-zeroes is a valid (unregistered) miscdevice;
                // the initializer may write the slot.
                unsafe { slot.write(core::mem::zeroed()) };
                // SAFETY: `slot` was just initialised; the name and the table
                // are statics, so they outlive the registration.
                unsafe {
                    (*slot).minor = bindings::MISC_DYNAMIC_MINOR as i32;
                    (*slot).name = name.as_char_ptr();
                    (*slot).fops = &fops.0;
                }
                // SAFETY: the slot is pinned and deregistered in `drop`
                // before its memory goes away.
                to_result(unsafe { bindings::misc_register(slot) })
            }),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for Node {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: registered by the type invariant; `misc_deregister` waits
        // for an `open` in progress (it runs under `misc_mtx`).
        unsafe { bindings::misc_deregister(self.inner.get()) };
    }
}

/// A table, `static` because the VFS keeps a pointer to it.
pub(crate) struct Fops(bindings::file_operations);

// SAFETY: never written after initialisation; the VFS only reads it.
unsafe impl Sync for Fops {}

/// `/dev/hotup-ctl`.
pub(crate) static CTL_FOPS: Fops = Fops(bindings::file_operations {
    owner: crate::THIS_MODULE.as_ptr(),
    open: Some(open),
    release: Some(release),
    read_iter: Some(read_iter),
    write_iter: Some(write_iter),
    // A reader may rewind to read the status line again.
    llseek: Some(bindings::default_llseek),
    // SAFETY: all-zeroes is "absent" for every other operation.
    ..unsafe { core::mem::zeroed() }
});

/// `/dev/hotup0`: its own open and release (the private data is a
/// [`CtrlFile`]), ioctls forwarded, poll.
pub(crate) static CTRL_FOPS: Fops = Fops(bindings::file_operations {
    owner: crate::THIS_MODULE.as_ptr(),
    open: Some(ctrl_open),
    release: Some(ctrl_release),
    unlocked_ioctl: Some(ctrl_ioctl),
    // A 32-bit caller's pointer argument, widened (`compat_ptr`).
    compat_ioctl: bindings::compat_ptr_ioctl,
    poll: Some(ctrl_poll),
    llseek: Some(bindings::noop_llseek),
    // SAFETY: all-zeroes is "absent" for every other operation.
    ..unsafe { core::mem::zeroed() }
});

/// What an open `/dev/hotupN` file holds: the hub, the file's id (never
/// reused, unlike the `struct file`'s address, which the slab hands to
/// the next open), its disk's index, and whether a call through it
/// reached a child (only such files can have per-file state there, so
/// only their close is reported).
struct CtrlFile {
    hub: Arc<Hub>,
    id: u64,
    disk: u32,
    touched: AtomicBool,
}

/// The disk index of the node a file is being opened on.
///
/// # Safety
///
/// Called from the `open` of [`CTRL_FOPS`], before the private data is
/// set: `misc_open` left the file's private data pointing at the
/// `miscdevice`, the `inner` of a live [`Node`] registered with that table.
unsafe fn node_index(file: *mut bindings::file) -> u32 {
    // SAFETY: per the contract and `Node`'s invariant, the private data is
    // the start of a live `Node`, which `misc_deregister` keeps alive
    // during an `open` (it takes `misc_mtx`, held by `misc_open`).
    unsafe { (*(*file).private_data.cast::<Node>()).index }
}

/// The common `open`: the VFS's checks, a reference to the hub, then the
/// private data `make` builds from it, set as the file's.
///
/// # Safety
///
/// Called from a `file_operations::open` of this file's tables (both
/// pointers valid for a file being opened); every other operation of that
/// table reads the private data back as a `P`.
unsafe fn open_with<P: ForeignOwnable>(
    inode: *mut bindings::inode,
    file: *mut bindings::file,
    make: impl FnOnce(Arc<Hub>) -> Result<P>,
) -> c_int {
    // SAFETY: both pointers are valid for a file being opened.
    let ret = unsafe { bindings::generic_file_open(inode, file) };
    if ret != 0 {
        return ret;
    }
    match crate::ctl::open_hub().and_then(make) {
        Ok(p) => {
            // SAFETY: `open` may set the file's private data, which the
            // table's other operations read back as a `P` (the contract).
            unsafe { (*file).private_data = p.into_foreign().cast() };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `file_operations::open` of `/dev/hotup0`.
///
/// # Safety
///
/// Called by `misc_open` for a file being opened on this device.
unsafe extern "C" fn ctrl_open(inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: `misc_open` calls this table's `open` on a file of a `Node`.
    let disk = unsafe { node_index(file) };
    // SAFETY: per this function's contract; the table's other operations
    // read the private data as a `KBox<CtrlFile>`.
    unsafe {
        open_with(inode, file, |hub| {
            let id = hub.next_file_id();
            let f = CtrlFile {
                hub,
                id,
                disk,
                touched: AtomicBool::new(false),
            };
            KBox::new(f, GFP_KERNEL).map_err(|_| ENOMEM)
        })
    }
}

/// The [`CtrlFile`] of an open `/dev/hotup0` file.
///
/// # Safety
///
/// `file` is a file of this node that `ctrl_open` succeeded on and whose
/// `release` has not run; the reference does not outlive the caller's
/// operation.
unsafe fn ctrl_file<'a>(file: *mut bindings::file) -> &'a CtrlFile {
    // SAFETY: per the contract, the private data is a live
    // `KBox<CtrlFile>` from `ctrl_open`, freed only by `release`.
    unsafe { &*(*file).private_data.cast::<CtrlFile>() }
}

/// `file_operations::open` of the control node.
///
/// # Safety
///
/// Called by `misc_open` for a file being opened on this device.
unsafe extern "C" fn open(inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: per this function's contract; the table's other operations
    // read the private data as a `Ptr` (`Arc<Hub>`).
    unsafe { open_with(inode, file, Ok::<Ptr, Error>) }
}

/// `file_operations::release`.
///
/// # Safety
///
/// Called by the VFS once, for a file `open` succeeded on.
unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: release owns the private data `open` set from `into_foreign`.
    drop(unsafe { Ptr::from_foreign((*file).private_data.cast()) });
    0
}

/// `file_operations::release` of `/dev/hotup0`: a child that answered a
/// call through the file forgets what it kept for it (now, or the next
/// active child).
///
/// # Safety
///
/// Called by the VFS once, for a file `ctrl_open` succeeded on.
unsafe extern "C" fn ctrl_release(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: release owns the private data `ctrl_open` set.
    let f = unsafe { KBox::<CtrlFile>::from_foreign((*file).private_data.cast()) };
    if f.touched.load(Ordering::Acquire) {
        Hub::file_closed(f.hub.as_arc_borrow(), f.id);
    }
    0
}

/// A read or write's result as the VFS takes it: bytes, or a negative
/// errno.
fn ret(r: Result<usize>) -> isize {
    r.map_or_else(|e| e.to_errno() as isize, |n| n as isize)
}

/// `file_operations::read_iter`.
///
/// # Safety
///
/// `kiocb` is for a file `open` succeeded on; `iter` is valid for writing.
unsafe extern "C" fn read_iter(
    kiocb: *mut bindings::kiocb,
    iter: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: the file's private data is a `Ptr` (set by `open`), as
    // `Kiocb<Ptr>` requires; `iter` is valid for writing for the call.
    let (kiocb, iov) = unsafe { (Kiocb::<Ptr>::from_raw(kiocb), IovIterDest::from_raw(iter)) };
    ret(<Ctl as MiscDevice>::read_iter(kiocb, iov))
}

/// `file_operations::write_iter`.
///
/// # Safety
///
/// `kiocb` is for a file `open` succeeded on; `iter` is valid for reading.
unsafe extern "C" fn write_iter(
    kiocb: *mut bindings::kiocb,
    iter: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: as in `read_iter`; `iter` is valid for reading for the call.
    let (kiocb, iov) = unsafe { (Kiocb::<Ptr>::from_raw(kiocb), IovIterSource::from_raw(iter)) };
    ret(<Ctl as MiscDevice>::write_iter(kiocb, iov))
}

/// `FMODE_WRITE` (fs.h; bindgen cannot see its `__force` cast).
const FMODE_WRITE: u32 = 1 << 1;

/// `file_operations::unlocked_ioctl` of `/dev/hotup0`.
///
/// # Safety
///
/// Called by the VFS for a file `open` succeeded on, in the caller's
/// process context.
unsafe extern "C" fn ctrl_ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: a file `ctrl_open` succeeded on; `release` cannot run during
    // this call (the VFS holds a reference to the file).
    let f = unsafe { ctrl_file(file) };
    // SAFETY: the file is valid for the call; `f_mode` is set at open.
    let mode = unsafe { (*file).f_mode };
    let write = mode & FMODE_WRITE != 0;
    let at = CallSite {
        node: NODE_CTRL,
        disk: f.disk,
        write,
    };
    Hub::ioctl(f.hub.as_arc_borrow(), at, cmd, arg as u64, f.id, &f.touched) as c_long
}

/// `EPOLLIN | EPOLLOUT | EPOLLRDNORM | EPOLLWRNORM` (eventpoll.h; bindgen
/// cannot see their `__force` casts).
const POLL_READY: bindings::__poll_t = 0x001 | 0x004 | 0x040 | 0x100;

/// `file_operations::poll` of `/dev/hotup0`: ready for commands while a
/// child is active; otherwise not ready, and the poller is woken when a
/// child becomes active (the parked calls' wait queue).
///
/// # Safety
///
/// Called by the VFS for a file `open` succeeded on; `wait` is null or a
/// poll table valid for the call.
unsafe extern "C" fn ctrl_poll(
    file: *mut bindings::file,
    wait: *mut bindings::poll_table_struct,
) -> bindings::__poll_t {
    // SAFETY: a file `ctrl_open` succeeded on, whose `release` cannot run
    // during this call.
    let hub = &unsafe { ctrl_file(file) }.hub;
    // SAFETY: `wait` is null or valid for the call, per this function's
    // contract; `file` is a valid file for the call.
    let (table, f) = unsafe {
        (
            kernel::sync::poll::PollTable::from_raw(wait),
            kernel::fs::File::from_raw_file(file),
        )
    };
    table.register_wait(f, &hub.calls_wait);
    if hub.io.mode() == crate::inflight::Mode::Active {
        POLL_READY
    } else {
        0
    }
}
