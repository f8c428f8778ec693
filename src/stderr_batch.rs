//! Log lines written to stderr in batches: a busy server logs a line per
//! request, and one `write` per line cost its worker a system call each
//! (≈ 3% of a request's CPU in a profile). Lines are appended to a
//! bounded buffer; a flusher thread writes what gathered a short window
//! ([`BATCH_WINDOW`]) after the first line of a batch, in one `write`.
//! A worker never waits for stderr unless the buffer is full
//! ([`MAX_PENDING_BYTES`]) or a line is urgent (a warning or an error:
//! an operator reading the log sees those at once, after every line
//! logged before them). Order is kept: one batch is written at a time, in
//! the order its lines came. [`StderrBatch::flush`] writes what is
//! pending (at exit, and before a panic's message).

use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// How long a batch gathers lines after its first before it is written.
pub const BATCH_WINDOW: Duration = Duration::from_millis(20);
/// Pending bytes past which the logging thread writes the batch itself.
pub const MAX_PENDING_BYTES: usize = 64 * 1024;

/// A batching writer in front of an output (stderr in the process).
pub struct StderrBatch {
    pending: Mutex<Pending>,
    /// Held while a batch is written: the next batch waits for it, so
    /// batches reach the output in order.
    output: Mutex<Box<dyn Write + Send>>,
    /// The flusher waits here for a batch's first line.
    first_line: Condvar,
    window: Duration,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    flusher_started: bool,
}

impl StderrBatch {
    /// A batch writer in front of `output`, whose flusher waits `window`
    /// after a batch's first line.
    pub fn new(output: Box<dyn Write + Send>, window: Duration) -> Arc<StderrBatch> {
        Arc::new(StderrBatch {
            pending: Mutex::new(Pending::default()),
            output: Mutex::new(output),
            first_line: Condvar::new(),
            window,
        })
    }

    /// The process's: in front of stderr.
    pub fn stderr() -> &'static Arc<StderrBatch> {
        static STDERR: OnceLock<Arc<StderrBatch>> = OnceLock::new();
        STDERR.get_or_init(|| StderrBatch::new(Box::new(std::io::stderr()), BATCH_WINDOW))
    }

    /// Appends `line`; an urgent line is written at once with everything
    /// before it.
    pub fn push(self: &Arc<Self>, line: &[u8], urgent: bool) {
        let mut pending = self.pending.lock();
        let first = pending.bytes.is_empty();
        pending.bytes.extend_from_slice(line);
        if urgent || pending.bytes.len() >= MAX_PENDING_BYTES {
            self.write_out(pending);
            return;
        }
        if first {
            if !pending.flusher_started {
                pending.flusher_started = self.start_flusher();
                if !pending.flusher_started {
                    // No thread to be had: write as we go.
                    self.write_out(pending);
                    return;
                }
            }
            self.first_line.notify_one();
        }
    }

    /// Writes every pending line now.
    pub fn flush(&self) {
        self.write_out(self.pending.lock());
    }

    /// Takes the pending bytes and writes them, holding the output from
    /// before the pending lock is let go (so no later batch overtakes).
    fn write_out(&self, mut pending: parking_lot::MutexGuard<'_, Pending>) {
        if pending.bytes.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut pending.bytes);
        let mut output = self.output.lock();
        drop(pending);
        let _ = output.write_all(&batch).and_then(|()| output.flush());
        drop(output);
        // The emptied buffer serves the next batch, unless a burst grew it.
        if batch.capacity() <= MAX_PENDING_BYTES * 2 {
            let mut pending = self.pending.lock();
            if pending.bytes.capacity() == 0 {
                let mut batch = batch;
                batch.clear();
                pending.bytes = batch;
            }
        }
    }

    fn start_flusher(self: &Arc<Self>) -> bool {
        let batch = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("log-flusher".into())
            .spawn(move || loop {
                let Some(strong) = batch.upgrade() else { return };
                {
                    let mut pending = strong.pending.lock();
                    while pending.bytes.is_empty() {
                        // Wakes now and then to notice the batch writer gone.
                        strong.first_line.wait_for(&mut pending, Duration::from_secs(5));
                        if pending.bytes.is_empty() && Arc::strong_count(&strong) == 1 {
                            return;
                        }
                    }
                }
                std::thread::sleep(strong.window);
                strong.flush();
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output tests can read, counting its writes.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let mut inner = self.0.lock();
            inner.0.extend_from_slice(bytes);
            inner.1 += 1;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().0.clone()).unwrap()
        }
        fn writes(&self) -> usize {
            self.0.lock().1
        }
    }

    fn eventually(condition: impl Fn() -> bool) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if condition() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        condition()
    }

    #[test]
    fn lines_arrive_together_after_the_window_in_their_order() {
        let output = Shared::default();
        let batch = StderrBatch::new(Box::new(output.clone()), Duration::from_millis(50));
        for index in 0..100 {
            batch.push(format!("line {index}\n").as_bytes(), false);
        }
        let expected: String = (0..100).map(|index| format!("line {index}\n")).collect();
        assert!(eventually(|| output.text() == expected), "{}", output.text());
        assert_eq!(output.writes(), 1, "one write for the batch");
        // A later line makes a batch of its own, written by the flusher too.
        batch.push(b"later\n", false);
        assert!(eventually(|| output.text().ends_with("later\n")));
        assert_eq!(output.writes(), 2);
    }

    #[test]
    fn an_urgent_line_goes_out_at_once_after_the_lines_before_it() {
        let output = Shared::default();
        let batch = StderrBatch::new(Box::new(output.clone()), Duration::from_secs(3600));
        batch.push(b"info\n", false);
        assert_eq!(output.text(), "", "waits for its window");
        batch.push(b"warning\n", true);
        assert_eq!(output.text(), "info\nwarning\n");
        batch.push(b"pending\n", false);
        batch.flush();
        assert_eq!(output.text(), "info\nwarning\npending\n");
        batch.flush();
        assert_eq!(output.writes(), 2, "nothing pending, nothing written");
    }

    #[test]
    fn a_full_buffer_is_written_by_the_thread_that_filled_it() {
        let output = Shared::default();
        let batch = StderrBatch::new(Box::new(output.clone()), Duration::from_secs(3600));
        let line = vec![b'x'; 1000];
        for _ in 0..(MAX_PENDING_BYTES / 1000) {
            batch.push(&line, false);
        }
        assert_eq!(output.writes(), 0);
        batch.push(&line, false);
        assert_eq!(output.writes(), 1);
        assert_eq!(output.text().len(), (MAX_PENDING_BYTES / 1000 + 1) * 1000);
        assert_eq!(batch.pending.lock().bytes.len(), 0);
    }

    #[test]
    fn lines_from_many_threads_at_once_all_arrive_whole() {
        let output = Shared::default();
        let batch = StderrBatch::new(Box::new(output.clone()), Duration::from_millis(1));
        let threads: Vec<_> = (0..8)
            .map(|thread| {
                let batch = batch.clone();
                std::thread::spawn(move || {
                    for index in 0..2000 {
                        batch.push(format!("{thread}:{index}\n").as_bytes(), index % 500 == 0);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        batch.flush();
        let text = output.text();
        assert_eq!(text.lines().count(), 16_000);
        for thread in 0..8 {
            let numbers: Vec<usize> = text
                .lines()
                .filter_map(|line| line.strip_prefix(&format!("{thread}:")))
                .map(|number| number.parse().unwrap())
                .collect();
            assert_eq!(numbers, (0..2000).collect::<Vec<_>>(), "thread {thread}'s lines in order");
        }
    }
}
