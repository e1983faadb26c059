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
//! On SQLite the commit does not wait for the disk: the batch's requests are answered by
//! [`super::durable`] once the WAL is synced, while the writer runs the next batch.
//!
//! The batch is committed by the last request of a burst: when a request finishes and nobody is
//! waiting for the writer (or the batch is full), it commits at once; otherwise it parks and the
//! next one carries on. A parked request that hears nothing for a few milliseconds (its
//! successor was cancelled) commits the batch itself, and a request dropped half-way hands the
//! writer to a task that rolls its savepoint back and commits the rest.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use super::cache::RowCache;
use super::deferred::{Deferred, Pending};
use super::durable::{self, Durable};
use super::link::Link;
use super::lite;

/// What every request of a lost batch is told (the cause is logged).
pub(super) const WRITE_FAILED: &str = "数据库写入失败，请重试";

/// Logical transactions per physical commit, at most (bounds the latency a burst adds).
const MAX_BATCH: usize = 64;
/// How long a parked request trusts its successor before committing the batch itself.
const PARK_PATIENCE: Duration = Duration::from_millis(3);

/// The writer shared by every clone of [`super::Db`].
#[derive(Debug)]
pub(crate) struct Writer {
    /// On SQLite: who makes committed batches durable before they are answered (first, so
    /// that its threads stop before the connection closes).
    durable: Option<Durable>,
    batch: Arc<Mutex<Batch>>,
    waiting: AtomicUsize,
    /// Logical transactions committed.
    logical: AtomicU64,
    /// Physical commits that carried them.
    physical: AtomicU64,
    /// Owed releases sent with the next request's first statement (see [`super::carry`]).
    pub(super) carried: AtomicU64,
    /// Told of every case version this writer makes (see [`super::cache`]).
    case_cache: Arc<RowCache>,
}

#[derive(Debug)]
pub(super) struct Batch {
    pub(super) link: Link,
    /// Requests whose savepoint was released and who wait for the physical commit.
    parked: Vec<oneshot::Sender<Result<(), String>>>,
    /// Logical transactions released into the open batch.
    ops: usize,
    /// Their deferred work, written just before the commit.
    pending: Pending,
    /// A savepoint is open: its owner has not released it (yet, or ever).
    open: bool,
    /// PostgreSQL: the open savepoint holds the work of requests already released into the
    /// batch; its release and a new savepoint are owed before the next statement of anyone
    /// else. They go with that statement, in one message (see [`super::carry`]), or a commit
    /// ends them: a request costs one round trip less.
    pub(super) owed: bool,
    /// A savepoint is open for the next request: opened with the previous one's release in the
    /// same statement (on PostgreSQL one round trip less per request), or left by a previous
    /// one that ran no statement under it (see `used`). Nothing runs under it until its owner
    /// takes it, so it is always empty.
    primed: bool,
    /// A statement ran under the open savepoint since it was opened. One that none ran under
    /// is as good as new: it serves the next request without a release and a new savepoint,
    /// and the commit ends it (a request whose work is all deferred costs no round trip).
    pub(super) used: bool,
    /// Cases were added or changed (1) or deleted (2) in the batch: the case lists kept in
    /// memory (and after a deletion every case) are forgotten once it commits, before anyone
    /// is answered (see [`super::cache`]).
    touched: u8,
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
            if w.waiting.load(Ordering::SeqCst) == 0 && (b.link.is_open() || !b.parked.is_empty()) {
                let _ = flush(&w, &mut b).await;
            }
        });
    }
}

impl Writer {
    /// A writer on PostgreSQL, on a connection of its own from the shared pool (see
    /// [`Link`]; its commit is durable when it returns).
    pub(crate) fn pg(pool: AnyPool, case_cache: Arc<RowCache>) -> Writer {
        Writer::new(Link::pg(pool), None, case_cache)
    }

