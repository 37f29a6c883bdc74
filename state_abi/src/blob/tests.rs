// SPDX-License-Identifier: GPL-2.0

//! Unit tests of the blob codec: one or more tests per error variant.

use super::*;

const A: u32 = tag(b"AAAA");
const B: u32 = tag(b"BBBB");
const C: u32 = tag(b"CCCC");

/// A valid blob with three sections (one mandatory, one empty, one needing
/// padding) in `buf`; returns its length.
fn sample(buf: &mut [u8]) -> usize {
    let mut w = BlobWriter::new(buf, 7).unwrap();
    w.section(A, 1, true, b"hello").unwrap();
    w.section(B, 3, false, b"").unwrap();
    let mut s = w.begin_section(C, 2, false).unwrap();
    s.put_u16(0x0102).unwrap();
    s.put_u32(0x0304_0506).unwrap();
    s.put_u64(0x0708_090A_0B0C_0D0E).unwrap();
    s.put_zeros(3).unwrap();
    assert_eq!(s.len(), 17);
    s.end().unwrap();
    w.finish().unwrap()
}

fn sample_vec() -> Vec<u8> {
    let mut buf = [0u8; 256];
    let n = sample(&mut buf);
    buf[..n].to_vec()
}

fn set_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn set_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

/// Offset of the n-th section header of `sample()`.
fn section_off(b: &[u8], n: usize) -> usize {
    let mut off = BLOB_HEADER_LEN;
    for _ in 0..n {
        let len = u32::from_le_bytes(b[off + 8..off + 12].try_into().unwrap()) as usize;
        off += SECTION_HEADER_LEN + len.div_ceil(8) * 8;
    }
    off
}

fn parse_err(b: &[u8]) -> BlobError {
    BlobReader::parse(b).unwrap_err()
}

#[test]
fn layout_of_written_blob() {
    let b = sample_vec();
    // header 32 + (16 + 8) + (16 + 0) + (16 + 24)
    assert_eq!(b.len(), 32 + 24 + 16 + 40);
    assert_eq!(&b[0..4], b"HUPB");
    assert_eq!(u16::from_le_bytes([b[4], b[5]]), 1);
    assert_eq!(u16::from_le_bytes([b[6], b[7]]), 32);
    assert_eq!(u32::from_le_bytes(b[8..12].try_into().unwrap()), 7);
    assert_eq!(u32::from_le_bytes(b[12..16].try_into().unwrap()), 3);
    assert_eq!(
        u32::from_le_bytes(b[16..20].try_into().unwrap()) as usize,
        b.len()
    );
    assert_eq!(&b[20..28], &[0; 8]);
    let crc = u32::from_le_bytes(b[28..32].try_into().unwrap());
    let mut expect = b[..28].to_vec();
    expect.extend_from_slice(&b[32..]);
    assert_eq!(crc, crc32c(&expect));
    assert_eq!(&b[32..36], b"AAAA");
    assert_eq!(&b[48..53], b"hello");
    assert_eq!(&b[53..56], &[0, 0, 0]);
}

#[test]
fn round_trip() {
    let b = sample_vec();
    let r = BlobReader::parse(&b).unwrap();
    assert_eq!(r.producer_child_version(), 7);
    assert_eq!(r.section_count(), 3);
    assert_eq!(r.as_bytes(), &b[..]);
    let all: Vec<_> = r.sections().collect();
    assert_eq!(all.len(), 3);
    assert_eq!(
        all[0],
        Section {
            tag: A,
            version: 1,
            mandatory: true,
            payload: b"hello"
        }
    );
    assert_eq!(
        all[1],
        Section {
            tag: B,
            version: 3,
            mandatory: false,
            payload: b""
        }
    );
    let c = r.find(C).unwrap();
    assert_eq!((c.version, c.mandatory, c.payload.len()), (2, false, 17));
    let mut lr = c.reader();
    assert_eq!(lr.u16().unwrap(), 0x0102);
    assert_eq!(lr.u32().unwrap(), 0x0304_0506);
    assert_eq!(lr.u64().unwrap(), 0x0708_090A_0B0C_0D0E);
    assert_eq!(lr.bytes(3).unwrap(), &[0, 0, 0]);
    lr.finish().unwrap();
    assert!(r.find(tag(b"ZZZZ")).is_none());
}

