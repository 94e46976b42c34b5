//! A batch's sync operations, packed. A server makes millions of them (a
//! memcached under load: a dozen a request), and field by field each took
//! about 26 bytes: the object's full address, the order stamp and the
//! arrival stamp, each a large number. Within one thread's batch they
//! are close to the operation before: the same few objects, stamps a few
//! apart. So each operation is written as differences from the one before
//! it (zigzag varints, exact for any value), about 9 bytes.
//!
//! Per operation: a byte holding the op code and whether an arrival
//! follows; the result; the object, seq and order as differences from the
//! previous operation's; the arrival (if any) as its distance back from
//! the order.

use serde::de::Error as _;
use serde::{Deserializer, Serializer};

use crate::{SyncOp, SyncRecord, NO_ORDER};

/// Set in an operation's first byte when an arrival follows.
const HAS_ARRIVAL: u8 = 0x80;
/// The fewest bytes one operation takes (first byte and five 1-byte varints).
const MIN_OP_LEN: usize = 5;

/// `serialize_with` for `SyncBatch::ops`.
pub fn serialize<S: Serializer>(ops: &[SyncRecord], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(&pack(ops))
}

/// `deserialize_with` for `SyncBatch::ops`.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SyncRecord>, D::Error> {
    let bytes = d.deserialize_byte_buf(crate::bytes::BufVisitor)?;
    unpack(&bytes).map_err(D::Error::custom)
}

/// The packed form of `ops`.
pub fn pack(ops: &[SyncRecord]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + ops.len() * 10);
    put(&mut out, ops.len() as u64);
    let mut prev = Prev::default();
    for op in ops {
        let arrival = op.arrival != NO_ORDER;
        out.push(op.op as u8 | if arrival { HAS_ARRIVAL } else { 0 });
        put(&mut out, zigzag(i64::from(op.result)));
        put(&mut out, delta(op.object, prev.object));
        put(&mut out, delta(op.seq, prev.seq));
        put(&mut out, delta(op.order, prev.order));
        if arrival {
            put(&mut out, delta(op.order, op.arrival));
        }
        prev = Prev {
            object: op.object,
            seq: op.seq,
            order: op.order,
        };
    }
    out
}

/// The operations `bytes` packs; an error names what is wrong with it.
pub fn unpack(bytes: &[u8]) -> Result<Vec<SyncRecord>, String> {
    let mut at = 0usize;
    let count = get(bytes, &mut at)?;
    // The count comes from the trace: trust it only as far as the bytes go.
    if count > (bytes.len() / MIN_OP_LEN) as u64 {
        return Err(format!(
            "sync batch claims {count} operations in {} bytes",
            bytes.len()
        ));
    }
    let mut ops = Vec::with_capacity(count as usize);
    let mut prev = Prev::default();
    for _ in 0..count {
        let first = *bytes.get(at).ok_or("sync batch ends early")?;
        at += 1;
        let op = SyncOp::from_u8(first & !HAS_ARRIVAL)
            .ok_or_else(|| format!("unknown sync operation code {}", first & !HAS_ARRIVAL))?;
        let result = i32::try_from(unzigzag(get(bytes, &mut at)?))
            .map_err(|_| "sync result out of range".to_string())?;
        let object = undelta(get(bytes, &mut at)?, prev.object);
        let seq = undelta(get(bytes, &mut at)?, prev.seq);
        let order = undelta(get(bytes, &mut at)?, prev.order);
        let arrival = if first & HAS_ARRIVAL != 0 {
            order.wrapping_sub(unzigzag(get(bytes, &mut at)?) as u64)
        } else {
            NO_ORDER
        };
        ops.push(SyncRecord {
            object,
            seq,
            order,
            arrival,
            op,
            result,
        });
        prev = Prev { object, seq, order };
    }
    if at != bytes.len() {
        return Err(format!(
            "sync batch has {} bytes after its operations",
            bytes.len() - at
        ));
    }
    Ok(ops)
}

#[derive(Default)]
struct Prev {
    object: u64,
    seq: u64,
    order: u64,
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// `v - base` as a zigzag varint value; wrapping, so exact for any pair.
fn delta(v: u64, base: u64) -> u64 {
    zigzag(v.wrapping_sub(base) as i64)
}

fn undelta(d: u64, base: u64) -> u64 {
    base.wrapping_add(unzigzag(d) as u64)
}

/// Appends `v` as a LEB128 varint.
fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 varint at `*at`.
fn get(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at).ok_or("sync batch ends early")?;
        *at += 1;
        if shift == 63 && b > 1 {
            return Err("sync batch holds a number past 64 bits".into());
        }
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("sync batch holds a number past 64 bits".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(object: u64, seq: u64, order: u64, arrival: u64, op: SyncOp, result: i32) -> SyncRecord {
        SyncRecord {
            object,
            seq,
            order,
            arrival,
            op,
            result,
        }
    }

    #[test]
    fn every_value_comes_back_exactly() {
        let ops = vec![
            op(0x5555_5555_a0c0, 7, 1000, 998, SyncOp::MutexLock, 0),
            op(
                0x5555_5555_a0c0,
                0,
                1003,
                NO_ORDER,
                SyncOp::MutexTrylock,
                16,
            ),
            op(0x7fff_f000_0010, 9, 900, 1200, SyncOp::FutexWait, -110),
            op(u64::MAX, u64::MAX, NO_ORDER, 0, SyncOp::CondWait, i32::MIN),
            op(0, 0, 0, u64::MAX - 1, SyncOp::FutexWake, i32::MAX),
        ];
        assert_eq!(unpack(&pack(&ops)).expect("unpacks"), ops);
        assert_eq!(unpack(&pack(&[])).expect("empty"), Vec::new());
    }

    #[test]
    fn a_servers_run_of_locks_packs_to_a_third_of_its_fields() {
        // One worker alternating between two locks, stamps a few apart.
        let ops: Vec<SyncRecord> = (0..1000u64)
            .map(|i| {
                let order = 5_000_000 + i * 7;
                op(
                    0x5555_5600_0000 + (i % 2) * 64,
                    200_000 + i,
                    order,
                    order - 2,
                    SyncOp::MutexLock,
                    0,
                )
            })
            .collect();
        let packed = pack(&ops).len();
        let plain = bincode::serialize(&ops).expect("plain").len();
        assert!(
            packed * 3 <= plain,
            "packed {packed} bytes, field by field {plain}"
        );
    }

    #[test]
    fn damaged_batches_are_errors() {
        let ops = vec![op(1, 2, 3, 1, SyncOp::MutexLock, 0); 3];
        let bytes = pack(&ops);
        for cut in 0..bytes.len() {
            assert!(unpack(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(unpack(&extra).is_err());
        let mut bad_op = bytes.clone();
        bad_op[1] = 0x7f;
        assert!(unpack(&bad_op)
            .unwrap_err()
            .contains("unknown sync operation"));
        // A count far beyond the bytes is refused before anything is allocated.
        let mut huge = Vec::new();
        put(&mut huge, u64::MAX);
        assert!(unpack(&huge).unwrap_err().contains("claims"));
        assert!(unpack(&[0xff; 11]).is_err());
    }
}
