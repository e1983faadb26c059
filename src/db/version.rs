//! Version counters in `settings`: how a node learns that another node changed something it
//! keeps in memory (grids, categories, who a token belongs to). A writer bumps the counter in
//! its transaction; readers compare it with the value they loaded at (`serve` polls every 2 s).

use super::{Db, Tx, get};
use crate::error::AppResult;

/// The current value of a version counter (`"0"` when never bumped).
pub async fn read(db: &Db, key: &str) -> AppResult<String> {
    let r = sqlx::query("SELECT value FROM settings WHERE key = $1").bind(key).fetch_optional(&db.pool).await?;
    Ok(match r {
        Some(r) => get::<String>(&r, "value")?,
        None => "0".into(),
    })
}

/// Moves a version, inside the transaction that made the change. The new value is random,
/// not a count: readers only compare for equality, and two nodes bumping at once still
/// leave a value neither has seen.
pub async fn bump(tx: &mut Tx, key: &str) -> AppResult<()> {
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2")
        .bind(key)
        .bind(crate::auth::random_hex(8))
        .execute(&mut *tx)
        .await?;
    Ok(())
}
