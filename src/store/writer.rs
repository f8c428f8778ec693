//! The only path from request handling to the disk. Handlers hand
//! [`Change`]s to a [`StoreWriter`], which appends them to an in-memory
//! queue (never blocking on I/O) for a background thread, `store-writer`.
//! The thread sleeps until a change arrives, then lets the queue fill for
//! [`BATCH_WINDOW`] (or until it holds [`MAX_BATCH_CHANGES`]) and applies
//! the batch in one [`Store::apply`] transaction. Senders wake the thread
//! only when it is idle, when someone flushes or sends an urgent change
//! (`Change::is_urgent`: one other replicas must hear of, or a stored
//! response a follow-up may soon read), or when the batch is full:
//! under load a request costs one uncontended lock, not a thread wake-up
//! (a wake-up per change cost the serving thread a futex call and the
//! writer a context switch per request). The thread hands the drained
//! queue back to the senders with the room its batch needed, so a steady
//! load pushes into memory already there (a fresh queue each batch grew
//! by doubling: copies and new pages). A failed batch is logged (the
//! error, never the values), retried once, then dropped: the process goes
//! on serving. [`StoreWriter::flush`] waits until everything sent before it
//! is applied; dropping the last clone applies what is queued and stops
//! the thread.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{Change, Store, StoreError};

/// How long the thread keeps gathering changes after the first of a batch.
pub const BATCH_WINDOW: Duration = Duration::from_millis(500);
/// A batch is applied as soon as it holds this many changes.
pub const MAX_BATCH_CHANGES: usize = 20_000;
/// Room for this many messages is always kept (see [`trim_room`]).
const MIN_ROOM: usize = 64;
/// Pause before the one retry of a failed batch.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

enum WriterMessage {
    One(Change),
    Many(Vec<Change>),
    /// Answered once everything queued before it is applied.
    Flush(mpsc::SyncSender<()>),
}

/// What senders and the thread share, under one lock.
#[derive(Default)]
struct Queue {
    messages: Vec<WriterMessage>,
    /// Changes in `messages` (a `Many` counts each of its changes).
    changes: usize,
    /// A flush, or a change to write at once ([`Change::is_urgent`]:
    /// what other replicas must hear of or may read soon, rare), is waiting.
    flush_waiting: bool,
    /// The thread is asleep waiting for a first change (a send wakes it).
    writer_idle: bool,
    /// The last handle is gone: apply what is queued and stop.
    closed: bool,
    /// The thread has ended (it could not start, or it stopped).
    writer_gone: bool,
}

struct Channel {
    queue: Mutex<Queue>,
    wake: Condvar,
}

/// A cheap, cloneable handle on the writer thread.
#[derive(Clone)]
pub struct StoreWriter {
    shared: Arc<WriterShared>,
}

struct WriterShared {
    channel: Arc<Channel>,
    thread: Mutex<Option<JoinHandle<()>>>,
    store: Arc<dyn Store>,
    /// The "writer is gone" error is logged once, not per change.
    reported_gone: AtomicBool,
}

impl StoreWriter {
    /// Starts the `store-writer` thread over `store`.
    pub fn start(store: Arc<dyn Store>) -> StoreWriter {
        let channel = Arc::new(Channel { queue: Mutex::new(Queue::default()), wake: Condvar::new() });
        let thread_channel = Arc::clone(&channel);
        let thread_store = Arc::clone(&store);
        let thread = std::thread::Builder::new()
            .name("store-writer".to_owned())
            .spawn(move || {
                write_batches(&thread_channel, thread_store.as_ref());
                thread_channel.queue.lock().writer_gone = true;
            })
            .map_err(|error| log::error!("storage: cannot start the store-writer thread ({error}); nothing is saved"))
            .ok();
        if thread.is_none() {
            channel.queue.lock().writer_gone = true;
        }
        StoreWriter {
            shared: Arc::new(WriterShared {
                channel,
                thread: Mutex::new(thread),
                store,
                reported_gone: AtomicBool::new(false),
            }),
        }
    }

