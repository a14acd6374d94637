//! The records of the offsets log, keyed like Kafka's `__consumer_offsets`:
//!
//! ```text
//! offset commit  key   version 1: group string, topic string, partition int32
//!                value version 3: offset int64, leader epoch int32,
//!                                 metadata string, commit timestamp int64
//! group metadata key   version 2: group string
//!                value version 3: protocol type string, generation int32,
//!                                 protocol nullable string, leader nullable string,
//!                                 state timestamp int64,
//!                                 members [member id string, instance id nullable string,
//!                                          client id string, client host string,
//!                                          rebalance timeout int32, session timeout int32,
//!                                          subscription bytes, assignment bytes]
//! ```
//!
//! Integers are big-endian; strings carry an int16 length (-1: null),
//! bytes an int32 length. A null value is a tombstone: the key was deleted.
//! Decoding is bounded by the bytes present and never panics; a record
//! that does not decode is skipped on replay with a warning.

use super::wire::Reader;
use bytes::Bytes;

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_VALUE_VERSION: i16 = 3;

/// A record's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordKey {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
}

impl RecordKey {
    pub fn group(&self) -> &str {
        match self {
            RecordKey::Offset { group, .. } | RecordKey::Group { group } => group,
        }
    }
}

/// A committed offset as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// A member as stored in its group's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The metadata of the group's selected protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group's membership as stored after each rebalance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp_ms: i64,
    pub members: Vec<StoredMember>,
}

/// A decoded record: its key and value (`None`: a tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Offset(String, String, i32, Option<OffsetValue>),
    Group(String, Option<GroupValue>),
}

struct Writer(Vec<u8>);

impl Writer {
    fn i16(&mut self, v: i16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    /// Strings longer than int16 allows are cut at a character boundary;
    /// callers bound them well below (group ids, metadata, client ids).
    fn str(&mut self, s: &str) {
        let mut end = s.len().min(i16::MAX as usize);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.i16(end as i16);
        self.0.extend_from_slice(&s.as_bytes()[..end]);
    }
    fn nullable_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.str(s),
            None => self.i16(-1),
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        self.i32(b.len() as i32);
        self.0.extend_from_slice(b);
    }
}

pub fn offset_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(8 + group.len() + topic.len()));
    w.i16(OFFSET_KEY_VERSION);
    w.str(group);
    w.str(topic);
    w.i32(partition);
    w.0
}

pub fn group_key(group: &str) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(4 + group.len()));
    w.i16(GROUP_KEY_VERSION);
    w.str(group);
    w.0
}

pub fn offset_value(v: &OffsetValue) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(24 + v.metadata.len()));
    w.i16(OFFSET_VALUE_VERSION);
    w.i64(v.offset);
    w.i32(v.leader_epoch);
    w.str(&v.metadata);
    w.i64(v.commit_timestamp_ms);
    w.0
}

pub fn group_value(v: &GroupValue) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(64 + group_value_payload_bytes(v)));
    w.i16(GROUP_VALUE_VERSION);
    w.str(&v.protocol_type);
    w.i32(v.generation);
    w.nullable_str(v.protocol.as_deref());
    w.nullable_str(v.leader.as_deref());
    w.i64(v.state_timestamp_ms);
    w.i32(v.members.len() as i32);
    for m in &v.members {
        w.str(&m.member_id);
        w.nullable_str(m.instance_id.as_deref());
        w.str(&m.client_id);
        w.str(&m.client_host);
        w.i32(m.rebalance_timeout_ms);
        w.i32(m.session_timeout_ms);
        w.bytes(&m.subscription);
        w.bytes(&m.assignment);
    }
    w.0
}

fn group_value_payload_bytes(v: &GroupValue) -> usize {
    v.members
        .iter()
        .map(|m| 32 + m.member_id.len() + m.subscription.len() + m.assignment.len())
        .sum()
}

/// Decodes a record of the offsets log; `None` if it is not one.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<Record> {
    let mut k = Reader { buf: key };
    match k.i16()? {
        0 | OFFSET_KEY_VERSION => {
            let group = k.str()?;
            let topic = k.str()?;
            let partition = k.i32()?;
            let value = match value {
                None => None,
                Some(v) => Some(decode_offset_value(v)?),
            };
            Some(Record::Offset(group, topic, partition, value))
        }
        GROUP_KEY_VERSION => {
            let group = k.str()?;
            let value = match value {
                None => None,
                Some(v) => Some(decode_group_value(v)?),
            };
            Some(Record::Group(group, value))
        }
        _ => None,
    }
}

fn decode_offset_value(v: &[u8]) -> Option<OffsetValue> {
    let mut r = Reader { buf: v };
    if r.i16()? != OFFSET_VALUE_VERSION {
        return None;
    }
    Some(OffsetValue {
        offset: r.i64()?,
        leader_epoch: r.i32()?,
        metadata: r.str()?,
        commit_timestamp_ms: r.i64()?,
    })
}

fn decode_group_value(v: &[u8]) -> Option<GroupValue> {
    let mut r = Reader { buf: v };
    if r.i16()? != GROUP_VALUE_VERSION {
        return None;
    }
    let protocol_type = r.str()?;
    let generation = r.i32()?;
    let protocol = r.nullable_str()?;
    let leader = r.nullable_str()?;
    let state_timestamp_ms = r.i64()?;
    let count = r.i32()?;
    // Each member takes at least 24 bytes: never trust the count further.
    let count = usize::try_from(count).ok()?;
    if count > r.buf.len() / 24 {
        return None;
    }
    let mut members = Vec::with_capacity(count);
    for _ in 0..count {
        members.push(StoredMember {
            member_id: r.str()?,
            instance_id: r.nullable_str()?,
            client_id: r.str()?,
            client_host: r.str()?,
            rebalance_timeout_ms: r.i32()?,
            session_timeout_ms: r.i32()?,
            subscription: r.bytes()?,
            assignment: r.bytes()?,
        });
    }
    Some(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp_ms,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves both record kinds and their tombstones decode to what was
    // encoded, and that truncated or foreign bytes are refused.
    #[test]
    fn round_trip_and_refusals() {
        let v = OffsetValue {
            offset: 42,
            leader_epoch: 0,
            metadata: "meta ✓".into(),
            commit_timestamp_ms: 1_700_000_000_000,
        };
        let k = offset_key("g", "t", 3);
        assert_eq!(
            decode(&k, Some(&offset_value(&v))),
            Some(Record::Offset("g".into(), "t".into(), 3, Some(v.clone())))
        );
        assert_eq!(
            decode(&k, None),
            Some(Record::Offset("g".into(), "t".into(), 3, None))
        );
        let g = GroupValue {
            protocol_type: "consumer".into(),
            generation: 7,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            state_timestamp_ms: 5,
            members: vec![StoredMember {
                member_id: "m1".into(),
                instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let gk = group_key("g");
        let gv = group_value(&g);
        assert_eq!(
            decode(&gk, Some(&gv)),
            Some(Record::Group("g".into(), Some(g)))
        );
        assert_eq!(decode(&gk, Some(&gv[..gv.len() - 1])), None);
        assert_eq!(decode(&k[..k.len() - 1], None), None);
        assert_eq!(decode(b"\x00\x09xx", None), None);
        let mut huge = gv[..gv.len()].to_vec();
        // A member count far beyond the bytes present is refused.
        let at = 2 + 2 + 8 + 4 + 2 + 5 + 2 + 2 + 8;
        huge[at..at + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(decode(&gk, Some(&huge)), None);
    }
}
