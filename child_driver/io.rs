// SPDX-License-Identifier: GPL-2.0

//! The I/O path: submission into the preserved region, completion from
//! the work item or (`complete_in_irq=1`) the hard-IRQ timer, the counts.

use super::*;

impl Region {
    /// Copies between the region at `off` and the request's segments.
    pub(super) fn transfer(&self, off: u64, segs: &[IoSegment], write: bool) -> Result {
        let mut pos = off;
        for s in segs {
            let n = u64::from(s.len);
            let end = pos.checked_add(n).filter(|e| *e <= self.len).ok_or(EIO)?;
            if s.addr.is_null() {
                return Err(EIO);
            }
            // SAFETY: `pos..end` is inside the region (checked above), which
            // the parent keeps mapped while any child holds its handle; the
            // segment points at `s.len` bytes of a request's data page,
            // valid until the request completes (ABI contract). Concurrent
            // requests to overlapping ranges are the submitter's business,
            // as on any block device.
            unsafe {
                let at = self.base.add(pos as usize);
                if write {
                    core::ptr::copy_nonoverlapping(s.addr.cast_const(), at, s.len as usize);
                } else {
                    core::ptr::copy_nonoverlapping(at.cast_const(), s.addr, s.len as usize);
                }
            }
            pos = end;
        }
        Ok(())
    }

    /// Zeroes `len` bytes at `off` (discard and write-zeroes read back zeroes).
    pub(super) fn zero(&self, off: u64, len: u64) -> Result {
        off.checked_add(len).filter(|e| *e <= self.len).ok_or(EIO)?;
        // SAFETY: the range is inside the region, checked above.
        unsafe { core::ptr::write_bytes(self.base.add(off as usize), 0, len as usize) };
        Ok(())
    }
}

impl Dev {
    /// Completes every pending I/O whose latency has passed, sleeping until
    /// the next one is due. Runs in the work item (process context).
    pub(super) fn complete_due(&self) {
        let Some(complete) = self.services().and_then(|s| s.complete) else {
            return;
        };
        loop {
            let mut g = self.state.lock();
            if g.frozen || g.retired {
                // Held for the successor (or handed over already).
                return;
            }
            let Some(first) = g.pending.first() else {
                return;
            };
            let wait = first.due - Instant::<Monotonic>::now();
            if wait.as_nanos() > 0 {
                drop(g);
                fsleep(wait);
                continue;
            }
            let Ok(p) = g.pending.remove(0) else {
                return;
            };
            g.completing += 1;
            drop(g);
            if self.faults.complete_delay > Delta::ZERO {
                // Fault injection: a completion under way, for a while.
                fsleep(self.faults.complete_delay);
            }
            // SAFETY: `complete` is the parent's service; the cookie is the
            // one it gave us for this request, completed exactly once.
            unsafe { complete(p.cookie, p.status) };
            let mut g = self.state.lock();
            g.completing = g.completing.saturating_sub(1);
            g.inflight = g.inflight.saturating_sub(1);
            g.stats.completed += 1;
            g.stats.inflight = u64::from(g.inflight);
            // Quiesce waits for no I/O, a retiring child's `finish` for no
            // completion under way.
            let idle = g.inflight == 0 || (g.retired && g.completing == 0);
            drop(g);
            if idle {
                self.idle.notify_all();
            }
        }
    }

    /// Hard-IRQ mode: completes every request whose latency has passed.
    pub(super) fn complete_due_irq(&self) {
        use core::sync::atomic::Ordering::*;
        let Some(complete) = self.services().and_then(|s| s.complete) else {
            return;
        };
        let now = (Instant::<Monotonic>::now() - self.irq.t0).as_nanos();
        let used = self.irq.used.load(Acquire);
        for slot in self.irq.slots.iter().take(used) {
            let c = slot.cookie.load(Acquire);
            if c == 0 || slot.due_ns.load(Relaxed) > now {
                continue;
            }
            if slot.cookie.compare_exchange(c, 0, AcqRel, Relaxed).is_ok() {
                // SAFETY: the parent's `complete` is callable from any
                // context (hard IRQ included); this cookie is completed
                // exactly once (the compare-and-swap above).
                unsafe { complete(c, slot.status.load(Relaxed)) };
            }
        }
    }