    /// The store, for reads (startup, dashboard pages).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// Queues one change. Never blocks on I/O, never panics.
    pub fn send(&self, change: Change) {
        self.queue(WriterMessage::One(change));
    }

    /// Queues several changes, in order.
    pub fn send_all(&self, changes: Vec<Change>) {
        if !changes.is_empty() {
            self.queue(WriterMessage::Many(changes));
        }
    }

    /// Blocks until every change sent before this call has been applied
    /// (or dropped after failing). Returns at once if the thread is gone.
    /// Not for request handlers: it waits for the disk.
    pub fn flush(&self) {
        let (done_sender, done_receiver) = mpsc::sync_channel(1);
        if self.queue(WriterMessage::Flush(done_sender)) {
            // An error means the thread ended; there is nothing to wait for.
            let _ = done_receiver.recv();
        }
    }

    fn queue(&self, message: WriterMessage) -> bool {
        let channel = &self.shared.channel;
        let mut queue = channel.queue.lock();
        if queue.writer_gone {
            drop(queue);
            if !self.shared.reported_gone.swap(true, Ordering::Relaxed) {
                log::error!("storage: the store-writer thread has stopped; changes are no longer saved");
            }
            return false;
        }
        match &message {
            WriterMessage::One(change) => {
                queue.changes += 1;
                queue.flush_waiting |= change.is_urgent();
            }
            WriterMessage::Many(changes) => {
                queue.changes += changes.len();
                queue.flush_waiting |= changes.iter().any(Change::is_urgent);
            }
            WriterMessage::Flush(_) => queue.flush_waiting = true,
        }
        queue.messages.push(message);
        let wake = queue.writer_idle || queue.flush_waiting || queue.changes >= MAX_BATCH_CHANGES;
        drop(queue);
        if wake {
            channel.wake.notify_one();
        }
        true
    }
}

impl Drop for WriterShared {
    /// The last handle is gone: tell the thread to apply what is queued and
    /// stop, and wait for it.
    fn drop(&mut self) {
        self.channel.queue.lock().closed = true;
        self.channel.wake.notify_one();
        if let Some(thread) = self.thread.get_mut().take() {
            if thread.join().is_err() {
                log::error!("storage: the store-writer thread panicked");
            }
        }
    }
}

/// The thread's loop: one batch per iteration until the last handle is
/// dropped.
fn write_batches(channel: &Channel, store: &dyn Store) {
    let mut batch: Vec<Change> = Vec::new();
    let mut flushes: Vec<mpsc::SyncSender<()>> = Vec::new();
    // The queue handed back to senders, with the room the last batch
    // needed: under load, senders push into memory already there instead
    // of growing a fresh queue every batch (each growth copies it and
    // touches new pages: a page fault every few dozen requests).
    let mut spare: Vec<WriterMessage> = Vec::new();
    loop {
        let (mut messages, closed) = {
            let mut queue = channel.queue.lock();
            while queue.messages.is_empty() && !queue.closed {
                queue.writer_idle = true;
                channel.wake.wait(&mut queue);
            }
            queue.writer_idle = false;
            // Gather: senders do not wake us now unless someone flushes or
            // the batch is full.
            let deadline = Instant::now() + BATCH_WINDOW;
            while !queue.flush_waiting && !queue.closed && queue.changes < MAX_BATCH_CHANGES {
                if channel.wake.wait_until(&mut queue, deadline).timed_out() {
                    break;
                }
            }
            queue.changes = 0;
            queue.flush_waiting = false;
            (std::mem::replace(&mut queue.messages, std::mem::take(&mut spare)), queue.closed)
        };
        for message in messages.drain(..) {
            take_message(message, &mut batch, &mut flushes);
        }
        apply_with_one_retry(store, &batch);
        let changes = batch.len();
        batch.clear();
        // Room for a burst is not kept once the load is gone.
        trim_room(&mut batch, changes);
        trim_room(&mut messages, changes);
        spare = messages;
        for flush in flushes.drain(..) {
            let _ = flush.send(());
        }
        if closed {
            break;
        }
    }
}

