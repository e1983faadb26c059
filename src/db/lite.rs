//! The SQLite writer's connection, driven on the calling thread.
//!
//! Why: sqlx runs each SQLite connection on a thread of its own and hands every statement
//! over and back (two thread wake-ups). A case creation is a dozen statements inside the
//! group-commit writer, which is the one serial section of every write, so those hand-overs
//! — not SQLite, not the disk — set the ceiling of writes per second. Here the writer's
//! statements run where the request runs, prepared once and cached.
//!
//! The queries are still built with sqlx (`sqlx::query(..).bind(..)`) and their rows are
//! sqlx `AnyRow`s: domain code cannot tell which writer it talks to, and PostgreSQL keeps
//! going through sqlx unchanged.

use std::sync::Arc;
use std::time::Duration;

use either::Either;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use sqlx::any::{AnyQueryResult, AnyRow, AnyTypeInfo, AnyTypeInfoKind};
use sqlx_core::any::{AnyColumn, AnyValue, AnyValueKind};
use sqlx_core::ext::ustr::UStr;

/// Statements kept prepared (the write paths use a few dozen distinct texts).
const STATEMENT_CACHE: usize = 512;

/// Process-wide SQLite settings, applied once before the first connection opens: SQLite
/// allocates through mimalloc like the rest of the program (glibc's malloc and free were
/// about 5 % of a creation's CPU), and keeps no allocation statistics, whose global mutex
/// every `sqlite3_malloc` and `sqlite3_free` took. Once SQLite has started, `sqlite3_config`
/// refuses (SQLITE_MISUSE) and changes nothing: the defaults then stay, which is only slower.
pub(crate) fn configure_process() {
    use rusqlite::ffi;
    use std::ffi::{c_int, c_void};

    unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
        // SAFETY: mimalloc's malloc takes any size; SQLite never asks for a negative one.
        unsafe { libmimalloc_sys::mi_malloc(n.max(0) as usize) }
    }
    unsafe extern "C" fn x_free(p: *mut c_void) {
        // SAFETY: SQLite frees only what x_malloc or x_realloc gave it (or NULL).
        unsafe { libmimalloc_sys::mi_free(p) }
    }
    unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
        // SAFETY: as for x_free.
        unsafe { libmimalloc_sys::mi_realloc(p, n.max(0) as usize) }
    }
    unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
        // SAFETY: as for x_free; SQLite's allocations stay below 2 GiB.
        if p.is_null() { 0 } else { unsafe { libmimalloc_sys::mi_usable_size(p) as c_int } }
    }
    unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
        (n + 7) & !7
    }
    unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
        ffi::SQLITE_OK
    }
    unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(x_malloc),
            xFree: Some(x_free),
            xRealloc: Some(x_realloc),
            xSize: Some(x_size),
            xRoundup: Some(x_roundup),
            xInit: Some(x_init),
            xShutdown: Some(x_shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: both options take the documented argument; SQLite copies the methods
        // before returning.
        let rc = unsafe {
            [
                ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int),
                ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods as *const ffi::sqlite3_mem_methods),
            ]
        };
        if rc != [ffi::SQLITE_OK; 2] {
            tracing::debug!(?rc, "SQLite had already started: its default allocator stays");
        }
    });
}

/// Opens the writer's connection. Its commits do not wait for the disk (`synchronous=NORMAL`):
/// the writer answers a batch only after [`super::durable`] has synced the WAL, so an
/// acknowledged commit survives power loss as with `synchronous=FULL`. Checkpoints run in the
/// background; the writer's own, after 2,000 WAL pages, finds them mostly copied already and
/// bounds the WAL under constant load (only a checkpoint between its batches can finish it).
pub(crate) fn open(path: &str) -> Result<Connection, sqlx::Error> {
    let pragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint=2000;";
    connect(path, OpenFlags::SQLITE_OPEN_CREATE, pragmas, STATEMENT_CACHE)
}

