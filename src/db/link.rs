//! The writer's connection and its physical transaction (see [`super::group`]).

use std::collections::HashMap;

use sqlx::{AnyConnection, AnyPool, Executor};

use super::exec::Conn;
use super::lite;

/// The writer's connection and its physical transaction.
pub(super) enum Link {
    /// PostgreSQL: a connection of the writer's own, taken from the pool once (again after
    /// it broke), its transactions begun and ended by hand. Held, not taken per batch: the
    /// statements it prepared by name stay valid (see [`super::carry`]).
    Pg {
        pool: AnyPool,
        conn: Option<AnyConnection>,
        open: bool,
        /// Statements prepared by name on `conn`: (text and argument types) → number.
        named: HashMap<String, u32>,
    },
    /// SQLite on the calling thread (see [`lite`]); `None` once closed. `open` is kept, not
    /// read from SQLite's autocommit state: a statement that fails hard (disk full) rolls the
    /// whole transaction back by itself, and the batch must then fail, not commit nothing.
    Lite { conn: Option<rusqlite::Connection>, open: bool },
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Link::Pg { .. } => "Link::Pg",
            Link::Lite { .. } => "Link::Lite",
        })
    }
}

impl Link {
    /// A PostgreSQL link, connecting on first use.
    pub(super) fn pg(pool: AnyPool) -> Link {
        Link::Pg { pool, conn: None, open: false, named: HashMap::new() }
    }

    pub(super) fn is_open(&self) -> bool {
        match self {
            Link::Pg { open, .. } | Link::Lite { open, .. } => *open,
        }
    }

    /// Opens the physical transaction and runs `then` (a statement without arguments) in it,
    /// in one message: on PostgreSQL one round trip for both. On SQLite `BEGIN IMMEDIATE`
    /// takes the write lock at once, so a transaction that reads before it writes cannot fail
    /// half-way with a stale snapshot (it may wait for another process's writer: off the async
    /// workers). If either fails, no transaction is left open.
    pub(super) async fn open(&mut self, then: &'static str) -> Result<(), sqlx::Error> {
        match self {
            Link::Pg { pool, conn, open, named } => {
                if conn.is_none() {
                    named.clear();
                    *conn = Some(pool.acquire().await?.detach());
                }
                let c = conn.as_mut().expect("just connected");
                // Dropping the connection ends whatever part of it the server ran.
                if let Err(e) = c.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!("BEGIN; {then}")))).await {
                    *conn = None;
                    return Err(e);
                }
                *open = true;
            }
            Link::Lite { conn, open } => {
                let c = lite::live(conn)?;
                blocking(|| lite::batch(c, "BEGIN IMMEDIATE"))?;
                if let Err(e) = lite::batch(c, then) {
                    roll_back(c);
                    return Err(e);
                }
                *open = true;
            }
        }
        Ok(())
    }

    /// Runs a statement without arguments inside the open transaction.
    pub(super) async fn exec(&mut self, sql: &'static str) -> Result<(), sqlx::Error> {
        match self {
            Link::Pg { conn: Some(c), open: true, .. } => c.execute(sql).await.map(|_| ()),
            Link::Pg { .. } => Err(sqlx::Error::WorkerCrashed),
            Link::Lite { conn, .. } => lite::batch(lite::live(conn)?, sql),
        }
    }

    /// Commits the physical transaction (if one is open); it is closed either way.
    pub(super) async fn commit(&mut self) -> Result<(), sqlx::Error> {
        match self {
            Link::Pg { conn, open, .. } => {
                if !std::mem::take(open) {
                    return Ok(());
                }
                let res = match conn.as_mut() {
                    Some(c) => c.execute("COMMIT").await.map(drop),
                    None => Err(sqlx::Error::WorkerCrashed),
                };
                if res.is_err() {
                    // Whatever state it is in, a new connection is certain.
                    *conn = None;
                }
                res
            }
            Link::Lite { conn, open } => {
                if !std::mem::take(open) {
                    return Ok(());
                }
                let c = lite::live(conn)?;
                // In place: the commit only hands the batch's pages to the WAL file (its fsync
                // and the checkpoints run on threads of their own, see `durable`), which costs
                // less than moving the async worker aside (`block_in_place`: 8 % fewer
                // creations/s). Only when the background checkpoints fall behind does a commit
                // checkpoint in place (`wal_autocheckpoint`), holding this worker meanwhile.
                let res = lite::batch(c, "COMMIT");
                if res.is_err() {
                    roll_back(c);
                }
                res
            }
        }
    }

    /// Rolls the physical transaction back. On PostgreSQL by closing the connection: the
    /// server rolls back and lets the locks go at once, without a round trip to wait for (a
    /// batch is abandoned rarely; the next one connects again).
    pub(super) fn abandon(&mut self) {
        match self {
            Link::Pg { conn, open, .. } => {
                if std::mem::take(open) {
                    *conn = None;
                }
            }
            Link::Lite { conn, open } => {
                if std::mem::take(open)
                    && let Some(c) = conn
                {
                    roll_back(c);
                }
            }
        }
    }

    /// The open transaction's connection, for sqlx queries.
    pub(super) fn conn(&mut self) -> Conn<'_> {
        match self {
            Link::Pg { conn, .. } => Conn::Sqlx(conn.as_mut().expect("a live transaction")),
            Link::Lite { conn, .. } => Conn::Lite { conn: lite::live(conn), overflow: None },
        }
    }

    /// Closes the connection (after the last batch).
    pub(super) async fn close(&mut self) {
        match self {
            Link::Pg { conn, .. } => {
                if let Some(c) = conn.take() {
                    let _ = sqlx::Connection::close(c).await;
                }
            }
            Link::Lite { conn, .. } => drop(conn.take()),
        }
    }
}

/// Rolls back SQLite's transaction, if it still has one (a hard failure may have ended it).
fn roll_back(c: &rusqlite::Connection) {
    if !c.is_autocommit() {
        let _ = lite::batch(c, "ROLLBACK");
    }
}

/// Runs blocking work without stalling the async workers (on the multi-threaded runtime;
/// a single-threaded one, as in some tests, runs it in place).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
