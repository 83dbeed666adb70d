//! The click stream of topic 19's `click_analytics`: who clicked, as 64-bit visitor ids, and the
//! hash function a HyperLogLog needs.

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

/// `clicks` clicks by exactly `visitors` distinct visitors (random-looking 64-bit ids): visitor
/// `i` clicks first at position `i`, the remaining clicks are by visitors drawn at random
/// (duplicates). Needs `clicks >= visitors`.
pub fn click_stream(rng: &mut StdRng, visitors: usize, clicks: usize) -> Vec<u64> {
    assert!(clicks >= visitors, "every visitor clicks at least once");
    // SplitMix64 of distinct inputs: a bijection, so the ids are distinct without a set.
    let base: u64 = rng.random();
    let id = |i: usize| splitmix64(base.wrapping_add(i as u64));
    let mut stream: Vec<u64> = (0..visitors).map(id).collect();
    if visitors > 0 {
        stream.extend((visitors..clicks).map(|_| id(rng.random_range(0..visitors))));
    }
    stream
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

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