    /// Hard-IRQ mode: queues the completion of `cookie` for the timer.
    pub(super) fn queue_irq_completion(&self, cookie: u64, status: i32) -> i32 {
        use core::sync::atomic::Ordering::*;
        let idx = (cookie & 0xffff_ffff) as usize;
        let Some(slot) = self
            .irq
            .slots
            .get(idx)
            .filter(|_| idx < self.irq.used.load(Acquire))
        else {
            return EINVAL.to_errno();
        };
        let due = (Instant::<Monotonic>::now() - self.irq.t0) + self.latency;
        slot.status.store(status, Relaxed);
        slot.due_ns.store(due.as_nanos(), Relaxed);
        // Publishes status and due time to the callback.
        slot.cookie.store(cookie, Release);
        0
    }

    /// Hard-IRQ mode: starts the periodic timer (adopt).
    pub(super) fn start_irq_timer(self: &Arc<Self>) {
        let mut h = self.timer_handle.lock();
        if h.is_none() {
            self.irq
                .stop
                .store(false, core::sync::atomic::Ordering::Release);
            *h = Some(self.clone().start(self.irq.period));
        }
    }

    /// Hard-IRQ mode: stops the timer and waits until its callback has
    /// returned (dropping the handle cancels it).
    pub(super) fn stop_irq_timer(&self) {
        self.irq
            .stop
            .store(true, core::sync::atomic::Ordering::Release);
        let handle = self.timer_handle.lock().take();
        drop(handle);
    }

    pub(super) fn submit(self: &Arc<Self>, io: &IoDesc) -> i32 {
        let Some(op) = IoOp::from_raw(io.opcode) else {
            return EINVAL.to_errno();
        };
        let segs: &[IoSegment] = if io.nr_segs == 0 || io.segs.is_null() {
            &[]
        } else {
            // SAFETY: the ABI guarantees `segs` points to `nr_segs` segments
            // valid for the duration of `submit`.
            unsafe { core::slice::from_raw_parts(io.segs, io.nr_segs as usize) }
        };
        let mut g = self.state.lock();
        if !g.accepting {
            return EBUSY.to_errno();
        }
        let Some(region) = g.region else {
            return ENXIO.to_errno();
        };
        let q = io.queue as usize;
        g.count_submitted(op, io.flags, q);
        drop(g);
        let seg_bytes: u64 = segs.iter().map(|s| u64::from(s.len)).sum();
        let res = match op {
            IoOp::Read | IoOp::Write if seg_bytes != io.len => Err(EIO),
            IoOp::Read => region.transfer(io.offset, segs, false),
            IoOp::Write if self.faults.lose_this_write() => Ok(()),
            IoOp::Write => region.transfer(io.offset, segs, true),
            IoOp::Flush => Ok(()),
            IoOp::Discard | IoOp::WriteZeroes => region.zero(io.offset, io.len),
        };
        let status = res.map_or_else(|e| e.to_errno(), |()| 0);
        let mut g = self.state.lock();
        g.count_done(op, io.len, q, status);
        if self.irq.enabled {
            // Completed by the hard-IRQ timer; counted as done here.
            g.inflight = g.inflight.saturating_sub(1);
            g.stats.completed += 1;
            g.stats.inflight = u64::from(g.inflight);
            drop(g);
            let rc = self.queue_irq_completion(io.cookie, status);
            if rc != 0 {
                return rc;
            }
            if self.faults.submit_delay > Delta::ZERO {
                busy_wait(self.faults.submit_delay);
                self.state.lock().stats.submitted += 0;
            }
            return 0;
        }
        let due = Instant::<Monotonic>::now() + self.latency;
        if let Err(e) = g.pending.push_within_capacity(Pending {
            cookie: io.cookie,
            status,
            due,
        }) {
            // Cannot happen: capacity covers every tag. Refuse rather than lose it.
            let _ = e;
            g.inflight = g.inflight.saturating_sub(1);
            let idle = g.inflight == 0;
            drop(g);
            if idle {
                self.idle.notify_all();
            }
            return ENOSPC.to_errno();
        }
        drop(g);
        if self.faults.submit_delay > Delta::ZERO {
            // Fault injection: the completion is visible and its worker
            // queued; stay in this module's code a while, then touch the
            // device, as the code after the unlock always does. Without the
            // parent's barrier the module can be freed under this CPU.
            let _ = default_queue().enqueue(self.clone());
            busy_wait(self.faults.submit_delay);
            self.state.lock().stats.submitted += 0;
        }
        // Already queued is fine: the running worker drains everything.
        let _ = default_queue().enqueue(self.clone());
        0
    }
}

