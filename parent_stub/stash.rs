// SPDX-License-Identifier: GPL-2.0

//! The stash and the last good state: the policy is `logic/stash.rs`; here
//! its buffers, allocated when the parent loads, and state_abi's container
//! as the blob format.

use super::edge::name_str;
use super::logic::stash::{BadBlob, Format};
pub(crate) use super::logic::stash::{Offer, StashState};
use super::state_abi::{
    copy_without_section, held_count, max_blob_len_with_held, BlobError, BlobReader, MAX_BLOB_LEN,
    NAME_LEN, TAG_INFLIGHT,
};
use kernel::prelude::*;

/// state_abi's blob container.
pub(crate) struct Abi;

fn bad(e: BlobError) -> BadBlob {
    BadBlob {
        why: e.as_str(),
        errno: e.errno(),
    }
}

impl Format for Abi {
    fn check(blob: &[u8]) -> Result<usize, BadBlob> {
        BlobReader::parse(blob).map(|r| held_count(&r)).map_err(bad)
    }

    fn without_held(blob: &[u8], out: &mut [u8]) -> Option<usize> {
        copy_without_section(blob, TAG_INFLIGHT, out).ok()
    }
}

pub(crate) type Stash = super::logic::stash::Stash<KVec<u8>, Abi, NAME_LEN>;

impl Stash {
    /// Buffers for a device of `tags` tags: an export may hand over one
    /// request per tag (the `INFL` section); the last good state never
    /// holds requests.
    pub(crate) fn new(tags: usize) -> Result<Self> {
        let cap = max_blob_len_with_held(tags);
        Ok(Self::with_buffers(
            KVec::from_elem(0u8, cap, GFP_KERNEL)?,
            KVec::from_elem(0u8, cap, GFP_KERNEL)?,
            KVec::from_elem(0u8, MAX_BLOB_LEN, GFP_KERNEL)?,
        ))
    }

    pub(crate) fn producer_name(&self) -> &str {
        name_str(&self.from.0)
    }
}
