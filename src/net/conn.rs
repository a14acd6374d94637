//! What a shard knows of each of its connections, and the sweeper that
//! looks at them all a few times a second: it closes connections idle past
//! `connections.max.idle.ms` and those whose request frame has taken longer
//! than `shardlog.request.read.timeout.ms` to arrive, tells connections
//! that stopped sending to give back their read buffers, and hands memory
//! freed by closed connections back to the operating system.
//!
//! Lives on one shard; the sweeper and the connections' tasks share the
//! state through `Rc` and `Cell`s.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tracing::debug;

use crate::shard::Shard;
use crate::storage::waiters::Signal;

/// How often the sweeper looks at the connections.
const SWEEP_INTERVAL: Duration = Duration::from_millis(250);

/// A connection whose socket has been quiet this long reads through a
/// small stack buffer again, so its read buffer is freed.
const READ_BUFFER_RELEASE_AFTER: Duration = Duration::from_secs(1);

/// Connections closed on a shard before it returns freed memory to the
/// operating system (`malloc_trim`), besides whenever its last one closes.
const CLOSED_CONNECTIONS_PER_TRIM: usize = 1000;

/// What the sweeper asks of a connection's reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Give back the read buffer and read through the stack buffer.
    Lean,
    /// Close: nothing was sent or answered for connections.max.idle.ms.
    CloseIdle,
    /// Close: a request frame is still incomplete after the read timeout.
    CloseSlowFrame,
}

/// One connection's state, shared by its reader and writer and the
/// sweeper.
pub struct Conn {
    pub peer: SocketAddr,
    /// The client listener it came in on (an index into the config's).
    pub listener: usize,
    /// Last request read whole or response written.
    pub last_activity: Cell<Instant>,
    /// Last bytes read off the socket.
    pub last_progress: Cell<Instant>,
    /// When the first bytes of the partly read frame arrived.
    pub frame_started: Cell<Option<Instant>>,
    /// Requests read and not yet answered.
    pub in_flight: Cell<usize>,
    /// Whether the reader holds a read buffer (it reads through a small
    /// stack buffer otherwise).
    pub buffered: Cell<bool>,
    verdict: Cell<Option<Verdict>>,
    /// Wakes the reader to look at the verdict.
    pub wake: Signal,
    /// Set once the peer has gone (or the reader stopped): the writer drops
    /// what is still being worked on.
    pub reader_done: Signal,
}

impl Conn {
    pub fn new(peer: SocketAddr, listener: usize) -> Rc<Self> {
        let now = Instant::now();
        Rc::new(Conn {
            peer,
            listener,
            last_activity: Cell::new(now),
            last_progress: Cell::new(now),
            frame_started: Cell::new(None),
            in_flight: Cell::new(0),
            buffered: Cell::new(false),
            verdict: Cell::new(None),
            wake: Signal::default(),
            reader_done: Signal::default(),
        })
    }

    /// Takes the sweeper's verdict, if any.
    pub fn take_verdict(&self) -> Option<Verdict> {
        self.verdict.take()
    }

    fn judge(&self, verdict: Verdict) {
        self.verdict.set(Some(verdict));
        self.wake.notify();
    }
}

/// A shard's open connections.
#[derive(Default)]
pub struct Connections {
    open: RefCell<HashMap<u64, Rc<Conn>>>,
    next_id: Cell<u64>,
    closed_since_trim: Cell<usize>,
}

/// Removes a connection from the registry when dropped.
pub struct Registration {
    connections: Rc<Connections>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.connections.open.borrow_mut().remove(&self.id);
        self.connections
            .closed_since_trim
            .set(self.connections.closed_since_trim.get() + 1);
    }
}

impl Connections {
    pub fn register(self: &Rc<Self>, conn: Rc<Conn>) -> Registration {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.open.borrow_mut().insert(id, conn);
        Registration {
            connections: self.clone(),
            id,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.open.borrow().is_empty()
    }

    /// Looks at every connection every [`SWEEP_INTERVAL`] until the shard
    /// shuts down.
    pub async fn sweep(self: Rc<Self>, shard: Rc<Shard>) {
        let idle = Duration::from_millis(shard.config.connections_max_idle_ms);
        let frame_timeout = Duration::from_millis(shard.config.request_read_timeout_ms);
        while !shard.is_shutting_down() {
            glommio::timer::sleep(SWEEP_INTERVAL).await;
            let now = Instant::now();
            for conn in self.open.borrow().values() {
                let quiet = now.saturating_duration_since(conn.last_progress.get());
                if let Some(started) = conn.frame_started.get() {
                    if now.saturating_duration_since(started) > frame_timeout {
                        conn.judge(Verdict::CloseSlowFrame);
                        continue;
                    }
                } else if conn.in_flight.get() == 0
                    && now.saturating_duration_since(conn.last_activity.get()) > idle
                {
                    conn.judge(Verdict::CloseIdle);
                    continue;
                }
                if conn.buffered.get() && quiet > READ_BUFFER_RELEASE_AFTER {
                    conn.judge(Verdict::Lean);
                }
            }
            let closed = self.closed_since_trim.get();
            if closed >= CLOSED_CONNECTIONS_PER_TRIM || (closed > 0 && self.is_empty()) {
                self.closed_since_trim.set(0);
                release_freed_memory();
                debug!(closed, "returned freed memory to the operating system");
            }
        }
    }
}

/// Gives memory the allocator holds but no longer uses back to the
/// operating system: after many connections close, their buffers are free
/// but glibc keeps the pages.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_freed_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; it
    // takes no pointers from us and is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_freed_memory() {}

/// Bytes glibc may keep free at the top of a heap before it gives them back
/// by itself, and the allocation size from which it maps memory of its own.
/// With glibc's defaults the copy buffers of a fetch round (a few MiB) are
/// handed back after every round and faulted in and zeroed again in the
/// next: a quarter of the broker's CPU when consuming from disk. Memory
/// kept this way is still given back after connections close
/// ([`release_freed_memory`]).
const ALLOCATOR_TRIM_THRESHOLD: libc::c_int = 256 << 20;
const ALLOCATOR_MMAP_THRESHOLD: libc::c_int = 32 << 20;

/// Sets glibc's trim and mmap thresholds (see [`ALLOCATOR_TRIM_THRESHOLD`])
/// once at start, before any shard allocates.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn keep_freed_memory_for_reuse() {
    // SAFETY: mallopt only changes the allocator's own parameters; called
    // before the shard threads start.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, ALLOCATOR_TRIM_THRESHOLD);
        libc::mallopt(libc::M_MMAP_THRESHOLD, ALLOCATOR_MMAP_THRESHOLD);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_freed_memory_for_reuse() {}
