// SPDX-License-Identifier: GPL-2.0

//! The control node's registration, with an owner.
//!
//! The 7.2 kernel crate's `MiscDeviceRegistration` builds its
//! `file_operations` without `.owner`, so an open file does not pin the
//! module: `rmmod hotup_parent` succeeds while `/dev/hotup-ctl` is open, and
//! the next `read` or `close` runs freed code. This registers the same
//! [`Ctl`] operations (its `MiscDevice` impl) through a table whose owner is
//! this module, so the VFS holds a module reference from open to release.

use super::ctl::Ctl;
use kernel::{
    bindings,
    error::to_result,
    ffi::c_int,
    fs::Kiocb,
    iov::{IovIterDest, IovIterSource},
    miscdevice::MiscDevice,
    prelude::*,
    types::{ForeignOwnable, Opaque},
};

/// The private data of an open control file.
type Ptr = <Ctl as MiscDevice>::Ptr;

/// A registered misc device running [`Ctl`]; deregistered on drop.
///
/// # Invariants
///
/// `inner` holds a `miscdevice` registered with `misc_register` and the
/// static [`FOPS`], until `drop`.
#[pin_data(PinnedDrop)]
pub(crate) struct CtlNode {
    #[pin]
    inner: Opaque<bindings::miscdevice>,
}

// SAFETY: `misc_deregister` may run on any thread.
unsafe impl Send for CtlNode {}
// SAFETY: `CtlNode` has no `&self` methods that touch the device.
unsafe impl Sync for CtlNode {}

impl CtlNode {
    /// Registers `/dev/<name>`.
    pub(crate) fn register(name: &'static CStr) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                // SAFETY: all-zeroes is a valid (unregistered) miscdevice;
                // the initializer may write the slot.
                unsafe { slot.write(core::mem::zeroed()) };
                // SAFETY: `slot` was just initialised; the name and the table
                // are statics, so they outlive the registration.
                unsafe {
                    (*slot).minor = bindings::MISC_DYNAMIC_MINOR as i32;
                    (*slot).name = name.as_char_ptr();
                    (*slot).fops = &FOPS.0;
                }
                // SAFETY: the slot is pinned and deregistered in `drop`
                // before its memory goes away.
                to_result(unsafe { bindings::misc_register(slot) })
            }),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for CtlNode {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: registered by the type invariant; `misc_deregister` waits
        // for an `open` in progress (it runs under `misc_mtx`).
        unsafe { bindings::misc_deregister(self.inner.get()) };
    }
}

/// The table, `static` because the VFS keeps a pointer to it.
struct Fops(bindings::file_operations);

// SAFETY: never written after initialisation; the VFS only reads it.
unsafe impl Sync for Fops {}

static FOPS: Fops = Fops(bindings::file_operations {
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

/// `file_operations::open`.
///
/// # Safety
///
/// Called by `misc_open` for a file being opened on this device.
unsafe extern "C" fn open(inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: both pointers are valid for a file being opened.
    let ret = unsafe { bindings::generic_file_open(inode, file) };
    if ret != 0 {
        return ret;
    }
    let hub = match super::ctl::open_hub() {
        Ok(hub) => hub,
        Err(e) => return e.to_errno(),
    };
    // SAFETY: `open` may set the file's private data; every other
    // operation here reads it back as `Ptr`.
    unsafe { (*file).private_data = hub.into_foreign().cast() };
    0
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
    match <Ctl as MiscDevice>::read_iter(kiocb, iov) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
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
    match <Ctl as MiscDevice>::write_iter(kiocb, iov) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}
