//! Maps keyed by words the kernel or a trace hands out (thread ids, a
//! process's descriptors, sync objects' addresses). SipHash, std's
//! default, resists keys chosen to collide, which these are not, and it
//! was a few percent of the tracer's time on buffered calls: each is
//! looked up by thread id, each write by descriptor. This is a
//! multiply-rotate hash of the FxHash kind.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

/// An odd constant with well-spread bits (from FxHash's family).
const K: u64 = 0x517c_c1b7_2722_0a95;

impl IdHasher {
    #[inline]
    fn add(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(K);
    }
}

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        // The product's low bits depend only on the key's low bits, which
        // are zero in aligned addresses; the table picks buckets by them.
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_i32(&mut self, n: i32) {
        self.add(n as u32 as u64);
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn hash<T: Hash>(v: T) -> u64 {
        BuildHasherDefault::<IdHasher>::default().hash_one(v)
    }

    #[test]
    fn neighbouring_ids_hash_apart_in_the_bits_a_table_uses() {
        // hashbrown takes the bucket from the low bits and a tag from the
        // top seven: consecutive thread ids must differ in both.
        let low: std::collections::HashSet<u64> = (1000..1064).map(|t| hash(t) & 63).collect();
        let top: std::collections::HashSet<u64> = (1000..1064).map(|t| hash(t) >> 57).collect();
        assert!(low.len() > 32, "low bits of 64 ids: {} values", low.len());
        assert!(top.len() > 32, "top bits of 64 ids: {} values", top.len());
    }

    #[test]
    fn aligned_addresses_hash_apart_in_the_bits_a_table_uses() {
        let low: std::collections::HashSet<u64> = (0..64u64)
            .map(|i| hash(0x5555_5555_0000 + i * 64) & 63)
            .collect();
        assert!(
            low.len() > 32,
            "low bits of 64 addresses: {} values",
            low.len()
        );
    }

    #[test]
    fn a_map_keyed_by_pairs_finds_what_it_holds() {
        let mut m: IdMap<(u32, u64), u32> = IdMap::default();
        for p in 0..50u32 {
            for fd in 0..50u64 {
                m.insert((p, fd), p * 100 + fd as u32);
            }
        }
        assert_eq!(m.len(), 2500);
        assert_eq!(m.get(&(7, 42)), Some(&742));
        assert_eq!(m.get(&(50, 0)), None);
    }
}
