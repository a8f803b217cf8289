//! A small seeded random number generator (SplitMix64). Every generated
//! record draws from its own stream, keyed by the seed, a stream name and
//! the record's index, so records can be generated in any order (and on
//! several threads) and still come out the same for the same seed.

#[derive(Debug, Clone)]
pub struct Rng(u64);

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The stream of item `index` in the stream named `stream`.
    pub fn stream(seed: u64, stream: &str, index: u64) -> Self {
        let mut h = seed ^ 0xA076_1D64_78BD_642F;
        for b in stream.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
        }
        let mut r = Rng(h ^ index.wrapping_mul(GOLDEN));
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n.max(1))) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Picks with a skew towards the front of `items` (common names are
    /// common): index `n * u^2`.
    pub fn pick_skewed<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let u = self.unit();
        &items[((items.len() as f64) * u * u) as usize]
    }

    /// An index in `0..n` skewed like [`Rng::pick_skewed`].
    pub fn below_skewed(&mut self, n: usize) -> usize {
        let u = self.unit();
        ((n as f64) * u * u) as usize
    }

    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::stream(7, "contact", 3).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::stream(7, "contact", 3).next_u64(), Rng::stream(7, "contact", 4).next_u64());
        assert_ne!(Rng::stream(7, "contact", 3).next_u64(), Rng::stream(7, "deal", 3).next_u64());
        let mut r = Rng::new(1);
        assert!((0..1000).all(|_| r.below(10) < 10));
    }
}
