//! Storage: one `sqlx::Any` pool over SQLite or PostgreSQL, chosen by the URL scheme.
//!
//! The schema and every query are written once in portable SQL (see `docs/architecture.md`);
//! the only backend differences live here: connection pragmas, the DDL tokens of the
//! migrations, how a write transaction begins, and how a backup is taken.

pub mod bulk;
pub mod cache;
mod carry;
mod counters;
mod deferred;
mod durable;
mod exec;
mod group;
pub mod indexes;
mod inline;
mod link;
pub mod list;
mod lite;
pub mod migrate;
pub mod rows;
pub mod version;

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor};

pub use deferred::{Deferred, Finish};
pub use exec::Read;
pub use group::Tx;

pub use migrate::migrate;

/// Makes a file this process created readable and writable by its owner only (Unix).
fn private_file(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(error = %e, path = %path.display(), "无法把文件设为仅本账号可读写");
        }
    }
}

/// Which engine sits behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file (WAL; the writer's commits are synced before they are answered).
    Sqlite,
    /// PostgreSQL server, the scale-out path.
    Postgres,
}

/// A row as returned by the pool.
pub type Row = AnyRow;

/// The database handle shared by web, CLI and jobs.
#[derive(Clone, Debug)]
pub struct Db {
    /// sqlx's pool: streamed reads, reads that scan whole tables by design (the grid index,
    /// rollup verification), reads over the in-place budget, writes outside the writer
    /// (migrations). Other reads go through [`Db::read`].
    pub pool: AnyPool,
    /// The single writer with group commit (see [`group`]). On SQLite it owns a connection of
    /// its own, driven in place (see [`lite`]), so writers queue in-process instead of
    /// spinning on SQLITE_BUSY.
    writer: Arc<group::Writer>,
    /// Connections for reads (see [`Db::read`]).
    quick: exec::Quick,
    /// The engine.
    pub backend: Backend,
    /// List scopes recently seen over the count cap (see [`list::BigScopes`]).
    big: Arc<list::BigScopes>,
    /// Case rows read lately (PostgreSQL, while [`cache::listen`] runs; see [`cache`]).
    pub case_cache: Arc<cache::RowCache>,
}

