//! Deterministic data: a seeded pool of pseudo-random bytes that large blobs
//! are cut from without allocating, and small random blobs for images.

use bytes::Bytes;
use futures::Stream;
use sha2::{Digest as _, Sha256};

/// Bytes handed to the HTTP body per piece.
pub const PIECE: usize = 256 * 1024;
/// Distinct offsets a piece may start at inside the pool.
const POOL: usize = 8 * 1024 * 1024;

/// SplitMix64: tiny, fast and good enough for test data.
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `len` pseudo-random bytes from `seed`.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&splitmix(&mut state).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha256_hex(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A blob of `total` bytes, defined by `seed`: piece `k` (bytes
/// `k*PIECE ..`) is a slice of the pool at an offset chosen by `(seed, k)`.
/// Streaming it twice yields the same bytes, so its digest can be computed
/// first and the blob then sent without ever being held in memory.
#[derive(Clone)]
pub struct Blob {
    pool: Bytes,
    seed: u64,
    pub total: u64,
}

impl Blob {
    pub fn new(seed: u64, total: u64) -> Self {
        Self { pool: Bytes::from(random_bytes(seed, POOL + PIECE)), seed, total }
    }

    fn piece(&self, k: u64) -> Bytes {
        let mut state = self.seed ^ k.wrapping_mul(0xD6E8_FEB8_6659_FD93);
        let off = (splitmix(&mut state) as usize % (POOL / 64)) * 64;
        self.pool.slice(off..off + PIECE)
    }

    /// The bytes `[start, end)` as a sequence of zero-copy slices.
    pub fn range(&self, start: u64, end: u64) -> impl Iterator<Item = Bytes> + Send + 'static {
        let this = self.clone();
        let end = end.min(self.total);
        let first = start / PIECE as u64;
        let last = end.div_ceil(PIECE as u64);
        (first..last).filter_map(move |k| {
            let piece_start = k * PIECE as u64;
            let lo = start.max(piece_start) - piece_start;
            let hi = end.min(piece_start + PIECE as u64) - piece_start;
            (hi > lo).then(|| this.piece(k).slice(lo as usize..hi as usize))
        })
    }

    /// The same range as a body stream.
    pub fn stream(&self, start: u64, end: u64) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        futures::stream::iter(self.range(start, end).map(Ok))
    }

    /// `sha256:<hex>` of the whole blob, by streaming it once.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for piece in self.range(0, self.total) {
            h.update(&piece);
        }
        format!("sha256:{}", hex::encode(h.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_concatenate_to_the_whole() {
        let blob = Blob::new(7, 3 * PIECE as u64 + 123);
        let whole: Vec<u8> = blob.range(0, blob.total).flat_map(|b| b.to_vec()).collect();
        assert_eq!(whole.len() as u64, blob.total);
        let mut parts = Vec::new();
        let mut at = 0;
        while at < blob.total {
            let end = (at + 100_000).min(blob.total);
            parts.extend(blob.range(at, end).flat_map(|b| b.to_vec()));
            at = end;
        }
        assert_eq!(whole, parts);
        assert_eq!(sha256_hex(&whole), blob.digest());
    }
}
