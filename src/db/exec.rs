//! sqlx's `Executor` for linli's own connections: the writer's transaction ([`super::Tx`])
//! and one read at a time ([`Read`]).
//! On PostgreSQL they forward to sqlx; on SQLite they run the statement in place
//! ([`super::lite`]), reads within a budget. Either way a `sqlx::query(..).bind(..)` runs on
//! them unchanged and gives sqlx `AnyRow`s back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use either::Either;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use sqlx::any::{AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo};
use sqlx::{Any, AnyConnection, AnyPool, Execute, Executor};
use sqlx_core::any::{AnyArgumentBuffer, AnyArguments};

use super::lite;

/// Where a statement goes.
pub(crate) enum Conn<'c> {
    /// A sqlx connection (PostgreSQL, or a pooled SQLite connection).
    Sqlx(&'c mut AnyConnection),
    /// An SQLite connection driven in place; a statement it interrupts for going over its
    /// read budget runs again on `overflow` (quick reads; the writer has no budget).
    Lite { conn: Result<&'c rusqlite::Connection, sqlx::Error>, overflow: Option<&'c Readers> },
    /// The writer's transaction on PostgreSQL while it owes a release (see [`super::carry`]).
    Carry(&'c mut super::Tx),
}

impl<'c> Conn<'c> {
    pub(crate) fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        match self {
            Conn::Sqlx(c) => c.fetch_many(query),
            Conn::Lite { conn, overflow } => run_lite(conn, overflow, query, false),
            Conn::Carry(tx) => tx.carried_many(query),
        }
    }

    pub(crate) fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        match self {
            Conn::Sqlx(c) => c.fetch_optional(query),
            Conn::Lite { conn, overflow } => first_row(run_lite(conn, overflow, query, true)),
            Conn::Carry(tx) => tx.carried_optional(query),
        }
    }

    pub(crate) fn prepare_with<'e>(
        self,
        sql: sqlx::SqlStr,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement, sqlx::Error>>
    where
        'c: 'e,
    {
        match self {
            Conn::Sqlx(c) => c.prepare_with(sql, parameters),
            // Preparing runs nothing in the transaction: the release may stay owed.
            Conn::Carry(tx) => tx.conn().prepare_with(sql, parameters),
            Conn::Lite { .. } => {
                let e = sqlx::Error::Protocol("prepared statements are not kept on in-place SQLite connections".into());
                futures_util::future::ready(Err(e)).boxed()
            }
        }
    }
}

/// What a statement gave, owned: it ran before this returns, except when it went over its
/// read budget and runs again on the pool.
type Owned = BoxStream<'static, Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>;

/// Runs a sqlx query on an SQLite connection, in place; again on `overflow` if SQLite
/// interrupted it for going over its read budget.
fn run_lite<'q>(
    conn: Result<&rusqlite::Connection, sqlx::Error>,
    overflow: Option<&Readers>,
    mut query: impl Execute<'q, Any>,
    first_only: bool,
) -> Owned {
    let values = match query.take_arguments().map_err(sqlx::Error::Encode) {
        Ok(args) => args.map(|a| a.values.0).unwrap_or_default(),
        Err(e) => return futures_util::stream::once(futures_util::future::ready(Err(e))).boxed(),
    };
    let sql = query.sql();
    let steps = match conn {
        Ok(c) => lite::run(c, sql.as_str(), &values, first_only),
        Err(e) => vec![Err(e)],
    };
    match overflow {
        Some(o) if steps.iter().any(|s| s.as_ref().is_err_and(lite::interrupted)) => {
            o.overflows.fetch_add(1, Ordering::Relaxed);
            let pool = o.pool.clone();
            futures_util::stream::once(async move {
                let args = AnyArguments { values: AnyArgumentBuffer(values) };
                pool.fetch_many(sqlx::query_with(sql, args)).collect::<Vec<_>>().await
            })
            .flat_map(futures_util::stream::iter)
            .boxed()
        }
        _ => futures_util::stream::iter(steps).boxed(),
    }
}

/// The first row of what a statement gave (`fetch_optional`), once it has all arrived.
fn first_row(steps: Owned) -> BoxFuture<'static, Result<Option<AnyRow>, sqlx::Error>> {
    async move { first_of(steps.collect().await) }.boxed()
}

/// The first row of a statement's results (an error among them is the answer).
pub(super) fn first_of(steps: Vec<Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>) -> Result<Option<AnyRow>, sqlx::Error> {
    let mut first = None;
    for s in steps {
        if let Either::Right(r) = s? {
            first.get_or_insert(r);
        }
    }
    Ok(first)
}

