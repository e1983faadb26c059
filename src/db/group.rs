//! Group commit: one writer connection, many logical transactions per physical commit.
//!
//! Why: a durable commit costs an fsync (SQLite `synchronous=FULL`, PostgreSQL's WAL flush),
//! and one fsync per request caps writes at a few hundred per second. Every write in linli
//! already goes through one writer (SQLite allows only one; on PostgreSQL the `audit_head` row
//! serialises writers anyway), so the writer gathers the requests that queue up behind it into
//! one physical transaction. Each request runs inside its own `SAVEPOINT`: a request that fails
//! is rolled back alone and its neighbours are not touched. A request's `commit()` returns only
//! after the physical `COMMIT` that contains it has succeeded, so an acknowledged write is as
//! durable as before.
//!
//! The batch is committed by the last request of a burst: when a request finishes and nobody is
//! waiting for the writer (or the batch is full), it commits at once; otherwise it parks and the
//! next one carries on. A parked request that hears nothing for a few milliseconds (its
//! successor was cancelled) commits the batch itself, and a request dropped half-way hands the
//! writer to a task that rolls its savepoint back and commits the rest.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

/// Logical transactions per physical commit, at most (bounds the latency a burst adds).
const MAX_BATCH: usize = 64;
/// How long a parked request trusts its successor before committing the batch itself.
const PARK_PATIENCE: Duration = Duration::from_millis(3);

/// The writer shared by every clone of [`super::Db`].
#[derive(Debug)]
pub(crate) struct Writer {
    pool: AnyPool,
    begin_sql: &'static str,
    batch: Arc<Mutex<Batch>>,
    waiting: AtomicUsize,
    /// Logical transactions committed.
    logical: AtomicU64,
    /// Physical commits that carried them.
    physical: AtomicU64,
}

#[derive(Debug, Default)]
struct Batch {
    tx: Option<Transaction<'static, Any>>,
    /// Requests whose savepoint was released and who wait for the physical commit.
    parked: Vec<oneshot::Sender<Result<(), String>>>,
    /// Logical transactions released into the open batch.
    ops: usize,
    /// A savepoint is open: its owner has not released it (yet, or ever).
    open: bool,
}

/// Counts a request waiting for the writer. If the request is cancelled while waiting, the
/// batch it was expected to carry on is committed by a task instead.
struct Waiting<'a> {
    writer: &'a Arc<Writer>,
    acquired: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.writer.waiting.fetch_sub(1, Ordering::SeqCst);
        if !self.acquired {
            finish_idle(self.writer.clone());
        }
    }
}

/// Commits the batch once the writer is free, unless someone else is queued to carry it on.
fn finish_idle(w: Arc<Writer>) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let mut b = w.batch.clone().lock_owned().await;
            if w.waiting.load(Ordering::SeqCst) == 0 && (b.tx.is_some() || !b.parked.is_empty()) {
                let _ = flush(&w, &mut b).await;
            }
        });
    }
}

impl Writer {
    pub(crate) fn new(pool: AnyPool, begin_sql: &'static str) -> Writer {
        Writer {
            pool,
            begin_sql,
            batch: Arc::default(),
            waiting: AtomicUsize::new(0),
            logical: AtomicU64::new(0),
            physical: AtomicU64::new(0),
        }
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// (logical transactions committed, physical commits) since start.
    pub(crate) fn stats(&self) -> (u64, u64) {
        (self.logical.load(Ordering::Relaxed), self.physical.load(Ordering::Relaxed))
    }

    /// Waits for the writer and opens a logical transaction (a savepoint in the batch).
    pub(crate) async fn begin(self: &Arc<Writer>) -> Result<Tx, sqlx::Error> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let guard = {
            let mut w = Waiting { writer: self, acquired: false };
            let g = self.batch.clone().lock_owned().await;
            w.acquired = true;
            g
        };
        let mut tx = Tx { guard: Some(guard), writer: self.clone() };
        let b = tx.guard.as_mut().expect("just set");
        settle(b).await;
        if b.tx.is_none() {
            b.tx = Some(self.pool.begin_with(self.begin_sql).await?);
        }
        b.tx.as_mut().expect("opened").execute("SAVEPOINT linli_op").await?;
        b.open = true;
        Ok(tx)
    }
}