impl State {
    /// Counts a request of `op` with `flags` accepted on queue `q`.
    pub(super) fn count_submitted(&mut self, op: IoOp, flags: u32, q: usize) {
        self.inflight += 1;
        self.stats.submitted += 1;
        if op == IoOp::Write && flags & crate::state_abi::IO_FLAG_FUA != 0 {
            // The RAM child has no volatile cache: a FUA write is durable
            // when stored, like any other.
            self.fua_writes += 1;
        }
        self.stats.inflight = u64::from(self.inflight);
        if KEEPS_QUEUE_STATS {
            let inflight = u64::from(self.inflight);
            if let Some(qs) = self.queues.as_mut_slice().get_mut(q) {
                qs.submitted += 1;
                qs.max_inflight = qs.max_inflight.max(inflight);
            }
        }
    }

    /// Counts a request of `op` and `len` bytes on queue `q` done with
    /// `status`, in the controller's, the device's and the queue's figures.
    pub(super) fn count_done(&mut self, op: IoOp, len: u64, q: usize, status: i32) {
        match op {
            IoOp::Read => {
                self.ctrl.host_reads += 1;
                self.ctrl.bytes_read += len;
            }
            IoOp::Write => {
                self.ctrl.host_writes += 1;
                self.ctrl.bytes_written += len;
            }
            _ => {}
        }
        let d = &mut self.dev;
        match op {
            IoOp::Read => {
                d.reads += 1;
                d.bytes_read += len;
            }
            IoOp::Write => {
                d.writes += 1;
                d.bytes_written += len;
            }
            IoOp::Flush => d.flushes += 1,
            IoOp::Discard => d.discards += 1,
            IoOp::WriteZeroes => d.write_zeroes += 1,
        }
        if status != 0 {
            self.stats.errors += 1;
        }
        if KEEPS_QUEUE_STATS {
            if let Some(qs) = self.queues.as_mut_slice().get_mut(q) {
                qs.completed += 1;
            }
        }
    }
}

impl Irq {
    /// The hard-IRQ completion slots (`complete_in_irq=1`; none otherwise),
    /// the timer firing at the device latency.
    pub(super) fn new(enabled: bool, latency_us: u32) -> Result<Self> {
        let mut slots = KVVec::new();
        if enabled {
            // One slot per possible tag; `adopt` says how many are in use.
            let n = MAX_QUEUES * 1024;
            slots = KVVec::with_capacity(n, GFP_KERNEL)?;
            for _ in 0..n {
                slots.push(
                    IrqSlot {
                        cookie: AtomicU64::new(0),
                        status: AtomicI32::new(0),
                        due_ns: AtomicI64::new(0),
                    },
                    GFP_KERNEL,
                )?;
            }
        }
        Ok(Irq {
            enabled,
            slots,
            used: AtomicUsize::new(0),
            t0: Instant::<Monotonic>::now(),
            // Fires at the device latency, but not more than every 50 us.
            period: Delta::from_micros(i64::from(latency_us.max(50))),
            stop: AtomicBool::new(false),
        })
    }
}

impl Dev {
    /// How many more requests `pending` can hold without allocating.
    pub(super) fn pending_room(&self) -> usize {
        let g = self.state.lock();
        g.pending.capacity().saturating_sub(g.pending.len())
    }
}
