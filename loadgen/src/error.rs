//! Errors that stop a run (as opposed to per-record failures, which are
//! counted in the summary).

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("bad option: {0}")]
    Config(String),
    #[error("{0}: {1}")]
    Io(String, String),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("broker: {0}")]
    Broker(String),
    #[error("executor: {0}")]
    Executor(String),
    /// The run completed but records failed; the summary says which.
    #[error("{0} records failed ({1} errors)")]
    RecordsFailed(u64, u64),
}

/// An error code as the load generator's reports and error counts show
/// it: Kafka's name and the number, such as `MESSAGE_TOO_LARGE(10)`, or
/// `ERROR_999` for a code Kafka does not define.
pub fn kafka_error_name(code: i16) -> String {
    match shardlog_wire::error::error_name(code) {
        Some(name) => format!("{name}({code})"),
        None => format!("ERROR_{code}"),
    }
}
