// SPDX-License-Identifier: GPL-2.0

//! The versioned state blob: a header and typed, versioned sections.
//!
//! All integers are little-endian. Layout (byte offsets):
//!
//! ```text
//! header (32 bytes)
//!   0  u32 magic            BLOB_MAGIC, the bytes "HUPB"
//!   4  u16 format_version   BLOB_FORMAT_VERSION (1)
//!   6  u16 header_len       32
//!   8  u32 producer_child_version
//!  12  u32 section_count    at most MAX_SECTIONS
//!  16  u32 total_len        whole blob, header included; == the buffer length
//!  20  u32 flags            0
//!  24  u32 reserved         0
//!  28  u32 crc32c           CRC32C of bytes [0, 28) followed by [32, total_len)
//! section (repeated section_count times, from offset 32)
//!   0  u32 tag              four printable ASCII bytes, see `tag()`
//!   4  u16 version          the section's own schema version
//!   6  u16 flags            SECTION_MANDATORY or 0; other bits are an error
//!   8  u32 payload_len      payload bytes, padding excluded
//!  12  u32 reserved         0
//!  16  payload, then zero padding up to a multiple of 8 bytes
//! ```
//!
//! The checksum covers every byte of the blob except its own four, so any
//! single flipped bit is detected. The sections must fill the blob exactly:
//! bytes after the last section, or after `total_len`, are an error. Tags are
//! unique within a blob.
//!
//! Nothing in a blob is trusted: [`BlobReader::parse`] checks every length,
//! offset and count before use, and nothing here can panic on any input.

use super::crc32c::{crc32c, crc32c_update};
use super::errno::{EBADMSG, EINVAL, ENOENT, ENOSPC, EPROTO};

/// Most hardware queues a device may have (the parent's largest geometry).
pub const MAX_QUEUES: usize = 64;
/// Largest state blob a child may export, not counting handed-over
/// requests: the parent's stash buffers are this big. The children's
/// schema (`device_state.rs`) asserts its largest blob is exactly this.
pub const MAX_BLOB_LEN: usize = 2848;

/// Builds a section tag from four ASCII bytes; the bytes appear in this
/// order in the blob (the tag is stored little-endian).
pub const fn tag(b: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*b)
}

/// The blob's magic number: the bytes `"HUPB"`.
pub const BLOB_MAGIC: u32 = tag(b"HUPB");
/// The only blob format version this code reads and writes.
pub const BLOB_FORMAT_VERSION: u16 = 1;
/// Length of the blob header.
pub const BLOB_HEADER_LEN: usize = 32;
/// Length of a section header.
pub const SECTION_HEADER_LEN: usize = 16;
/// Alignment of every section header (payloads are padded to it).
pub const SECTION_ALIGN: usize = 8;
/// Section flag: a reader that does not know the section (or its version)
/// must refuse the blob instead of skipping the section.
pub const SECTION_MANDATORY: u16 = 1;
/// All section flag bits defined by this format version.
pub const SECTION_FLAGS_KNOWN: u16 = SECTION_MANDATORY;
/// Most sections a blob may have.
pub const MAX_SECTIONS: usize = 64;

// Header field offsets.
const OFF_MAGIC: usize = 0;
const OFF_FORMAT: usize = 4;
const OFF_HEADER_LEN: usize = 6;
const OFF_PRODUCER: usize = 8;
const OFF_COUNT: usize = 12;
const OFF_TOTAL: usize = 16;
const OFF_FLAGS: usize = 20;
const OFF_RESERVED: usize = 24;
const OFF_CRC: usize = 28;

// Section header field offsets.
const SOFF_TAG: usize = 0;
const SOFF_VERSION: usize = 4;
const SOFF_FLAGS: usize = 6;
const SOFF_LEN: usize = 8;
const SOFF_RESERVED: usize = 12;

