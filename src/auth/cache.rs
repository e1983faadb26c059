//! Who a token belongs to, kept in memory for a few seconds: looking it up in the database
//! cost a read three quarters of its time (65,000 bare requests/s, 17,000 with a token).
//!
//! Whatever changes what a token resolves to — logout, revocation, a lock (by an admin or
//! after failed logins), a password change — bumps `auth_version` in its transaction
//! ([`changed`]) and clears this node's cache after the commit ([`TokenCache::clear`]); other
//! nodes see the version move within two seconds (the poller of `serve`). An entry is read
//! again after [`TTL`] in any case, and expiry, lock and idle time are checked on every
//! request against the remembered values.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::Principal;
use crate::db::{Db, Tx};
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
