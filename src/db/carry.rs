//! Statements of a logical transaction ([`Tx`]), and the owed release they carry.
//!
//! Why: on PostgreSQL every statement of the one writer is a round trip to a server that
//! shares the machine's two cores; a request that changes a case runs one statement (its
//! `UPDATE … RETURNING`) and, before this, paid a second round trip to release its savepoint
//! and open the next request's. Now the release stays owed ([`Batch::owed`]) and goes in one
//! simple-protocol message with the next request's first statement, its arguments written in
//! as literals ([`super::inline`]): `RELEASE SAVEPOINT; SAVEPOINT; <statement>`. That message
//! runs to its end on a task of its own even if the request is dropped meanwhile, so the
//! batch's bookkeeping always follows what reached the server: after the two savepoint
//! commands succeed the savepoint is the new request's; if either fails, the released work
//! cannot be told apart from the new request's and the whole batch fails, as a failed commit
//! does.

use std::sync::atomic::Ordering;

use either::Either;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use sqlx::any::{AnyQueryResult, AnyRow};
use sqlx::{Any, Execute};
use sqlx_core::any::{AnyArgumentBuffer, AnyArguments};

use super::exec::{Conn, first_of, forward_executor};
use super::group::{Batch, Tx, WRITE_FAILED, lose};
use super::link::Link;

type Step = Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>;

/// Statements a connection keeps prepared by name, at most: past it the rare new ones take
/// the round trip of their own.
const NAMED_MAX: usize = 512;

/// What the first statement after an owed release runs as.
enum Carried {
    /// After the owed savepoint commands in one message: `text`, which prepares (if `new`
    /// names a statement to remember) and executes a named statement, or a statement
    /// without arguments as it is.
    Message { text: String, new: Option<(String, u32)> },
    /// Arguments that cannot be written as literals: the release is paid first, then the
    /// statement runs as usual.
    Apart(sqlx::SqlStr, Option<AnyArguments>),
}

impl Tx {
    /// Whether the next statement must carry an owed release (only ever on PostgreSQL).
    fn owes(&mut self) -> bool {
        self.batch().owed
    }

    /// Runs the first statement after an owed release, with it.
    async fn carry<'q>(&mut self, mut query: impl Execute<'q, Any>) -> Vec<Step> {
        let args = match query.take_arguments() {
            Ok(a) => a,
            Err(e) => return vec![Err(sqlx::Error::Encode(e))],
        };
        let sql = query.sql();
        let how = match &args {
            // Text of its own (no arguments to bind): may hold several statements.
            None => Carried::Message { text: sql.as_str().to_string(), new: None },
            Some(a) => match (super::inline::arguments(&a.values.0), &mut self.batch().link) {
                (Some(literals), Link::Pg { named, .. }) => {
                    let types = super::inline::types(&a.values.0);
                    let key = format!("{types}\u{1}{}", sql.as_str());
                    match named.get(&key) {
                        Some(n) => Carried::Message { text: format!("EXECUTE linli_w{n}{literals}"), new: None },
                        None if named.len() < NAMED_MAX => {
                            let n = named.len() as u32 + 1;
                            let text = format!("PREPARE linli_w{n}{types} AS {}; EXECUTE linli_w{n}{literals}", sql.as_str());
                            Carried::Message { text, new: Some((key, n)) }
                        }
                        None => Carried::Apart(sql, args),
                    }
                }
                _ => Carried::Apart(sql, args),
            },
        };
        match how {
            Carried::Message { text, new } => {
                self.carried().fetch_add(1, Ordering::Relaxed);
                self.lend(move |b| Box::pin(message(b, text, new))).await
            }
            Carried::Apart(sql, args) => {
                if let Err(e) = self.lend(|b| Box::pin(pay(b))).await {
                    return vec![Err(e)];
                }
                let q = sqlx::query_with(sql, args.unwrap_or_else(|| AnyArguments { values: AnyArgumentBuffer(Vec::new()) }));
                self.conn().fetch_many(q).collect().await
            }
        }
    }
}

/// Sends the owed savepoint commands and the statement in one message; remembers a
/// statement it prepared.
async fn message(b: &mut Batch, text: String, new: Option<(String, u32)>) -> Vec<Step> {
    let sql = format!("RELEASE SAVEPOINT linli_op; SAVEPOINT linli_op; {text}");
    b.used = true;
    let (mut out, mut done, mut prepared) = (Vec::new(), 0, false);
    let lead = if new.is_some() { 3 } else { 2 };
    {
        let Batch { link, owed, .. } = &mut *b;
        let mut steps = link.conn().fetch_many(sqlx::raw_sql(sqlx::AssertSqlSafe(sql)));
        while let Some(step) = steps.next().await {
            match step {
                Ok(Either::Left(_)) if done < lead => {
                    done += 1;
                    *owed = done < 2;
                    prepared = done == 3;
                }
                other => out.push(other),
            }
        }
    }
    if let (true, Some((key, n)), Link::Pg { named, .. }) = (prepared, new, &mut b.link) {
        // Kept by the connection even if this request's savepoint is rolled back.
        named.insert(key, n);
    }
    if done < 2 {
        lose(b, "an owed release", out.iter().find_map(|s| s.as_ref().err()));
        if !out.iter().any(Result::is_err) {
            out.push(Err(sqlx::Error::Protocol(WRITE_FAILED.into())));
        }
    }
    out
}

/// Sends the owed savepoint commands alone.
async fn pay(b: &mut Batch) -> Result<(), sqlx::Error> {
    match b.link.exec("RELEASE SAVEPOINT linli_op; SAVEPOINT linli_op").await {
        Ok(()) => {
            b.owed = false;
            Ok(())
        }
        Err(e) => {
            lose(b, "an owed release", Some(&e));
            Err(e)
        }
    }
}

impl Tx {
    /// Where this transaction's next statement goes: with the owed release, if any.
    pub(super) fn statements(&mut self) -> Conn<'_> {
        if self.owes() { Conn::Carry(self) } else { self.conn() }
    }

    /// `fetch_many` of a statement that carries the owed release.
    pub(super) fn carried_many<'e, 'q: 'e, E>(&'e mut self, query: E) -> BoxStream<'e, Step>
    where
        E: 'q + Execute<'q, Any>,
    {
        async move { futures_util::stream::iter(self.carry(query).await) }.flatten_stream().boxed()
    }

    /// `fetch_optional` of a statement that carries the owed release.
    pub(super) fn carried_optional<'e, 'q: 'e, E>(&'e mut self, query: E) -> BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Any>,
    {
        async move { first_of(self.carry(query).await) }.boxed()
    }
}

forward_executor!(Tx, |tx| tx.statements());