const HEADER_LEN_U16: u16 = BLOB_HEADER_LEN as u16;
const _: () = assert!(OFF_CRC + 4 == BLOB_HEADER_LEN);
const _: () = assert!(SOFF_RESERVED + 4 == SECTION_HEADER_LEN);
const _: () = assert!(BLOB_HEADER_LEN & (SECTION_ALIGN - 1) == 0);
const _: () = assert!(SECTION_HEADER_LEN & (SECTION_ALIGN - 1) == 0);

/// Everything that can go wrong reading or writing a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobError {
    /// The buffer is shorter than the header, or than the header's
    /// `total_len`.
    Truncated,
    /// The magic number is not [`BLOB_MAGIC`].
    BadMagic,
    /// The blob's format version is not [`BLOB_FORMAT_VERSION`].
    UnsupportedFormat {
        /// The version found.
        version: u16,
    },
    /// The header's `header_len` is not [`BLOB_HEADER_LEN`].
    BadHeaderLength,
    /// `total_len` is smaller than the header or smaller than the buffer.
    LengthMismatch,
    /// The checksum does not match the contents.
    ChecksumMismatch {
        /// The checksum stored in the header.
        expected: u32,
        /// The checksum computed over the contents.
        actual: u32,
    },
    /// The header's `flags` has bits set (none are defined).
    BadHeaderFlags,
    /// A reserved field (header, section header or payload) is not zero.
    ReservedNotZero,
    /// More than [`MAX_SECTIONS`] sections.
    TooManySections,
    /// A section header or payload extends past the end of the blob.
    SectionOutOfBounds,
    /// A section has flag bits other than [`SECTION_MANDATORY`].
    BadSectionFlags,
    /// A section tag is not four printable ASCII bytes.
    BadTag {
        /// The tag found.
        tag: u32,
    },
    /// Padding after a payload is not zero.
    BadPadding,
    /// Bytes follow the last section.
    TrailingData,
    /// Two sections have the same tag.
    DuplicateSection {
        /// The repeated tag.
        tag: u32,
    },
    /// A mandatory section this reader does not know.
    UnknownMandatorySection {
        /// Its tag.
        tag: u32,
    },
    /// A section version newer than this reader understands.
    UnsupportedSectionVersion {
        /// The section's tag.
        tag: u32,
        /// The version found.
        version: u16,
    },
    /// A required section is absent.
    MissingSection {
        /// Its tag.
        tag: u32,
    },
    /// A payload is shorter than its section version requires.
    PayloadTooShort,
    /// A payload is longer than its section version requires.
    PayloadTooLong,
    /// A decoded field has an invalid value.
    InvalidField(&'static str),
    /// The output buffer is too small.
    BufferTooSmall,
    /// A device-state schema version this code cannot read or write.
    UnsupportedSchema {
        /// The schema asked for.
        schema: u32,
    },
}

