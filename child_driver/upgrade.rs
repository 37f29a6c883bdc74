// SPDX-License-Identifier: GPL-2.0

//! The upgrade half: quiesce, freeze and finish, export into the state
//! blob and adopt from one (fresh, migrated, or handed over).

use super::*;

impl Dev {
    /// Stops taking I/O and waits until everything submitted has completed
    /// and no completion context of ours (work item, timer) is running.
    pub(super) fn quiesce(&self) -> i32 {
        if self.irq.enabled {
            // The parent calls us once every request has completed; what is
            // left is a callback that may still be running: stopping the
            // timer waits for it.
            self.state.lock().accepting = false;
            self.stop_irq_timer();
            return 0;
        }
        let mut g = self.state.lock();
        g.accepting = false;
        while g.inflight > 0 {
            self.idle.wait(&mut g);
        }
        drop(g);
        flush_work(&self.work);
        0
    }

    /// Handover: stops taking I/O and starting completions; what is
    /// pending stays held for the export. A completion the worker has
    /// already started (taken off `pending`) ends on its own, maybe after
    /// we return (`FreezeFn`): waiting for it here would put the worker's
    /// scheduling latency inside the blackout. `finish` waits for it.
    pub(super) fn freeze(&self) -> i32 {
        if self.irq.enabled {
            // The hard-IRQ slots are not handed over (no CAP_HANDOVER).
            return -crate::state_abi::errno::EOPNOTSUPP;
        }
        let mut g = self.state.lock();
        g.accepting = false;
        g.frozen = true;
        let (held, completing) = (g.pending.len(), g.completing);
        drop(g);
        pr_info!(
            "freeze version={} held={} completing={}\n",
            crate::CHILD_VERSION,
            held,
            completing
        );
        0
    }

    /// Resumes after a switch was called off: takes I/O again and
    /// completes what it held itself.
    pub(super) fn unfreeze(self: &Arc<Self>) {
        let mut g = self.state.lock();
        if g.retired {
            return;
        }
        g.accepting = true;
        g.frozen = false;
        g.exported = false;
        let held = g.pending.len();
        drop(g);
        if self.irq.enabled {
            self.start_irq_timer();
        }
        let _ = default_queue().enqueue(self.clone());
        pr_info!("resume version={} held={}\n", crate::CHILD_VERSION, held);
    }

    /// The switch that exported this child committed: what it held is the
    /// successor's now; it takes and completes nothing any more. Returns
    /// once a completion started before the freeze has come back from the
    /// parent (`FinishFn`). (For the child that just adopted, `finish`
    /// changes nothing.)
    pub(super) fn finish(&self) {
        let mut g = self.state.lock();
        if !g.exported || g.accepting {
            return;
        }
        let handed = g.pending.len();
        g.pending.clear();
        g.inflight = 0;
        g.stats.inflight = 0;
        g.frozen = false;
        g.retired = true;
        // The worker takes nothing off `pending` any more (it is empty and
        // `retired`); one completion may still be under way.
        while g.completing > 0 {
            self.idle.wait(&mut g);
        }
        drop(g);
        self.idle.notify_all();
        pr_info!(
            "retired version={} handed_over={}\n",
            crate::CHILD_VERSION,
            handed
        );
    }

