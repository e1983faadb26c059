//! sqlx's `Executor` for linli's own connections: the writer's transaction ([`super::Tx`])
//! and a quick-read connection ([`Quick`]). On PostgreSQL both forward to a sqlx connection;
//! on SQLite they run the statement in place ([`super::lite`]). Either way a
//! `sqlx::query(..).bind(..)` runs on them unchanged and gives sqlx `AnyRow`s back.

use std::sync::{Arc, Mutex};

use either::Either;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use sqlx::any::{AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Execute, Executor};

use super::lite;

/// Where a statement goes.
pub(crate) enum Conn<'c> {
    /// A sqlx connection (PostgreSQL, or a pooled SQLite connection).
    Sqlx(&'c mut AnyConnection),
    /// An SQLite connection driven in place.
    Lite(Result<&'c rusqlite::Connection, sqlx::Error>),
}

impl<'c> Conn<'c> {
    pub(crate) fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        match self {
            Conn::Sqlx(c) => c.fetch_many(query),
            Conn::Lite(c) => futures_util::stream::iter(run_lite(c, query, false)).boxed(),
        }
    }

    pub(crate) fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        match self {
            Conn::Sqlx(c) => c.fetch_optional(query),
            Conn::Lite(c) => futures_util::future::ready(first_row(run_lite(c, query, true))).boxed(),
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
            Conn::Lite(_) => {
                let e = sqlx::Error::Protocol("prepared statements are not kept on in-place SQLite connections".into());
                futures_util::future::ready(Err(e)).boxed()
            }
        }
    }
}

/// Runs a sqlx query on an SQLite connection, in place.
fn run_lite<'q>(
    conn: Result<&rusqlite::Connection, sqlx::Error>,
    mut query: impl Execute<'q, Any>,
    first_only: bool,
) -> lite::Steps {
    match (conn, query.take_arguments().map_err(sqlx::Error::Encode)) {
        (Ok(c), Ok(args)) => lite::run(c, query.sql().as_str(), args, first_only),
        (Err(e), _) | (_, Err(e)) => vec![Err(e)],
    }
}

fn first_row(steps: lite::Steps) -> Result<Option<AnyRow>, sqlx::Error> {
    let mut first = None;
    for s in steps {
        match s? {
            Either::Right(r) if first.is_none() => first = Some(r),
            _ => {}
        }
    }
    Ok(first)
}

/// Implements sqlx's `Executor` for `&mut $ty`, given how to reach its [`Conn`].
macro_rules! forward_executor {
    ($ty:ty, |$v:ident| $conn:expr) => {
        impl<'c> sqlx::Executor<'c> for &'c mut $ty {
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

/// Connections for short reads that an index bounds (one case and its history): on SQLite
/// they run in place, sparing the two thread hand-overs per statement of sqlx's pool; on
/// PostgreSQL they are the pool's. Long reads (lists, reports, exports) stay on the pool,
/// whose SQLite connections run on threads of their own and never stall the async workers.
#[derive(Clone, Debug)]
pub(crate) enum Quick {
    Pool(AnyPool),
    Lite { path: Arc<str>, idle: Arc<Mutex<Vec<rusqlite::Connection>>> },
}

impl Quick {
    pub(crate) fn lite(path: &str) -> Quick {
        Quick::Lite { path: path.into(), idle: Arc::default() }
    }

    /// Closes the idle in-place connections (the pool closes with the sqlx pool).
    pub(crate) fn close(&self) {
        if let Quick::Lite { idle, .. } = self {
            idle.lock().expect("quick pool lock").clear();
        }
    }

    /// A connection for a few short reads.
    pub(crate) async fn acquire(&self) -> Result<QuickConn, sqlx::Error> {
        Ok(match self {
            Quick::Pool(p) => QuickConn::Pool(p.acquire().await?),
            Quick::Lite { path, idle } => {
                let conn = match idle.lock().expect("quick pool lock").pop() {
                    Some(c) => c,
                    None => lite::open_reader(path)?,
                };
                QuickConn::Lite { conn: Some(conn), idle: idle.clone() }
            }
        })
    }
}

/// A connection from [`Quick`]; returned to it when dropped.
pub enum QuickConn {
    /// From the sqlx pool.
    Pool(PoolConnection<Any>),
    /// An SQLite connection driven in place.
    Lite {
        /// The connection (taken back on drop).
        conn: Option<rusqlite::Connection>,
        /// Where it goes back.
        idle: Arc<Mutex<Vec<rusqlite::Connection>>>,
    },
}

impl std::fmt::Debug for QuickConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QuickConn")
    }
}

impl Drop for QuickConn {
    fn drop(&mut self) {
        if let QuickConn::Lite { conn, idle } = self
            && let Some(c) = conn.take()
        {
            let mut idle = idle.lock().expect("quick pool lock");
            if idle.len() < QUICK_IDLE {
                idle.push(c);
            }
        }
    }
}

forward_executor!(QuickConn, |q| match q {
    QuickConn::Pool(c) => Conn::Sqlx(c),
    QuickConn::Lite { conn, .. } => Conn::Lite(lite::live(conn)),
});