impl BlobError {
    /// A short lowercase description.
    pub const fn as_str(&self) -> &'static str {
        match self {
            BlobError::Truncated => "truncated blob",
            BlobError::BadMagic => "bad magic",
            BlobError::UnsupportedFormat { .. } => "unsupported blob format version",
            BlobError::BadHeaderLength => "bad header length",
            BlobError::LengthMismatch => "length mismatch",
            BlobError::ChecksumMismatch { .. } => "checksum mismatch",
            BlobError::BadHeaderFlags => "unknown header flags",
            BlobError::ReservedNotZero => "reserved field not zero",
            BlobError::TooManySections => "too many sections",
            BlobError::SectionOutOfBounds => "section out of bounds",
            BlobError::BadSectionFlags => "unknown section flags",
            BlobError::BadTag { .. } => "bad section tag",
            BlobError::BadPadding => "padding not zero",
            BlobError::TrailingData => "trailing data after last section",
            BlobError::DuplicateSection { .. } => "duplicate section",
            BlobError::UnknownMandatorySection { .. } => "unknown mandatory section",
            BlobError::UnsupportedSectionVersion { .. } => "unsupported section version",
            BlobError::MissingSection { .. } => "missing section",
            BlobError::PayloadTooShort => "payload too short",
            BlobError::PayloadTooLong => "payload too long",
            BlobError::InvalidField(_) => "invalid field",
            BlobError::BufferTooSmall => "buffer too small",
            BlobError::UnsupportedSchema { .. } => "unsupported schema version",
        }
    }

    /// The matching negative errno: `-EBADMSG` for a checksum mismatch,
    /// `-ENOSPC` for a too small buffer, `-EPROTO` for versions and
    /// mandatory sections this side does not know, `-ENOENT` for a missing
    /// section, `-EINVAL` for anything malformed.
    pub const fn errno(&self) -> i32 {
        match self {
            BlobError::ChecksumMismatch { .. } => -EBADMSG,
            BlobError::BufferTooSmall => -ENOSPC,
            BlobError::UnsupportedFormat { .. }
            | BlobError::UnknownMandatorySection { .. }
            | BlobError::UnsupportedSectionVersion { .. }
            | BlobError::UnsupportedSchema { .. } => -EPROTO,
            BlobError::MissingSection { .. } => -ENOENT,
            BlobError::Truncated
            | BlobError::BadMagic
            | BlobError::BadHeaderLength
            | BlobError::LengthMismatch
            | BlobError::BadHeaderFlags
            | BlobError::ReservedNotZero
            | BlobError::TooManySections
            | BlobError::SectionOutOfBounds
            | BlobError::BadSectionFlags
            | BlobError::BadTag { .. }
            | BlobError::BadPadding
            | BlobError::TrailingData
            | BlobError::DuplicateSection { .. }
            | BlobError::PayloadTooShort
            | BlobError::PayloadTooLong
            | BlobError::InvalidField(_) => -EINVAL,
        }
    }

    /// The tag the error is about, if any.
    pub const fn tag(&self) -> Option<u32> {
        match *self {
            BlobError::BadTag { tag }
            | BlobError::DuplicateSection { tag }
            | BlobError::UnknownMandatorySection { tag }
            | BlobError::UnsupportedSectionVersion { tag, .. }
            | BlobError::MissingSection { tag } => Some(tag),
            _ => None,
        }
    }
}

impl core::fmt::Display for BlobError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())?;
        match *self {
            BlobError::UnsupportedFormat { version } => write!(f, " {version}"),
            BlobError::ChecksumMismatch { expected, actual } => {
                write!(f, " (stored {expected:#010x}, computed {actual:#010x})")
            }
            BlobError::UnsupportedSectionVersion { tag, version } => {
                write!(f, " {} v{version}", TagDisplay(tag))
            }
            BlobError::BadTag { tag }
            | BlobError::DuplicateSection { tag }
            | BlobError::UnknownMandatorySection { tag }
            | BlobError::MissingSection { tag } => write!(f, " {}", TagDisplay(tag)),
            BlobError::InvalidField(name) => write!(f, " {name}"),
            BlobError::UnsupportedSchema { schema } => write!(f, " {schema}"),
            _ => Ok(()),
        }
    }
}

/// Displays a tag as its four characters when printable, else in hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagDisplay(pub u32);

impl core::fmt::Display for TagDisplay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if tag_is_valid(self.0) {
            for b in self.0.to_le_bytes() {
                write!(f, "{}", char::from(b))?;
            }
            Ok(())
        } else {
            write!(f, "{:#010x}", self.0)
        }
    }
}

/// Whether `t` is four printable ASCII bytes (0x20..=0x7E).
pub const fn tag_is_valid(t: u32) -> bool {
    let b = t.to_le_bytes();
    let mut i = 0;
    while i < 4 {
        // `i < 4`, in bounds.
        #[allow(clippy::indexing_slicing)]
        let c = b[i];
        if c < 0x20 || c > 0x7E {
            return false;
        }
        #[allow(clippy::arithmetic_side_effects)]
        {
            i += 1;
        }
    }
    true
}

