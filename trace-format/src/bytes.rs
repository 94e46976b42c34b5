//! Byte strings written as byte strings. serde hands a `Vec<u8>` to the
//! encoder one `u8` at a time; bincode then writes the same bytes it writes
//! for `serialize_bytes` (a u64 length, then the bytes), only far slower.
//! The recorder's writer spends its time there when a server is recorded
//! at full speed, so the hot fields use these: the encoding, and so the
//! format, is unchanged (a unit test checks).

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};

struct Bytes<'a>(&'a [u8]);

impl serde::Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// `serialize_with` for a `Vec<Vec<u8>>` field.
pub fn serialize_list<S: Serializer>(list: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(list.len()))?;
    for b in list {
        seq.serialize_element(&Bytes(b))?;
    }
    seq.end()
}

/// `deserialize_with` for a `Vec<Vec<u8>>` field: the same bytes read
/// in one go.
pub fn deserialize_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
    d.deserialize_seq(ListVisitor)
}

struct ListVisitor;

impl<'de> Visitor<'de> for ListVisitor {
    type Value = Vec<Vec<u8>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of byte strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // The length comes from the trace: trust it only so far.
        let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(ByteBuf(b)) = seq.next_element()? {
            list.push(b);
        }
        Ok(list)
    }
}

struct ByteBuf(Vec<u8>);

impl<'de> serde::Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_byte_buf(BufVisitor).map(ByteBuf)
    }
}

pub(crate) struct BufVisitor;

impl<'de> Visitor<'de> for BufVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        Ok(v)
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok(v.to_vec())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut v = Vec::new();
        while let Some(b) = seq.next_element::<u8>()? {
            v.push(b);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Plain {
        list: Vec<Vec<u8>>,
    }

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Fast {
        #[serde(
            serialize_with = "super::serialize_list",
            deserialize_with = "super::deserialize_list"
        )]
        list: Vec<Vec<u8>>,
    }

    #[test]
    fn the_encoding_is_the_same_as_serdes_own() {
        let list = vec![b"hello".to_vec(), Vec::new(), (0..=255u8).collect()];
        let plain = bincode::serialize(&Plain { list: list.clone() }).expect("plain");
        let fast = bincode::serialize(&Fast { list: list.clone() }).expect("fast");
        assert_eq!(plain, fast);
        let back: Fast = bincode::deserialize(&plain).expect("reads serde's encoding");
        assert_eq!(back.list, list);
    }

    #[test]
    fn a_damaged_length_is_an_error_not_a_huge_allocation() {
        let mut bytes = bincode::serialize(&Plain {
            list: vec![vec![1, 2, 3]],
        })
        .expect("plain");
        // The inner length (after the outer u64) claims far more than is there.
        bytes[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(bincode::deserialize::<Fast>(&bytes).is_err());
    }
}