    pub(super) fn export(&self, buf: &mut [u8], schema: u32) -> Result<usize, i32> {
        let (schema, trial_held) = export_schema(schema);
        if self.faults.export_fault == 1 {
            pr_warn!("export: failing on purpose (inject_export_fault=1)\n");
            return Err(EIO.to_errno());
        }
        let mut g = self.state.lock();
        let Some(region) = g.region else {
            return Err(ENXIO.to_errno());
        };
        let mut dev = g.dev;
        dev.data_handle = region.handle;
        dev.data_len = region.len;
        // By reference: the array is kilobytes (a kernel stack is 16).
        let qs = KEEPS_QUEUE_STATS.then_some(&g.queues);
        // Frozen (a handover): the pending requests go into the blob, with
        // the device time each has left. Under the lock, though nothing
        // changes them while frozen.
        let now = Instant::<Monotonic>::now();
        let src: &[Pending] = if g.frozen || trial_held {
            &g.pending
        } else {
            &[]
        };
        // A forging child forges even when it holds nothing (a slow
        // machine's freeze can find the device empty): one made-up entry.
        let extra =
            usize::from(src.is_empty() && (g.frozen || trial_held) && self.faults.forges_held());
        let held = (0..src.len() + extra).map(|i| {
            let h = src.get(i).map_or(Faults::MADE_UP, |p| HeldRequest {
                cookie: p.cookie,
                remaining_ns: u64::try_from((p.due - now).as_nanos()).unwrap_or(0),
                status: p.status,
            });
            self.faults.forge_held(i, h)
        });
        let n_held = src.len();
        let n_files = g.files.len();
        let fua_writes = g.fua_writes;
        let ctrl = ControllerState {
            power_on_ns: g.power_on_ns(),
            ..g.ctrl
        };
        let written = write_state_full(
            buf,
            crate::CHILD_VERSION,
            &dev,
            qs,
            schema,
            held,
            Some(&ctrl),
            (n_files > 0).then_some(&g.files),
        );
        // A trial export (the switch's prepare step, while the child still
        // takes I/O) changes nothing; only a real one can lead to `finish`
        // retiring the child.
        if written.is_ok() && !g.accepting {
            g.exported = true;
        }
        drop(g);
        let len = written.map_err(|e| {
            pr_err!("export failed: {}\n", e.as_str());
            e.errno()
        })?;
        let len = self.faults.mangle_export(buf, len, n_held);
        pr_info!(
            "export version={} schema={} blob_bytes={} handle={:#x} held={} files={} fua_writes={}\n",
            crate::CHILD_VERSION,
            schema,
            len,
            region.handle.0,
            n_held,
            n_files,
            fua_writes
        );
        Ok(len)
    }

    /// Adopts `blob` (None: start empty). With `probe`, only checks that it
    /// could (the whole blob, the handed-over requests, the preserved
    /// memory it names) and changes nothing.
    pub(super) fn adopt(&self, blob: Option<&[u8]>, probe: bool) -> Result<(), i32> {
        let svc = self.services().ok_or(ENODEV.to_errno())?;
        let what = if probe { "probe" } else { "adopt" };
        if probe && blob.is_none() {
            return Err(EINVAL.to_errno());
        }
        // What the blob (or a fresh start) gives, on the heap: the queue
        // statistics and per-file states are fixed arrays of kilobytes,
        // and this runs on a kernel stack.
        let (t, held) = match blob {
            None => (self.fresh(svc)?, crate::state_abi::HeldIter::EMPTY),
            Some(blob) => self.take_blob(blob, svc, what)?,
        };
        let dev = t.out.dev;
        let map = svc.mem_map.ok_or(EINVAL.to_errno())?;
        let (mut base, mut len) = (core::ptr::null_mut(), 0u64);
        // SAFETY: the parent's lookup; both out pointers are valid. The
        // parent checks the handle, so a forged handle is refused, not used.
        let rc = unsafe { map(dev.data_handle.0, &mut base, &mut len) };
        if rc != 0 || base.is_null() || len < dev.capacity_bytes {
            pr_err!(
                "{} refused: preserved memory handle {:#x} is not valid ({})\n",
                what,
                dev.data_handle.0,
                rc
            );
            return Err(if rc != 0 { rc } else { EINVAL.to_errno() });
        }
        if probe {
            return Ok(());
        }
        if self.faults.adopt_error {
            pr_warn!("adopt: failing on purpose (inject_adopt_error=1)\n");
            return Err(EIO.to_errno());
        }
        let mut dev = dev;
        if blob.is_some() {
            dev.adopt_count = dev.adopt_count.saturating_add(1);
            self.faults.arm_lost_writes();
        }
        let mut g = self.state.lock();
        g.region = Some(Region {
            handle: dev.data_handle,
            base,
            len,
        });
        g.dev = dev;
        g.ctrl = t.ctrl;
        g.files = t.out.files;
        g.started = Instant::<Monotonic>::now();
        g.queues = t.out.queues;
        let n_held = held.len();
        g.take_held(held);
        g.stats.inflight = u64::from(g.inflight);
        g.accepting = true;
        drop(g);
        if n_held > 0 {
            pr_info!(
                "adopt version={} handed_over={}\n",
                crate::CHILD_VERSION,
                n_held
            );
        }
        if self.irq.enabled {
            let used = (svc.nr_queues as usize)
                .saturating_mul(svc.queue_depth as usize)
                .min(self.irq.slots.len());
            self.irq
                .used
                .store(used, core::sync::atomic::Ordering::Release);
        }
        log_adopt(blob, &t, dev);
        Ok(())
    }
}

