//! Secondary indexes set aside for a bulk load and built again after it: inserting 25 million
//! rows into tables with eight indexes slows to a crawl once the indexes outgrow the cache,
//! while building an index afterwards is one sort.
//!
//! The definitions are kept in `settings` in the transaction that drops the indexes, so a load
//! that is interrupted (killed, power lost) leaves them on record: the next [`restore`] (run
//! whenever a node opens the database) builds them again.

use sqlx::Executor;

use super::{Backend, Db, get};
use crate::error::{AppError, AppResult};

const KEY: &str = "indexes_set_aside";

/// Drops the plain secondary indexes of `tables` (uniqueness stays enforced: primary keys,
/// UNIQUE constraints and unique indexes are kept) and records how to build them again;
/// returns how many.
pub async fn set_aside(db: &Db, tables: &[&str]) -> AppResult<usize> {
    let mut defs: Vec<(String, String)> = Vec::new();
    for t in tables {
        let sql = match db.backend {
            Backend::Sqlite => {
                "SELECT name, sql AS def FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 AND sql LIKE 'CREATE INDEX %'"
            }
            Backend::Postgres => {
                "SELECT CAST(indexname AS TEXT) AS name, indexdef AS def FROM pg_indexes WHERE tablename = $1 AND schemaname = current_schema() \
                 AND indexdef LIKE 'CREATE INDEX %' AND indexname NOT IN (SELECT conname FROM pg_constraint)"
            }
        };
        for r in sqlx::query(sql).bind(*t).fetch_all(&db.pool).await? {
            defs.push((get(&r, "name")?, get(&r, "def")?));
        }
    }
    if defs.is_empty() {
        return Ok(0);
    }
    let mut tx = db.begin().await?;
    let mut all = pending(db).await?;
    all.extend(defs.iter().map(|(_, d)| d.clone()));
    let value = serde_json::to_string(&all).map_err(|e| AppError::Internal(e.to_string()))?;
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2")
        .bind(KEY)
        .bind(value)
        .execute(&mut tx)
        .await?;
    for (name, _) in &defs {
        tx.execute(sqlx::AssertSqlSafe(format!("DROP INDEX {name}"))).await?;
    }
    tx.commit().await?;
    Ok(defs.len())
}

async fn pending(db: &Db) -> AppResult<Vec<String>> {
    let v: Option<String> =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(KEY).fetch_optional(&db.pool).await?;
    match v {
        Some(v) => serde_json::from_str(&v).map_err(|e| AppError::Internal(format!("{KEY}: {e}"))),
        None => Ok(Vec::new()),
    }
}

/// Builds every index set aside and not built yet; returns how many. A no-op (one read) when
/// none is pending.
pub async fn restore(db: &Db) -> AppResult<usize> {
    let defs = pending(db).await?;
    if defs.is_empty() {
        return Ok(0);
    }
    tracing::warn!(count = defs.len(), "重建批量导入时暂去的索引");
    let mut tx = db.begin().await?;
    if db.backend == Backend::Postgres {
        // Index builds sort in memory up to this much (the default of 64 MB spills early).
        tx.execute("SET LOCAL maintenance_work_mem = '256MB'").await?;
    }
    for d in &defs {
        // Only plain `CREATE INDEX name …` statements are recorded; an index that exists
        // already (built by hand meanwhile) is left as it is.
        let d = d.replacen("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1);
        tx.execute(sqlx::AssertSqlSafe(d)).await?;
    }
    sqlx::query("DELETE FROM settings WHERE key = $1").bind(KEY).execute(&mut tx).await?;
    tx.commit().await?;
    Ok(defs.len())
}
