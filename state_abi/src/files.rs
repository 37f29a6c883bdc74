// SPDX-License-Identifier: GPL-2.0

//! The per-file section (`FILE`, optional, version 1): what a child keeps
//! for each open file of the controller node, by the parent's file id. Part
//! of the boundary: the parent reads it to tell an adopting child of files
//! closed since the blob was written.

use super::blob::{tag, BlobError, BlobWriter, LeReader, SECTION_HEADER_LEN};

/// Tag of the per-file section, `"FILE"` (optional).
pub const TAG_FILES: u32 = tag(b"FILE");
/// Version of the per-file section this crate reads and writes.
pub const FILE_V1: u16 = 1;
/// Most open files with state of their own a controller keeps.
pub const MAX_FILES: usize = 64;
/// The largest per-file section with its header, as it sits in a blob.
pub const FILE_SECTION_MAX_LEN: usize = SECTION_HEADER_LEN + 8 + MAX_FILES * 16;

/// What the controller keeps for one open file of its node: a value the
/// file's owner set (e.g. an event subscription), by the parent's file id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileState {
    /// The parent's id of the open file (non-zero).
    pub file: u64,
    /// The value set through that file.
    pub value: u64,
}

/// The per-file states (`FILE` section, optional, version 1): `count: u32`
/// (at most [`MAX_FILES`]), `reserved: u32`, then `count` entries of
/// `file: u64` (non-zero, each once), `value: u64`. A reader that skips it
/// loses the values (each file then reads as never set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStates {
    len: usize,
    entries: [FileState; MAX_FILES],
}

impl Default for FileStates {
    fn default() -> Self {
        Self::new()
    }
}

impl FileStates {
    /// No file.
    pub const fn new() -> Self {
        Self {
            len: 0,
            entries: [FileState { file: 0, value: 0 }; MAX_FILES],
        }
    }

    /// The states.
    pub fn as_slice(&self) -> &[FileState] {
        self.entries.get(..self.len).unwrap_or_default()
    }

    /// How many files have a state.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no file has a state.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value set through `file`, if any.
    pub fn get(&self, file: u64) -> Option<u64> {
        self.as_slice()
            .iter()
            .find(|e| e.file == file)
            .map(|e| e.value)
    }

    /// Sets `file`'s value: [`BlobError::InvalidField`] for file 0,
    /// [`BlobError::TooManySections`]-like refusal ([`BlobError::InvalidField`]
    /// `"files"`) when [`MAX_FILES`] files already have one.
    pub fn set(&mut self, file: u64, value: u64) -> Result<(), BlobError> {
        if file == 0 {
            return Err(BlobError::InvalidField("file"));
        }
        if let Some(e) = self
            .entries
            .get_mut(..self.len)
            .and_then(|s| s.iter_mut().find(|e| e.file == file))
        {
            e.value = value;
            return Ok(());
        }
        let slot = self
            .entries
            .get_mut(self.len)
            .ok_or(BlobError::InvalidField("files"))?;
        *slot = FileState { file, value };
        self.len = self.len.saturating_add(1);
        Ok(())
    }

    /// Forgets `file`'s value (a closed file); whether it had one.
    pub fn remove(&mut self, file: u64) -> bool {
        let Some(i) = self.as_slice().iter().position(|e| e.file == file) else {
            return false;
        };
        // `i` is an index below `len`, so `len >= 1`.
        let last = self.len.saturating_sub(1);
        self.entries.swap(i, last);
        self.len = last;
        true
    }

    /// Appends the optional `FILE` v1 section.
    pub fn encode(&self, w: &mut BlobWriter<'_>) -> Result<(), BlobError> {
        let mut s = w.begin_section(TAG_FILES, FILE_V1, false)?;
        s.put_u32(self.len as u32)?;
        s.put_u32(0)?;
        for e in self.as_slice() {
            s.put_u64(e.file)?;
            s.put_u64(e.value)?;
        }
        s.end()
    }

    /// Decodes and validates a `FILE` v1 payload.
    pub fn decode(payload: &[u8]) -> Result<Self, BlobError> {
        let mut out = Self::new();
        out.decode_into(payload)?;
        Ok(out)
    }

    /// [`FileStates::decode`] into `self` (no array on the stack; on error
    /// `self` is left partly written).
    pub fn decode_into(&mut self, payload: &[u8]) -> Result<(), BlobError> {
        let mut r = LeReader::new(payload);
        let count = r.u32()? as usize;
        if r.u32()? != 0 {
            return Err(BlobError::ReservedNotZero);
        }
        if count > MAX_FILES {
            return Err(BlobError::InvalidField("count"));
        }
        self.len = 0;
        for _ in 0..count {
            let (file, value) = (r.u64()?, r.u64()?);
            if file == 0 || self.get(file).is_some() {
                return Err(BlobError::InvalidField("file"));
            }
            self.set(file, value)?;
        }
        r.finish()
    }
}