impl Db {
    /// Connects (creating the SQLite file and its directory if needed).
    pub async fn connect(url: &str) -> Result<Db, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(sqlx::Error::Configuration(
                format!("不支持的数据库地址：{}（应以 sqlite: 或 postgres: 开头）", redact_url(url)).into(),
            ));
        };
        match backend {
            Backend::Sqlite => {
                let path = sqlite_path(url);
                lite::configure_process();
                let new = !std::path::Path::new(path).exists();
                // The writer's connection first: a file that cannot be opened is said at once
                // (the pool retried for 30 s and then said only "pool timed out").
                let sqlite_url = sqlite_url(url).map_err(|e| cannot_open(path, &e))?;
                let writer_conn = lite::open(path).map_err(|e| cannot_open(path, &e))?;
                let pool = sqlite_pool(&sqlite_url, 8).await.map_err(|e| cannot_open(path, &e))?;
                if new {
                    // Personal data lives here (encrypted, but names, notes and the audit log
                    // are not): readable by the service's account only, like the key file. The
                    // WAL and shared-memory files SQLite makes take the database's mode.
                    private_file(std::path::Path::new(path));
                }
                let case_cache = Arc::<cache::RowCache>::default();
                let writer = Arc::new(group::Writer::sqlite(writer_conn, path, case_cache.clone()));
                Ok(Db { writer, quick: exec::Quick::lite(path, pool.clone()), pool, backend, big: Arc::default(), case_cache })
            }
            Backend::Postgres => {
                // One connection first: a refused one or a missing database is said at once
                // (the pool retries until its timeout and then says only "pool timed out").
                {
                    use sqlx::Connection;
                    let first = tokio::time::timeout(Duration::from_secs(10), sqlx::PgConnection::connect(url)).await;
                    match first {
                        Ok(Ok(c)) => drop(c.close().await),
                        Ok(Err(e)) => return Err(cannot_reach(url, e)),
                        Err(_) => return Err(cannot_reach(url, sqlx::Error::PoolTimedOut)),
                    }
                }
                let pool = pool_options()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // Every read is bounded by an index; a parallel plan only adds the
                            // start of its workers: a county's 20 newest cases, walked, took
                            // 5.7 ms with two workers (1 M megacity) against 0.6 ms without.
                            conn.execute("SET max_parallel_workers_per_gather = 0").await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await
                    .map_err(|e| cannot_reach(url, e))?;
                check_collation(&pool).await?;
                let quick = exec::Quick::Pool(pool.clone());
                let case_cache = Arc::<cache::RowCache>::default();
                let writer = Arc::new(group::Writer::pg(pool.clone(), case_cache.clone()));
                Ok(Db { writer, quick, pool, backend, big: Arc::default(), case_cache })
            }
        }
    }

    /// Begins a logical write transaction in the writer's current batch (group commit).
    /// On SQLite the batch holds the write lock from its start (`BEGIN IMMEDIATE`), so a
    /// transaction that reads before it writes cannot fail half-way with a stale snapshot.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        self.writer.begin(false).await
    }

    /// [`Db::begin`] for a transaction that deletes or recounts rows other transactions defer
    /// (notifications, search postings, rollups; see [`Deferred`]): what the batch's earlier
    /// transactions deferred is written before it starts, so it sees and acts on all of it.
    pub async fn begin_after_deferred(&self) -> Result<Tx, sqlx::Error> {
        self.writer.begin(true).await
    }

    /// Runs each statement as a quick read of its own: `sqlx::query(..).fetch_all(db.read())`.
    /// On SQLite it runs in place unless it goes over the read budget, then on the pool; on
    /// PostgreSQL it is the pool.
    pub fn read(&self) -> exec::Read<'_> {
        exec::Read(&self.quick)
    }

    /// In-place reads that went over their budget and ran again on the pool (SQLite).
    pub fn read_overflows(&self) -> u64 {
        self.quick.overflows()
    }

    /// Tunes the SQLite writer for serving requests: each request's savepoint journal (a few
    /// pages) stays in memory instead of going through a temporary file, about 10 % more
    /// writes per second. Not for bulk work (the generator, rebuilds, index builds), whose
    /// sorts and journals would then grow in memory with the data; `linli serve` and the
    /// tests call it, the other commands do not.
    pub async fn for_requests(&self) -> Result<(), sqlx::Error> {
        self.writer.setting("PRAGMA temp_store=MEMORY").await
    }

    /// Tells the database layer that this process does bulk work (the generator, rebuilds):
    /// statements over a second are its normal case, and are logged at debug level instead of
    /// as warnings. `linli serve` never calls it.
    pub fn expect_long_statements(&self) {
        lite::expect_long_statements();
    }

    /// (logical write transactions committed, physical commits that carried them): their
    /// ratio is the group-commit batch size.
    pub fn write_stats(&self) -> (u64, u64) {
        self.writer.stats()
    }

    /// Statements that carried the release of the request before them in the same message
    /// (PostgreSQL; see `db::carry`).
    pub fn releases_carried(&self) -> u64 {
        self.writer.carried()
    }

    /// Write transactions waiting for the writer at this moment (the queue of group commit).
    pub fn writer_waiting(&self) -> usize {
        self.writer.waiting()
    }

    /// SQLite WAL syncs since start: with [`Db::write_stats`], commits per sync (0 on
    /// PostgreSQL, whose commits sync themselves).
    pub fn wal_syncs(&self) -> u64 {
        self.writer.syncs()
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await.is_ok()
    }

    /// Writes a consistent copy of a running SQLite database to `dest` (VACUUM INTO).
    /// PostgreSQL deployments use `pg_dump` (see docs/operations.md).
    pub async fn backup_to(&self, dest: &std::path::Path) -> Result<(), sqlx::Error> {
        if self.backend != Backend::Sqlite {
            return Err(sqlx::Error::Configuration("PostgreSQL 请使用 pg_dump 备份（见 docs/operations.md）".into()));
        }
        let quoted = dest.to_string_lossy().replace('\'', "''");
        let sql = format!("VACUUM INTO '{quoted}'");
        self.pool.execute(sqlx::AssertSqlSafe(sql)).await?;
        private_file(dest);
        Ok(())
    }

    /// Gives the writer a large page cache (256 MB) and a helper thread for its sorts (index
    /// builds, GROUP BY) for bulk work, or back the defaults. Index maintenance on a table of
    /// millions of rows is dominated by re-reading B-tree pages that a 2 MB cache cannot hold,
    /// and a sort bigger than memory merges its runs on two threads (the second core is idle
    /// otherwise). PostgreSQL's memory and workers are the server's business.
    pub async fn bulk_cache(&self, on: bool) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Sqlite {
            let mut tx = self.begin().await?;
            let sql = if on {
                "PRAGMA cache_size = -262144; PRAGMA threads = 2"
            } else {
                "PRAGMA cache_size = -2000; PRAGMA threads = 0"
            };
            tx.execute(sql).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Size of the database in bytes (for disk-use reports).
    pub async fn size_bytes(&self) -> Result<i64, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => {
                let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(&self.pool).await?;
                let size: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(&self.pool).await?;
                Ok(pages * size)
            }
            Backend::Postgres => {
                sqlx::query_scalar("SELECT CAST(pg_database_size(current_database()) AS BIGINT)").fetch_one(&self.pool).await
            }
        }
    }

    /// After rows were inserted with explicit ids, moves PostgreSQL's identity sequence past
    /// them (SQLite's AUTOINCREMENT follows by itself).
    pub async fn fix_sequence(&self, table: &str) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Postgres {
            let sql =
                format!("SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(MAX(id), 1) FROM {table}))");
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&self.pool).await?;
        }
        Ok(())
    }

    /// After a bulk load, refreshes PostgreSQL's statistics at once instead of whenever
    /// autovacuum comes round (if it is on at all): without them a megacity just generated was
    /// planned on default guesses — a county-wide search read all 1 M cases (1.2 s) and a
    /// community's list walked 145,000 of them (32–64 ms); 31 ms and 3 ms after `ANALYZE`.
    /// SQLite's planner is left without statistics, as the queries were tuned.
    pub async fn analyze(&self) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Postgres {
            sqlx::query("ANALYZE").execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Closes both pools, flushing SQLite's WAL.
    pub async fn close(&self) {
        self.writer.close().await;
        self.quick.close();
        self.pool.close().await;
    }
}

