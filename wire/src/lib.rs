//! shardlog-wire: the parts of the Kafka wire that the broker and the load
//! generator both speak, with no I/O.
//!
//! Everything here works on byte slices and buffers the caller owns: no
//! sockets, files, executors or futures. The broker builds its validation,
//! patching and socket framing on top; the load generator builds its batch
//! template, hand-rolled Produce and Fetch codecs and frame reader on top.
//!
//! ```text
//! batch        the v2 record batch header: layout, attributes, parse, write, CRC
//! records      the records inside a batch: encoder, builder, zero-copy walker, decoder
//! compression  the batch codecs in the framings Kafka clients use
//! varint       Kafka's zigzag and unsigned varints
//! frame        size-prefixed frames: bounds checks and cutting frames out of a buffer
//! murmur2      Kafka's default partitioner hash
//! error        Kafka error codes and their names
//! ```

pub mod batch;
pub mod compression;
pub mod error;
pub mod frame;
pub mod murmur2;
pub mod records;
pub mod varint;

pub use batch::{BatchHeader, Compression, TimestampType};
pub use error::ErrorCode;