#[test]
fn empty_blob() {
    let mut buf = [0u8; 32];
    let w = BlobWriter::new(&mut buf, 1).unwrap();
    assert!(w.is_empty());
    assert_eq!(w.finish().unwrap(), 32);
    let r = BlobReader::parse(&buf).unwrap();
    assert_eq!(r.sections().count(), 0);
    r.check_known(&[]).unwrap();
}

#[test]
fn every_single_bit_flip_is_detected() {
    let b = sample_vec();
    for i in 0..b.len() * 8 {
        let mut m = b.clone();
        m[i / 8] ^= 1 << (i % 8);
        assert!(BlobReader::parse(&m).is_err(), "bit {i} flip undetected");
    }
}

#[test]
fn err_truncated() {
    assert_eq!(parse_err(&[]), BlobError::Truncated);
    assert_eq!(parse_err(&[0u8; 31]), BlobError::Truncated);
    let b = sample_vec();
    assert_eq!(parse_err(&b[..b.len() - 1]), BlobError::Truncated);
    assert_eq!(parse_err(&b[..32]), BlobError::Truncated);
}

#[test]
fn err_bad_magic() {
    let mut b = sample_vec();
    b[0] = b'X';
    assert_eq!(parse_err(&b), BlobError::BadMagic);
    assert_eq!(parse_err(&[0u8; 64]), BlobError::BadMagic);
}

#[test]
fn err_unsupported_format() {
    let mut b = sample_vec();
    set_u16(&mut b, 4, 2);
    reseal(&mut b).unwrap();
    assert_eq!(parse_err(&b), BlobError::UnsupportedFormat { version: 2 });
    set_u16(&mut b, 4, 0);
    assert_eq!(parse_err(&b), BlobError::UnsupportedFormat { version: 0 });
}

#[test]
fn err_bad_header_length() {
    let mut b = sample_vec();
    set_u16(&mut b, 6, 40);
    reseal(&mut b).unwrap();
    assert_eq!(parse_err(&b), BlobError::BadHeaderLength);
}

#[test]
fn err_length_mismatch() {
    // Trailing bytes after total_len.
    let mut b = sample_vec();
    b.push(0);
    assert_eq!(parse_err(&b), BlobError::LengthMismatch);
    // total_len smaller than the header.
    let mut b = sample_vec();
    set_u32(&mut b, 16, 16);
    reseal(&mut b).unwrap();
    assert_eq!(parse_err(&b), BlobError::LengthMismatch);
}

#[test]
fn err_checksum_mismatch() {
    let mut b = sample_vec();
    let stored = u32::from_le_bytes(b[28..32].try_into().unwrap());
    b[50] ^= 0x10;
    let actual = compute_crc(&b);
    assert_eq!(
        parse_err(&b),
        BlobError::ChecksumMismatch {
            expected: stored,
            actual
        }
    );
    // The checksum field itself.
    let mut b = sample_vec();
    b[30] ^= 1;
    assert!(matches!(parse_err(&b), BlobError::ChecksumMismatch { .. }));
}

#[test]
fn err_bad_header_flags() {
    let mut b = sample_vec();
    set_u32(&mut b, 20, 1);
    reseal(&mut b).unwrap();
    assert_eq!(parse_err(&b), BlobError::BadHeaderFlags);
}

#[test]
fn err_reserved_not_zero() {
    // In the header.
    let mut b = sample_vec();
    set_u32(&mut b, 24, 0x8000_0000);
    reseal(&mut b).unwrap();
    assert_eq!(parse_err(&b), BlobError::ReservedNotZero);
    // In a section header.
    let mut b = sample_vec();
    let off = section_off(&b, 1);
    set_u32(&mut b, off + 12, 5);
    reseal(&mut b).unwrap();
    assert_eq!(parse_err(&b), BlobError::ReservedNotZero);
    // In a payload.
    let mut r = LeReader::new(&[1, 0, 0, 0]);
    assert_eq!(r.reserved_u32(), Err(BlobError::ReservedNotZero));
}

