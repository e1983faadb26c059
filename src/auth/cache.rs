//! Who a token belongs to ([`resolve`]), kept in memory for a few seconds: looking it up in
//! the database cost a read three quarters of its time (65,000 bare requests/s, 17,000 with a
//! token).
//!
//! Whatever changes what a token resolves to — logout, revocation, an administrator's lock, a
//! password change — bumps `auth_version` in its transaction
//! ([`changed`]) and clears this node's cache after the commit ([`TokenCache::clear`]); other
//! nodes see the version move within two seconds (the poller of `serve`). An entry is read
//! again after [`TTL`] in any case, and expiry, lock and idle time are checked on every
//! request against the remembered values. A lockout after failed passwords changes nothing
//! here: it refuses new logins only ([`super::store::admin_locked`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::store::{USER_COLS, user_row};
use super::{Principal, Via, token_hash};
use crate::app::AppState;
use crate::db::{Db, Tx, get, now_ms};
use crate::error::AppResult;

/// How long an entry is trusted without asking the database again.
pub const TTL: Duration = Duration::from_secs(5);
/// Entries kept at most; past it the cache starts over (tokens in use at once are far fewer).
const CAP: usize = 50_000;
const KEY: &str = "auth_version";

/// What a token resolved to when it was read.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The caller (address left empty; set per request).
    pub principal: Principal,
    /// Account locked until (ms).
    pub locked_until: Option<i64>,
    /// Account disabled.
    pub disabled: bool,
    /// For a session: created and last seen (ms).
    pub session: Option<(i64, i64)>,
}

#[derive(Default)]
struct Entries {
    /// Bumped by every clear; an entry read before a clear is not stored after it.
    generation: u64,
    map: HashMap<String, (Instant, Resolved)>,
}

/// The cache, shared by the request handlers of one node.
#[derive(Clone, Default)]
pub struct TokenCache {
    entries: Arc<RwLock<Entries>>,
    version: Arc<Mutex<Option<String>>>,
}

impl TokenCache {
    /// A fresh entry for a token hash, if any.
    pub fn get(&self, token_hash: &str) -> Option<Resolved> {
        let e = self.entries.read().unwrap_or_else(|e| e.into_inner());
        e.map.get(token_hash).filter(|(at, _)| at.elapsed() < TTL).map(|(_, r)| r.clone())
    }

    /// The generation to pass to [`TokenCache::put`]; take it before reading the database.
    pub fn generation(&self) -> u64 {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).generation
    }

    /// Remembers what was read, unless the cache was cleared since `generation`.
    pub fn put(&self, token_hash: &str, generation: u64, r: Resolved) {
        let mut e = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if e.generation != generation {
            return;
        }
        if e.map.len() >= CAP {
            e.map.clear();
        }
        e.map.insert(token_hash.to_string(), (Instant::now(), r));
    }

    /// Notes a session's new last-seen time.
    pub fn touch(&self, token_hash: &str, last_seen: i64) {
        let mut e = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Some((_, Resolved { session: Some((_, last)), .. })) = e.map.get_mut(token_hash) {
            *last = last_seen;
        }
    }

    /// Forgets one token (its session was deleted).
    pub fn forget(&self, token_hash: &str) {
        self.entries.write().unwrap_or_else(|e| e.into_inner()).map.remove(token_hash);
    }

    /// Forgets every entry (after a commit that changed who a token belongs to).
    pub fn clear(&self) {
        let mut e = self.entries.write().unwrap_or_else(|e| e.into_inner());
        e.generation += 1;
        e.map.clear();
    }

    /// Clears when another node moved `auth_version`; true if it did.
    pub async fn refresh(&self, db: &Db) -> AppResult<bool> {
        let v = crate::db::version::read(db, KEY).await?;
        let moved = {
            let mut have = self.version.lock().unwrap_or_else(|e| e.into_inner());
            // Unknown counts as moved: the version may have moved before the first poll.
            let moved = have.as_ref() != Some(&v);
            *have = Some(v);
            moved
        };
        if moved {
            self.clear();
        }
        Ok(moved)
    }
}

