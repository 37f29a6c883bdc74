// SPDX-License-Identifier: GPL-2.0

//! The parent's disks and their controller nodes, by index ([`DiskSet`]):
//! a RAM parent's disk 0, made at load, or a disk per hardware device,
//! made after the first adopt that said its namespace's geometry. Built on
//! [`super::blk::Disk`] and [`super::misc::Node`]; not shared with
//! `hotup_mono`, which has one disk and no node.

use super::blk::{AttrGroups, Disk, Geometry};
use kernel::{
    bindings,
    block::mq::{Operations, TagSet},
    prelude::*,
    sync::Arc,
};

/// Most disks one parent makes (a RAM parent's one, or one per hardware
/// device: `hw::MAX_HW`).
pub(crate) const MAX_DISKS: usize = 8;

/// The disks' names and their controller nodes' (`static`: a misc device
/// keeps its name's pointer), by index.
const DISK_NAMES: [&CStr; MAX_DISKS] = [
    c"hotupblk0",
    c"hotupblk1",
    c"hotupblk2",
    c"hotupblk3",
    c"hotupblk4",
    c"hotupblk5",
    c"hotupblk6",
    c"hotupblk7",
];
const NODE_NAMES: [&CStr; MAX_DISKS] = [
    c"hotup0", c"hotup1", c"hotup2", c"hotup3", c"hotup4", c"hotup5", c"hotup6", c"hotup7",
];

/// A disk of a [`DiskSet`], with its controller node past disk 0 (the
/// module registers `/dev/hotup0` itself, at load).
struct Made<T: Operations> {
    index: u32,
    _node: Option<Pin<KBox<super::misc::Node>>>,
    _disk: Disk<T>,
}

/// The parent's disks, all on one tag set (a tag names one request of all
/// of them on its hardware queue), by index; removed when taken out
/// ([`DiskSet::take`]) and dropped.
pub(crate) struct DiskSet<T: Operations> {
    tagset: Arc<TagSet<T>>,
    list: KVec<Made<T>>,
}

// SAFETY: the tag set is a C `blk_mq_tag_set`, which the block layer lets
// any thread allocate disks on and free (its own locks guard its lists);
// the set only hands references to it to `Disk::new` and drops its own,
// and the disks are `Send` themselves (above).
unsafe impl<T: Operations> Send for DiskSet<T> where T::QueueData: Send {}

impl<T: Operations> DiskSet<T> {
    /// No disk yet, the tag set for `geo`'s queues (allocates).
    pub(crate) fn new(geo: &Geometry) -> Result<Self> {
        Ok(Self {
            tagset: Arc::pin_init(TagSet::new(geo.nr_queues, geo.queue_depth, 1), GFP_KERNEL)?,
            list: KVec::with_capacity(MAX_DISKS, GFP_KERNEL)?,
        })
    }

    /// Marks the tag set shared before its first disk, for a parent that
    /// will make several: blk-mq otherwise turns it shared when the second
    /// disk comes, freezing the first one's queue (a wait for all its
    /// requests, with the switch lock held) to do it. Not for one disk:
    /// shared tags count every request's start and end on the hardware
    /// context (two atomic operations per I/O).
    fn share(&mut self) {
        // `TagSet` is `#[repr(transparent)]` over `Opaque<blk_mq_tag_set>`.
        let set = core::ptr::from_ref::<TagSet<T>>(&self.tagset)
            .cast::<bindings::blk_mq_tag_set>()
            .cast_mut();
        // SAFETY: the set is initialised and no queue uses it yet (the
        // caller checked that no disk was made on it, and only this set
        // makes disks on it, under `&mut self`), so nothing reads its flags
        // now; blk-mq's own transition to shared sets this same flag, and
        // every queue added later takes it (`blk_mq_add_queue_tag_set`).
        unsafe { (*set).flags |= bindings::BLK_MQ_F_TAG_QUEUE_SHARED };
    }

    /// Whether disk `index` exists.
    pub(crate) fn has(&self, index: u32) -> bool {
        self.list.iter().any(|m| m.index == index)
    }

    /// Makes disk `index` (`/dev/hotupblkN`) with `geo`, and past disk 0
    /// its controller node `/dev/hotupN` on `node_fops`; `more` says more
    /// disks will come (the first one then shares the tags from the
    /// start). Process context, never inside the blackout: it allocates
    /// and registers.
    pub(crate) fn add(
        &mut self,
        index: u32,
        geo: &Geometry,
        queue_data: T::QueueData,
        groups: AttrGroups,
        node_fops: &'static super::misc::Fops,
        more: bool,
    ) -> Result {
        let i = index as usize;
        let (name, node_name) = DISK_NAMES.get(i).zip(NODE_NAMES.get(i)).ok_or(EINVAL)?;
        if self.has(index) {
            return Err(EEXIST);
        }
        if self.list.is_empty() && more {
            self.share();
        }
        let node = match index {
            0 => None,
            _ => Some(KBox::pin_init(
                super::misc::Node::register(node_name, node_fops, index),
                GFP_KERNEL,
            )?),
        };
        let disk = Disk::new(name, index, geo, self.tagset.clone(), queue_data, groups)?;
        self.list.push(
            Made {
                index,
                _node: node,
                _disk: disk,
            },
            GFP_KERNEL,
        )?;
        Ok(())
    }

    /// Takes every disk out (dropping them removes them: each waits for
    /// its requests).
    pub(crate) fn take(&mut self) -> KVec<impl Sized> {
        core::mem::take(&mut self.list)
    }
}