/// Codes and tree paths are compared as bytes (prefix ranges, sort order equal to SQLite's), so
/// a PostgreSQL database must sort in the C collation. Checked by behaviour, not by catalog
/// columns, so an ICU default collation is caught as well.
async fn check_collation(pool: &AnyPool) -> Result<(), sqlx::Error> {
    let bytewise: i64 = sqlx::query_scalar("SELECT CAST(CASE WHEN 'B' < 'a' AND '/5/~' > '/5/1/' THEN 1 ELSE 0 END AS BIGINT)")
        .fetch_one(pool)
        .await?;
    if bytewise == 1 {
        return Ok(());
    }
    Err(sqlx::Error::Configuration(
        "PostgreSQL 数据库的排序规则不是 C（按字节比较），linli 需要 C 排序规则。请这样建库：\
         CREATE DATABASE linli TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'"
            .into(),
    ))
}

/// The file of an SQLite URL.
/// Why a SQLite file could not be opened, for the operator (the detail is logged).
fn cannot_open(path: &str, e: &sqlx::Error) -> sqlx::Error {
    tracing::warn!(error = %e, path, "无法打开数据库文件");
    let file = std::path::Path::new(path);
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let why = if !dir.exists() {
        format!("目录 {} 不存在且无法创建", dir.display())
    } else if std::fs::metadata(dir).is_ok_and(|m| m.permissions().readonly())
        || std::fs::metadata(file).is_ok_and(|m| m.permissions().readonly())
    {
        "文件或其目录只读".to_string()
    } else {
        "文件或目录不可读写（只读的文件系统、权限不足或文件已损坏）".to_string()
    };
    sqlx::Error::Configuration(format!("无法打开数据库文件 {path}：{why}；请检查 --data-dir 或 --database-url").into())
}