    /// A writer on SQLite, with a connection of its own driven in place (opened by
    /// [`lite::open`], whose commits leave the sync to [`Durable`]).
    pub(crate) fn sqlite(conn: rusqlite::Connection, path: &str, case_cache: Arc<RowCache>) -> Writer {
        Writer::new(Link::Lite { conn: Some(conn), open: false }, Some(Durable::start(path.into())), case_cache)
    }

    fn new(link: Link, durable: Option<Durable>, case_cache: Arc<RowCache>) -> Writer {
        let batch = Batch {
            link,
            parked: Vec::new(),
            ops: 0,
            pending: Pending::default(),
            open: false,
            owed: false,
            primed: false,
            used: false,
            touched: 0,
        };
        Writer {
            batch: Arc::new(Mutex::new(batch)),
            waiting: AtomicUsize::new(0),
            logical: AtomicU64::new(0),
            physical: AtomicU64::new(0),
            carried: AtomicU64::new(0),
            durable,
            case_cache,
        }
    }

    /// Commits what is pending and closes an SQLite writer's connection (its WAL is
    /// checkpointed when the last connection closes).
    pub(crate) async fn close(&self) {
        let mut b = self.batch.lock().await;
        let _ = flush(self, &mut b).await;
        if let Some(d) = &self.durable {
            d.close();
        }
        b.link.close().await;
    }

    /// Runs a setting on an SQLite writer's connection between batches (nothing on
    /// PostgreSQL).
    pub(crate) async fn setting(&self, sql: &str) -> Result<(), sqlx::Error> {
        let mut b = self.batch.lock().await;
        flush(self, &mut b).await?;
        match &b.link {
            Link::Lite { conn, .. } => lite::batch(lite::live(conn)?, sql),
            Link::Pg { .. } => Ok(()),
        }
    }

    /// (logical transactions committed, physical commits) since start.
    pub(crate) fn stats(&self) -> (u64, u64) {
        (self.logical.load(Ordering::Relaxed), self.physical.load(Ordering::Relaxed))
    }

    /// Owed releases carried by a statement since start.
    pub(crate) fn carried(&self) -> u64 {
        self.carried.load(Ordering::Relaxed)
    }

    /// Transactions waiting for the writer at this moment.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// WAL syncs since start (SQLite; none on PostgreSQL, whose commit syncs).
    pub(crate) fn syncs(&self) -> u64 {
        self.durable.as_ref().map_or(0, Durable::syncs)
    }

