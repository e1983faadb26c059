//! The tamper-evident audit log. Every write appends an entry in the same transaction as the
//! change; entries are chained with a keyed hash (HMAC-SHA256, key derived from the key file,
//! which lives outside the database), so someone who can edit the database but not read the
//! key file cannot rewrite history unnoticed. `audit_head` holds the last sequence number:
//! bumping it serialises appends on both backends. Its `hash` column seals the head — an HMAC
//! of the last sequence number and the last entry's hash — so that a removed tail with the
//! head's number lowered to match is detected too (the number alone could be edited). Entries
//! take their numbers at the end of the write batch ([`Chain`], a [`crate::db::Deferred`]
//! kind), so the head row is bumped and sealed once per batch and locked only for its commit.

pub mod labels;
pub mod routes;

/// What the first entry chains to.
const GENESIS: &str = "genesis";

use futures_util::TryStreamExt;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::db::rows::{Val, insert_rows};
use crate::db::{Db, Finish, Tx, get, now_ms};
use crate::error::AppResult;

/// Who did it and from where.
#[derive(Clone, Debug)]
pub struct Actor {
    /// Username, or `system` for jobs and the CLI.
    pub name: String,
    /// Client address.
    pub ip: String,
}

impl Actor {
    /// The actor for CLI commands and background jobs.
    pub fn system(what: &str) -> Actor {
        Actor { name: format!("system:{what}"), ip: "local".into() }
    }
}

/// One thing to record.
#[derive(Clone, Debug)]
pub struct Event<'a> {
    /// e.g. `node.create`, `person.reveal`, `login.failed`.
    pub action: &'a str,
    /// Entity type, e.g. `node`.
    pub entity: &'a str,
    /// Entity key (code, id, username).
    pub entity_id: &'a str,
    /// Tree path of the affected record, so scoped admins see their part of the log.
    pub node_path: &'a str,
    /// Before/after summary or detail, zh-CN or JSON.
    pub summary: &'a str,
}

/// Key for the chain's HMAC.
#[derive(Clone)]
pub struct ChainKey(pub Vec<u8>);

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(..redacted..)")
    }
}

fn chain_hash(key: &ChainKey, prev: &str, seq: i64, at: i64, e: &StoredEntry) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key.0).expect("hmac takes any key length");
    for part in
        [prev, &seq.to_string(), &at.to_string(), &e.actor, &e.ip, &e.action, &e.entity, &e.entity_id, &e.node_path, &e.summary]
    {
        mac.update(&(part.len() as u64).to_le_bytes());
        mac.update(part.as_bytes());
    }
    hex(&mac.finalize().into_bytes())
}

/// At most `max` characters of text typed by anyone (a login name), with control and
/// direction-changing characters shown as `?`: an entry must not fake a line break or reorder
/// what is shown around it.
pub fn printable(s: &str, max: usize) -> String {
    let hidden =
        |c: char| c.is_control() || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    s.chars().take(max).map(|c| if hidden(c) { '?' } else { c }).collect()
}

/// The head's seal: the last sequence number and the last entry's hash, under the key. An empty
/// log's head (`0`, `genesis`) is the migration's and needs none.
fn head_seal(key: &ChainKey, seq: i64, last_hash: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key.0).expect("hmac takes any key length");
    for part in ["audit_head", &seq.to_string(), last_hash] {
        mac.update(&(part.len() as u64).to_le_bytes());
        mac.update(part.as_bytes());
    }
    hex(&mac.finalize().into_bytes())
}