/// Why a PostgreSQL server could not be used, in words (sqlx's are English).
fn cannot_reach(url: &str, e: sqlx::Error) -> sqlx::Error {
    tracing::warn!(error = %e, "无法连接 PostgreSQL");
    let at = redact_url(url);
    let why = match &e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("3D000") => {
            "该数据库不存在（请先用 createdb 或 CREATE DATABASE 建库）".to_string()
        }
        sqlx::Error::Database(d) if d.code().as_deref().is_some_and(|c| c.starts_with("28")) => "用户名或密码被拒绝".to_string(),
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => "10 秒内未能建立连接（检查地址、端口，以及服务是否在运行）".to_string(),
        _ => return e,
    };
    sqlx::Error::Configuration(format!("无法连接 PostgreSQL {at}：{why}").into())
}

/// The SQLite file a URL names (`None` for PostgreSQL).
pub fn sqlite_file(url: &str) -> Option<&std::path::Path> {
    url.starts_with("sqlite:").then(|| std::path::Path::new(sqlite_path(url)))
}

fn sqlite_path(url: &str) -> &str {
    url.trim_start_matches("sqlite://").trim_start_matches("sqlite:").split('?').next().unwrap_or_default()
}

/// The URL for sqlx's pool (creating the file's directory, and the file with `mode=rwc`).
fn sqlite_url(url: &str) -> Result<String, sqlx::Error> {
    if let Some(dir) = std::path::Path::new(sqlite_path(url)).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
    }
    Ok(if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    })
}

/// Pool settings both engines share. sqlx pings every idle connection it hands out, one more
/// round trip per query on PostgreSQL; a connection in steady use is known to be alive, so only
/// one idle for more than 30 s (the server may have restarted or dropped it) is pinged first.
fn pool_options() -> AnyPoolOptions {
    AnyPoolOptions::new().test_before_acquire(false).before_acquire(|conn, meta| {
        Box::pin(async move {
            if meta.idle_for > Duration::from_secs(30) {
                sqlx::Connection::ping(conn).await?;
            }
            Ok(true)
        })
    })
}

async fn sqlite_pool(url: &str, max: u32) -> Result<AnyPool, sqlx::Error> {
    pool_options()
        .max_connections(max)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .after_connect(|conn, _| {
            Box::pin(async move {
                // synchronous=FULL: an acknowledged commit survives power loss, not only a crash.
                conn.execute(
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; \
                     PRAGMA busy_timeout=10000;",
                )
                .await?;
                Ok(())
            })
        })
        .connect(url)
        .await
}

/// Hides the password of a database URL for logs and messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Milliseconds since the Unix epoch, the representation of every timestamp column.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Reads a column, mapping a decode error into sqlx's error.
pub fn get<'r, T>(row: &'r Row, col: &str) -> Result<T, sqlx::Error>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    sqlx::Row::try_get(row, col)
}

/// The exclusive upper bound of the strings that start with `prefix`, for a range condition
/// `col >= prefix AND col < prefix_end(prefix)` that an index serves on both engines (LIKE
/// cannot use one on SQLite, where it is case-insensitive). Both compare bytewise: SQLite's
/// BINARY collation, and PostgreSQL in C collation, which [`Db::connect`] insists on.
pub fn prefix_end(prefix: &str) -> String {
    format!("{prefix}{}", char::MAX)
}

/// Escapes `%`, `_` and `\` for a LIKE pattern used with `ESCAPE '\'`.
pub fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://./a.db"), "sqlite://./a.db");
    }

    #[test]
    fn like_escape_escapes_wildcards() {
        assert_eq!(like_escape("a%b_c\\"), "a\\%b\\_c\\\\");
    }
}
