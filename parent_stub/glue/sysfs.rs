// SPDX-License-Identifier: GPL-2.0

//! `/sys/block/hotupblk0/hotup/`: the parent's status as sysfs attributes,
//! one value per file (and `status`, the control node's whole line), the way
//! zram exposes its statistics through the disk's attribute groups.
//!
//! The kernel crate of 7.2 has no sysfs attribute abstraction, so the tables
//! are built here once, as `static`s, and [`disk_groups`] is all the rest of
//! the parent sees of them.

use super::blk::AttrGroups;
use crate::status::{show as show_field, KEYS};
use kernel::{bindings, page::PAGE_SIZE, prelude::*, str::as_char_ptr_in_const_context};

/// The attribute files: every status key, then `status`.
const N: usize = KEYS.len() + 1;

/// The name of attribute `i`.
const fn name(i: usize) -> &'static CStr {
    if i < KEYS.len() {
        KEYS[i].name
    } else {
        c"status"
    }
}

/// `device_attribute::show` of every attribute: looks the value up by the
/// attribute's name.
///
/// # Safety
///
/// Called by sysfs only: `attr` is one of [`ATTRS`] and `buf` points to a
/// writable page (`PAGE_SIZE` bytes), as sysfs guarantees for `show`.
unsafe extern "C" fn show(
    _dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *mut kernel::ffi::c_char,
) -> isize {
    // SAFETY: `attr` is one of our attributes, whose names are
    // NUL-terminated literals (`status::KEYS`).
    let name = unsafe { CStr::from_char_ptr((*attr).attr.name) };
    // SAFETY: sysfs hands `show` a page-sized buffer that nothing else uses
    // during the call.
    let page = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), PAGE_SIZE) };
    let Some(hub) = crate::services::current() else {
        return ENODEV.to_errno() as isize;
    };
    let mut out = kernel::str::Formatter::new(page);
    match show_field(&hub, name.to_bytes(), &mut out) {
        Ok(()) => out.bytes_written() as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// A C table that is only ever read, by sysfs, after module load.
#[repr(transparent)]
struct ReadOnly<T>(T);
// The four C tables below are immutable statics (no interior mutability);
// their raw pointers point into other immutable statics of this module,
// which sysfs only reads.
// SAFETY: the attributes: as above.
unsafe impl Sync for ReadOnly<[bindings::device_attribute; N]> {}
// SAFETY: as above.
unsafe impl Sync for ReadOnly<[*mut bindings::attribute; N + 1]> {}
// SAFETY: as above.
unsafe impl Sync for ReadOnly<bindings::attribute_group> {}
// SAFETY: as above.
unsafe impl Sync for ReadOnly<[*const bindings::attribute_group; 2]> {}

// The update fills the lockdep fields that `struct attribute` has with
// CONFIG_DEBUG_LOCK_ALLOC (zero: sysfs then keys on the static attribute).
#[allow(clippy::needless_update)]
const fn attr(name: &'static CStr) -> bindings::device_attribute {
    bindings::device_attribute {
        attr: bindings::attribute {
            name: as_char_ptr_in_const_context(name),
            mode: 0o444,
            // SAFETY: all-zeroes is the valid initial state of those fields.
            ..unsafe { core::mem::zeroed() }
        },
        __bindgen_anon_1: bindings::device_attribute__bindgen_ty_1 { show: Some(show) },
        __bindgen_anon_2: bindings::device_attribute__bindgen_ty_2 { store: None },
    }
}

static ATTRS: ReadOnly<[bindings::device_attribute; N]> = ReadOnly({
    let mut a = [attr(c"-"); N];
    let mut i = 0;
    while i < N {
        a[i] = attr(name(i));
        i += 1;
    }
    a
});

/// The NULL-terminated attribute list of the group.
static ATTR_PTRS: ReadOnly<[*mut bindings::attribute; N + 1]> = ReadOnly({
    let mut p = [core::ptr::null_mut(); N + 1];
    let mut i = 0;
    while i < N {
        p[i] = (&raw const ATTRS.0[i].attr).cast_mut();
        i += 1;
    }
    p
});

static GROUP: ReadOnly<bindings::attribute_group> = ReadOnly(bindings::attribute_group {
    name: as_char_ptr_in_const_context(c"hotup"),
    __bindgen_anon_2: bindings::attribute_group__bindgen_ty_2 {
        attrs: (&raw const ATTR_PTRS.0)
            .cast::<*mut bindings::attribute>()
            .cast_mut(),
    },
    // SAFETY: all-zeroes is "absent" for the remaining C fields (callbacks
    // and the binary attribute list).
    ..unsafe { core::mem::zeroed() }
});

/// A NULL-terminated list of static attribute groups, as `device_add_disk`
/// takes it.
pub(crate) struct GroupList(ReadOnly<[*const bindings::attribute_group; 2]>);

impl GroupList {
    /// The list for `device_add_disk`, which only reads it.
    pub(crate) fn as_ptr(&'static self) -> *mut *const bindings::attribute_group {
        (&raw const self.0 .0)
            .cast::<*const bindings::attribute_group>()
            .cast_mut()
    }
}

static GROUPS: GroupList = GroupList(ReadOnly([&raw const GROUP.0, core::ptr::null()]));

/// The disk's attribute groups. The block layer creates the files when the
/// disk is added and removes them when it is deleted.
pub(crate) fn disk_groups() -> AttrGroups {
    // SAFETY: `GROUPS` is a static NULL-terminated list of pointers to the
    // static `GROUP`; neither is ever freed or moved.
    unsafe { AttrGroups::new(GROUPS.as_ptr()) }
}
