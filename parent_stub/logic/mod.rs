// SPDX-License-Identifier: GPL-2.0

//! The parent's pure logic: `core` only, no allocation, no locks, no
//! `kernel::`. Compiled into the parent as `mod logic` (`--cfg
//! hotup_parent`) and on the host as the crate `hotup-parent-logic`, whose
//! tests (`tests/`) check it without a guest. Storage is the caller's
//! (generic over slices), so the kernel side keeps its `KVec`s and locks.

#![cfg_attr(not(hotup_parent), no_std)]
#![forbid(unsafe_code)]
// A private module of the parent: its `pub` items are the parent's API.
#![cfg_attr(hotup_parent, allow(unreachable_pub))]
#![warn(
    missing_docs,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod phase;
pub mod regions;
pub mod ring;
pub mod stash;
