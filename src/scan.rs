//! Thirty-two bytes at a time: the byte tests the per-line scans share. Every line rsyslog
//! hands the module passes through them (the field split, the noise test), so a loop over
//! single bytes would be the module's largest cost. `wide` maps each test to a few SSE2/NEON
//! instructions, with no `unsafe` here.

use wide::i8x32;

/// How many bytes one mask covers.
pub const WIDTH: usize = 32;

/// The bytes of a block that pass a test: all ones where they do, zero elsewhere.
pub type Block = i8x32;

/// Bit `i` set when `line[base + i]` passes `test`; bits past the end of the line are zero.
#[inline(always)]
pub fn mask(line: &[u8], base: usize, test: impl Fn(Block) -> Block) -> u32 {
    let bits =
        |bytes: &[u8]| test(Block::from_ne_bytes(bytes.try_into().expect("32"))).to_bitmask();
    match line.get(base..base + WIDTH) {
        Some(bytes) => bits(bytes),
        // The last WIDTH bytes, shifted down: no copy for any line of WIDTH bytes or more.
        None if line.len() >= WIDTH && base < line.len() => {
            bits(&line[line.len() - WIDTH..]) >> (base + WIDTH - line.len())
        }
        None => {
            let rest = line.get(base..).unwrap_or_default();
            let mut padded = [0u8; WIDTH];
            padded[..rest.len()].copy_from_slice(rest);
            bits(&padded) & ((1u64 << rest.len()) - 1) as u32
        }
    }
}

/// ASCII letters, either case.
#[inline(always)]
pub fn letters(block: Block) -> Block {
    // Lower-cased and moved so that 'a'..='z' land on the 26 smallest signed bytes.
    let moved = (block | Block::splat(0x20)) + Block::splat((0x80u8 - b'a') as i8);
    moved.simd_lt(Block::splat((0x80u8 + 26) as i8))
}

/// Bytes equal to `b`.
#[inline(always)]
pub fn equal_to(b: u8) -> impl Fn(Block) -> Block {
    move |block| block.simd_eq(Block::splat(b as i8))
}

/// The first eight bytes from `at` as a little-endian integer, zero past the end of the line.
#[inline(always)]
pub fn head(line: &[u8], at: usize) -> u64 {
    match line.get(at..at + 8) {
        Some(eight) => u64::from_le_bytes(eight.try_into().expect("8")),
        // The last eight bytes, shifted down (`at` is inside them).
        None if line.len() >= 8 && at < line.len() => {
            let last = u64::from_le_bytes(line[line.len() - 8..].try_into().expect("8"));
            last >> (8 * (at + 8 - line.len()))
        }
        None => line
            .get(at..)
            .unwrap_or_default()
            .iter()
            .rev()
            .fold(0, |word, &b| word << 8 | u64::from(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_match_a_byte_by_byte_test() {
        let bytes: Vec<u8> = (0..=255u8)
            .chain(b"\t\tab\x00\t\x01aZ@[`{".iter().copied())
            .collect();
        for len in [0, 1, 5, 31, 32, 33, 63, 64, 100, bytes.len()] {
            let line = &bytes[bytes.len() - len..];
            for base in (0..len + WIDTH)
                .step_by(WIDTH)
                .chain([len.saturating_sub(3)])
            {
                let (tabs, alpha) = (mask(line, base, equal_to(b'\t')), mask(line, base, letters));
                for i in 0..WIDTH {
                    let b = line.get(base + i);
                    let bit = |m: u32| m >> i & 1 == 1;
                    assert_eq!(bit(tabs), b == Some(&b'\t'), "{len} {base} {i}");
                    assert_eq!(
                        bit(alpha),
                        b.is_some_and(u8::is_ascii_alphabetic),
                        "{len} {base} {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn head_pads_with_zeros() {
        assert_eq!(head(b"abcdefghi", 1), u64::from_le_bytes(*b"bcdefghi"));
        assert_eq!(head(b"abcde", 3), u64::from_le_bytes(*b"de\0\0\0\0\0\0"));
        assert_eq!(head(b"abc", 3), 0);
        assert_eq!(head(b"abc", 1), u64::from_le_bytes(*b"bc\0\0\0\0\0\0"));
        assert_eq!(head(b"abcdefghij", 9), u64::from(b'j'));
        assert_eq!(head(b"abcdefghij", 10), 0);
    }
}
