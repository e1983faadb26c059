//! A node's memory of rows it read lately, kept true by versions (PostgreSQL only).
//!
//! Why: on PostgreSQL every read is a round trip and a statement for the server, and a case
//! page is read far more often than it changes. Each cached row carries its `version`, which
//! every change bumps. A change made through this node's writer records the new version at
//! once ([`RowCache::changed`], before its commit); a change made by any other process —
//! another node, the CLI, `psql` — reaches every node as a `NOTIFY` from a trigger
//! (migration 0009), which the listener of [`listen`] turns into [`RowCache::notified`]. A
//! value read before a change is never stored over the change: [`RowCache::put`] keeps a row
//! only if its version is at least the newest one heard of, if no notification about it came
//! since the read began (its [`Ticket`]; an outside change need not bump the version), and if
//! nothing was forgotten wholesale meanwhile.
//!
//! The cache is on only while its listener is connected: before it listens, and whenever the
//! connection drops (notifications sent meanwhile are lost), every lookup misses and nothing
//! is stored; on reconnecting it starts empty. On SQLite it stays off: reads there are
//! in-process and as cheap as a lookup, and a CLI process writing the same file could not
//! tell a server.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Rows kept at most; past it everything is forgotten (cheaper than tracking use, and a
/// full cache of case pages is tens of MB at most).
const CAP: usize = 20_000;

/// The channel the trigger of migration 0009 notifies on.
pub const CHANNEL: &str = "linli_cases";

type Value = Arc<dyn Any + Send + Sync>;

/// See the module documentation.
#[derive(Default)]
pub struct RowCache {
    on: AtomicBool,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for RowCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowCache").field("on", &self.on.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    /// Moves with every notification and every wholesale forgetting.
    seq: u64,
    /// Reads that began before this are not stored (everything was forgotten since).
    floor: u64,
    /// Natural key (a case number) → id.
    ids: HashMap<String, i64>,
    slots: HashMap<i64, Slot>,
    /// Moves whenever any case is added, changed or deleted, by any process.
    lists_seq: u64,
    /// Whole lists (pages of a case list, by their query), read at `lists_seq`.
    lists: HashMap<String, Value>,
}

struct Slot {
    /// The newest version heard of: nothing older is stored.
    newest: i64,
    /// `seq` of the last notification about the row: reads that began before are not stored.
    notified: u64,
    /// The row at `.0` (its version), if one is kept.
    row: Option<(i64, Value)>,
}

/// Taken before a read whose result is to be stored (see [`RowCache::put`]).
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

