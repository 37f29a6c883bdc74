// SPDX-License-Identifier: GPL-2.0

//! A FIFO of fixed capacity over storage allocated once by the caller (the
//! parking lot's: every parked request holds a tag, so it never holds more
//! than `nr_queues * depth`).

use core::ops::DerefMut;

/// A FIFO over the slots `S` (its length is the capacity).
pub struct Ring<T, S> {
    buf: S,
    head: usize,
    len: usize,
    _t: core::marker::PhantomData<T>,
}

// No `is_empty`: the parent's callers compare `len()` with 0 (clippy's
// `len_zero` would flag them once it exists).
#[allow(clippy::len_without_is_empty)]
impl<T, S: DerefMut<Target = [Option<T>]>> Ring<T, S> {
    /// An empty ring over `buf`; whatever it held is dropped.
    pub fn over(mut buf: S) -> Self {
        buf.iter_mut().for_each(|s| *s = None);
        Self {
            buf,
            head: 0,
            len: 0,
            _t: core::marker::PhantomData,
        }
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Appends `v`, or gives it back if the ring is full.
    pub fn push(&mut self, v: T) -> Result<(), T> {
        let cap = self.buf.len();
        if self.len >= cap {
            return Err(v);
        }
        match self.buf.get_mut((self.head + self.len) % cap) {
            Some(slot @ None) => {
                *slot = Some(v);
                self.len += 1;
                Ok(())
            }
            _ => Err(v),
        }
    }

    /// The oldest entry.
    pub fn front(&self) -> Option<&T> {
        if self.len == 0 {
            return None;
        }
        self.buf.get(self.head)?.as_ref()
    }

    /// Takes the oldest entry.
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let v = self.buf.get_mut(self.head)?.take();
        self.head = (self.head + 1) % self.buf.len();
        self.len -= 1;
        v
    }
}
