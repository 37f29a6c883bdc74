// SPDX-License-Identifier: GPL-2.0

//! hotup parent: owns `/dev/hotupblk0`, `/dev/hotup-ctl`, the request queue
//! and the parking lot; versioned children attach to it through state_abi's
//! C ABI and hand their state over when they leave.

use kernel::{prelude::*, sync::Arc};

mod board;
mod calls;
mod ctl;
mod edge;
mod glue;
mod hub;
mod hw;
mod inflight;
mod logic;
mod mem;
mod park;
mod services;
mod standby;
mod stash;
#[allow(unused_attributes)]
#[path = "../state_abi/src/lib.rs"]
mod state_abi;
mod status;
mod switch;

use blk::Geometry;
use glue::{blk, disks, event, misc, pci, sync, sysfs};
use hub::Hub;

module! {
    type: HotupParent,
    name: "hotup_parent",
    authors: ["hotup developers"],
    description: "hotup parent: stable device owner for hot-upgradable child drivers",
    license: "GPL",
    params: {
        capacity_mib: u64 {
            default: 256,
            description: "Size of /dev/hotupblk0 in MiB (RAM children; with nvme_pci=1 each disk has its namespace's size)",
        },
        nr_queues: u32 {
            default: 0,
            description: "Hardware queues (0: one per possible CPU, at most 64)",
        },
        queue_depth: u32 {
            default: 64,
            description: "Tags per hardware queue",
        },
        park_timeout_ms: u32 {
            default: 0,
            description: "Fail parked I/O with EIO after this long (0: wait forever)",
        },
        switch_timeout_ms: u32 {
            default: 5000,
            description: "Longest a standby switch waits for the old child to drain before it calls the switch off (the old child resumes)",
        },
        stuck_ms: u32 {
            default: 30000,
            description: "Report a request a child has held longer than this (hotup: error reason=stuck-request; 0: never; at least 100)",
        },
        inject_no_barrier: u32 {
            default: 0,
            description: "Fault injection (tests only): 1 makes detach wait for completions but not for CPUs inside the child",
        },
        nvme_pci: u32 {
            default: 0,
            description: "1: bind QEMU's NVMe controllers (1b36:0010): enable, bus mastering, BAR0, MSI-X vectors and DMA memory, owned by the parent; a hotup_nvme child drives them, each with its disk /dev/hotupblkN and node /dev/hotupN made at the first adopt",
        },
        inject_blackout_alloc: u32 {
            default: 0,
            description: "Fault injection (tests only): 1 makes every adopt allocate with GFP_KERNEL outside the NOIO scope while the gate is closed (lockdep reports it on a debug kernel)",
        },
    },
}

/// The block device's ioctls (`blk.rs`): to the active child through the
/// hub, parking while there is none (`calls.rs`).
///
/// # Safety
///
/// `data` is the queue data of this crate's live disk `disk` (an
/// `Arc<Hub>` from `into_foreign`), and the caller's process context is
/// current.
pub(crate) unsafe fn disk_ioctl(
    data: *mut kernel::ffi::c_void,
    disk: u32,
    write: bool,
    cmd: u32,
    arg: u64,
) -> kernel::ffi::c_int {
    use kernel::types::ForeignOwnable;
    // SAFETY: per the contract, `data` came from `Arc::<Hub>::into_foreign`
    // and stays owned by the disk, which outlives the call (the block
    // device is open).
    let hub = unsafe { <Arc<Hub> as ForeignOwnable>::borrow(data.cast()) };
    // The block device's opens are not tracked: no per-file state.
    let touched = core::sync::atomic::AtomicBool::new(false);
    let at = calls::CallSite {
        node: state_abi::NODE_BLOCK,
        disk,
        write,
    };
    let rc = Hub::ioctl(hub, at, cmd, arg, 0, &touched);
    kernel::ffi::c_int::try_from(rc).unwrap_or(EIO.to_errno())
}

/// The parent's PCI driver, bound devices handed to `hw.rs`.
type PciRegistration =
    kernel::driver::Registration<kernel::pci::Adapter<pci::NvmeDriver<hw::Hooks, services::Drain>>>;

/// The hub published to the children's entry points; withdrawn on drop.
struct Published;

impl Drop for Published {
    fn drop(&mut self) {
        services::withdraw();
    }
}

/// The module. Teardown order: `drop` below fails parked I/O and deletes
/// the disks (each waits for every request and removes its sysfs files);
/// then the fields go in declaration order: the character devices first
/// (an open file holds a module reference, so none is open by now, and
/// `misc_deregister` waits for an `open` in progress: the only users of
/// the published hub besides children, which pin this module), then the
/// published hub, then the hub itself.
#[pin_data(PinnedDrop)]
struct HotupParent {
    /// The PCI driver (`nvme_pci=1`), taken first at unload (`drop`): it
    /// unbinds every controller.
    pci: Option<Pin<KBox<PciRegistration>>>,
    #[pin]
    ctl: misc::Node,
    #[pin]
    ctrl: misc::Node,
    published: Published,
    disks: Option<Disks>,
    hub: Arc<Hub>,
}