/// Implements sqlx's `Executor` for `&mut $ty`, given how to reach its [`Conn`] (with the
/// type's own lifetime, if it has one, named after the type).
macro_rules! forward_executor {
    ($ty:ty, |$v:ident| $conn:expr) => {
        $crate::db::exec::forward_executor!($ty, '__unused, |$v| $conn);
    };
    ($ty:ty, $lt:lifetime, |$v:ident| $conn:expr) => {
        impl<'c, $lt> sqlx::Executor<'c> for &'c mut $ty {
            type Database = sqlx::Any;

            fn fetch_many<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> futures_util::stream::BoxStream<
                'e,
                Result<either::Either<sqlx::any::AnyQueryResult, sqlx::any::AnyRow>, sqlx::Error>,
            >
            where
                'c: 'e,
                E: 'q + sqlx::Execute<'q, sqlx::Any>,
            {
                let $v = self;
                $conn.fetch_many(query)
            }

            fn fetch_optional<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> futures_util::future::BoxFuture<'e, Result<Option<sqlx::any::AnyRow>, sqlx::Error>>
            where
                'c: 'e,
                E: 'q + sqlx::Execute<'q, sqlx::Any>,
            {
                let $v = self;
                $conn.fetch_optional(query)
            }

            fn prepare_with<'e>(
                self,
                sql: sqlx::SqlStr,
                parameters: &'e [sqlx::any::AnyTypeInfo],
            ) -> futures_util::future::BoxFuture<'e, Result<sqlx::any::AnyStatement, sqlx::Error>>
            where
                'c: 'e,
            {
                let $v = self;
                $conn.prepare_with(sql, parameters)
            }
        }
    };
}
pub(crate) use forward_executor;

/// Idle in-place read connections kept for reuse (a new one parses the schema again).
const QUICK_IDLE: usize = 16;

/// Connections for reads: on SQLite they run in place, sparing the two thread hand-overs
/// per statement (and one per row) of sqlx's pool; a statement that goes over
/// [`lite::READ_BUDGET`] is interrupted and runs again on the pool, whose SQLite connections
/// have threads of their own, so no read holds an async worker for long. On PostgreSQL they
/// are the pool's.
#[derive(Clone, Debug)]
pub(crate) enum Quick {
    Pool(AnyPool),
    Lite(Arc<Readers>),
}

/// The in-place SQLite read connections.
#[derive(Debug)]
pub struct Readers {
    path: Box<str>,
    idle: Mutex<Vec<rusqlite::Connection>>,
    /// Where a read over budget runs again.
    pool: AnyPool,
    /// Reads that went over budget.
    overflows: AtomicU64,
}

impl Readers {
    fn take(&self) -> Result<rusqlite::Connection, sqlx::Error> {
        match self.idle.lock().expect("quick pool lock").pop() {
            Some(c) => Ok(c),
            None => lite::open_reader(&self.path),
        }
    }

    fn give_back(&self, c: rusqlite::Connection) {
        let mut idle = self.idle.lock().expect("quick pool lock");
        if idle.len() < QUICK_IDLE {
            idle.push(c);
        }
    }

    /// Runs one statement on an idle connection, which goes back before this returns (the
    /// rows are read by then).
    fn run<'q>(&self, query: impl Execute<'q, Any>, first_only: bool) -> Owned {
        let conn = match self.take() {
            Ok(c) => c,
            Err(e) => return futures_util::stream::once(futures_util::future::ready(Err(e))).boxed(),
        };
        let out = run_lite(Ok(&conn), Some(self), query, first_only);
        self.give_back(conn);
        out
    }
}

impl Quick {
    pub(crate) fn lite(path: &str, pool: AnyPool) -> Quick {
        Quick::Lite(Arc::new(Readers { path: path.into(), idle: Mutex::default(), pool, overflows: AtomicU64::new(0) }))
    }

    /// In-place reads that went over budget and ran again on the pool.
    pub(crate) fn overflows(&self) -> u64 {
        match self {
            Quick::Lite(r) => r.overflows.load(Ordering::Relaxed),
            Quick::Pool(_) => 0,
        }
    }

    /// Closes the idle in-place connections (the pool closes with the sqlx pool).
    pub(crate) fn close(&self) {
        if let Quick::Lite(r) = self {
            r.idle.lock().expect("quick pool lock").clear();
        }
    }
}

/// Runs each statement on a read connection of its own (see [`super::Db::read`]).
#[derive(Clone, Copy, Debug)]
pub struct Read<'c>(pub(crate) &'c Quick);

impl<'c> Executor<'c> for Read<'c> {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        match self.0 {
            Quick::Pool(p) => p.fetch_many(query),
            Quick::Lite(r) => r.run(query, false),
        }
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        match self.0 {
            Quick::Pool(p) => p.fetch_optional(query),
            Quick::Lite(r) => first_row(r.run(query, true)),
        }
    }

    fn prepare_with<'e>(
        self,
        sql: sqlx::SqlStr,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement, sqlx::Error>>
    where
        'c: 'e,
    {
        match self.0 {
            Quick::Pool(p) => p.prepare_with(sql, parameters),
            Quick::Lite(r) => r.pool.prepare_with(sql, parameters),
        }
    }
}