/// Marks, inside the writing transaction, that some token may resolve differently now.
/// Clear this node's cache after the commit.
pub async fn changed(tx: &mut Tx) -> AppResult<()> {
    crate::db::version::bump(tx, KEY).await
}

/// Resolves a session token or personal access token into the caller, enforcing the idle
/// and absolute timeouts (expired sessions are deleted).
pub async fn resolve(st: &AppState, token: &str, ip: &str) -> AppResult<Option<Principal>> {
    let th = token_hash(token);
    let now = now_ms();
    let r = match st.tokens.get(&th) {
        Some(r) => r,
        None => {
            let generation = st.tokens.generation();
            let Some(r) = lookup(st, token, &th).await? else { return Ok(None) };
            st.tokens.put(&th, generation, r.clone());
            r
        }
    };
    // An administrator's lock, not a lockout after failed passwords: anyone can type a name
    // and five wrong passwords, which logged the account's owner out everywhere.
    let blocked = r.disabled || super::store::admin_locked(r.locked_until);
    let Some((created, last)) = r.session else {
        return Ok((!blocked).then(|| Principal { ip: ip.into(), ..r.principal }));
    };
    let expired = now - last > st.cfg.idle_timeout_secs * 1000 || now - created > st.cfg.absolute_timeout_secs * 1000;
    if expired || blocked {
        let mut tx = st.db.begin().await?;
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(&th).execute(&mut tx).await?;
        tx.commit().await?;
        st.tokens.forget(&th);
        return Ok(None);
    }
    // Touch at most every 15 s: a write per request would cost an fsync each on SQLite.
    if now - last > 15_000 {
        let mut tx = st.db.begin().await?;
        sqlx::query("UPDATE sessions SET last_seen = $1 WHERE token_hash = $2").bind(now).bind(&th).execute(&mut tx).await?;
        tx.commit().await?;
        st.tokens.touch(&th, now);
    }
    Ok(Some(Principal { ip: ip.into(), ..r.principal }))
}

/// Reads what a token belongs to from the database.
async fn lookup(st: &AppState, token: &str, th: &str) -> AppResult<Option<Resolved>> {
    let cols = USER_COLS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ");
    // The unit's name comes along: a unit contact's every step is labelled with it.
    let resolved = |r: &crate::db::Row, via: Via, session: Option<(i64, i64)>| -> AppResult<Resolved> {
        let u = user_row(r)?;
        let mut principal = u.principal(via, "");
        principal.must_change_password &= session.is_some();
        principal.unit_name = get(r, "unit_name")?;
        Ok(Resolved { principal, locked_until: u.locked_until, disabled: u.disabled, session })
    };
    let units = "LEFT JOIN units un ON un.id = u.unit_id";
    if token.starts_with("lpat_") {
        let sql = format!(
            "SELECT {cols}, un.name AS unit_name, t.id AS tid FROM api_tokens t JOIN users u ON u.id = t.user_id {units} \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)"
        );
        let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(th).bind(crate::db::now_ms());
        let Some(r) = q.fetch_optional(st.db.read()).await? else {
            return Ok(None);
        };
        return Ok(Some(resolved(&r, Via::Token, None)?));
    }
    let sql = format!(
        "SELECT {cols}, un.name AS unit_name, s.csrf, s.created_at AS s_created, s.last_seen FROM sessions s JOIN users u ON u.id = s.user_id \
         {units} WHERE s.token_hash = $1"
    );
    let Some(r) = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(th).fetch_optional(st.db.read()).await? else {
        return Ok(None);
    };
    let via = Via::Session { csrf: get(&r, "csrf")?, token_hash: th.to_string() };
    let session = Some((get(&r, "s_created")?, get(&r, "last_seen")?));
    Ok(Some(resolved(&r, via, session)?))
}