/// CRC32C of a blob as stored in its header: over bytes `[0, 28)` then
/// `[32, blob.len())`, i.e. everything but the checksum field. Useful to
/// re-seal a blob after editing it (tests, fuzzing).
pub fn compute_crc(blob: &[u8]) -> u32 {
    let head = blob.get(..OFF_CRC).unwrap_or(blob);
    let rest = blob.get(BLOB_HEADER_LEN..).unwrap_or(&[]);
    crc32c_update(crc32c(head), rest)
}

/// Rewrites the checksum field of `blob` (whose `total_len` should equal its
/// length) to match its contents. Only useful to tests and tools that edit
/// blobs on purpose.
pub fn reseal(blob: &mut [u8]) -> Result<(), BlobError> {
    let crc = compute_crc(blob);
    put(blob, OFF_CRC, &crc.to_le_bytes()).map_err(|_| BlobError::Truncated)
}

// ---------------------------------------------------------------------------
// Little-endian helpers
// ---------------------------------------------------------------------------

fn get_array<const N: usize>(buf: &[u8], off: usize) -> Option<[u8; N]> {
    let end = off.checked_add(N)?;
    buf.get(off..end)?.try_into().ok()
}

fn get_u16(buf: &[u8], off: usize) -> Option<u16> {
    get_array(buf, off).map(u16::from_le_bytes)
}

fn get_u32(buf: &[u8], off: usize) -> Option<u32> {
    get_array(buf, off).map(u32::from_le_bytes)
}

fn put(buf: &mut [u8], off: usize, bytes: &[u8]) -> Result<(), BlobError> {
    let end = off
        .checked_add(bytes.len())
        .ok_or(BlobError::BufferTooSmall)?;
    buf.get_mut(off..end)
        .ok_or(BlobError::BufferTooSmall)?
        .copy_from_slice(bytes);
    Ok(())
}

fn round_up(n: usize) -> Option<usize> {
    let mask = SECTION_ALIGN.checked_sub(1)?;
    n.checked_add(mask).map(|v| v & !mask)
}

fn usize_from(v: u32) -> usize {
    // x86_64 (and any target this code runs on) has 64-bit `usize`.
    usize::try_from(v).unwrap_or(usize::MAX)
}

fn u32_from(v: usize) -> Option<u32> {
    u32::try_from(v).ok()
}

// ---------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------

/// Writes a blob into a caller-provided buffer, without allocating.
///
/// Add sections with [`BlobWriter::section`] or, to write a payload in
/// place, [`BlobWriter::begin_section`]; then [`BlobWriter::finish`] fills in
/// the header. Errors leave the writer usable: a section that failed (or a
/// [`SectionWriter`] dropped without [`SectionWriter::end`]) is not part of
/// the blob.
#[derive(Debug)]
pub struct BlobWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
    count: usize,
    producer: u32,
    tags: [u32; MAX_SECTIONS],
}

impl<'a> BlobWriter<'a> {
    /// Starts a blob in `buf` (at most `u32::MAX` bytes of it are used).
    pub fn new(buf: &'a mut [u8], producer_child_version: u32) -> Result<Self, BlobError> {
        let cap = buf.len().min(usize_from(u32::MAX));
        let buf = buf.get_mut(..cap).ok_or(BlobError::BufferTooSmall)?;
        if buf.len() < BLOB_HEADER_LEN {
            return Err(BlobError::BufferTooSmall);
        }
        Ok(BlobWriter {
            buf,
            pos: BLOB_HEADER_LEN,
            count: 0,
            producer: producer_child_version,
            tags: [0; MAX_SECTIONS],
        })
    }

    /// Bytes written so far, header included.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Whether no section has been written yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Number of sections written so far.
    pub fn section_count(&self) -> usize {
        self.count
    }

    /// Appends a whole section.
    pub fn section(
        &mut self,
        tag: u32,
        version: u16,
        mandatory: bool,
        payload: &[u8],
    ) -> Result<(), BlobError> {
        let mut s = self.begin_section(tag, version, mandatory)?;
        s.put_bytes(payload)?;
        s.end()
    }