/// Gives back the room of an emptied `buffer` that held far more than
/// the `last` batch needed, keeping enough for a batch like it.
fn trim_room<T>(buffer: &mut Vec<T>, last: usize) {
    let keep = last.max(MIN_ROOM);
    if buffer.capacity() > 4 * keep {
        buffer.shrink_to(keep);
    }
}

/// Adds `message` to the batch, or a flush request to those to answer.
fn take_message(message: WriterMessage, batch: &mut Vec<Change>, flushes: &mut Vec<mpsc::SyncSender<()>>) {
    match message {
        WriterMessage::One(change) => batch.push(change),
        WriterMessage::Many(changes) => batch.extend(changes),
        WriterMessage::Flush(done) => flushes.push(done),
    }
}

fn apply_with_one_retry(store: &dyn Store, batch: &[Change]) {
    if batch.is_empty() {
        return;
    }
    let Err(first_error) = apply_guarded(store, batch) else { return };
    log::error!("storage: saving {} changes failed ({first_error}); retrying once", batch.len());
    std::thread::sleep(RETRY_PAUSE);
    if let Err(second_error) = apply_guarded(store, batch) {
        log::error!("storage: saving {} changes failed again ({second_error}); they are dropped", batch.len());
    }
}

/// `store.apply`, with a panic turned into an error so one bad batch
/// cannot stop the thread.
fn apply_guarded(store: &dyn Store, batch: &[Change]) -> Result<(), StoreError> {
    catch_unwind(AssertUnwindSafe(|| store.apply(batch)))
        .unwrap_or_else(|_| Err(StoreError::Io("the store panicked while saving".to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::{MinuteStats, RequestRecord, Snapshot, StoredUsage};
    use std::sync::atomic::AtomicUsize;

    fn usage(n: u64) -> Change {
        Change::Usage(StoredUsage {
            key: format!("AIzaWriterKey{n:0>26}"),
            model: "gemini-2.5-flash".to_owned(),
            pacific_day: 20_500,
            successes: n,
            failures: 0,
            prompt_tokens: n * 3,
            completion_tokens: n,
        })
    }

    fn minute(n: u64) -> Change {
        Change::MinuteStats(MinuteStats { minute: n, requests: n, ..MinuteStats::default() })
    }

    #[test]
    fn ten_thousand_changes_are_all_there_after_flush() {
        let store = Arc::new(MemoryStore::new());
        let writer = StoreWriter::start(store.clone());
        let senders: Vec<std::thread::JoinHandle<()>> = (0..4u64)
            .map(|thread_index| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for n in (thread_index * 1_250)..((thread_index + 1) * 1_250) {
                        writer.send(usage(n));
                    }
                    writer.send_all(((thread_index * 1_250)..((thread_index + 1) * 1_250)).map(minute).collect());
                })
            })
            .collect();
        for sender in senders {
            sender.join().expect("sender thread");
        }
        writer.flush();
        assert_eq!(writer.store().load().expect("load").usage.len(), 5_000);
        assert_eq!(store.stats_since(0).expect("stats").len(), 5_000);
        // A flush with nothing queued returns too.
        writer.flush();
    }

    #[test]
    fn dropping_the_last_handle_saves_what_is_queued() {
        let store = Arc::new(MemoryStore::new());
        let writer = StoreWriter::start(store.clone());
        let clone = writer.clone();
        for n in 0..1_000 {
            clone.send(Change::Request(RequestRecord { at_ms: n, ..RequestRecord::default() }));
        }
        drop(clone);
        drop(writer);
        assert_eq!(store.recent_requests(usize::MAX).expect("requests").len(), 1_000);
    }

    #[derive(Clone, Copy, Debug)]
    enum Failure {
        Error,
        Panic,
    }

    /// A store whose `apply` always fails, counting the attempts.
    struct FailingStore {
        failure: Failure,
        attempts: AtomicUsize,
    }

    impl Store for FailingStore {
        fn load(&self) -> Result<Snapshot, StoreError> {
            Ok(Snapshot::default())
        }
        fn apply(&self, _changes: &[Change]) -> Result<(), StoreError> {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            match self.failure {
                Failure::Error => Err(StoreError::Io("disk full".to_owned())),
                Failure::Panic => panic!("a store that panics (expected by this test)"),
            }
        }
        fn stats_since(&self, _since_minute: u64) -> Result<Vec<MinuteStats>, StoreError> {
            Ok(Vec::new())
        }
        fn recent_requests(&self, _limit: usize) -> Result<Vec<RequestRecord>, StoreError> {
            Ok(Vec::new())
        }
        fn response(&self, _id: &str, _scope: &str) -> Result<Option<crate::store::StoredResponse>, StoreError> {
            Ok(None)
        }
    }

    #[test]
    fn a_failing_batch_is_retried_once_then_dropped_and_the_writer_goes_on() {
        for failure in [Failure::Error, Failure::Panic] {
            let store = Arc::new(FailingStore { failure, attempts: AtomicUsize::new(0) });
            let writer = StoreWriter::start(store.clone());
            writer.send(usage(1));
            writer.flush();
            assert_eq!(store.attempts.load(Ordering::SeqCst), 2, "{failure:?}: first batch");
            writer.send_all(vec![usage(2), usage(3)]);
            writer.flush();
            assert_eq!(store.attempts.load(Ordering::SeqCst), 4, "{failure:?}: the writer is still there");
        }
    }

    #[test]
    fn senders_get_the_drained_queue_back_with_its_room_until_the_load_drops() {
        let writer = StoreWriter::start(Arc::new(MemoryStore::new()));
        let room = || writer.shared.channel.queue.lock().messages.capacity();
        for n in 0..1_000 {
            writer.send(minute(n));
        }
        writer.flush();
        // The next batch is taken: senders are handed the first batch's
        // queue, drained, with its room (not a new, empty queue).
        writer.send(minute(1_000));
        writer.flush();
        assert!(room() >= 1_000, "senders push into a queue with room for a batch like the last: {}", room());
        // Small batches now: the burst's room is not kept.
        writer.send(minute(1_001));
        writer.flush();
        writer.send(minute(1_002));
        writer.flush();
        assert!(room() < 4 * MIN_ROOM, "the room of a burst is given back: {}", room());
    }

    #[test]
    fn the_queue_keeps_room_for_a_steady_load_and_gives_back_a_burst() {
        let mut buffer: Vec<u64> = Vec::with_capacity(10_000);
        // A batch like the last one: the room stays.
        trim_room(&mut buffer, 8_000);
        assert_eq!(buffer.capacity(), 10_000);
        // The load is gone: only room for a small batch is kept.
        trim_room(&mut buffer, 3);
        assert!(buffer.capacity() >= MIN_ROOM && buffer.capacity() < 4 * MIN_ROOM, "{}", buffer.capacity());
        let kept = buffer.capacity();
        trim_room(&mut buffer, 0);
        assert_eq!(buffer.capacity(), kept);
    }

    #[test]
    fn sending_to_a_stopped_writer_neither_blocks_nor_panics() {
        // A handle whose thread has ended.
        let channel = Arc::new(Channel {
            queue: Mutex::new(Queue { writer_gone: true, ..Queue::default() }),
            wake: Condvar::new(),
        });
        let stopped = StoreWriter {
            shared: Arc::new(WriterShared {
                channel,
                thread: Mutex::new(None),
                store: Arc::new(MemoryStore::new()),
                reported_gone: AtomicBool::new(false),
            }),
        };
        stopped.send(usage(1));
        stopped.send_all(vec![usage(2)]);
        stopped.flush();
        assert!(stopped.shared.reported_gone.load(Ordering::Relaxed));
    }
}
