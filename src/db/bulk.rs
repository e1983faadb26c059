//! Bulk loads (the scale generator): rows appended in large transactions, the fastest way
//! each engine takes them, on a connection of the load's own.
//!
//! On SQLite the load has the database to itself ([`lite::open_alone`]): the handle it was
//! opened from is closed first (every clone of it: a rollback journal can only be chosen
//! while nobody else has the database open), and [`Loader::finish`] gives the database back
//! to the WAL and opens a new handle. A rollback journal writes appended pages once instead
//! of twice (the WAL, then the checkpoint), and without foreign-key lookups a history row is
//! one B-tree append instead of an append and a seek: 115,000 → 175,000 generated cases/s
//! on a 2-core machine, and up to 200,000 with the rows' text lent to SQLite instead of
//! copied ([`lite_append`], prepared multi-row INSERTs bound straight from the values).
//!
//! On PostgreSQL they go as `COPY … FROM STDIN`: one stream per table and batch instead of a
//! statement per two dozen rows (multi-row INSERTs were 15 % slower than generating the rows
//! inside the database; COPY is faster than both).

use std::ffi::c_int;

use rusqlite::ffi;
use sqlx::{Connection, Executor};

use super::lite;
use super::rows::Val;
use super::{Backend, Db};

/// A bulk load: [`Loader::append`] rows (a transaction begins with the first),
/// [`Loader::commit`] now and then, [`Loader::finish`] at the end. Dropped, the open
/// transaction rolls back.
pub struct Loader {
    inner: Inner,
    /// The database's URL, to open it again when the load is done.
    url: String,
    /// A transaction is open.
    open: bool,
}

enum Inner {
    /// SQLite: a connection holding the database exclusively, and the database file.
    Lite(rusqlite::Connection, std::fs::File),
    /// PostgreSQL: a connection of the load's own.
    Copy(Box<sqlx::PgConnection>),
}

impl Loader {
    /// Starts a bulk load on `db`'s database. On SQLite `db` is closed first (with every clone
    /// of it); fails if another process has the database open.
    pub async fn open(db: &Db) -> Result<Loader, sqlx::Error> {
        let url = db.pool.connect_options().database_url.to_string();
        let inner = match db.backend {
            Backend::Sqlite => {
                db.close().await;
                let path = super::sqlite_path(&url).to_owned();
                let (conn, file) = tokio::task::spawn_blocking(move || {
                    Ok::<_, sqlx::Error>((lite::open_alone(&path)?, std::fs::File::open(&path)?))
                })
                .await
                .map_err(join)??;
                Inner::Lite(conn, file)
            }
            Backend::Postgres => {
                let opts: sqlx::postgres::PgConnectOptions = url.parse()?;
                Inner::Copy(Box::new(sqlx::PgConnection::connect_with(&opts).await?))
            }
        };
        Ok(Loader { inner, url, open: false })
    }

    /// Makes sure a load will have `db`'s database to itself before the caller writes
    /// anything it would have to undo: on SQLite `db` is closed (with every clone of it), a
    /// connection takes the database exclusively and lets it go, and a new handle is returned;
    /// on PostgreSQL `db` itself. Fails while another process (a running `linli serve`) has
    /// the database open.
    pub async fn ensure_alone(db: &Db) -> Result<Db, sqlx::Error> {
        if db.backend == Backend::Postgres {
            return Ok(db.clone());
        }
        let probe = Loader::open(db).await?;
        probe.finish().await
    }