    /// Starts a section whose payload is written in place with the
    /// returned [`SectionWriter`]; it is added by [`SectionWriter::end`].
    pub fn begin_section(
        &mut self,
        tag: u32,
        version: u16,
        mandatory: bool,
    ) -> Result<SectionWriter<'_, 'a>, BlobError> {
        if !tag_is_valid(tag) {
            return Err(BlobError::BadTag { tag });
        }
        let written = self.tags.get(..self.count).unwrap_or(&[]);
        if written.contains(&tag) {
            return Err(BlobError::DuplicateSection { tag });
        }
        if self.count >= MAX_SECTIONS {
            return Err(BlobError::TooManySections);
        }
        let payload_start = self
            .pos
            .checked_add(SECTION_HEADER_LEN)
            .filter(|&p| p <= self.buf.len())
            .ok_or(BlobError::BufferTooSmall)?;
        Ok(SectionWriter {
            w: self,
            tag,
            version,
            flags: if mandatory { SECTION_MANDATORY } else { 0 },
            payload_start,
            len: 0,
        })
    }

    /// Completes the header (count, length, checksum) and returns the
    /// blob's total length: the blob is `buf[..len]`.
    pub fn finish(self) -> Result<usize, BlobError> {
        let total = self.pos;
        let total32 = u32_from(total).ok_or(BlobError::BufferTooSmall)?;
        let count32 = u32_from(self.count).ok_or(BlobError::TooManySections)?;
        let buf = self.buf.get_mut(..total).ok_or(BlobError::BufferTooSmall)?;
        put(buf, OFF_MAGIC, &BLOB_MAGIC.to_le_bytes())?;
        put(buf, OFF_FORMAT, &BLOB_FORMAT_VERSION.to_le_bytes())?;
        put(buf, OFF_HEADER_LEN, &HEADER_LEN_U16.to_le_bytes())?;
        put(buf, OFF_PRODUCER, &self.producer.to_le_bytes())?;
        put(buf, OFF_COUNT, &count32.to_le_bytes())?;
        put(buf, OFF_TOTAL, &total32.to_le_bytes())?;
        put(buf, OFF_FLAGS, &0u32.to_le_bytes())?;
        put(buf, OFF_RESERVED, &0u32.to_le_bytes())?;
        reseal(buf)?;
        Ok(total)
    }
}

/// Writes one section's payload in place; see [`BlobWriter::begin_section`].
#[derive(Debug)]
pub struct SectionWriter<'w, 'a> {
    w: &'w mut BlobWriter<'a>,
    tag: u32,
    version: u16,
    flags: u16,
    payload_start: usize,
    len: usize,
}

impl SectionWriter<'_, '_> {
    /// Payload bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no payload byte has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends raw bytes to the payload.
    pub fn put_bytes(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        let off = self
            .payload_start
            .checked_add(self.len)
            .ok_or(BlobError::BufferTooSmall)?;
        put(self.w.buf, off, bytes)?;
        self.len = self
            .len
            .checked_add(bytes.len())
            .ok_or(BlobError::BufferTooSmall)?;
        Ok(())
    }

    /// Appends a little-endian `u16`.
    pub fn put_u16(&mut self, v: u16) -> Result<(), BlobError> {
        self.put_bytes(&v.to_le_bytes())
    }

    /// Appends a little-endian `u32`.
    pub fn put_u32(&mut self, v: u32) -> Result<(), BlobError> {
        self.put_bytes(&v.to_le_bytes())
    }

    /// Appends a little-endian `u64`.
    pub fn put_u64(&mut self, v: u64) -> Result<(), BlobError> {
        self.put_bytes(&v.to_le_bytes())
    }

    /// Appends `n` zero bytes.
    pub fn put_zeros(&mut self, n: usize) -> Result<(), BlobError> {
        let off = self
            .payload_start
            .checked_add(self.len)
            .ok_or(BlobError::BufferTooSmall)?;
        let end = off.checked_add(n).ok_or(BlobError::BufferTooSmall)?;
        self.w
            .buf
            .get_mut(off..end)
            .ok_or(BlobError::BufferTooSmall)?
            .fill(0);
        self.len = self.len.checked_add(n).ok_or(BlobError::BufferTooSmall)?;
        Ok(())
    }

