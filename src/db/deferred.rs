//! Work a logical transaction leaves for the end of its batch.
//!
//! Why: a few rows are touched by nearly every write — the audit chain's head, the rollup and
//! cube cells of a busy day and county. Written by each request, they cost every request a
//! statement (on PostgreSQL a round trip) and, on PostgreSQL, stay locked from the first
//! request of a batch to its commit, so a second node's writer queues behind the whole batch.
//! Instead a request records what it would add ([`Deferred`], merged per kind as requests are
//! released into the batch) and the writer writes it all in a few statements just before the
//! physical `COMMIT`: the same transaction, so nothing is ever committed without it.
//!
//! A request rolled back takes its deferred work with it; a failure while writing the merged
//! work fails the whole batch (as a failed `COMMIT` does). A deferred kind is written after
//! every statement of the batch's requests, so whoever reads those tables inside a
//! transaction must not expect its own additions there yet (see [`super::Tx::defer`]).

use std::any::Any;
use std::future::Future;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::exec::forward_executor;
use super::link::Link;

/// One kind of work left for the end of a batch.
pub trait Deferred: Default + Send + 'static {
    /// Place among the kinds at the end of a batch: every writer (every node) takes the shared
    /// rows in the same order, so two nodes cannot deadlock on them.
    const ORDER: u8;

    /// Folds the work of a transaction released later into this one.
    fn absorb(&mut self, later: Self);

    /// Writes the work: the batch's last statements before its commit.
    fn write(self, at: &mut Finish<'_>) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

/// Where deferred work is written: the batch's open transaction, outside any request's
/// savepoint. sqlx queries run on `&mut Finish` as on a connection.
pub struct Finish<'a>(pub(super) &'a mut Link);

impl std::fmt::Debug for Finish<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Finish")
    }
}

forward_executor!(Finish<'b>, 'b, |f| f.0.conn());

trait Erased: Send {
    fn order(&self) -> u8;
    fn as_any(&mut self) -> &mut dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
    fn absorb_erased(&mut self, later: Box<dyn Erased>);
    fn write_erased<'a>(self: Box<Self>, at: &'a mut Finish<'_>) -> BoxFuture<'a, Result<(), sqlx::Error>>;
}

impl<T: Deferred> Erased for T {
    fn order(&self) -> u8 {
        T::ORDER
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn absorb_erased(&mut self, later: Box<dyn Erased>) {
        if let Ok(later) = later.into_any().downcast::<T>() {
            self.absorb(*later);
        }
    }

    fn write_erased<'a>(self: Box<Self>, at: &'a mut Finish<'_>) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        (*self).write(at).boxed()
    }
}

/// The deferred work of a transaction or of a batch: at most one value per kind, in write order.
#[derive(Default)]
pub(crate) struct Pending(Vec<Box<dyn Erased>>);

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pending({} kinds)", self.0.len())
    }
}

impl Pending {
    /// The value of kind `T`, created empty on first use.
    pub(crate) fn get<T: Deferred>(&mut self) -> &mut T {
        let at = match self.0.iter().position(|e| e.order() == T::ORDER) {
            Some(i) => i,
            None => {
                let i = self.0.partition_point(|e| e.order() < T::ORDER);
                self.0.insert(i, Box::new(T::default()));
                i
            }
        };
        self.0[at].as_any().downcast_mut::<T>().expect("one kind per ORDER")
    }

    /// The value of kind `T`, if there is one.
    pub(crate) fn find<T: Deferred>(&mut self) -> Option<&T> {
        let e = self.0.iter_mut().find(|e| e.order() == T::ORDER)?;
        e.as_any().downcast_ref::<T>()
    }

    /// Folds the work of a transaction released later into this one.
    pub(crate) fn absorb(&mut self, later: Pending) {
        for e in later.0 {
            match self.0.iter().position(|m| m.order() == e.order()) {
                Some(i) => self.0[i].absorb_erased(e),
                None => {
                    let i = self.0.partition_point(|m| m.order() < e.order());
                    self.0.insert(i, e);
                }
            }
        }
    }

    /// True when nothing is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Writes every kind, in order.
    pub(crate) async fn write(self, link: &mut Link) -> Result<(), sqlx::Error> {
        let mut at = Finish(link);
        for e in self.0 {
            e.write_erased(&mut at).await?;
        }
        Ok(())
    }
}
