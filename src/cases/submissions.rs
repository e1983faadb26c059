//! One case per submission: a form sent twice (a double tap on a slow phone, found by the
//! workflow probe: three taps made three cases) or a request a program retries under the same
//! `Idempotency-Key` makes one case, and the repeat is answered with the first one's number.
//!
//! The key is claimed in the writer's transaction that creates the case, before the case takes
//! its number: a repeat in the same batch sees the claim (one physical transaction), a repeat
//! on another node waits on PostgreSQL for the first one's commit. A repeat is answered only
//! after the commit that holds the first case, so its answer is as durable as the first's.
//! Keys are kept a day (`housekeeping`).

use axum::http::HeaderMap;

use crate::auth::Principal;
use crate::db::{Tx, get};
use crate::error::{AppError, AppResult};

/// The longest key a client may send.
pub const KEY_MAX: usize = 100;

/// How long a key is kept.
pub const KEPT_MS: i64 = 24 * 3600 * 1000;

/// Claims `key`; the number of the case already made under it, if any.
pub async fn claim(tx: &mut Tx, key: &str, now: i64) -> AppResult<Option<String>> {
    let r =
        sqlx::query("INSERT INTO submissions (key, case_number, created_at) VALUES ($1, '', $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    if r.rows_affected() == 1 {
        return Ok(None);
    }
    let row = sqlx::query("SELECT case_number FROM submissions WHERE key = $1").bind(key).fetch_one(&mut *tx).await?;
    Ok(Some(get(&row, "case_number")?))
}

/// Records the number of the case made under `key` (claimed by [`claim`] in the same
/// transaction).
pub async fn made(tx: &mut Tx, key: &str, number: &str) -> AppResult<()> {
    sqlx::query("UPDATE submissions SET case_number = $1 WHERE key = $2").bind(number).bind(key).execute(&mut *tx).await?;
    Ok(())
}

/// The key of an API request: its `Idempotency-Key` header, kept apart per account (one
/// client's key is no other's).
pub fn of_request(headers: &HeaderMap, p: &Principal) -> AppResult<Option<String>> {
    let Some(v) = headers.get("idempotency-key") else { return Ok(None) };
    let k = v.to_str().unwrap_or_default().trim();
    if k.is_empty() || k.len() > KEY_MAX || !k.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::BadRequest(format!("Idempotency-Key 应为 1～{KEY_MAX} 个可见 ASCII 字符")));
    }
    Ok(Some(format!("api:{}:{k}", p.user_id)))
}

/// The key of a form: the one-time value the page put in it (random, so no other form's).
/// A value that is not one of ours is ignored (the form then works as it did without it).
pub fn of_form(once: &str) -> Option<String> {
    let k = once.trim();
    (k.len() == 32 && k.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("form:{k}"))
}

/// A new form's one-time value.
pub fn new_form_key() -> String {
    crate::auth::random_hex(16)
}