    /// Appends rows to `table`: `vals` holds them one after the other, a value for each of
    /// `cols`. No rows, nothing done.
    pub async fn append(&mut self, table: &str, cols: &[&str], vals: &[Val]) -> Result<(), sqlx::Error> {
        debug_assert_eq!(vals.len() % cols.len().max(1), 0);
        if vals.is_empty() {
            return Ok(());
        }
        self.begin().await?;
        let names = cols.join(", ");
        match &mut self.inner {
            Inner::Lite(conn, _) => lite_append(conn, &format!("INSERT INTO {table} ({names})"), cols.len(), vals),
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

    /// Deletes every row of `table`, in the open transaction (one begins if none is).
    pub async fn clear(&mut self, table: &str) -> Result<(), sqlx::Error> {
        self.begin().await?;
        self.inner.exec(&format!("DELETE FROM {table}")).await
    }

    async fn begin(&mut self) -> Result<(), sqlx::Error> {
        if !self.open {
            self.inner.exec("BEGIN").await?;
            self.open = true;
        }
        Ok(())
    }

    /// Commits what was appended since the last commit.
    pub async fn commit(&mut self) -> Result<(), sqlx::Error> {
        if std::mem::take(&mut self.open) {
            // On SQLite in place: a commit of the load waits for its own fsyncs, and nothing
            // else runs in this process meanwhile.
            self.inner.exec("COMMIT").await?;
            if let Inner::Lite(_, file) = &self.inner {
                forget_cached(file);
            }
        }
        Ok(())
    }

    /// Commits, gives the database back (on SQLite to the WAL), and opens it again.
    pub async fn finish(mut self) -> Result<Db, sqlx::Error> {
        self.commit().await?;
        match self.inner {
            Inner::Lite(c, _) => tokio::task::spawn_blocking(move || lite::close_alone(c)).await.map_err(join)??,
            Inner::Copy(c) => c.close().await?,
        }
        Db::connect(&self.url).await
    }
}

impl Inner {
    /// Runs a statement without arguments on the load's connection.
    async fn exec(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        match self {
            Inner::Lite(c, _) => lite::batch(c, sql),
            Inner::Copy(c) => c.execute(sqlx::AssertSqlSafe(sql.to_owned())).await.map(|_| ()),
        }
    }
}

/// Drops the database file's pages from the kernel's page cache, once a commit has written
/// and synced them (so they are clean): the load writes each page once, and SQLite keeps the
/// pages it goes back to (the B-trees' right edges) in its own cache. Left there, the written
/// pages fill the machine's memory (30 GB written for 25 M cases), and every later write waits
/// for memory to be found.
fn forget_cached(file: &std::fs::File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: an open file descriptor of ours; the call only advises the kernel, and a
        // failure leaves the pages cached as they were.
        unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

fn join(e: tokio::task::JoinError) -> sqlx::Error {
    sqlx::Error::Protocol(format!("批量导入线程失败：{e}"))
}

/// Inserts rows of `cols` values each (`vals`, one row after the other) with `head`
/// (`INSERT INTO t (a, b)`): multi-row statements prepared once per call, their values bound
/// straight from `vals`. Several rows a statement, because each statement also starts a VM,
/// opens its cursors and writes `sqlite_sequence` (AUTOINCREMENT): history rows took twice as
/// long one a statement. Text is lent to SQLite (`SQLITE_STATIC`), where rusqlite's binding
/// copies it: a copy and an allocation less for each of the load's text values.
fn lite_append(conn: &rusqlite::Connection, head: &str, cols: usize, vals: &[Val]) -> Result<(), sqlx::Error> {
    let cols = cols.max(1);
    let per = (APPEND_ARGS / cols).max(1);
    let text = |rows| super::rows::values_text(head, rows, cols, '?');
    let mut full: Option<Stmt> = None;
    for chunk in vals.chunks(per * cols) {
        let rows = chunk.len() / cols;
        if rows == per {
            let stmt = match &mut full {
                Some(s) => s,
                none => none.insert(Stmt::prepare(conn, &text(per))?),
            };
            stmt.run(chunk)?;
        } else {
            Stmt::prepare(conn, &text(rows))?.run(chunk)?;
        }
    }
    Ok(())
}

/// Arguments per statement of [`lite_append`], at most.
const APPEND_ARGS: usize = 1024;

/// A statement prepared on a connection's raw handle, finalized on drop.
struct Stmt {
    stmt: *mut ffi::sqlite3_stmt,
    db: *mut ffi::sqlite3,
}

impl Stmt {
    fn prepare(conn: &rusqlite::Connection, sql: &str) -> Result<Stmt, sqlx::Error> {
        // SAFETY: the handle is the live connection's; the statement is finalized (on drop)
        // before the borrow of `conn` that `lite_append` holds ends.
        let db = unsafe { conn.handle() };
        let mut stmt = std::ptr::null_mut();
        let len = c_int::try_from(sql.len()).map_err(|_| sqlx::Error::Protocol("statement too long".into()))?;
        // SAFETY: `sql` is valid for `len` bytes; SQLite writes the statement to `stmt`.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(db, sql.as_ptr().cast(), len, ffi::SQLITE_PREPARE_PERSISTENT, &mut stmt, std::ptr::null_mut())
        };
        if rc != ffi::SQLITE_OK || stmt.is_null() {
            return Err(failed(db, rc));
        }
        Ok(Stmt { stmt, db })
    }

    /// Binds one row after the other from `vals` and runs the statement once.
    fn run(&mut self, vals: &[Val]) -> Result<(), sqlx::Error> {
        for (i, v) in vals.iter().enumerate() {
            let i = i as c_int + 1;
            // SAFETY: text is bound with SQLITE_STATIC, so SQLite reads it in place until the
            // parameter is bound again or the statement is finalized: both happen before
            // `vals`, borrowed by `lite_append` for the statement's whole life, can go away.
            let rc = unsafe {
                match v {
                    Val::I(n) | Val::O(Some(n)) => ffi::sqlite3_bind_int64(self.stmt, i, *n),
                    Val::O(None) | Val::N | Val::F(None) | Val::B(None) => ffi::sqlite3_bind_null(self.stmt, i),
                    Val::S(t) => bind_text(self.stmt, i, t),
                    Val::T(t) => bind_text(self.stmt, i, t),
                    Val::F(Some(x)) => ffi::sqlite3_bind_double(self.stmt, i, *x),
                    Val::B(Some(b)) => {
                        ffi::sqlite3_bind_blob64(self.stmt, i, b.as_ptr().cast(), b.len() as u64, ffi::SQLITE_STATIC())
                    }
                }
            };
            if rc != ffi::SQLITE_OK {
                return Err(failed(self.db, rc));
            }
        }
        // SAFETY: a prepared statement of this connection, stepped and reset on this thread.
        let rc = unsafe { ffi::sqlite3_step(self.stmt) };
        let err = (rc != ffi::SQLITE_DONE).then(|| failed(self.db, rc));
        // SAFETY: as above.
        unsafe { ffi::sqlite3_reset(self.stmt) };
        err.map_or(Ok(()), Err)
    }
}

impl Drop for Stmt {
    fn drop(&mut self) {
        // SAFETY: prepared by `Stmt::prepare`, finalized once.
        unsafe { ffi::sqlite3_finalize(self.stmt) };
    }
}

/// Binds `t` without copying it (see [`Stmt::run`] for how long it must live).
unsafe fn bind_text(stmt: *mut ffi::sqlite3_stmt, i: c_int, t: &str) -> c_int {
    // SAFETY: the caller keeps `t` alive as long as SQLite may read it.
    unsafe { ffi::sqlite3_bind_text64(stmt, i, t.as_ptr().cast(), t.len() as u64, ffi::SQLITE_STATIC(), ffi::SQLITE_UTF8 as u8) }
}

/// The connection's error for a failed call, as the rest of the writer reports them.
fn failed(db: *mut ffi::sqlite3, rc: c_int) -> sqlx::Error {
    // SAFETY: the connection is live; SQLite owns the message, copied before the next call.
    let msg = unsafe { std::ffi::CStr::from_ptr(ffi::sqlite3_errmsg(db)) }.to_string_lossy().into_owned();
    lite::err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some(msg)))
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
            Val::O(None) | Val::N | Val::F(None) | Val::B(None) => out.extend_from_slice(b"\\N"),
            Val::S(t) => copy_text(out, t),
            Val::T(t) => copy_text(out, t),
            // Rust prints the shortest text that reads back as the same number.
            Val::F(Some(x)) => out.extend_from_slice(x.to_string().as_bytes()),
            // bytea's hex form, its backslash doubled for COPY's text format.
            Val::B(Some(b)) => {
                out.extend_from_slice(b"\\\\x");
                out.extend_from_slice(crate::audit::hex(b).as_bytes());
            }
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
    fn a_load_has_the_database_to_itself_and_gives_it_back_to_the_wal() {
        let dir = std::env::temp_dir().join(format!("linli-bulk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db").to_string_lossy().into_owned();
        let other = lite::open(&path).unwrap();
        lite::batch(&other, "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, a TEXT NOT NULL, b BIGINT)").unwrap();
        // Another connection has the database open: refused, and it is left as it was.
        let e = lite::open_alone(&path).map(|_| ()).unwrap_err();
        assert!(e.to_string().contains("独占"), "{e}");
        drop(other);
        let conn = lite::open_alone(&path).unwrap();
        lite::batch(&conn, "BEGIN").unwrap();
        // More rows than one statement takes, texts and NULLs bound in place.
        let vals: Vec<Val> =
            (0..1000).flat_map(|i| [Val::S(format!("行{i}")), if i % 3 == 0 { Val::N } else { Val::I(i) }]).collect();
        lite_append(&conn, "INSERT INTO t (a, b)", 2, &vals).unwrap();
        // A failing row fails the statement with SQLite's own message.
        let e = lite_append(&conn, "INSERT INTO t (a, b)", 2, &[Val::N, Val::I(1)]).unwrap_err();
        assert!(e.to_string().contains("NOT NULL"), "{e}");
        lite::batch(&conn, "COMMIT").unwrap();
        lite::close_alone(conn).unwrap();
        let c = rusqlite::Connection::open(&path).unwrap();
        let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        let (n, nulls, last): (i64, i64, String) = c
            .query_row("SELECT COUNT(*), COUNT(*) - COUNT(b), (SELECT a FROM t ORDER BY id DESC LIMIT 1) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!((mode.as_str(), n, nulls, last.as_str()), ("wal", 1000, 334, "行999"));
        drop(c);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn copy_rows_escape_what_copy_reads_specially() {
        let mut out = Vec::new();
        copy_row(&mut out, &[Val::I(7), Val::O(None), Val::S("a\tb\\c\nd".into()), Val::T("网格"), Val::N]);
        assert_eq!(String::from_utf8(out).unwrap(), "7\t\\N\ta\\tb\\\\c\\nd\t网格\t\\N\n");
        let mut out = Vec::new();
        copy_row(&mut out, &[Val::F(Some(108.477)), Val::F(None), Val::B(Some(vec![0, 0xab, 0x5c])), Val::B(None)]);
        assert_eq!(String::from_utf8(out).unwrap(), "108.477\t\\N\t\\\\x00ab5c\t\\N\n");
    }
}
