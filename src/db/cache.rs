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

/// Rows of all the lists kept, at most (a page of 20 case views is tens of KB).
const LIST_ROWS: usize = 10_000;

/// The channel the trigger of migration 0009 notifies on.
pub const CHANNEL: &str = "linli_cases";

type Value = Arc<dyn Any + Send + Sync>;

/// See the module documentation.
#[derive(Default)]
pub struct RowCache {
    on: AtomicBool,
    /// While a listener keeps the cache on: it answers only until this time (ms), which each
    /// heartbeat heard back moves on (0: no such limit, for a cache switched on by hand).
    fresh_until: std::sync::atomic::AtomicI64,
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
    /// Their rows, together.
    list_rows: usize,
}

struct Slot {
    /// The newest version heard of: nothing older is stored.
    newest: i64,
    /// `seq` of the last notification about the row: reads that began before are not stored.
    notified: u64,
    /// The row at `.0` (its version), if one is kept.
    row: Option<(i64, Value)>,
    /// The newest version this node's writer gave the row whose notification has not come back
    /// yet (0: none). Notifications come in commit order, so those of this node's own commits
    /// arrive before any later change's: they are not taken for someone else's change, and a
    /// row the writer's request kept after its commit stays (see [`RowCache::changed`]).
    own: i64,
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
        let fresh = self.fresh_until.load(Ordering::Acquire);
        self.on.load(Ordering::Acquire) && (fresh == 0 || crate::db::now_ms() < fresh)
    }

    /// A heartbeat came back: every notification sent before it has been applied, so the
    /// cache may answer until `until` (ms). The first one after connecting turns it on.
    fn heard_back(&self, until: i64) {
        if !self.on.load(Ordering::Acquire) {
            self.set_on(true);
        }
        self.fresh_until.store(until, Ordering::Release);
    }

    /// Turns the cache on or off; either way it starts empty.
    pub fn set_on(&self, on: bool) {
        // Off first, so that no store slips in between the clearing and the switch.
        if !on {
            self.on.store(false, Ordering::Release);
            self.fresh_until.store(0, Ordering::Release);
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
        let slot = g.slots.entry(id).or_insert(Slot { newest: version, notified: 0, row: None, own: 0 });
        if version < slot.newest || slot.notified > t.0 || slot.row.as_ref().is_some_and(|(v, _)| *v > version) {
            return;
        }
        slot.newest = version;
        slot.row = Some((version, value));
        g.ids.insert(key.to_string(), id);
    }

    /// This node's writer gives row `id` `version` (its commit to come): an older copy is
    /// dropped and never stored again, and the commit's own notification will not drop the row
    /// as the request that made it keeps it (a row read since its ticket, `put` after the
    /// commit). Should the change roll back instead, the mark is harmless: no copy at this
    /// version can be kept but one read after someone else made it.
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
        if let Some(slot) = g.slots.get_mut(&id).filter(|s| committed && version > 0 && version <= s.own) {
            // This node's own commit (or an earlier one of the same row), notified before any
            // later change of anyone else's. (Version 0 is a step or photo changed from outside.)
            if version == slot.own {
                slot.own = 0;
            }
            return;
        }
        if g.slots.len() >= CAP && !g.slots.contains_key(&id) {
            // Full: everything goes, but this change is still recorded below (a read begun
            // after the forgetting and before this node's commit must not be stored).
            forget(&mut g);
        }
        g.seq += 1;
        let seq = g.seq;
        let slot = g.slots.entry(id).or_insert(Slot { newest: version, notified: 0, row: None, own: 0 });
        slot.newest = slot.newest.max(version);
        if committed {
            slot.notified = seq;
            slot.own = 0;
        } else {
            slot.own = slot.own.max(version);
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

    /// Stores a list of `rows` rows read under `t`, unless a case moved since `t` was taken.
    /// Lists are kept up to [`LIST_ROWS`] rows in all; a list of more than a tenth of that
    /// is not kept at all.
    pub fn put_list(&self, t: Ticket, key: &str, rows: usize, value: Value) {
        let mut g = self.lock();
        // A key is a list's conditions: one made of huge filter values is not worth keeping.
        if !self.is_on() || t.0 != g.lists_seq || rows > LIST_ROWS / 10 || key.len() > 2_048 {
            return;
        }
        if g.list_rows + rows > LIST_ROWS || g.lists.len() >= CAP / 4 {
            g.lists.clear();
            g.list_rows = 0;
        }
        // A list stored twice (two reads at once) counts twice until the next clearing.
        g.list_rows += rows;
        g.lists.insert(key.to_string(), value);
    }

    /// A case was added, changed or deleted (committed): every list is forgotten.
    pub fn lists_moved(&self) {
        let mut g = self.lock();
        g.lists_seq += 1;
        g.lists.clear();
        g.list_rows = 0;
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
    g.list_rows = 0;
    g.ids.clear();
    g.slots.clear();
}

/// How often a listening node notifies itself (see [`listen`]).
const HEARTBEAT: Duration = Duration::from_secs(2);

/// Listens for other processes' changes (PostgreSQL) and keeps `cache` on while connected;
/// runs until the process ends, reconnecting after a second when the connection drops.
///
/// A connection can die without a word (a firewall's idle timeout, a failover behind one
/// address), or deliver nothing (a pooler in transaction mode): the node would hear nothing
/// and serve what it kept for ever. So every [`HEARTBEAT`] it notifies the channel itself,
/// through `pool`, from a task of its own. The cache turns on when the first one comes back
/// and answers only for three heartbeats after the last one heard (everything notified before
/// it has been applied by then); three unanswered in a row and the connection is replaced.
pub async fn listen(cache: Arc<RowCache>, url: String, pool: sqlx::AnyPool) {
    let me = crate::auth::random_hex(8);
    loop {
        match subscribe(&url).await {
            Ok(mut l) => {
                // Received on a task of its own, so that a wait for the next message is never
                // cut off half-way (only dropped with the connection).
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
                let reader = tokio::spawn(async move {
                    loop {
                        match l.try_recv().await {
                            Ok(Some(n)) if tx.send(n.payload().to_string()).is_ok() => {}
                            Ok(_) => return,
                            Err(e) => {
                                tracing::warn!(error = %e, "案件缓存的通知连接出错");
                                return;
                            }
                        }
                    }
                });
                let (mut sent, mut heard) = (0u64, 0u64);
                let mut beat = tokio::time::interval(HEARTBEAT);
                beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let window = 3 * HEARTBEAT.as_millis() as i64;
                loop {
                    tokio::select! {
                        m = rx.recv() => match m {
                            Some(p) => match p.strip_prefix("ping:") {
                                Some(ping) => {
                                    let n = ping.strip_prefix(me.as_str()).and_then(|n| n.strip_prefix(':')).and_then(|n| n.parse::<u64>().ok());
                                    if let Some(n) = n.filter(|n| *n > heard) {
                                        heard = n;
                                        cache.heard_back(crate::db::now_ms() + window);
                                    }
                                }
                                None => cache.apply(&p),
                            },
                            None => break,
                        },
                        _ = beat.tick() => {
                            if sent >= heard + 3 {
                                tracing::warn!("案件缓存的通知连接没有回音，重新连接");
                                break;
                            }
                            sent += 1;
                            let (pool, payload) = (pool.clone(), format!("ping:{me}:{sent}"));
                            // Not awaited here: a pool with no free connection must not hold
                            // up the notifications (the cache stops answering meanwhile).
                            tokio::spawn(async move {
                                let ping = sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(payload);
                                if let Err(e) = ping.execute(&pool).await {
                                    tracing::warn!(error = %e, "案件缓存无法发送心跳");
                                }
                            });
                        }
                    }
                }
                cache.set_on(false);
                reader.abort();
            }
            Err(e) => tracing::warn!(error = %e, "案件缓存无法订阅通知"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn subscribe(url: &str) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut l = sqlx::postgres::PgListener::connect(url).await?;
    l.listen(CHANNEL).await?;
    Ok(l)
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
    fn own_commits_keep_their_row_until_someone_else_changes_it() {
        let c = RowCache::default();
        c.set_on(true);
        // A step read the row under `t`, changed it to 4, committed and kept what it made.
        let t = c.ticket().unwrap();
        c.changed(1, 4);
        c.put(t, "A", 1, 4, val("v4"));
        c.apply("1:3");
        assert_eq!(got(&c, "A").as_deref(), Some("v4"), "an earlier change, notified late");
        c.apply("1:4");
        assert_eq!(got(&c, "A").as_deref(), Some("v4"), "its own commit's notification");
        c.apply("1:4");
        assert_eq!(got(&c, "A"), None, "a change after it that left the version alone");
        // Its own notification heard before the row is kept: still kept.
        let t = c.ticket().unwrap();
        c.changed(1, 5);
        c.apply("1:5");
        c.put(t, "A", 1, 5, val("v5"));
        assert_eq!(got(&c, "A").as_deref(), Some("v5"));
        // A step or photo changed from outside (version 0) is never taken for its own, and a
        // row read before it is not kept.
        let t = c.ticket().unwrap();
        c.changed(1, 6);
        c.apply("1:0");
        c.put(t, "A", 1, 6, val("v6"));
        assert_eq!(got(&c, "A"), None);
        c.apply("1:6");
        assert_eq!(got(&c, "A"), None);
        c.put(c.ticket().unwrap(), "A", 1, 6, val("v6 read"));
        assert_eq!(got(&c, "A").as_deref(), Some("v6 read"));
        // A change rolled back: someone else's change to that version later is theirs to keep.
        c.changed(1, 7);
        c.apply("1:7");
        c.put(c.ticket().unwrap(), "A", 1, 7, val("v7 theirs"));
        c.apply("1:7");
        assert_eq!(got(&c, "A"), None, "their next change, leaving the version alone");
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
        c.put_list(t, "q", 20, val("page"));
        assert!(c.list("q").is_some());
        c.apply("+");
        assert!(c.list("q").is_none(), "a new case anywhere");
        c.put_list(t, "q", 20, val("page"));
        assert!(c.list("q").is_none(), "a list read before the change is not kept");
        c.put_list(c.list_ticket().unwrap(), "q", 20, val("page"));
        c.apply("7:2");
        assert!(c.list("q").is_none(), "a changed case anywhere");
        c.put_list(c.list_ticket().unwrap(), "q", 20, val("page"));
        c.lists_moved();
        assert!(c.list("q").is_none(), "this node's own commit");
        // Bounded by rows: an export-sized list is not kept, and many pages push out the rest.
        c.put_list(c.list_ticket().unwrap(), "big", LIST_ROWS / 10 + 1, val("export"));
        assert!(c.list("big").is_none());
        for i in 0..(LIST_ROWS / 500 + 1) {
            c.put_list(c.list_ticket().unwrap(), &format!("p{i}"), 500, val("page"));
        }
        assert!(c.lock().list_rows <= LIST_ROWS);
        assert!(c.list("p0").is_none() && c.list(&format!("p{}", LIST_ROWS / 500)).is_some());
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
