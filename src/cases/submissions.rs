//! One case per submission: a form sent twice (a double tap on a slow phone, found by the
//! workflow probe: three taps made three cases) or a request a program retries under the same
//! `Idempotency-Key` makes one case, and the repeat is answered with the first one's number.
//!
//! The key is claimed in the writer's transaction that creates the case, once the case has its
//! number — after the year's counter row, which every creation locks first: in that order two
//! nodes' batches cannot wait for each other. A repeat in the same batch sees the claim (one
//! physical transaction); a repeat on another node waits on PostgreSQL for the first one's
//! commit. A repeat rolls its own work back (its number too: numbers stay gapless) and is
//! answered only once a commit after the first one's is done, so its answer is as durable as
//! the first's. The key is kept with a hash of what was submitted: the same key with other
//! content is no repeat (a form's page restored by the browser's back button, edited and sent
//! again; an API client's bug). Keys are kept a day (`housekeeping`).

use axum::http::HeaderMap;
use sha2::Digest;

use super::store::CreateInput;
use crate::auth::Principal;
use crate::db::{Tx, get};
use crate::error::{AppError, AppResult};

/// The longest key a client may send.
pub const KEY_MAX: usize = 100;

/// How long a key is kept.
pub const KEPT_MS: i64 = 24 * 3600 * 1000;

/// What claiming a key found.
pub enum Claim {
    /// The key is this submission's now.
    New,
    /// The same submission made this case before.
    Repeat(String),
    /// The key was used for something else.
    Other,
}

/// Claims `key` for the case `number` about to be made from `i`.
pub async fn claim(tx: &mut Tx, key: &str, i: &CreateInput, number: &str, now: i64) -> AppResult<Claim> {
    let print = fingerprint(i);
    let r = sqlx::query(
        "INSERT INTO submissions (key, fingerprint, case_number, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING",
    )
    .bind(key)
    .bind(&print)
    .bind(number)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() == 1 {
        return Ok(Claim::New);
    }
    let row =
        sqlx::query("SELECT fingerprint, case_number FROM submissions WHERE key = $1").bind(key).fetch_one(&mut *tx).await?;
    Ok(if get::<String>(&row, "fingerprint")? == print { Claim::Repeat(get(&row, "case_number")?) } else { Claim::Other })
}

/// Whether a case was already made under `key` (committed; a repeat racing its first is
/// recognised by [`claim`] instead).
pub async fn made(db: &crate::db::Db, key: &str) -> AppResult<bool> {
    Ok(sqlx::query("SELECT 1 AS one FROM submissions WHERE key = $1").bind(key).fetch_optional(db.read()).await?.is_some())
}

/// A hash of what a submission asks for (photos aside: a repeat sends the same ones).
fn fingerprint(i: &CreateInput) -> String {
    let text = serde_json::json!([
        i.category,
        i.description,
        i.title,
        i.lng,
        i.lat,
        i.crs,
        i.grid,
        i.address,
        i.channel,
        i.reporter_name,
        i.reporter_phone,
        i.private,
        i.attrs
    ]);
    crate::audit::hex(&sha2::Sha256::digest(text.to_string().as_bytes()))
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