/// Opens a connection that has the database to itself, for a bulk load: an exclusive lock
/// held until it closes, a rollback journal instead of the WAL (rows appended past the end of
/// the file are written once, not to the WAL and again by a checkpoint; the pages they change
/// are journalled first, so an interrupted load rolls back), no foreign-key lookups (the
/// loader's rows are consistent by construction), a large page cache. Fails if another
/// connection, in this process or another, has the database open.
pub(crate) fn open_alone(path: &str) -> Result<Connection, sqlx::Error> {
    let conn = connect(path, OpenFlags::empty(), "", 8)?;
    conn.busy_timeout(Duration::from_secs(1)).map_err(err)?;
    // The first statement reads the schema, which in exclusive locking mode takes the lock.
    let mode = conn
        .execute_batch("PRAGMA locking_mode=EXCLUSIVE; PRAGMA synchronous=FULL;")
        .and_then(|()| conn.query_row("PRAGMA journal_mode=DELETE", [], |r| r.get::<_, String>(0)));
    if !mode.is_ok_and(|m| m.eq_ignore_ascii_case("delete")) {
        return Err(sqlx::Error::Protocol(
            "数据库正被其他连接或进程使用，批量导入需要独占数据库（请先停止使用该数据库的 linli serve）".into(),
        ));
    }
    batch(&conn, "PRAGMA foreign_keys=OFF; PRAGMA cache_size=-262144;")?;
    Ok(conn)
}

/// Gives a connection from [`open_alone`] back to the WAL and closes it.
pub(crate) fn close_alone(conn: Connection) -> Result<(), sqlx::Error> {
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(sqlx::Error::Protocol(format!("批量导入后无法恢复 WAL 日志模式（{mode}）")));
    }
    conn.close().map_err(|(_, e)| err(e))
}

/// Opens the connection that checkpoints in the background (it syncs the WAL before copying
/// and the database file after, as every checkpoint does with `synchronous` above OFF).
pub(crate) fn open_checkpointer(path: &str) -> Result<Connection, sqlx::Error> {
    connect(path, OpenFlags::empty(), "PRAGMA synchronous=NORMAL;", 1)
}

/// Virtual-machine steps an in-place read may take before SQLite interrupts it (see
/// [`interrupted`]). A 20-row page with its count of up to 2,000 takes a few tens of
/// thousands; this bounds the time one read can hold an async worker to a few milliseconds.
pub(crate) const READ_BUDGET: i32 = 300_000;

/// Opens a connection for in-place reads (it refuses writes: those go through the writer).
/// A statement that outgrows [`READ_BUDGET`] is interrupted, for the caller to run it again
/// on a pooled connection, whose thread may take as long as it needs.
pub(crate) fn open_reader(path: &str) -> Result<Connection, sqlx::Error> {
    let conn = connect(path, OpenFlags::empty(), "PRAGMA query_only=ON;", 64)?;
    conn.progress_handler(READ_BUDGET, Some(|| true)).map_err(err)?;
    Ok(conn)
}

/// The statement was interrupted for going over [`READ_BUDGET`].
pub(crate) fn interrupted(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("9"))
}

fn connect(path: &str, extra: OpenFlags, pragmas: &str, cache: usize) -> Result<Connection, sqlx::Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | extra;
    let conn = Connection::open_with_flags(path, flags).map_err(err)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
    conn.execute_batch(pragmas).map_err(err)?;
    conn.set_prepared_statement_cache_capacity(cache);
    Ok(conn)
}

/// The connection behind an in-place handle, unless it was closed.
pub(crate) fn live(conn: &Option<Connection>) -> Result<&Connection, sqlx::Error> {
    conn.as_ref().ok_or(sqlx::Error::PoolClosed)
}

/// Runs a statement without arguments or results (transaction control, pragmas).
pub(crate) fn batch(conn: &Connection, sql: &str) -> Result<(), sqlx::Error> {
    conn.execute_batch(sql).map_err(err)
}

/// What a statement gave: its result and rows, in the shape sqlx's `fetch_many` streams.
pub(crate) type Steps = Vec<Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>;

/// Runs one statement with sqlx's arguments and returns its rows as `AnyRow`s, then its
/// result. Text with several statements and no arguments (DDL scripts) runs as a batch.
pub(crate) fn run(conn: &Connection, sql: &str, args: &[AnyValueKind], first_only: bool) -> Steps {
    let t0 = std::time::Instant::now();
    let steps = match run_inner(conn, sql, args, first_only) {
        Ok(steps) => steps,
        Err(e) => vec![Err(e)],
    };
    // The same alert sqlx raises on its own connections, so slow writes stay visible.
    let took = t0.elapsed();
    if took >= SLOW {
        let summary: String = sql.split_whitespace().take(6).collect::<Vec<_>>().join(" ");
        let secs = took.as_secs_f64();
        if BULK.load(std::sync::atomic::Ordering::Relaxed) {
            tracing::debug!(%summary, elapsed_secs = secs, "slow statement on an in-place SQLite connection");
        } else {
            tracing::warn!(%summary, elapsed_secs = secs, "slow statement on an in-place SQLite connection");
        }
    }
    steps
}