/// The hub's disks, removed (after its parked I/O failed: `del_gendisk`
/// waits for every request) on every path that drops this, a failed init
/// included. A disk's queue data holds the hub: this breaks that cycle.
struct Disks(Arc<Hub>);

impl Drop for Disks {
    fn drop(&mut self) {
        self.0.remove_disks();
    }
}

/// The stuck-request bound: 0 (no watch), else at least 100 ms (the watch
/// runs every half of it).
fn stuck_ms(v: u32) -> u32 {
    if v == 0 {
        0
    } else {
        v.max(100)
    }
}

/// The most hardware queues: the child's per-queue state has this many.
const MAX_NR_QUEUES: u32 = state_abi::MAX_QUEUES as u32;

impl kernel::InPlaceModule for HotupParent {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let capacity_mib = *module_parameters::capacity_mib.value();
        let geo = Geometry::from_params(
            capacity_mib,
            *module_parameters::nr_queues.value(),
            *module_parameters::queue_depth.value(),
            MAX_NR_QUEUES,
        );
        let park_timeout_ms = *module_parameters::park_timeout_ms.value();
        try_pin_init!(HotupParent {
            hub: {
                let geo = geo?;
                let no_barrier = *module_parameters::inject_no_barrier.value() != 0;
                if no_barrier {
                    pr_warn!("inject_no_barrier=1: detach will not wait for CPUs inside the child (test only; unsafe)\n");
                }
                let switch_timeout_ms = (*module_parameters::switch_timeout_ms.value()).max(1);
                let blackout_alloc = *module_parameters::inject_blackout_alloc.value() != 0;
                // Reclaim may wait for the gate: recorded once, so lockdep
                // sees an allocation that could enter reclaim while it is
                // closed (`inflight::Closed`).
                blk::GateMap::prime();
                Hub::new(geo, park_timeout_ms, switch_timeout_ms, stuck_ms(*module_parameters::stuck_ms.value()), services::table(&geo, *module_parameters::nvme_pci.value() != 0), no_barrier, blackout_alloc)?
            },
            // The character devices before the disk: opening them fails
            // (ENODEV) until the hub is published, while the disk, once
            // added, can be opened (udev does), so adding it is the last
            // step that can fail: a failed load never frees this module
            // under an open file.
            ctl <- misc::Node::register(c"hotup-ctl", &misc::CTL_FOPS, 0),
            ctrl <- misc::Node::register(c"hotup0", &misc::CTRL_FOPS, 0),
            // A RAM parent's disk now; a hardware parent's, one per
            // controller, once a child's adopt said the namespace's
            // geometry (`Hub::make_disks`).
            disks: {
                let d = Disks(hub.clone());
                if *module_parameters::nvme_pci.value() == 0 {
                    Hub::make_disk(hub.as_arc_borrow(), 0, &hub.geo)?;
                }
                Some(d)
            },
            // Last, so that a failed init never leaves the hub published.
            published: {
                services::publish(hub);
                hotup_event!(
                    "load capacity_mib={} nr_queues={} queue_depth={} park_timeout_ms={} switch_timeout_ms={} stuck_ms={} abi={}.{}",
                    capacity_mib, hub.geo.nr_queues, hub.geo.queue_depth, park_timeout_ms, hub.switch_timeout_ms, hub.stuck_ms,
                    state_abi::ABI_MAJOR, state_abi::ABI_MINOR
                );
                Published
            },
            // After the hub is published: a controller bound now is
            // logged, and bind failures do not fail the load.
            pci: if *module_parameters::nvme_pci.value() != 0 {
                // Not fatal: once the disk was added, a failed init could
                // free this module under a file opened meanwhile.
                match KBox::pin_init(kernel::driver::Registration::new(c"hotup_parent", module), GFP_KERNEL) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        hotup_event!("error reason=pci-register-failed err={}", e.to_errno());
                        None
                    }
                }
            } else {
                None
            },
        })
    }
}

#[pinned_drop]
impl PinnedDrop for HotupParent {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: no field is moved out; `disks` is taken in place.
        let this = unsafe { self.get_unchecked_mut() };
        // Unbinds every controller (disabling it) and frees its handlers;
        // no child is registered (each holds this module), so nothing uses
        // the devices' slots any more.
        drop(this.pci.take());
        hw::release_all();
        // Fails parked I/O, then deletes the disks, each waiting for every
        // request; none is parked any more.
        drop(this.disks.take());
        hotup_event!("unload");
    }
}
