//! Bulk loads (the scale generator): rows appended in large transactions, the fastest way
//! each engine takes them.
//!
//! On SQLite they go through the single writer's transaction as prepared multi-row INSERTs
//! bound straight from the values (a statement text per chunk size, prepared once; no sqlx
//! argument list in between). On PostgreSQL they go as `COPY … FROM STDIN` on a connection of their own: one
//! stream per table and batch instead of a statement per two dozen rows (multi-row INSERTs
//! were 15 % slower than generating the rows inside the database; COPY is faster than both).

use sqlx::{Connection, Executor};

use super::rows::Val;
use super::{Backend, Db, Tx};

/// A bulk transaction: [`Bulk::append`] rows, then [`Bulk::commit`]; dropped, it rolls back.
pub struct Bulk(Inner);

enum Inner {
    /// SQLite: the writer's transaction.
    Writer(Tx),
    /// PostgreSQL: a connection of the load's own with a transaction open.
    Copy(Box<sqlx::PgConnection>),
}

impl Db {
    /// Starts a bulk transaction.
    pub async fn bulk(&self) -> Result<Bulk, sqlx::Error> {
        Ok(Bulk(match self.backend {
            Backend::Sqlite => Inner::Writer(self.begin().await?),
            Backend::Postgres => {
                let url = &self.pool.connect_options().database_url;
                let opts: sqlx::postgres::PgConnectOptions = url.as_str().parse()?;
                let mut c = sqlx::PgConnection::connect_with(&opts).await?;
                c.execute("BEGIN").await?;
                Inner::Copy(Box::new(c))
            }
        }))
    }
}

impl Bulk {
    /// Appends rows to `table`: `vals` holds them one after the other, a value for each of
    /// `cols`.
    pub async fn append(&mut self, table: &str, cols: &[&str], vals: &[Val]) -> Result<(), sqlx::Error> {
        debug_assert_eq!(vals.len() % cols.len().max(1), 0);
        let names = cols.join(", ");
        match &mut self.0 {
            Inner::Writer(tx) => match tx.conn() {
                super::exec::Conn::Lite { conn, .. } => {
                    super::lite::append(conn?, &format!("INSERT INTO {table} ({names})"), cols.len(), vals)
                }
                super::exec::Conn::Sqlx(_) => Err(sqlx::Error::Protocol("bulk loads on SQLite go through the writer".into())),
            },
            Inner::Copy(c) => {
                let mut copy = c.copy_in_raw(&format!("COPY {table} ({names}) FROM STDIN")).await?;
                let mut buf = Vec::with_capacity(COPY_CHUNK + 4096);
                for row in vals.chunks(cols.len().max(1)) {
                    copy_row(&mut buf, row);
                    if buf.len() >= COPY_CHUNK {
                        copy.send(std::mem::take(&mut buf)).await?;
                        buf.reserve(COPY_CHUNK + 4096);
                    }
                }
                if !buf.is_empty() {
                    copy.send(buf).await?;
                }
                copy.finish().await.map(|_| ())
            }
        }
    }

    /// Commits what was appended.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self.0 {
            Inner::Writer(tx) => tx.commit().await,
            Inner::Copy(mut c) => {
                c.execute("COMMIT").await?;
                c.close().await
            }
        }
    }
}

/// Bytes of COPY data sent at a time.
const COPY_CHUNK: usize = 1 << 20;

/// One row in COPY's text format: tab-separated, `\N` for NULL, backslash escapes.
fn copy_row(out: &mut Vec<u8>, row: &[Val]) {
    for (i, v) in row.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match v {
            Val::I(n) | Val::O(Some(n)) => out.extend_from_slice(n.to_string().as_bytes()),
            Val::O(None) | Val::N => out.extend_from_slice(b"\\N"),
            Val::S(t) => copy_text(out, t),
            Val::T(t) => copy_text(out, t),
        }
    }
    out.push(b'\n');
}

fn copy_text(out: &mut Vec<u8>, t: &str) {
    for &b in t.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rows_escape_what_copy_reads_specially() {
        let mut out = Vec::new();
        copy_row(&mut out, &[Val::I(7), Val::O(None), Val::S("a\tb\\c\nd".into()), Val::T("网格"), Val::N]);
        assert_eq!(String::from_utf8(out).unwrap(), "7\t\\N\ta\\tb\\\\c\\nd\t网格\t\\N\n");
    }
}