#[test]
fn err_too_many_sections() {
    // Reader: the count alone.
    let mut b = sample_vec();
    set_u32(&mut b, 12, MAX_SECTIONS as u32 + 1);
    reseal(&mut b).unwrap();
    assert_eq!(parse_err(&b), BlobError::TooManySections);
    set_u32(&mut b, 12, u32::MAX);
    reseal(&mut b).unwrap();
    assert_eq!(parse_err(&b), BlobError::TooManySections);
    // Writer.
    let mut buf = [0u8; 4096];
    let mut w = BlobWriter::new(&mut buf, 1).unwrap();
    for i in 0..MAX_SECTIONS {
        let t = tag(&[b'T', b'0' + (i / 10) as u8, b'0' + (i % 10) as u8, b'x']);
        w.section(t, 1, false, &[]).unwrap();
    }
    assert_eq!(
        w.section(tag(b"LAST"), 1, false, &[]),
        Err(BlobError::TooManySections)
    );
    assert_eq!(w.section_count(), MAX_SECTIONS);
    let n = w.finish().unwrap();
    let r = BlobReader::parse(&buf[..n]).unwrap();
    assert_eq!(r.sections().count(), MAX_SECTIONS);
}

#[test]
fn err_section_out_of_bounds() {
    // One more section announced than present: the walk runs off the end.
    let mut b = sample_vec();
    set_u32(&mut b, 12, 4);
    reseal(&mut b).unwrap();
    assert_eq!(parse_err(&b), BlobError::SectionOutOfBounds);
    // A payload length past the end.
    for len in [1000, u32::MAX - 3, u32::MAX] {
        let mut b = sample_vec();
        let off = section_off(&b, 2);
        set_u32(&mut b, off + 8, len);
        reseal(&mut b).unwrap();
        assert_eq!(parse_err(&b), BlobError::SectionOutOfBounds, "len {len}");
    }
    // A payload that fits but whose padding does not.
    let mut b = sample_vec();
    let off = section_off(&b, 2);
    set_u32(&mut b, off + 8, 24 - 1 + 1); // 24: padded end == total, fine
    reseal(&mut b).unwrap();
    assert!(BlobReader::parse(&b).is_ok());
    let mut b2 = b.clone();
    b2.truncate(b2.len() - 4);
    let total = b2.len() as u32;
    set_u32(&mut b2, 16, total);
    set_u32(&mut b2, off + 8, 21);
    reseal(&mut b2).unwrap();
    assert_eq!(parse_err(&b2), BlobError::SectionOutOfBounds);
}

#[test]
fn err_bad_section_flags() {
    let mut b = sample_vec();
    let off = section_off(&b, 0);
    set_u16(&mut b, off + 6, SECTION_MANDATORY | 2);
    reseal(&mut b).unwrap();
    assert_eq!(parse_err(&b), BlobError::BadSectionFlags);
    set_u16(&mut b, off + 6, 0x8000);
    reseal(&mut b).unwrap();
    assert_eq!(parse_err(&b), BlobError::BadSectionFlags);
}

#[test]
fn err_bad_tag() {
    let mut b = sample_vec();
    let off = section_off(&b, 1);
    b[off + 2] = 0;
    reseal(&mut b).unwrap();
    assert_eq!(
        parse_err(&b),
        BlobError::BadTag {
            tag: u32::from_le_bytes(*b"BB\0B")
        }
    );
    // Writer refuses too.
    let mut buf = [0u8; 128];
    let mut w = BlobWriter::new(&mut buf, 1).unwrap();
    assert_eq!(
        w.section(0, 1, false, b""),
        Err(BlobError::BadTag { tag: 0 })
    );
    let t = tag(&[b'a', 0x80, b'b', b'c']);
    assert_eq!(
        w.section(t, 1, false, b""),
        Err(BlobError::BadTag { tag: t })
    );
    assert!(tag_is_valid(tag(b"a b~")));
    assert!(!tag_is_valid(tag(b"ab\x7fc")));
}

#[test]
fn err_bad_padding() {
    let mut b = sample_vec();
    // "hello" occupies 48..53, padding 53..56.
    b[55] = 1;
    reseal(&mut b).unwrap();
    assert_eq!(parse_err(&b), BlobError::BadPadding);
}