    /// Pads, writes the section header and adds the section to the blob.
    pub fn end(self) -> Result<(), BlobError> {
        let len32 = u32_from(self.len).ok_or(BlobError::BufferTooSmall)?;
        let data_end = self
            .payload_start
            .checked_add(self.len)
            .ok_or(BlobError::BufferTooSmall)?;
        let next = round_up(data_end).ok_or(BlobError::BufferTooSmall)?;
        let buf = &mut *self.w.buf;
        buf.get_mut(data_end..next)
            .ok_or(BlobError::BufferTooSmall)?
            .fill(0);
        let h = self.w.pos;
        put(buf, h.wrapping_add(SOFF_TAG), &self.tag.to_le_bytes())?;
        put(
            buf,
            h.wrapping_add(SOFF_VERSION),
            &self.version.to_le_bytes(),
        )?;
        put(buf, h.wrapping_add(SOFF_FLAGS), &self.flags.to_le_bytes())?;
        put(buf, h.wrapping_add(SOFF_LEN), &len32.to_le_bytes())?;
        put(buf, h.wrapping_add(SOFF_RESERVED), &0u32.to_le_bytes())?;
        let slot = self
            .w
            .tags
            .get_mut(self.w.count)
            .ok_or(BlobError::TooManySections)?;
        *slot = self.tag;
        self.w.count = self.w.count.wrapping_add(1);
        self.w.pos = next;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------

/// One section of a parsed blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section<'a> {
    /// The section's tag.
    pub tag: u32,
    /// The section's version.
    pub version: u16,
    /// Whether the section is marked [`SECTION_MANDATORY`].
    pub mandatory: bool,
    /// The payload, padding excluded.
    pub payload: &'a [u8],
}

impl<'a> Section<'a> {
    /// A little-endian reader over the payload.
    pub fn reader(&self) -> LeReader<'a> {
        LeReader::new(self.payload)
    }
}

/// Parses and validates the section header at `off` of `blob` (the whole
/// blob, `total_len` bytes). Returns the section and the next offset.
fn section_at(blob: &[u8], off: usize) -> Result<(Section<'_>, usize), BlobError> {
    let hdr: [u8; SECTION_HEADER_LEN] =
        get_array(blob, off).ok_or(BlobError::SectionOutOfBounds)?;
    let field = |o: usize| get_u32(&hdr, o).ok_or(BlobError::SectionOutOfBounds);
    let tag = field(SOFF_TAG)?;
    let version = get_u16(&hdr, SOFF_VERSION).ok_or(BlobError::SectionOutOfBounds)?;
    let flags = get_u16(&hdr, SOFF_FLAGS).ok_or(BlobError::SectionOutOfBounds)?;
    let payload_len = usize_from(field(SOFF_LEN)?);
    let reserved = field(SOFF_RESERVED)?;
    if !tag_is_valid(tag) {
        return Err(BlobError::BadTag { tag });
    }
    if flags & !SECTION_FLAGS_KNOWN != 0 {
        return Err(BlobError::BadSectionFlags);
    }
    if reserved != 0 {
        return Err(BlobError::ReservedNotZero);
    }
    let start = off
        .checked_add(SECTION_HEADER_LEN)
        .ok_or(BlobError::SectionOutOfBounds)?;
    let end = start
        .checked_add(payload_len)
        .ok_or(BlobError::SectionOutOfBounds)?;
    let next = round_up(end).ok_or(BlobError::SectionOutOfBounds)?;
    let payload = blob.get(start..end).ok_or(BlobError::SectionOutOfBounds)?;
    let padding = blob.get(end..next).ok_or(BlobError::SectionOutOfBounds)?;
    if padding.iter().any(|&b| b != 0) {
        return Err(BlobError::BadPadding);
    }
    let section = Section {
        tag,
        version,
        mandatory: flags & SECTION_MANDATORY != 0,
        payload,
    };
    Ok((section, next))
}

