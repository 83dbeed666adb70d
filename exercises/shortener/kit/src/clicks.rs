//! The click stream of topic 19's `click_analytics`: who clicked, as 64-bit visitor ids, and the
//! hash function a HyperLogLog needs.

use std::collections::HashSet;

use rand::RngExt;
use rand::rngs::StdRng;

/// A 64-bit hash of a visitor id whose bits look independent and uniform (MurmurHash3's 64-bit
/// finaliser, `fmix64`): nearby ids (user 41, user 42) get unrelated hashes. A bijection, so two
/// visitors never share a hash.
pub fn hash64(visitor: u64) -> u64 {
    let mut h = visitor;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// `clicks` clicks by exactly `visitors` distinct visitors (random 64-bit ids): every visitor
/// clicks at least once, the remaining clicks are by visitors drawn at random (duplicates).
/// Needs `clicks >= visitors`.
pub fn click_stream(rng: &mut StdRng, visitors: usize, clicks: usize) -> Vec<u64> {
    assert!(clicks >= visitors, "every visitor clicks at least once");
    let mut ids = HashSet::with_capacity(visitors);
    while ids.len() < visitors {
        ids.insert(rng.random::<u64>());
    }
    let ids: Vec<u64> = ids.into_iter().collect();
    let mut stream = ids.clone();
    if !ids.is_empty() {
        for _ in visitors..clicks {
            stream.push(ids[rng.random_range(0..ids.len())]);
        }
    }
    // Shuffle so the duplicates are spread through the stream.
    for i in (1..stream.len()).rev() {
        let j = rng.random_range(0..=i);
        stream.swap(i, j);
    }
    stream
}

#[cfg(test)]
mod tests {
    use sdlings_kit::workload::seeded_rng;

    use super::*;

    #[test]
    fn a_stream_has_exactly_the_visitors_asked_for() {
        let stream = click_stream(&mut seeded_rng(3), 100, 250);
        assert_eq!(stream.len(), 250);
        assert_eq!(stream.iter().collect::<HashSet<_>>().len(), 100);
        assert!(click_stream(&mut seeded_rng(3), 0, 0).is_empty());
    }

    #[test]
    fn nearby_ids_get_unrelated_hashes() {
        assert_ne!(hash64(41) >> 50, hash64(42) >> 50);
        assert_eq!(hash64(0), 0, "fmix64 fixes zero");
    }
}