#[test]
fn err_trailing_data() {
    let mut b = sample_vec();
    set_u32(&mut b, 12, 2);
    reseal(&mut b).unwrap();
    assert_eq!(parse_err(&b), BlobError::TrailingData);
    // A header-only blob with bytes after it.
    let mut b = vec![0u8; 40];
    let n = BlobWriter::new(&mut b, 1).unwrap().finish().unwrap();
    assert_eq!(n, 32);
    set_u32(&mut b, 16, 40);
    reseal(&mut b).unwrap();
    assert_eq!(parse_err(&b), BlobError::TrailingData);
}

#[test]
fn err_duplicate_section() {
    // Reader: rename section B to A.
    let mut b = sample_vec();
    let off = section_off(&b, 1);
    set_u32(&mut b, off, A);
    reseal(&mut b).unwrap();
    assert_eq!(parse_err(&b), BlobError::DuplicateSection { tag: A });
    // Writer.
    let mut buf = [0u8; 128];
    let mut w = BlobWriter::new(&mut buf, 1).unwrap();
    w.section(A, 1, false, b"x").unwrap();
    assert_eq!(
        w.section(A, 2, true, b"y"),
        Err(BlobError::DuplicateSection { tag: A })
    );
}

#[test]
fn err_unknown_mandatory_and_unsupported_version() {
    let b = sample_vec();
    let r = BlobReader::parse(&b).unwrap();
    // Everything known, versions fine.
    r.check_known(&[(A, 1), (B, 3), (C, 2)]).unwrap();
    // B and C are optional: unknown or newer is fine.
    r.check_known(&[(A, 1)]).unwrap();
    r.check_known(&[(A, 1), (B, 1), (C, 1)]).unwrap();
    // A is mandatory.
    assert_eq!(
        r.check_known(&[]),
        Err(BlobError::UnknownMandatorySection { tag: A })
    );
    assert_eq!(
        r.check_known(&[(B, 9)]),
        Err(BlobError::UnknownMandatorySection { tag: A })
    );
    assert_eq!(
        r.check_known(&[(A, 0)]),
        Err(BlobError::UnsupportedSectionVersion { tag: A, version: 1 })
    );
    // Newer known versions are fine.
    r.check_known(&[(A, 5)]).unwrap();
}

#[test]
fn err_payload_too_short_and_long() {
    let mut r = LeReader::new(&[1, 2, 3]);
    assert_eq!(r.u32(), Err(BlobError::PayloadTooShort));
    assert_eq!(r.u16().unwrap(), 0x0201);
    assert_eq!(r.remaining(), 1);
    assert_eq!(r.u64(), Err(BlobError::PayloadTooShort));
    assert_eq!(r.bytes(2), Err(BlobError::PayloadTooShort));
    assert_eq!(r.bytes(usize::MAX), Err(BlobError::PayloadTooShort));
    assert_eq!(r.clone().finish(), Err(BlobError::PayloadTooLong));
    assert_eq!(r.u8().unwrap(), 3);
    assert_eq!(r.u8(), Err(BlobError::PayloadTooShort));
    r.finish().unwrap();
}

#[test]
fn err_buffer_too_small() {
    let mut small = [0u8; 31];
    assert!(matches!(
        BlobWriter::new(&mut small, 1),
        Err(BlobError::BufferTooSmall)
    ));
    // Section header does not fit.
    let mut buf = [0u8; 40];
    let mut w = BlobWriter::new(&mut buf, 1).unwrap();
    assert_eq!(w.section(A, 1, false, b""), Err(BlobError::BufferTooSmall));
    // Payload does not fit.
    let mut buf = [0u8; 56];
    let mut w = BlobWriter::new(&mut buf, 1).unwrap();
    assert_eq!(
        w.section(A, 1, false, &[1; 9]),
        Err(BlobError::BufferTooSmall)
    );
    // Padding does not fit (payload 7 + 1 pad needs 56 + ... ).
    let mut buf = [0u8; 55];
    let mut w = BlobWriter::new(&mut buf, 1).unwrap();
    assert_eq!(
        w.section(A, 1, false, &[1; 7]),
        Err(BlobError::BufferTooSmall)
    );
    assert_eq!(
        w.section(A, 1, false, &[1; 6]),
        Err(BlobError::BufferTooSmall)
    );
    // The failed attempts left nothing behind.
    assert_eq!(w.len(), 32);
    assert!(w.is_empty());
    // Exactly fitting works.
    let mut buf = [0u8; 56];
    let mut w = BlobWriter::new(&mut buf, 1).unwrap();
    w.section(A, 1, false, &[1; 8]).unwrap();
    assert_eq!(w.finish().unwrap(), 56);
    BlobReader::parse(&buf).unwrap();
}