impl RowCache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic under the lock leaves only a map behind: still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether lookups may be answered now.
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    /// Turns the cache on or off; either way it starts empty.
    pub fn set_on(&self, on: bool) {
        // Off first, so that no store slips in between the clearing and the switch.
        if !on {
            self.on.store(false, Ordering::Release);
        }
        self.forget_all();
        if on {
            self.on.store(true, Ordering::Release);
        }
    }

    /// The row stored under natural key `key`, if it is there.
    pub fn get(&self, key: &str) -> Option<Value> {
        if !self.is_on() {
            return None;
        }
        let g = self.lock();
        let found = g.ids.get(key).and_then(|id| g.slots.get(id)).and_then(|s| s.row.as_ref()).map(|(_, v)| v.clone());
        drop(g);
        let n = if found.is_some() { &self.hits } else { &self.misses };
        n.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// A ticket for a read about to start, or `None` when nothing is to be stored.
    pub fn ticket(&self) -> Option<Ticket> {
        self.is_on().then(|| Ticket(self.lock().seq))
    }

    /// Stores row `id` (natural key `key`) at `version`, read under `t`, unless a newer version
    /// was heard of or everything was forgotten since `t` was taken.
    pub fn put(&self, t: Ticket, key: &str, id: i64, version: i64, value: Value) {
        let mut g = self.lock();
        if !self.is_on() || t.0 < g.floor {
            return;
        }
        if g.slots.len() >= CAP && !g.slots.contains_key(&id) {
            forget(&mut g);
            return;
        }
        let slot = g.slots.entry(id).or_insert(Slot { newest: version, notified: 0, row: None });
        if version < slot.newest || slot.notified > t.0 || slot.row.as_ref().is_some_and(|(v, _)| *v > version) {
            return;
        }
        slot.newest = version;
        slot.row = Some((version, value));
        g.ids.insert(key.to_string(), id);
    }

    /// This node's writer gives row `id` `version` (its commit to come): an older copy is
    /// dropped and never stored again.
    pub fn changed(&self, id: i64, version: i64) {
        self.heard(id, version, false);
    }

    /// A committed change to row `id`, now at `version`, made by any process: whatever copy
    /// is kept is dropped, and no read that began before is stored.
    pub fn notified(&self, id: i64, version: i64) {
        self.heard(id, version, true);
    }

    fn heard(&self, id: i64, version: i64, committed: bool) {
        if !self.is_on() {
            return;
        }
        let mut g = self.lock();
        if g.slots.len() >= CAP && !g.slots.contains_key(&id) {
            forget(&mut g);
            return;
        }
        g.seq += 1;
        let seq = g.seq;
        let slot = g.slots.entry(id).or_insert(Slot { newest: version, notified: 0, row: None });
        slot.newest = slot.newest.max(version);
        if committed {
            slot.notified = seq;
        }
        if committed || slot.row.as_ref().is_some_and(|(v, _)| *v < version) {
            slot.row = None;
        }
    }

    /// Forgets every row (a deletion, or a message that could not be read).
    pub fn forget_all(&self) {
        forget(&mut self.lock());
    }

    /// The list stored under `key` (its query), if no case moved since it was read.
    pub fn list(&self, key: &str) -> Option<Value> {
        if !self.is_on() {
            return None;
        }
        let found = self.lock().lists.get(key).cloned();
        let n = if found.is_some() { &self.hits } else { &self.misses };
        n.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// A ticket for a list read about to start, or `None` when nothing is to be stored.
    pub fn list_ticket(&self) -> Option<Ticket> {
        self.is_on().then(|| Ticket(self.lock().lists_seq))
    }

    /// Stores a list read under `t`, unless a case moved since `t` was taken.
    pub fn put_list(&self, t: Ticket, key: &str, value: Value) {
        let mut g = self.lock();
        if !self.is_on() || t.0 != g.lists_seq {
            return;
        }
        if g.lists.len() >= CAP / 4 {
            g.lists.clear();
        }
        g.lists.insert(key.to_string(), value);
    }

    /// A case was added, changed or deleted (committed): every list is forgotten.
    pub fn lists_moved(&self) {
        let mut g = self.lock();
        g.lists_seq += 1;
        g.lists.clear();
    }

    /// (hits, misses) since start.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }

    /// Applies a notification's payload: `id:version`, several separated by commas, `+`
    /// (cases added) or `*` (deleted).
    pub fn apply(&self, payload: &str) {
        self.lists_moved();
        if payload == "+" {
            return;
        }
        for item in payload.split(',') {
            match item.split_once(':').and_then(|(i, v)| Some((i.parse().ok()?, v.parse().ok()?))) {
                Some((id, version)) => self.notified(id, version),
                None => {
                    self.forget_all();
                    return;
                }
            }
        }
    }
}

fn forget(g: &mut Inner) {
    g.seq += 1;
    g.floor = g.seq;
    g.lists_seq += 1;
    g.lists.clear();
    g.ids.clear();
    g.slots.clear();
}

/// Listens for other processes' changes (PostgreSQL) and keeps `cache` on while connected;
/// runs until the process ends, reconnecting after a second when the connection drops.
pub async fn listen(cache: Arc<RowCache>, url: String) {
    loop {
        match sqlx::postgres::PgListener::connect(&url).await {
            Ok(mut l) => match l.listen(CHANNEL).await {
                Ok(()) => {
                    // Listening from here on: whatever changes now is heard of.
                    cache.set_on(true);
                    loop {
                        match l.try_recv().await {
                            Ok(Some(n)) => cache.apply(n.payload()),
                            Ok(None) => break,
                            Err(e) => {
                                tracing::warn!(error = %e, "案件缓存的通知连接出错");
                                break;
                            }
                        }
                    }
                    cache.set_on(false);
                }
                Err(e) => tracing::warn!(error = %e, "案件缓存无法订阅通知"),
            },
            Err(e) => tracing::warn!(error = %e, "案件缓存无法连接数据库"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(s: &str) -> Value {
        Arc::new(s.to_string())
    }

    fn got(c: &RowCache, key: &str) -> Option<String> {
        c.get(key).map(|v| v.downcast_ref::<String>().unwrap().clone())
    }

    #[test]
    fn off_until_switched_on() {
        let c = RowCache::default();
        assert!(c.ticket().is_none());
        c.set_on(true);
        let t = c.ticket().unwrap();
        c.put(t, "A", 1, 3, val("v3"));
        assert_eq!(got(&c, "A").as_deref(), Some("v3"));
        c.set_on(false);
        assert_eq!(got(&c, "A"), None);
        c.put(t, "A", 1, 3, val("v3"));
        c.set_on(true);
        assert_eq!(got(&c, "A"), None, "switching on starts empty, and an old ticket stores nothing");
    }

    #[test]
    fn a_read_from_before_a_change_is_not_stored() {
        let c = RowCache::default();
        c.set_on(true);
        let t = c.ticket().unwrap();
        // The read saw version 3; meanwhile the row moved to 4.
        c.changed(1, 4);
        c.put(t, "A", 1, 3, val("v3"));
        assert_eq!(got(&c, "A"), None);
        c.put(c.ticket().unwrap(), "A", 1, 4, val("v4"));
        assert_eq!(got(&c, "A").as_deref(), Some("v4"));
        // An older read arriving late does not overwrite a newer copy.
        c.put(c.ticket().unwrap(), "A", 1, 3, val("v3"));
        assert_eq!(got(&c, "A").as_deref(), Some("v4"));
        c.apply("1:5");
        assert_eq!(got(&c, "A"), None, "a notified change drops the copy");
        // A change from outside need not bump the version: a read from before it is refused.
        let t = c.ticket().unwrap();
        c.apply("1:5");
        c.put(t, "A", 1, 5, val("v5 as it was"));
        assert_eq!(got(&c, "A"), None);
        c.put(c.ticket().unwrap(), "A", 1, 5, val("v5"));
        assert_eq!(got(&c, "A").as_deref(), Some("v5"));
    }

    #[test]
    fn forgetting_everything_voids_tickets() {
        let c = RowCache::default();
        c.set_on(true);
        let t = c.ticket().unwrap();
        c.apply("*");
        c.put(t, "A", 1, 3, val("v3"));
        assert_eq!(got(&c, "A"), None);
        c.put(c.ticket().unwrap(), "A", 1, 3, val("v3"));
        c.apply("2:1,garbage");
        assert_eq!(got(&c, "A"), None, "an unreadable payload forgets everything");
        assert_eq!(c.stats().0, 0);
    }

    #[test]
    fn lists_last_until_a_case_moves() {
        let c = RowCache::default();
        c.set_on(true);
        let t = c.list_ticket().unwrap();
        c.put_list(t, "q", val("page"));
        assert!(c.list("q").is_some());
        c.apply("+");
        assert!(c.list("q").is_none(), "a new case anywhere");
        c.put_list(t, "q", val("page"));
        assert!(c.list("q").is_none(), "a list read before the change is not kept");
        c.put_list(c.list_ticket().unwrap(), "q", val("page"));
        c.apply("7:2");
        assert!(c.list("q").is_none(), "a changed case anywhere");
        c.put_list(c.list_ticket().unwrap(), "q", val("page"));
        c.lists_moved();
        assert!(c.list("q").is_none(), "this node's own commit");
    }

    #[test]
    fn bounded() {
        let c = RowCache::default();
        c.set_on(true);
        for i in 0..(CAP as i64 + 5) {
            c.put(c.ticket().unwrap(), &format!("K{i}"), i, 1, val("x"));
        }
        assert!(c.lock().slots.len() <= CAP);
    }
}
