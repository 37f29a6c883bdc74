// SPDX-License-Identifier: GPL-2.0

//! CRC32C (Castagnoli), table driven, table built at compile time.
//!
//! Reflected polynomial `0x82F63B78`, initial value and final XOR
//! `0xFFFF_FFFF`: the variant of iSCSI (RFC 3720), ext4 and NVMe.

/// The reflected Castagnoli polynomial.
pub const POLY: u32 = 0x82F6_3B78;

/// The byte-wise lookup table, computed by a `const fn`.
static TABLE: [u32; 256] = make_table();

// Evaluated at compile time only: an overflow or out-of-bounds index would
// fail the build, not panic at run time.
#[allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]
const fn make_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut n: u32 = 0;
    while n < 256 {
        let mut c = n;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        table[n as usize] = c;
        n += 1;
    }
    table
}

/// Continues a CRC32C over `data`.
///
/// `crc` is a finished CRC of the bytes before (`0` for none), so that
/// `crc32c_update(crc32c(a), b) == crc32c(a ++ b)`.
pub fn crc32c_update(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        // The index is masked to 0..=255, `get` cannot fail; no panic path.
        let idx = usize::from((c as u8) ^ b);
        c = (c >> 8) ^ TABLE.get(idx).copied().unwrap_or(0);
    }
    !c
}

/// The CRC32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_update(0, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3720_vectors() {
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let asc: [u8; 32] = core::array::from_fn(|i| i as u8);
        assert_eq!(crc32c(&asc), 0x46DD_794E);
        let desc: [u8; 32] = core::array::from_fn(|i| 31 - i as u8);
        assert_eq!(crc32c(&desc), 0x113F_DB5C);
    }

    #[test]
    fn check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn incremental_equals_oneshot() {
        let data = b"The quick brown fox jumps over the lazy dog";
        for split in 0..=data.len() {
            let (a, b) = data.split_at(split);
            assert_eq!(crc32c_update(crc32c(a), b), crc32c(data));
        }
    }

    #[test]
    fn table_spot_checks() {
        assert_eq!(TABLE[0], 0);
        assert_eq!(TABLE[1], 0xF26B_8303);
        assert_eq!(TABLE[128], POLY);
    }
}