/// Rolls back a savepoint its owner abandoned. If even that fails the batch is lost: the
/// physical transaction is rolled back and every parked request is told so.
async fn settle(b: &mut Batch) {
    if !b.open {
        return;
    }
    b.open = false;
    let Some(tx) = b.tx.as_mut() else { return };
    let ok = tx.execute("ROLLBACK TO SAVEPOINT linli_op").await.is_ok() && tx.execute("RELEASE SAVEPOINT linli_op").await.is_ok();
    if !ok {
        tracing::error!("group commit: savepoint rollback failed, abandoning the batch");
        b.tx = None;
        b.ops = 0;
        for p in b.parked.drain(..) {
            let _ = p.send(Err("数据库写入失败，请重试".into()));
        }
    }
}

/// Commits the physical transaction and answers every parked request.
async fn flush(w: &Writer, b: &mut Batch) -> Result<(), sqlx::Error> {
    settle(b).await;
    let res = match b.tx.take() {
        Some(tx) => tx.commit().await,
        None => Ok(()),
    };
    if res.is_ok() && b.ops > 0 {
        w.logical.fetch_add(b.ops as u64, Ordering::Relaxed);
        w.physical.fetch_add(1, Ordering::Relaxed);
    }
    b.ops = 0;
    let shared = res.as_ref().map(|_| ()).map_err(|e| e.to_string());
    for p in b.parked.drain(..) {
        let _ = p.send(shared.clone());
    }
    res
}

/// A logical write transaction. Statements run on it through `&mut *tx` (or `&mut **tx`
/// behind a `&mut Tx`); `commit` makes it durable; dropping it rolls it back.
#[derive(Debug)]
pub struct Tx {
    guard: Option<OwnedMutexGuard<Batch>>,
    writer: Arc<Writer>,
}

impl Tx {
    /// Releases the savepoint and returns once a physical commit containing it succeeded.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        let mut b = self.guard.take().expect("a live transaction holds the writer");
        if let Err(e) = b.tx.as_mut().expect("open").execute("RELEASE SAVEPOINT linli_op").await {
            self.guard = Some(b);
            return Err(e);
        }
        b.open = false;
        b.ops += 1;
        if self.writer.waiting.load(Ordering::SeqCst) == 0 || b.ops >= MAX_BATCH {
            return flush(&self.writer, &mut b).await;
        }
        let (send, mut recv) = oneshot::channel();
        b.parked.push(send);
        drop(b);
        let mut heal = Heal(Some(self.writer.clone()));
        loop {
            tokio::select! {
                r = &mut recv => {
                    heal.0 = None;
                    return match r {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(msg)) => Err(sqlx::Error::Protocol(msg)),
                        Err(_) => Err(sqlx::Error::Protocol("数据库写入失败，请重试".into())),
                    };
                }
                _ = tokio::time::sleep(PARK_PATIENCE) => {
                    // The writer is idle with us still parked: our successor went away.
                    if let Ok(mut b) = self.writer.batch.clone().try_lock_owned() {
                        let _ = flush(&self.writer, &mut b).await;
                    }
                }
            }
        }
    }
}

/// While a parked request waits, dropping it (a cancelled request) must not strand the batch.
struct Heal(Option<Arc<Writer>>);

impl Drop for Heal {
    fn drop(&mut self) {
        if let Some(w) = self.0.take() {
            finish_idle(w);
        }
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        // Abandoned with its savepoint open (an error, or a cancelled request). If someone is
        // queued for the writer, they roll the savepoint back first thing and carry the batch
        // on; otherwise a task does it and commits what others released.
        if self.guard.take().is_some() && self.writer.waiting.load(Ordering::SeqCst) == 0 {
            finish_idle(self.writer.clone());
        }
    }
}

impl Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        self.guard.as_ref().and_then(|b| b.tx.as_deref()).expect("a live transaction")
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.guard.as_mut().and_then(|b| b.tx.as_deref_mut()).expect("a live transaction")
    }
}