impl State {
    /// Queues the requests handed over: ours to complete, first.
    pub(super) fn take_held(&mut self, held: crate::state_abi::HeldIter<'_>) {
        // Requests handed over: ours to complete, first (their device
        // time started before any request submitted from now on).
        let now = Instant::<Monotonic>::now();
        for h in held {
            // Bounded by the reader (`MAX_REMAINING_NS`, 10 s): no overflow.
            let left = h.remaining_ns.min(crate::state_abi::MAX_REMAINING_NS);
            let due = now + Delta::from_nanos(i64::try_from(left).unwrap_or(0));
            // Room was checked above; a failure cannot happen.
            if self
                .pending
                .push_within_capacity(Pending {
                    cookie: h.cookie,
                    status: h.status,
                    due,
                })
                .is_ok()
            {
                self.inflight += 1;
            }
        }
    }
}

/// The schema an export asked for `schema` writes (0 or one newer than
/// this version's: its own), and whether it is a trial for a handover
/// switch (which writes what is pending now).
pub(super) fn export_schema(schema: u32) -> (u32, bool) {
    let trial_held = schema & EXPORT_TRIAL_HANDOVER != 0;
    let schema = schema & !EXPORT_TRIAL_HANDOVER;
    if schema == 0 || schema > SCHEMA {
        (SCHEMA, trial_held)
    } else {
        (schema, trial_held)
    }
}

/// The child's `adopt` line: what it adopted from `blob` (or fresh).
pub(super) fn log_adopt(blob: Option<&[u8]>, t: &Taken, dev: DeviceStateV2) {
    match blob {
        None => pr_info!("adopt version={} fresh capacity_bytes={}\n", crate::CHILD_VERSION, dev.capacity_bytes),
        Some(b) => pr_info!(
            "adopt version={} from_version={} schema={} migrated={} blob_bytes={} reads={} writes={} adopt_count={} files={}\n",
            crate::CHILD_VERSION,
            t.producer,
            t.out.version,
            if u32::from(t.out.version) < SCHEMA { "yes" } else { "no" },
            b.len(),
            dev.reads,
            dev.writes,
            dev.adopt_count,
            t.out.files.len()
        ),
    }
}

/// What an adopt takes over (from a blob, or fresh), boxed: see `adopt`.
pub(super) struct Taken {
    /// The state read (for a fresh start: made up), queue statistics sized
    /// for the parent's queues, the controller's state filled in.
    out: StateOut,
    /// The blob producer's child version (0 for fresh).
    producer: u32,
    /// The controller: the blob's, or (fresh, an older producer) one just
    /// powered on.
    ctrl: ControllerState,
}

impl Taken {
    const EMPTY: Taken = Taken {
        out: StateOut::EMPTY,
        producer: 0,
        ctrl: ControllerState::FRESH,
    };
}

impl Taken {
    /// A box for what an adopt takes, written in place (no kilobyte-sized
    /// value on the stack).
    pub(super) fn new_box() -> Result<KBox<Taken>> {
        Ok(KBox::write(
            KBox::<Taken>::new_uninit(GFP_KERNEL)?,
            Taken::EMPTY,
        ))
    }
}