    /// Waits for the writer and opens a logical transaction (a savepoint in the batch). With
    /// `after_deferred`, the work deferred by the batch's earlier transactions is written first
    /// (for a transaction that deletes or recounts what they deferred).
    pub(crate) async fn begin(self: &Arc<Writer>, after_deferred: bool) -> Result<Tx, sqlx::Error> {
        if self.durable.as_ref().is_some_and(Durable::poisoned) {
            return Err(sqlx::Error::Protocol(durable::SYNC_FAILED.into()));
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let guard = {
            let mut w = Waiting { writer: self, acquired: false };
            let g = self.batch.clone().lock_owned().await;
            w.acquired = true;
            g
        };
        let mut tx = Tx { guard: Some(guard), writer: self.clone(), pending: Pending::default(), lent: false };
        let b = tx.guard.as_mut().expect("just set");
        if after_deferred || b.open {
            // Work to undo or to write first: not to be cut off half-way.
            let res = tx.lend(move |b| Box::pin(prepare(b, after_deferred))).await;
            return res.map(|()| tx);
        }
        if std::mem::take(&mut b.primed) {
            b.open = true;
            return Ok(tx);
        }
        // Opening a savepoint (and the transaction) can be cut off harmlessly: in place.
        prepare(b, false).await?;
        Ok(tx)
    }
}

/// Opens the savepoint of the request that holds the writer, after undoing what an
/// abandoned one left (and writing the batch's deferred work, if asked).
async fn prepare(b: &mut Batch, after_deferred: bool) -> Result<(), sqlx::Error> {
    settle(b).await;
    if after_deferred {
        write_deferred(b).await?;
    }
    if b.link.is_open() {
        b.link.exec("SAVEPOINT linli_op").await?;
    } else {
        b.link.open("SAVEPOINT linli_op").await?;
    }
    b.open = true;
    b.used = false;
    Ok(())
}

/// Runs `f` on the batch to its end even if the request is dropped meanwhile: on PostgreSQL
/// a statement may be in flight, and the batch's bookkeeping (whose savepoint is open, what
/// work is deferred) must follow what reached the server, or a released request could commit
/// without its deferred work. (On SQLite the writer's statements complete in place, without
/// suspending, so there is nothing to protect and no task to pay for.)
pub(super) async fn whole<T: Send + 'static>(
    mut b: OwnedMutexGuard<Batch>,
    f: impl for<'a> FnOnce(&'a mut Batch) -> futures_util::future::BoxFuture<'a, T> + Send + 'static,
) -> (OwnedMutexGuard<Batch>, T) {
    if matches!(b.link, Link::Lite { .. }) {
        let t = f(&mut b).await;
        return (b, t);
    }
    let task = tokio::spawn(async move {
        let t = f(&mut b).await;
        (b, t)
    });
    match task.await {
        Ok(done) => done,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Cancelled: the runtime is shutting down, and this future is dropped with it.
        Err(_) => std::future::pending().await,
    }
}

/// Rolls back a savepoint its owner abandoned, or releases one primed for nobody. If even
/// that fails the batch is lost: the physical transaction is rolled back and every parked
/// request is told so.
async fn settle(b: &mut Batch) {
    // Not `||`: both flags are cleared.
    if std::mem::take(&mut b.owed) | std::mem::take(&mut b.primed) {
        // Nothing of its holder's ran under the open savepoint, if it has one: it is empty or
        // holds released work only, which is kept.
        b.open = false;
        if b.link.is_open()
            && let Err(e) = b.link.exec("RELEASE SAVEPOINT linli_op").await
        {
            lose(b, "releasing a savepoint", Some(&e));
        }
        return;
    }
    if !b.open {
        return;
    }
    b.open = false;
    if !b.link.is_open() {
        return;
    }
    let res = match b.link.exec("ROLLBACK TO SAVEPOINT linli_op").await {
        Ok(()) => b.link.exec("RELEASE SAVEPOINT linli_op").await,
        failed => failed,
    };
    if let Err(e) = res {
        lose(b, "a savepoint rollback", Some(&e));
    }
}

/// Rolls the physical transaction back after `what` failed (with `cause`, when known), logs
/// it once, and tells every parked request.
pub(super) fn lose(b: &mut Batch, what: &str, cause: Option<&sqlx::Error>) {
    match cause {
        Some(e) => tracing::error!(error = %e, "group commit: {what} failed, abandoning the batch"),
        None => tracing::error!("group commit: {what} failed, abandoning the batch"),
    }
    b.link.abandon();
    b.ops = 0;
    b.touched = 0;
    b.pending = Pending::default();
    b.primed = false;
    b.owed = false;
    for p in b.parked.drain(..) {
        let _ = p.send(Err(WRITE_FAILED.into()));
    }
}

