//! Durability behind the SQLite writer: the disk flush of one batch overlaps the next batch.
//!
//! Why: with `synchronous=FULL` SQLite's `COMMIT` waits for the WAL's fsync, and so did every
//! request queued for the writer; checkpoints (copying the WAL into the database file, with
//! two more fsyncs) ran inside a commit as well. Measured on a 2-core machine: a third of the
//! writer's time per creation was that waiting. Here the writer's connection commits with
//! `synchronous=NORMAL` — its `COMMIT` writes the batch's WAL frames and returns — and hands
//! the batch's requests to the sync thread, which makes the WAL durable (`fdatasync`) and only
//! then answers them, while the writer already runs the next batch ("flush pipelining", as in
//! Aether, VLDB 2010). A checkpoint thread copies the WAL into the database in the background.
//!
//! An acknowledged write is exactly as durable as with `synchronous=FULL`: its frames, and
//! every frame before them, reached the disk before its answer was sent. The difference is
//! that other requests may read a write a moment before it is durable. Whatever they write
//! because of it is committed after it and answered after a later sync, which covers both; a
//! power cut in between loses the unanswered write and nothing that was answered.
//!
//! A failed sync leaves the data in an unknown state (the kernel may have dropped the pages):
//! the writer refuses every write from then on, as PostgreSQL stops on a failed WAL flush.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

/// How a request learns that its write is durable (or why it is not).
pub(crate) type Answer = oneshot::Sender<Result<(), String>>;

/// The message for a write whose durability is unknown.
pub(crate) const SYNC_FAILED: &str = "数据库写入磁盘失败，写入已停止，请检查磁盘后重启服务";

/// Least time between two background checkpoints (each costs two fsyncs).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// The sync and checkpoint threads of one SQLite writer.
#[derive(Debug)]
pub(crate) struct Durable {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    /// The database file; its WAL is this path with `-wal`.
    db: PathBuf,
    state: Mutex<State>,
    wake: Condvar,
    /// A sync failed: nothing may be written any more.
    poisoned: AtomicBool,
    /// fsyncs of the WAL.
    syncs: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    /// Requests whose batch was committed and who wait for the disk.
    waiting: Vec<Answer>,
    /// Frames were written since the last checkpoint.
    dirty: bool,
    closing: bool,
}

impl Durable {
    /// Starts the threads for the database at `db`.
    pub(crate) fn start(db: PathBuf) -> Durable {
        let shared = Arc::new(Shared {
            db,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            poisoned: AtomicBool::new(false),
            syncs: AtomicU64::new(0),
        });
        let (s, c) = (shared.clone(), shared.clone());
        let threads = vec![
            std::thread::Builder::new().name("linli-wal-sync".into()).spawn(move || s.sync_loop()).expect("thread"),
            std::thread::Builder::new().name("linli-checkpoint".into()).spawn(move || c.checkpoint_loop()).expect("thread"),
        ];
        Durable { shared, threads: Mutex::new(threads) }
    }

    /// Answers `answers` once everything committed so far is on disk.
    pub(crate) fn after_commit(&self, answers: Vec<Answer>) {
        let mut st = self.shared.state.lock().expect("durable state");
        st.waiting.extend(answers);
        st.dirty = true;
        self.shared.wake.notify_all();
    }

    /// A sync failed earlier: writes must be refused.
    pub(crate) fn poisoned(&self) -> bool {
        self.shared.poisoned.load(Ordering::SeqCst)
    }

    /// WAL fsyncs so far.
    pub(crate) fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    /// Answers whoever still waits and stops the threads (before the writer's connection
    /// closes, which checkpoints the rest).
    pub(crate) fn close(&self) {
        self.shared.state.lock().expect("durable state").closing = true;
        self.shared.wake.notify_all();
        for t in self.threads.lock().expect("durable threads").drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Durable {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    fn wal(&self) -> PathBuf {
        let mut p = self.db.clone().into_os_string();
        p.push("-wal");
        p.into()
    }

    fn sync_loop(&self) {
        loop {
            let batch = {
                let mut st = self.state.lock().expect("durable state");
                while st.waiting.is_empty() && !st.closing {
                    st = self.wake.wait(st).expect("durable state");
                }
                if st.waiting.is_empty() {
                    return;
                }
                std::mem::take(&mut st.waiting)
            };
            // Everything in `batch` was committed before it was queued, so its frames are in
            // the file now; opening the WAL by name each time follows SQLite if it recreated it.
            let res = std::fs::File::open(self.wal()).and_then(|f| f.sync_data());
            self.syncs.fetch_add(1, Ordering::Relaxed);
            let answer = match res {
                Ok(()) if !self.poisoned.load(Ordering::SeqCst) => Ok(()),
                Ok(()) => Err(SYNC_FAILED.to_string()),
                Err(e) => {
                    tracing::error!(error = %e, "WAL fsync failed; writes are refused until restart");
                    self.poisoned.store(true, Ordering::SeqCst);
                    Err(SYNC_FAILED.to_string())
                }
            };
            for a in batch {
                let _ = a.send(answer.clone());
            }
        }
    }

    /// Copies committed frames into the database file while the writer goes on (a passive
    /// checkpoint takes no lock the writer needs). The writer's own automatic checkpoint
    /// stays as a backstop: under constant load only a checkpoint it runs between its own
    /// batches can finish the WAL, which then starts again from the beginning.
    fn checkpoint_loop(&self) {
        let conn = match super::lite::open_checkpointer(&self.db.to_string_lossy()) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "no background checkpoints: the writer checkpoints alone");
                return;
            }
        };
        loop {
            {
                let mut st = self.state.lock().expect("durable state");
                while !st.dirty && !st.closing {
                    st = self.wake.wait(st).expect("durable state");
                }
                if st.closing {
                    return;
                }
                st.dirty = false;
            }
            // (busy, WAL frames, frames in the database file). Until all are copied, every
            // page a reader reads is first looked up in the WAL's index: a checkpoint that a
            // reader's older snapshot held back is tried again, even when nothing is written.
            let res = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            });
            let done = matches!(res, Ok((0, log, copied)) if copied >= log);
            // A pause between checkpoints, cut short by closing.
            let mut st = self.state.lock().expect("durable state");
            st.dirty |= !done;
            drop(self.wake.wait_timeout_while(st, CHECKPOINT_EVERY, |s| !s.closing).expect("durable state"));
        }
    }
}