/// Statements slower than this are logged (sqlx's default threshold).
const SLOW: Duration = Duration::from_secs(1);

/// This process does bulk work (generator, rebuilds), whose statements are long by design:
/// slow statements are then logged at debug level instead of as warnings over its progress bar.
static BULK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Marks this process as doing bulk work (see [`BULK`]).
pub(crate) fn expect_long_statements() {
    BULK.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The statement with `$n` written `?n` (outside literals, quoted names and comments), or
/// `None` when it has no `$n` or also has a bare `?`. SQLite gives `?n` the index n, so the
/// arguments bind by position; for `$n`, a name, the index of each would have to be asked
/// (`sqlite3_bind_parameter_name` searches a list: binding was quadratic in the argument count,
/// 4 % of a creation's CPU).
fn numbered(sql: &str) -> Option<String> {
    if !sql.contains('$') {
        return None;
    }
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let (mut i, mut copied) = (0, 0);
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => i += b[i + 1..].iter().position(|&c| c == q).map_or(b.len(), |p| p + 2),
            b'-' if b.get(i + 1) == Some(&b'-') => i += b[i..].iter().position(|&c| c == b'\n').unwrap_or(b.len() - i),
            b'/' if b.get(i + 1) == Some(&b'*') => i += sql[i + 2..].find("*/").map_or(b.len(), |p| p + 4),
            b'?' => return None,
            b'$' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                out.push_str(&sql[copied..i]);
                out.push('?');
                copied = i + 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    (copied > 0).then(|| {
        out.push_str(&sql[copied..]);
        out
    })
}

fn run_inner(conn: &Connection, sql: &str, values: &[AnyValueKind], first_only: bool) -> Result<Steps, sqlx::Error> {
    let positional = numbered(sql);
    let sql = positional.as_deref().unwrap_or(sql);
    let mut stmt = match conn.prepare_cached(sql) {
        Ok(s) => s,
        // rusqlite refuses several statements (or fails preparing a later one against tables
        // the earlier ones create): a script without arguments runs as a batch.
        Err(_) if values.is_empty() && sql.trim().trim_end_matches(';').contains(';') => {
            conn.execute_batch(sql).map_err(err)?;
            return Ok(vec![Ok(Either::Left(AnyQueryResult { rows_affected: conn.changes(), last_insert_id: None }))]);
        }
        Err(e) => return Err(err(e)),
    };
    for i in 1..=stmt.parameter_count() {
        // `$n` and `?n` name the n-th argument; a bare `?` takes the next one in order.
        let n = if positional.is_some() {
            i
        } else {
            stmt.parameter_name(i).and_then(|name| name[1..].parse::<usize>().ok()).unwrap_or(i)
        };
        let v = values.get(n - 1).ok_or_else(|| sqlx::Error::Protocol(format!("statement wants argument {n}")))?;
        bind(&mut stmt, i, v)?;
    }
    let readonly = stmt.readonly();
    let ncols = stmt.column_count();
    let names: Vec<UStr> = (0..ncols).map(|i| UStr::new(stmt.column_name(i).unwrap_or(""))).collect();
    let index: Arc<sqlx_core::HashMap<UStr, usize>> = Arc::new(names.iter().cloned().enumerate().map(|(i, n)| (n, i)).collect());
    let mut out = Vec::new();
    // The budget counts from this run: SQLite keeps a cached statement's count across runs.
    stmt.reset_status(rusqlite::StatementStatus::VmStep);
    let mut rows = stmt.raw_query();
    while let Some(row) = rows.next().map_err(err)? {
        if first_only && !out.is_empty() {
            continue; // stepped to the end all the same, so the statement's writes complete
        }
        let mut r = AnyRow { column_names: index.clone(), columns: Vec::with_capacity(ncols), values: Vec::with_capacity(ncols) };
        for (i, name) in names.iter().enumerate() {
            let kind = from_sqlite(row.get_ref(i).map_err(err)?)?;
            let type_info = AnyTypeInfo { kind: kind_of(&kind) };
            r.columns.push(AnyColumn { ordinal: i, name: name.clone(), type_info });
            r.values.push(AnyValue { kind });
        }
        out.push(Ok(Either::Right(r)));
    }
    drop(rows);
    let rows_affected = if readonly { 0 } else { conn.changes() };
    out.push(Ok(Either::Left(AnyQueryResult { rows_affected, last_insert_id: Some(conn.last_insert_rowid()) })));
    Ok(out)
}

/// Binds one argument (rusqlite copies text and blobs into SQLite).
fn bind(stmt: &mut rusqlite::Statement<'_>, i: usize, v: &AnyValueKind) -> Result<(), sqlx::Error> {
    match v {
        AnyValueKind::Null(_) => stmt.raw_bind_parameter(i, rusqlite::types::Null),
        AnyValueKind::Bool(b) => stmt.raw_bind_parameter(i, *b as i64),
        AnyValueKind::SmallInt(n) => stmt.raw_bind_parameter(i, *n as i64),
        AnyValueKind::Integer(n) => stmt.raw_bind_parameter(i, *n as i64),
        AnyValueKind::BigInt(n) => stmt.raw_bind_parameter(i, *n),
        AnyValueKind::Real(f) => stmt.raw_bind_parameter(i, *f as f64),
        AnyValueKind::Double(f) => stmt.raw_bind_parameter(i, *f),
        AnyValueKind::Text(s) => stmt.raw_bind_parameter(i, s.as_str()),
        AnyValueKind::TextSlice(s) => stmt.raw_bind_parameter(i, &**s),
        AnyValueKind::Blob(b) => stmt.raw_bind_parameter(i, b.as_slice()),
        other => return Err(sqlx::Error::Protocol(format!("unsupported argument {other:?}"))),
    }
    .map_err(err)
}

/// The same value kinds sqlx's SQLite driver gives the `Any` driver: the stored type of the
/// value (INTEGER → BIGINT, REAL → DOUBLE).
fn from_sqlite(v: ValueRef<'_>) -> Result<AnyValueKind, sqlx::Error> {
    Ok(match v {
        ValueRef::Null => AnyValueKind::Null(AnyTypeInfoKind::Null),
        ValueRef::Integer(i) => AnyValueKind::BigInt(i),
        ValueRef::Real(f) => AnyValueKind::Double(f),
        ValueRef::Text(t) => {
            let s = std::str::from_utf8(t).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            AnyValueKind::Text(Arc::new(s.to_string()))
        }
        ValueRef::Blob(b) => AnyValueKind::Blob(Arc::new(b.to_vec())),
    })
}

fn kind_of(v: &AnyValueKind) -> AnyTypeInfoKind {
    match v {
        AnyValueKind::BigInt(_) => AnyTypeInfoKind::BigInt,
        AnyValueKind::Double(_) => AnyTypeInfoKind::Double,
        AnyValueKind::Text(_) => AnyTypeInfoKind::Text,
        AnyValueKind::Blob(_) => AnyTypeInfoKind::Blob,
        _ => AnyTypeInfoKind::Null,
    }
}

/// SQLite's errors as sqlx reports them, so constraint violations keep their codes
/// (the error mapping turns UNIQUE and FOREIGN KEY failures into field errors).
pub(crate) fn err(e: rusqlite::Error) -> sqlx::Error {
    match e {
        rusqlite::Error::SqliteFailure(f, msg) => {
            sqlx::Error::Database(Box::new(LiteError { code: f.extended_code, message: msg.unwrap_or_else(|| f.to_string()) }))
        }
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// A SQLite error with its extended result code.
#[derive(Debug)]
struct LiteError {
    code: std::ffi::c_int,
    message: String,
}

impl std::fmt::Display for LiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LiteError {}

impl sqlx::error::DatabaseError for LiteError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(self.code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        use sqlx::error::ErrorKind;
        match self.code {
            2067 | 1555 => ErrorKind::UniqueViolation,
            787 => ErrorKind::ForeignKeyViolation,
            1299 => ErrorKind::NotNullViolation,
            275 => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn numbered_arguments_become_positional_outside_quotes_and_comments() {
        assert_eq!(numbered("SELECT $2, $1, $12 FROM t WHERE a = $1").as_deref(), Some("SELECT ?2, ?1, ?12 FROM t WHERE a = ?1"));
        assert_eq!(
            numbered("SELECT '$1', \"$2\", $3 -- $4 ?\n, $5 /* $6 ? */ FROM t").as_deref(),
            Some("SELECT '$1', \"$2\", ?3 -- $4 ?\n, ?5 /* $6 ? */ FROM t")
        );
        assert_eq!(numbered("SELECT 'it''s $1', $2").as_deref(), Some("SELECT 'it''s $1', ?2"));
        // Nothing to do, or a bare `?` that would take its index after the largest `?n`.
        assert_eq!(numbered("SELECT 1"), None);
        assert_eq!(numbered("SELECT '$1'"), None);
        assert_eq!(numbered("SELECT $1, ?"), None);
        assert_eq!(numbered("SELECT 'unterminated $1"), None);
    }
}
