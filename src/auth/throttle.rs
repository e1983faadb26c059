//! Failure counters per key in a window (table `ip_throttle`): a login's client address, a
//! public case lookup's address and case. Kept in the database so every node counts the same
//! failures.

use crate::app::AppState;
use crate::db::{get, now_ms};
use crate::error::AppResult;

/// Counts one failure of `key` in a window of `window_ms` (a new window once the last ran out);
/// returns the window's count.
pub async fn note(st: &AppState, key: &str, window_ms: i64) -> AppResult<i64> {
    let now = now_ms();
    let mut tx = st.db.begin().await?;
    let row = sqlx::query(
        "INSERT INTO ip_throttle (ip, window_start, failures) VALUES ($1, $2, 1) \
         ON CONFLICT (ip) DO UPDATE SET \
           failures = CASE WHEN ip_throttle.window_start < $3 THEN 1 ELSE ip_throttle.failures + 1 END, \
           window_start = CASE WHEN ip_throttle.window_start < $3 THEN $2 ELSE ip_throttle.window_start END \
         RETURNING failures",
    )
    .bind(key)
    .bind(now)
    .bind(now - window_ms)
    .fetch_one(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(get(&row, "failures")?)
}

/// `key`'s current window of `window_ms`, if it has one: when it began, and its failures.
async fn window(st: &AppState, key: &str, window_ms: i64) -> AppResult<Option<(i64, i64)>> {
    let row = sqlx::query("SELECT window_start, failures FROM ip_throttle WHERE ip = $1 AND window_start >= $2")
        .bind(key)
        .bind(now_ms() - window_ms)
        .fetch_optional(st.db.read())
        .await?;
    Ok(match row {
        Some(r) => Some((get(&r, "window_start")?, get(&r, "failures")?)),
        None => None,
    })
}

/// True when `key` has failed `limit` times or more in its current window of `window_ms`.
pub async fn blocked(st: &AppState, key: &str, limit: i64, window_ms: i64) -> AppResult<bool> {
    Ok(window(st, key, window_ms).await?.is_some_and(|(_, failures)| failures >= limit))
}

/// When `key`'s current window of `window_ms` began, if it has one.
pub async fn since(st: &AppState, key: &str, window_ms: i64) -> AppResult<Option<i64>> {
    Ok(window(st, key, window_ms).await?.map(|(start, _)| start))
}