impl Dev {
    /// The box an adopt fills in: the one allocated at load (a probe, which
    /// runs before the parent closes the gate, allocates its own; a second
    /// adopt after a refused one too, GFP_NOIO in the parent's scope).
    pub(super) fn taken(&self, probe: bool) -> Result<KBox<Taken>, i32> {
        let kept = if probe {
            None
        } else {
            self.adopt_box.lock().take()
        };
        let mut t = match kept {
            Some(mut t) => {
                *t = Taken::EMPTY;
                t
            }
            None => Taken::new_box().map_err(|e| e.to_errno())?,
        };
        t.ctrl = self.default_ctrl();
        Ok(t)
    }

    /// A fresh start: preserved memory for the whole device, zeroed.
    #[inline(never)]
    pub(super) fn fresh(&self, svc: &ParentServices) -> Result<KBox<Taken>, i32> {
        if svc.block_size != 1 << nvme::LBA_SHIFT {
            pr_err!(
                "adopt refused: the parent's block size {} is not the namespace's LBA size {}\n",
                svc.block_size,
                1u32 << nvme::LBA_SHIFT
            );
            return Err(EINVAL.to_errno());
        }
        let mut t = self.taken(false)?;
        t.out.dev.capacity_bytes = svc.capacity_bytes;
        t.out.dev.block_size = svc.block_size;
        t.out.dev.nr_queues = svc.nr_queues;
        t.out.queues.reset(svc.nr_queues as usize);
        let alloc = svc.mem_alloc.ok_or(EINVAL.to_errno())?;
        let mut h = 0u64;
        // SAFETY: the parent's allocator; `h` is a valid out pointer.
        let rc = unsafe { alloc(svc.capacity_bytes, &mut h) };
        if rc != 0 {
            pr_err!(
                "adopt: cannot allocate {} bytes of preserved memory: {}\n",
                svc.capacity_bytes,
                rc
            );
            return Err(rc);
        }
        t.out.dev.data_handle = MemHandle(h);
        t.out.dev.data_len = svc.capacity_bytes;
        Ok(t)
    }

    /// Reads and checks `blob` (for `what`, "adopt" or "probe"): what it
    /// gives, and the requests it hands over.
    #[inline(never)]
    pub(super) fn take_blob<'b>(
        &self,
        blob: &'b [u8],
        svc: &ParentServices,
        what: &str,
    ) -> Result<(KBox<Taken>, crate::state_abi::HeldIter<'b>), i32> {
        let refuse = |e: BlobError| {
            pr_err!(
                "{} refused: {} (this is v{}, reading schema <= {})\n",
                what,
                e.as_str(),
                crate::CHILD_VERSION,
                SCHEMA
            );
            e.errno()
        };
        let mut t = self.taken(what == "probe")?;
        let h = read_state_into(blob, SCHEMA, &mut t.out).map_err(refuse)?;
        if !h.is_empty() && (self.irq.enabled || h.len() > self.pending_room()) {
            pr_err!(
                "{} refused: {} requests handed over, which this child cannot complete (complete_in_irq={})\n",
                what,
                h.len(),
                u8::from(self.irq.enabled)
            );
            return Err(-crate::state_abi::errno::EPROTO);
        }
        t.producer = BlobReader::parse(blob)
            .map_err(refuse)?
            .producer_child_version();
        let dev = &t.out.dev;
        if dev.capacity_bytes != svc.capacity_bytes || dev.block_size != svc.block_size {
            pr_err!(
                "{} refused: blob geometry {} bytes/{} does not match the parent's {} bytes/{}\n",
                what,
                dev.capacity_bytes,
                dev.block_size,
                svc.capacity_bytes,
                svc.block_size
            );
            return Err(EINVAL.to_errno());
        }
        // Queue statistics travel only between versions that keep them,
        // and only for the same number of queues.
        let n = svc.nr_queues as usize;
        if !(KEEPS_QUEUE_STATS && t.out.has_queues && t.out.queues.len() == n) {
            t.out.queues.reset(n);
        }
        if let Some(c) = t.out.ctrl {
            t.ctrl = c;
        }
        Ok((t, h))
    }
}