#[test]
fn dropped_section_writer_adds_nothing() {
    let mut buf = [0u8; 128];
    let mut w = BlobWriter::new(&mut buf, 1).unwrap();
    {
        let mut s = w.begin_section(A, 1, true).unwrap();
        s.put_u64(1).unwrap();
        assert!(!s.is_empty());
    }
    assert!(w.is_empty());
    w.section(A, 1, true, b"ok").unwrap();
    let n = w.finish().unwrap();
    let r = BlobReader::parse(&buf[..n]).unwrap();
    assert_eq!(r.section_count(), 1);
    assert_eq!(r.find(A).unwrap().payload, b"ok");
}

#[test]
fn error_strings_and_errnos() {
    use super::super::errno::*;
    let all = [
        BlobError::Truncated,
        BlobError::BadMagic,
        BlobError::UnsupportedFormat { version: 9 },
        BlobError::BadHeaderLength,
        BlobError::LengthMismatch,
        BlobError::ChecksumMismatch {
            expected: 1,
            actual: 2,
        },
        BlobError::BadHeaderFlags,
        BlobError::ReservedNotZero,
        BlobError::TooManySections,
        BlobError::SectionOutOfBounds,
        BlobError::BadSectionFlags,
        BlobError::BadTag { tag: 1 },
        BlobError::BadPadding,
        BlobError::TrailingData,
        BlobError::DuplicateSection { tag: A },
        BlobError::UnknownMandatorySection { tag: A },
        BlobError::UnsupportedSectionVersion { tag: A, version: 3 },
        BlobError::MissingSection { tag: A },
        BlobError::PayloadTooShort,
        BlobError::PayloadTooLong,
        BlobError::InvalidField("x"),
        BlobError::BufferTooSmall,
        BlobError::UnsupportedSchema { schema: 3 },
    ];
    let mut seen = std::collections::HashSet::new();
    for e in all {
        let s = e.as_str();
        assert!(!s.is_empty() && s == s.to_lowercase(), "{s}");
        assert!(seen.insert(s), "duplicate string {s}");
        assert!(e.errno() < 0);
        assert!(e.to_string().starts_with(s));
    }
    assert_eq!(
        BlobError::ChecksumMismatch {
            expected: 0,
            actual: 0
        }
        .as_str(),
        "checksum mismatch"
    );
    assert_eq!(
        BlobError::ChecksumMismatch {
            expected: 0,
            actual: 0
        }
        .errno(),
        -EBADMSG
    );
    assert_eq!(BlobError::BufferTooSmall.errno(), -ENOSPC);
    assert_eq!(
        BlobError::UnknownMandatorySection { tag: A }.errno(),
        -EPROTO
    );
    assert_eq!(
        BlobError::UnsupportedSectionVersion { tag: A, version: 2 }.errno(),
        -EPROTO
    );
    assert_eq!(BlobError::MissingSection { tag: A }.errno(), -ENOENT);
    assert_eq!(BlobError::BadMagic.errno(), -EINVAL);
    assert_eq!(BlobError::InvalidField("x").errno(), -EINVAL);
    assert_eq!(
        BlobError::UnknownMandatorySection { tag: tag(b"DEVS") }.to_string(),
        "unknown mandatory section DEVS"
    );
    assert_eq!(
        BlobError::BadTag { tag: 1 }.to_string(),
        "bad section tag 0x00000001"
    );
    assert_eq!(BlobError::MissingSection { tag: A }.tag(), Some(A));
    assert_eq!(BlobError::Truncated.tag(), None);
}

#[test]
fn magic_is_hupb() {
    assert_eq!(BLOB_MAGIC.to_le_bytes(), *b"HUPB");
    assert_eq!(tag(b"DEVS").to_le_bytes(), *b"DEVS");
}