/// Commits the physical transaction and answers every parked request: at once on
/// PostgreSQL or when the commit failed, after the WAL's sync on SQLite.
async fn flush(w: &Writer, b: &mut Batch) -> Result<(), sqlx::Error> {
    if b.primed && !b.used {
        // Empty, or holding released work only: the commit ends it, no need to release it.
        b.primed = false;
        b.owed = false;
    }
    settle(b).await;
    write_deferred(b).await?;
    let res = b.link.commit().await;
    match (std::mem::take(&mut b.touched), &res) {
        (1, Ok(())) => w.case_cache.lists_moved(),
        (2, Ok(())) => w.case_cache.forget_all(),
        _ => {}
    }
    if res.is_ok() && b.ops > 0 {
        w.logical.fetch_add(b.ops as u64, Ordering::Relaxed);
        w.physical.fetch_add(1, Ordering::Relaxed);
    }
    b.ops = 0;
    match (&res, &w.durable) {
        (Ok(()), Some(d)) => d.after_commit(std::mem::take(&mut b.parked)),
        _ => {
            let shared = res.as_ref().map(|_| ()).map_err(|e| e.to_string());
            for p in b.parked.drain(..) {
                let _ = p.send(shared.clone());
            }
        }
    }
    res
}

/// Writes the batch's deferred work (between savepoints); a failure loses the batch.
async fn write_deferred(b: &mut Batch) -> Result<(), sqlx::Error> {
    if b.pending.is_empty() {
        return Ok(());
    }
    let pending = std::mem::take(&mut b.pending);
    if let Err(e) = pending.write(&mut b.link).await {
        lose(b, "writing the batch's deferred work", Some(&e));
        return Err(e);
    }
    Ok(())
}

/// A logical write transaction. sqlx queries run on it as on a connection (`&mut tx`, or
/// `&mut *tx` behind a `&mut Tx`); `commit` makes it durable; dropping it rolls it back.
#[derive(Debug)]
pub struct Tx {
    guard: Option<OwnedMutexGuard<Batch>>,
    writer: Arc<Writer>,
    /// Deferred work (see [`super::deferred`]): joins the batch's when the savepoint is
    /// released, dropped with the transaction otherwise.
    pending: Pending,
    /// The writer is lent to a task running one of this transaction's statements to its end
    /// (see [`super::carry`]); if the transaction is dropped meanwhile, it is rolled back
    /// once the task is done.
    lent: bool,
}

impl Tx {
    /// Releases the savepoint and returns once a physical commit containing it succeeded.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        // Without the writer only if a statement of it was dropped half-way (then it can only
        // be rolled back, once that statement has run to its end).
        let Some(b) = self.guard.take() else {
            return Err(sqlx::Error::Protocol(WRITE_FAILED.into()));
        };
        // Answered like every request of the batch: after the commit (and the sync) that
        // carries it, whoever commits.
        let (send, mut recv) = oneshot::channel();
        let (w, pending) = (self.writer.clone(), std::mem::take(&mut self.pending));
        let (b, res) = whole(b, move |b| Box::pin(release(w, b, pending, send))).await;
        if let Err(e) = res {
            self.guard = Some(b);
            return Err(e);
        }
        drop(b);
        let mut heal = Heal(Some(self.writer.clone()));
        loop {
            tokio::select! {
                r = &mut recv => {
                    heal.0 = None;
                    return match r {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(msg)) => Err(sqlx::Error::Protocol(msg)),
                        Err(_) => Err(sqlx::Error::Protocol(WRITE_FAILED.into())),
                    };
                }
                _ = tokio::time::sleep(PARK_PATIENCE) => {
                    // The writer is idle with us still parked: our successor went away.
                    if let Ok(b) = self.writer.batch.clone().try_lock_owned() {
                        let w = self.writer.clone();
                        whole(b, move |b| Box::pin(async move { drop(flush(&w, b).await) })).await;
                    }
                }
            }
        }
    }
}

