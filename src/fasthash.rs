//! A small, fast, non-cryptographic hasher (the multiply-rotate scheme of
//! rustc's FxHash, with a final avalanche) for hash maps whose keys are not attacker-chosen: the
//! operator's API keys, and 64-bit values that are already hashes. Startup
//! with 100,000 keys spends most of its time hashing; SipHash's DoS
//! resistance buys nothing there.

use std::hash::{BuildHasherDefault, Hasher};

#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    /// Multiplication only carries differences upwards, and hash tables
    /// index by the low bits: a final avalanche (MurmurHash3's fmix64)
    /// spreads every input bit over the whole word.
    fn finish(&self) -> u64 {
        let mut hash = self.0;
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        hash ^ (hash >> 33)
    }
}

pub type FastBuildHasher = BuildHasherDefault<FastHasher>;

/// The 64-bit hash of a string.
pub fn hash_str(text: &str) -> u64 {
    let mut hasher = FastHasher::default();
    hasher.write(text.as_bytes());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_keys_hash_apart_and_equal_ones_together() {
        let hashes: std::collections::HashSet<u64> =
            (0..100_000).map(|n| hash_str(&format!("AIzaSyTest{n:0>29}"))).collect();
        assert_eq!(hashes.len(), 100_000);
        assert_eq!(hash_str("AIza-same"), hash_str("AIza-same"));
        assert_ne!(hash_str("ab"), hash_str("ab\0"));
    }
}