/// A validated blob. Obtained only through [`BlobReader::parse`].
#[derive(Clone, Copy, Debug)]
pub struct BlobReader<'a> {
    blob: &'a [u8],
    producer: u32,
    count: u32,
}

impl<'a> BlobReader<'a> {
    /// Validates the whole blob: header, length (`buf` must be exactly
    /// `total_len` bytes), checksum, and every section (bounds, flags,
    /// reserved fields, padding, tag syntax and uniqueness, count).
    /// Sections are not interpreted: see [`BlobReader::check_known`].
    pub fn parse(buf: &'a [u8]) -> Result<Self, BlobError> {
        let hdr: [u8; BLOB_HEADER_LEN] = get_array(buf, 0).ok_or(BlobError::Truncated)?;
        let u32_at = |o: usize| get_u32(&hdr, o).ok_or(BlobError::Truncated);
        let u16_at = |o: usize| get_u16(&hdr, o).ok_or(BlobError::Truncated);

        if u32_at(OFF_MAGIC)? != BLOB_MAGIC {
            return Err(BlobError::BadMagic);
        }
        let version = u16_at(OFF_FORMAT)?;
        if version != BLOB_FORMAT_VERSION {
            return Err(BlobError::UnsupportedFormat { version });
        }
        if u16_at(OFF_HEADER_LEN)? != HEADER_LEN_U16 {
            return Err(BlobError::BadHeaderLength);
        }
        let total = usize_from(u32_at(OFF_TOTAL)?);
        if total < BLOB_HEADER_LEN {
            return Err(BlobError::LengthMismatch);
        }
        let blob = buf.get(..total).ok_or(BlobError::Truncated)?;
        if blob.len() != buf.len() {
            return Err(BlobError::LengthMismatch);
        }
        let expected = u32_at(OFF_CRC)?;
        let actual = compute_crc(blob);
        if expected != actual {
            return Err(BlobError::ChecksumMismatch { expected, actual });
        }
        if u32_at(OFF_FLAGS)? != 0 {
            return Err(BlobError::BadHeaderFlags);
        }
        if u32_at(OFF_RESERVED)? != 0 {
            return Err(BlobError::ReservedNotZero);
        }
        let count = u32_at(OFF_COUNT)?;
        let n = usize_from(count);
        if n > MAX_SECTIONS {
            return Err(BlobError::TooManySections);
        }

        let mut tags = [0u32; MAX_SECTIONS];
        let mut off = BLOB_HEADER_LEN;
        for i in 0..n {
            let (s, next) = section_at(blob, off)?;
            if tags.get(..i).unwrap_or(&[]).contains(&s.tag) {
                return Err(BlobError::DuplicateSection { tag: s.tag });
            }
            if let Some(slot) = tags.get_mut(i) {
                *slot = s.tag;
            }
            off = next;
        }
        if off != blob.len() {
            return Err(BlobError::TrailingData);
        }
        let producer = u32_at(OFF_PRODUCER)?;
        Ok(BlobReader {
            blob,
            producer,
            count,
        })
    }

    /// The `child_version` of the child that wrote the blob.
    pub fn producer_child_version(&self) -> u32 {
        self.producer
    }

    /// Number of sections.
    pub fn section_count(&self) -> u32 {
        self.count
    }

