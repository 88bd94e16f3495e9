//! Partition assignment exactly as the Java Kafka client's default partitioner assigns a keyed
//! record: `(murmur2(key) & 0x7fffffff) % partitions`. Debezium runs on that client, so a key
//! lands on the partition it would land on under Debezium — and it is stable across restarts,
//! which keeps every event of a row in one partition, in order.
//!
//! librdkafka's own default (`consistent_random`, CRC32) differs: the producer must send each
//! record to the partition given here.

/// Kafka's murmur2 (the Java client's `Utils.murmur2`), as a signed 32-bit value.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Java's int arithmetic: lengths and products wrap at 32 bits.
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        if tail.len() >= 3 {
            h ^= u32::from(tail[2]) << 16;
        }
        if tail.len() >= 2 {
            h ^= u32::from(tail[1]) << 8;
        }
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of a record with this key among `partitions` (at least 1). A record without
/// a key goes to partition 0: deterministic, and it keeps a keyless table's events (and every
/// truncate) in order, where the Java client would scatter them.
pub fn partition_for(key: Option<&[u8]>, partitions: u32) -> i32 {
    match key {
        Some(key) if partitions > 1 => {
            let positive = (murmur2(key) & 0x7fff_ffff) as u32;
            (positive % partitions) as i32
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_clients_test_vectors() {
        // From Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973_932_308);
        assert_eq!(murmur2(b"foobar"), -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58_897_971
        );
        assert_eq!(murmur2(b"abc"), 479_470_107);
    }

    #[test]
    fn partitions_are_stable_and_within_range() {
        for partitions in [1, 2, 3, 7, 64] {
            for i in 0..500 {
                let key = format!(r#"{{"id":{i}}}"#);
                let partition = partition_for(Some(key.as_bytes()), partitions);
                assert!((0..partitions as i32).contains(&partition));
                assert_eq!(partition, partition_for(Some(key.as_bytes()), partitions));
            }
        }
    }

    #[test]
    fn keys_spread_over_every_partition() {
        let mut seen = [false; 8];
        for i in 0..200 {
            seen[partition_for(Some(format!("{i}").as_bytes()), 8) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn a_record_without_a_key_goes_to_partition_zero() {
        assert_eq!(partition_for(None, 12), 0);
    }
}