/// Releases a request's savepoint into the batch with its deferred work and its answer, and
/// commits the batch unless someone is waiting to carry it on (then their savepoint is opened
/// in the same statement). An error here is the request's own: its savepoint is still open.
async fn release(
    w: Arc<Writer>,
    b: &mut Batch,
    pending: Pending,
    answer: oneshot::Sender<Result<(), String>>,
) -> Result<(), sqlx::Error> {
    let carry_on = w.waiting.load(Ordering::SeqCst) > 0 && b.ops + 1 < MAX_BATCH;
    if b.used && matches!(b.link, Link::Pg { .. }) {
        // Owed: sent with the next statement, or ended by the commit.
        b.owed = true;
        b.used = false;
        b.primed = true;
    } else if b.used {
        let sql = if carry_on { "RELEASE SAVEPOINT linli_op; SAVEPOINT linli_op" } else { "RELEASE SAVEPOINT linli_op" };
        b.link.exec(sql).await?;
        b.used = false;
        b.primed = carry_on;
    } else {
        // Nothing ran under it: it stays open, for the next request or for the commit.
        b.primed = true;
    }
    b.open = false;
    b.ops += 1;
    b.pending.absorb(pending);
    b.parked.push(answer);
    if !carry_on {
        // A failed commit answers every parked request, this one included.
        let _ = flush(&w, b).await;
    }
    Ok(())
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
        let held = self.guard.take().is_some() || self.lent;
        if held && self.writer.waiting.load(Ordering::SeqCst) == 0 {
            finish_idle(self.writer.clone());
        }
    }
}

impl Tx {
    /// This transaction's deferred work of kind `T` (see [`super::deferred`]), to add to. It
    /// is written at the end of the batch, after every statement of every request in it: a
    /// read inside a transaction does not see it yet.
    pub fn defer<T: Deferred>(&mut self) -> &mut T {
        self.pending.get::<T>()
    }

    /// The deferred work of kind `T` that the batch's released transactions left so far
    /// (none once it was written early, see [`super::Db::begin_after_deferred`]).
    pub(super) fn batch_deferred<T: Deferred>(&mut self) -> Option<&T> {
        self.batch().pending.find::<T>()
    }

    /// Where this transaction's statements go (sqlx queries, and [`super::bulk`]).
    pub(crate) fn conn(&mut self) -> super::exec::Conn<'_> {
        let b = self.batch();
        b.used = true;
        b.link.conn()
    }

    /// Requests waiting for the writer behind this one (likely to join its batch).
    pub(super) fn queued(&self) -> usize {
        self.writer.waiting()
    }

    /// Whether the writer is PostgreSQL's (for the few statements whose SQL differs).
    pub(super) fn on_postgres(&mut self) -> bool {
        matches!(self.batch().link, Link::Pg { .. })
    }

    /// The writer this transaction holds.
    pub(super) fn batch(&mut self) -> &mut Batch {
        self.guard.as_mut().expect("a live transaction holds the writer")
    }

    /// Lends the writer to `f`, run to its end even if this transaction is dropped meanwhile
    /// (see [`whole`]).
    pub(super) async fn lend<T: Send + 'static>(
        &mut self,
        f: impl for<'a> FnOnce(&'a mut Batch) -> futures_util::future::BoxFuture<'a, T> + Send + 'static,
    ) -> T {
        let b = self.guard.take().expect("a live transaction holds the writer");
        self.lent = true;
        let (b, t) = whole(b, f).await;
        self.guard = Some(b);
        self.lent = false;
        t
    }

    /// Case `id` now has `version` (or will, once this commits): copies of it read before
    /// are not to be served again (see [`super::cache`]).
    pub fn case_changed(&mut self, id: i64, version: i64) {
        self.writer.case_cache.changed(id, version);
        self.cases_moved();
    }

    /// Cases are added or deleted: the case lists kept in memory are forgotten once this
    /// commits (see [`super::cache`]).
    pub fn cases_moved(&mut self) {
        let b = self.batch();
        b.touched = b.touched.max(1);
    }

    /// Cases are deleted, or what every case shows changed (a category): every case page and
    /// list kept in memory is forgotten once this commits.
    pub fn forget_all_cases(&mut self) {
        self.batch().touched = 2;
    }

    /// The writer's count of owed releases carried by a statement.
    pub(super) fn carried(&self) -> &AtomicU64 {
        &self.writer.carried
    }
}