    /// The blob's bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.blob
    }

    /// The sections, in blob order.
    pub fn sections(&self) -> SectionIter<'a> {
        SectionIter {
            blob: self.blob,
            off: BLOB_HEADER_LEN,
            remaining: self.count,
        }
    }

    /// The section with tag `tag`, if present (tags are unique).
    pub fn find(&self, tag: u32) -> Option<Section<'a>> {
        self.sections().find(|s| s.tag == tag)
    }

    /// Checks the sections against what the reader understands: `known`
    /// lists `(tag, newest version understood)`.
    ///
    /// An unknown optional section is fine (the reader skips it); an
    /// unknown mandatory section is [`BlobError::UnknownMandatorySection`];
    /// a known mandatory section of a newer version is
    /// [`BlobError::UnsupportedSectionVersion`]. A known optional section of
    /// a newer version is fine too: the reader must skip it.
    pub fn check_known(&self, known: &[(u32, u16)]) -> Result<(), BlobError> {
        self.check_known_in(&[known])
    }

    /// [`BlobReader::check_known`] with the known sections given as
    /// several lists.
    pub fn check_known_in(&self, lists: &[&[(u32, u16)]]) -> Result<(), BlobError> {
        for s in self.sections() {
            match lists
                .iter()
                .flat_map(|l| l.iter())
                .find(|(t, _)| *t == s.tag)
            {
                None if s.mandatory => {
                    return Err(BlobError::UnknownMandatorySection { tag: s.tag })
                }
                Some(&(_, max)) if s.mandatory && s.version > max => {
                    return Err(BlobError::UnsupportedSectionVersion {
                        tag: s.tag,
                        version: s.version,
                    })
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Copies the blob `src` into `dst` without its section `tag` (if it has
/// one), re-sealed: same producer, the other sections in their order.
/// Returns the new blob's length.
pub fn copy_without_section(src: &[u8], tag: u32, dst: &mut [u8]) -> Result<usize, BlobError> {
    let r = BlobReader::parse(src)?;
    let mut w = BlobWriter::new(dst, r.producer_child_version())?;
    for s in r.sections().filter(|s| s.tag != tag) {
        w.section(s.tag, s.version, s.mandatory, s.payload)?;
    }
    w.finish()
}

/// Iterator over the sections of a [`BlobReader`].
#[derive(Clone, Debug)]
pub struct SectionIter<'a> {
    blob: &'a [u8],
    off: usize,
    remaining: u32,
}

impl<'a> Iterator for SectionIter<'a> {
    type Item = Section<'a>;

    fn next(&mut self) -> Option<Section<'a>> {
        if self.remaining == 0 {
            return None;
        }
        // The blob was validated by `parse`; an error cannot happen, but if
        // it did the iteration would simply end.
        match section_at(self.blob, self.off) {
            Ok((s, next)) => {
                self.off = next;
                self.remaining = self.remaining.saturating_sub(1);
                Some(s)
            }
            Err(_) => {
                self.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize_from(self.remaining)))
    }
}

// ---------------------------------------------------------------------------
// Payload reader
// ---------------------------------------------------------------------------

/// Reads little-endian values from a payload, front to back.
#[derive(Clone, Debug)]
pub struct LeReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> LeReader<'a> {
    /// A reader at the start of `buf`.
    pub const fn new(buf: &'a [u8]) -> Self {
        LeReader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Reads `n` bytes, or [`BlobError::PayloadTooShort`].
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], BlobError> {
        let end = self.pos.checked_add(n).ok_or(BlobError::PayloadTooShort)?;
        let b = self
            .buf
            .get(self.pos..end)
            .ok_or(BlobError::PayloadTooShort)?;
        self.pos = end;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BlobError> {
        self.bytes(N)?
            .try_into()
            .map_err(|_| BlobError::PayloadTooShort)
    }

    /// Reads a `u8`.
    pub fn u8(&mut self) -> Result<u8, BlobError> {
        self.array().map(u8::from_le_bytes)
    }

    /// Reads a little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, BlobError> {
        self.array().map(u16::from_le_bytes)
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, BlobError> {
        self.array().map(u32::from_le_bytes)
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, BlobError> {
        self.array().map(u64::from_le_bytes)
    }

    /// Reads a `u32` that must be zero ([`BlobError::ReservedNotZero`]).
    pub fn reserved_u32(&mut self) -> Result<(), BlobError> {
        match self.u32()? {
            0 => Ok(()),
            _ => Err(BlobError::ReservedNotZero),
        }
    }

    /// Requires that everything was read ([`BlobError::PayloadTooLong`]).
    pub fn finish(self) -> Result<(), BlobError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(BlobError::PayloadTooLong)
        }
    }
}

#[cfg(test)]
mod tests;