/// Whether `key` is the one the log was written with: the head's seal checks under it (an
/// empty log fits any key). One read, for a start that has no record of its key yet.
pub async fn key_fits(db: &Db, key: &ChainKey) -> AppResult<bool> {
    let head = sqlx::query(
        "SELECT h.seq, h.hash AS seal, l.hash FROM audit_head h LEFT JOIN audit_log l ON l.seq = h.seq WHERE h.id = 1",
    )
    .fetch_optional(&db.pool)
    .await?;
    let Some(h) = head else { return Ok(true) };
    let (seq, seal): (i64, String) = (get(&h, "seq")?, get(&h, "seal")?);
    if seq == 0 {
        return Ok(true);
    }
    let last: Option<String> = get(&h, "hash")?;
    Ok(last.is_some_and(|l| seal == head_seal(key, seq, &l)))
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends one entry inside `tx`. Its place in the chain is taken at the end of the batch
/// (see [`crate::db::Deferred`]): the head row is then locked only for the commit.
pub fn append(tx: &mut Tx, key: &ChainKey, actor: &Actor, ev: Event<'_>) {
    let chain = tx.defer::<Chain>();
    if chain.key.is_none() {
        chain.key = Some(key.clone());
    }
    chain.entries.push(StoredEntry {
        seq: 0,
        at: now_ms(),
        actor: actor.name.clone(),
        ip: actor.ip.clone(),
        action: ev.action.into(),
        entity: ev.entity.into(),
        entity_id: ev.entity_id.into(),
        node_path: ev.node_path.into(),
        summary: ev.summary.into(),
        prev_hash: String::new(),
        hash: String::new(),
    });
}

/// Entries waiting for their place in the chain, in the order they were appended.
#[derive(Default)]
pub struct Chain {
    key: Option<ChainKey>,
    entries: Vec<StoredEntry>,
}

impl crate::db::Deferred for Chain {
    // Last: the head row serialises every writer, so it is held for the shortest time.
    const ORDER: u8 = 200;

    fn absorb(&mut self, later: Chain) {
        if self.key.is_none() {
            self.key = later.key;
        }
        self.entries.extend(later.entries);
    }

    async fn write(mut self, at: &mut Finish<'_>) -> Result<(), sqlx::Error> {
        let (Some(key), n) = (self.key.take(), self.entries.len() as i64) else { return Ok(()) };
        if n == 0 {
            return Ok(());
        }
        // One statement: take the numbers (locking the head row on PostgreSQL) and read the
        // hash the first one chains to.
        let head = sqlx::query(
            "UPDATE audit_head SET seq = seq + $1 WHERE id = 1 \
             RETURNING seq, (SELECT l.hash FROM audit_log l WHERE l.seq = audit_head.seq - $1) AS prev",
        )
        .bind(n)
        .fetch_one(&mut *at)
        .await?;
        let last: i64 = get(&head, "seq")?;
        let mut prev = match get::<Option<String>>(&head, "prev")? {
            Some(hash) => hash,
            // On PostgreSQL an update that waited for another node's lock on the head sees the
            // head as that node left it, but its subquery reads with the snapshot the statement
            // began with, which predates that node's entries: a new statement sees them.
            None if last > n => {
                let r = sqlx::query("SELECT hash FROM audit_log WHERE seq = $1").bind(last - n).fetch_optional(&mut *at).await?;
                // Still missing only if the entry was removed, which verify reports.
                r.map(|r| get::<String>(&r, "hash")).transpose()?.unwrap_or_else(|| GENESIS.to_string())
            }
            None => GENESIS.to_string(),
        };
        for (i, e) in self.entries.iter_mut().enumerate() {
            e.seq = last - n + 1 + i as i64;
            e.hash = chain_hash(&key, &prev, e.seq, e.at, e);
            e.prev_hash = std::mem::replace(&mut prev, e.hash.clone());
        }
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(head_seal(&key, last, &prev)).execute(&mut *at).await?;
        let rows: Vec<Vec<Val>> = self
            .entries
            .into_iter()
            .map(|e| {
                vec![
                    Val::I(e.seq),
                    Val::I(e.at),
                    Val::S(e.actor),
                    Val::S(e.ip),
                    Val::S(e.action),
                    Val::S(e.entity),
                    Val::S(e.entity_id),
                    Val::S(e.node_path),
                    Val::S(e.summary),
                    Val::S(e.prev_hash),
                    Val::S(e.hash),
                ]
            })
            .collect();
        let head = "INSERT INTO audit_log (seq, at, actor, ip, action, entity, entity_id, node_path, summary, prev_hash, hash)";
        insert_rows(at, head, 11, &rows, "").await
    }
}

/// How a summary gives the reason typed for it (a reveal's): what follows is left out where
/// the reason is not the reader's to see (a register row's history).
pub const REASON: &str = "；事由：";

/// A form or JSON body of one reason for the audit log (a reveal's, a move-out's); checked by
/// [`reason`].
#[derive(serde::Deserialize, Default)]
pub struct ReasonForm {
    /// What the person typed.
    #[serde(default)]
    pub reason: String,
}

/// A reason typed for the audit log (a reveal's, a move-out's), trimmed: asked for when
/// `required`, at most 200 characters and free of control characters (a 10,000-character reason
/// was taken into the log).
pub fn reason(text: &str, required: bool) -> crate::error::AppResult<&str> {
    let t = text.trim();
    if required && t.is_empty() {
        return Err(crate::error::AppError::field("reason", "请填写查看事由（将记入审计日志）"));
    }
    if t.chars().count() > 200 || crate::ident::has_control(t) {
        return Err(crate::error::AppError::field("reason", "事由不超过 200 个字，且不含控制字符"));
    }
    Ok(t)
}

/// Appends one entry in a transaction of its own (logins, reveals, failures).
pub async fn record(db: &Db, key: &ChainKey, actor: &Actor, ev: Event<'_>) -> AppResult<()> {
    let mut tx = db.begin().await?;
    append(&mut tx, key, actor, ev);
    tx.commit().await?;
    Ok(())
}

/// Records that `p` exported a list of `entity` (`summary`: what and how many), as
/// `{entity}.export`. Every export of personal data is on the record, masked or not.
pub async fn exported(st: &crate::app::AppState, p: &crate::auth::Principal, entity: &str, summary: &str) -> AppResult<()> {
    let action = format!("{entity}.export");
    let ev = Event { action: &action, entity, entity_id: "-", node_path: &p.scope_path, summary };
    record(&st.db, &st.chain, &p.actor(), ev).await
}

/// How far a node's clock may have been set back between a creation's time and its entry's.
const CLOCK_SLACK_MS: i64 = 5_000;

/// An entry as stored.
#[derive(Clone, Debug, Serialize)]
pub struct StoredEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Milliseconds since the epoch.
    pub at: i64,
    /// Username.
    pub actor: String,
    /// Client address.
    pub ip: String,
    /// What happened.
    pub action: String,
    /// Entity type.
    pub entity: String,
    /// Entity key.
    pub entity_id: String,
    /// Tree path for scoping.
    pub node_path: String,
    /// Detail.
    pub summary: String,
    /// Hash of the previous entry.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

impl StoredEntry {
    /// Decodes a row of `audit_log`.
    pub fn from_row(r: &crate::db::Row) -> Result<StoredEntry, sqlx::Error> {
        Ok(StoredEntry {
            seq: get(r, "seq")?,
            at: get(r, "at")?,
            actor: get(r, "actor")?,
            ip: get(r, "ip")?,
            action: get(r, "action")?,
            entity: get(r, "entity")?,
            entity_id: get(r, "entity_id")?,
            node_path: get(r, "node_path")?,
            summary: get(r, "summary")?,
            prev_hash: get(r, "prev_hash")?,
            hash: get(r, "hash")?,
        })
    }
}

/// The outcome of checking the chain.
#[derive(Debug, Serialize, PartialEq)]
pub struct Verdict {
    /// True when every entry and the head agree.
    pub ok: bool,
    /// Entries checked.
    pub checked: i64,
    /// The first bad sequence number, if any.
    pub first_bad: Option<i64>,
    /// Why, in zh-CN.
    pub reason: Option<String>,
}

/// Walks the whole chain and names the first entry that was altered, removed or inserted.
pub async fn verify(db: &Db, key: &ChainKey) -> AppResult<Verdict> {
    // Read in this order on a live database: the newest account and case first (each has its
    // entry committed with it, so by then), then the head, then the entries up to the head
    // (writes meanwhile add entries after it, which this pass leaves for the next).
    let mut newest_rows = Vec::new();
    // The megacity generator's cases are loaded in bulk under one entry (and databases it
    // filled before that entry existed have none): the check of creation times leaves them out.
    let scale_demo = format!(" WHERE node_path NOT LIKE '/{}/%'", crate::cases::megacity::ROOT);
    for (table, what, only) in [("users", "账号", ""), ("cases", "事项", scale_demo.as_str())] {
        let sql = format!("SELECT MAX(created_at) FROM {table}{only}");
        let newest: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&db.pool).await?;
        newest_rows.push((newest, what));
    }
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_optional(db.read()).await?;
    const COLS: &str = "SELECT seq, at, actor, ip, action, entity, entity_id, node_path, summary, prev_hash, hash FROM audit_log \
         WHERE seq <= $1 ORDER BY seq";
    let upto = match &head {
        Some(h) => get::<i64>(h, "seq")?,
        None => i64::MAX,
    };
    let mut rows = sqlx::query(COLS).bind(upto).fetch(&db.pool);
    let mut newest_entry: Option<i64> = None;
    let mut expected_seq = 1i64;
    let mut prev = GENESIS.to_string();
    let mut checked = 0;
    let bad = |seq: i64, checked: i64, why: String| Verdict { ok: false, checked, first_bad: Some(seq), reason: Some(why) };
    while let Some(row) = rows.try_next().await? {
        let e = StoredEntry::from_row(&row)?;
        if e.seq != expected_seq {
            let why = if e.seq > expected_seq {
                format!("第 {expected_seq} 条记录缺失（被删除）")
            } else {
                format!("第 {} 条记录序号异常（被插入）", e.seq)
            };
            return Ok(bad(expected_seq, checked, why));
        }
        if e.prev_hash != prev {
            return Ok(bad(e.seq, checked, format!("第 {} 条记录的前序哈希不符（前一条被改动或有插入）", e.seq)));
        }
        if chain_hash(key, &prev, e.seq, e.at, &e) != e.hash {
            return Ok(bad(e.seq, checked, format!("第 {} 条记录内容被篡改", e.seq)));
        }
        newest_entry = newest_entry.max(Some(e.at));
        prev = e.hash;
        expected_seq += 1;
        checked += 1;
    }
    drop(rows);
    let Some(head) = head else {
        return Ok(bad(expected_seq, checked, "审计头缺失（被删除）".into()));
    };
    let (hseq, seal): (i64, String) = (get(&head, "seq")?, get(&head, "hash")?);
    // Entries past the head as it is now (one statement, one snapshot) were never written with
    // it: the head moves in the transaction of every entry.
    let past: Option<i64> =
        sqlx::query_scalar("SELECT MIN(seq) FROM audit_log WHERE seq > (SELECT seq FROM audit_head WHERE id = 1)")
            .fetch_one(&db.pool)
            .await?;
    if let Some(seq) = past {
        return Ok(bad(seq, checked, format!("第 {seq} 条记录在审计头之后（被插入）")));
    }
    if hseq != expected_seq - 1 {
        return Ok(bad(expected_seq, checked, format!("日志末尾缺失：应有 {hseq} 条，实有 {checked} 条")));
    }
    let empty = hseq == 0 && seal == GENESIS;
    if !empty && seal != head_seal(key, hseq, &prev) {
        let why = format!("审计头的签名不符：第 {hseq} 条之后的记录可能被删除（或审计头被改动）");
        return Ok(bad(expected_seq, checked, why));
    }
    // The tail cut off together with the head (an emptied log, or an older sealed head put
    // back) leaves a whole chain: what it recorded is still there, created after every entry
    // left. Creating an account or a case is recorded in its own transaction, after its time
    // (a few seconds allowed for a clock set back in between).
    for (newest, what) in newest_rows {
        if newest.is_some_and(|t| newest_entry.is_none_or(|e| t > e + CLOCK_SLACK_MS)) {
            let why = format!("有{what}创建于最后一条审计记录之后：末尾的记录可能连同审计头一起被删除");
            return Ok(bad(expected_seq, checked, why));
        }
    }
    Ok(Verdict { ok: true, checked, first_bad: None, reason: None })
}
