// SPDX-License-Identifier: GPL-2.0

//! The contract between the hotup parent module and its versioned children.
//!
//! Everything that crosses a module boundary is defined here: the C-ABI
//! tables and I/O descriptors ([`abi`]), the versioned state blob a child
//! hands to its successor ([`blob`]), its checksum ([`crc32c`]), the
//! in-flight requests a standby switch hands over ([`handover`]) and the
//! per-file section ([`files`]). The device-state schema both child
//! versions speak (`device_state`, `controller`, `state`) is compiled by
//! the children and host tests only, not by the parent
//! (`cfg(hotup_parent)`). The parser of the parent's status and event
//! lines (`lines`) is for host tools only (feature `host`).
//!
//! The crate is `no_std`, allocation-free, free of `unsafe` and of panicking
//! paths on any input. The same source is compiled as an ordinary crate (host
//! tests, property tests, fuzzing) and into each kernel module through
//! `#[path = "../state_abi/src/lib.rs"] mod state_abi;`. Therefore nothing in
//! here may name `crate::`: sibling modules are reached through `super::`.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
// Included by path as a private module of a kernel crate, each module uses
// only part of the crate: unused items there are expected, not dead code.
// Host test builds (`cfg(test)`) still report dead code.
#![cfg_attr(not(test), allow(dead_code, unused_imports, unreachable_pub))]
#![deny(missing_docs)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    clippy::ptr_as_ptr,
    clippy::as_underscore,
    clippy::cast_lossless,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
#![cfg_attr(
    test,
    allow(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::cast_lossless
    )
)]

/// C `void`, for the opaque context pointers of the ABI.
///
/// The only place `core::ffi` is named, so that both the host crate and the
/// kernel crates agree on one spelling.
pub type CVoid = core::ffi::c_void;

// The boundary: what the parent compiles (it is built with
// `cfg(hotup_parent)`): the C-ABI tables, the blob container, the requests
// handed over, the per-file section.
pub mod abi;
pub mod blob;
pub mod crc32c;
pub mod errno;
pub mod files;
pub mod handover;

// Host tools only: the parser of the parent's status and event lines. The
// kernel build sets no cargo feature, so the modules never compile it.
#[cfg(any(test, feature = "host"))]
pub mod lines;

// The children's device-state schema: left out of the parent, which moves
// blobs and regions and never decodes a child's data structures.
#[cfg(not(hotup_parent))]
pub mod controller;
#[cfg(not(hotup_parent))]
pub mod device_state;
#[cfg(not(hotup_parent))]
pub mod state;

pub use abi::*;
pub use blob::{
    copy_without_section, reseal, tag, BlobError, BlobReader, BlobWriter, LeReader, Section,
    SectionIter, SectionWriter, BLOB_FORMAT_VERSION, BLOB_HEADER_LEN, BLOB_MAGIC, MAX_BLOB_LEN,
    MAX_QUEUES, MAX_SECTIONS, SECTION_HEADER_LEN, SECTION_MANDATORY,
};
#[cfg(not(hotup_parent))]
pub use controller::{ControllerState, NVMC_V1, TAG_CONTROLLER};
pub use crc32c::{crc32c, crc32c_update};
#[cfg(not(hotup_parent))]
pub use device_state::{
    read_state, write_state, DeviceStateV1, DeviceStateV2, QueueStat, QueueStats, SCHEMA_LATEST,
    TAG_DEVICE_STATE, TAG_QUEUE_STATS,
};
pub use files::{FileState, FileStates, FILE_V1, MAX_FILES, TAG_FILES};
pub use handover::{
    cookie_slot, decode_held, encode_held, held_count, held_in_blob, max_blob_len_with_held,
    HeldIter, HeldRequest, INFL_V1, MAX_HELD, MAX_REMAINING_NS, TAG_INFLIGHT,
};
#[cfg(not(hotup_parent))]
pub use state::{read_state_held, read_state_into, write_state_full, write_state_held, StateOut};
