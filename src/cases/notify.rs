//! The in-app inbox and live updates. Notifications are rows written in the same transaction
//! as the change; the server-sent event stream polls them, so any node can serve any user.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::Serialize;

use crate::app::AppState;
use crate::auth::{Principal, Role};
use crate::db::list::Where;
use crate::db::rows::{Appendable, Appended, Val};
use crate::db::{Row, Tx, get, now_ms};
use crate::error::AppResult;

/// Who a notification is for.
#[derive(Clone, Debug)]
pub enum Target {
    /// Staff of the given role whose scope covers the path.
    Staff(Role, String),
    /// The contacts of a unit.
    Unit(i64),
    /// One account.
    User(i64),
}

impl Target {
    /// The staff holding a case at its level: its community's, or after an escalation the
    /// street's or the county's (the community can no longer act on it).
    pub fn holder(node_path: &str, level: i64) -> Target {
        match level {
            0 => Target::Staff(Role::CommunityStaff, crate::tree::ancestor(node_path, 3)),
            level => {
                let (role, path) = super::escalation_target(node_path, level);
                Target::Staff(role, path)
            }
        }
    }
}

/// Notification rows, appended at the end of the write batch (see [`crate::db::Deferred`]).
pub struct Notifications;

impl Appendable for Notifications {
    const ORDER: u8 = 50;
    const HEAD: &'static str =
        "INSERT INTO notifications (user_id, unit_id, node_path, audience, case_id, kind, text, created_at)";
    const COLS: usize = 8;
}

/// Writes a notification inside the transaction of the change (with the batch's others, at
/// its end).
pub fn push(tx: &mut Tx, target: Target, case_id: i64, kind: &str, text: &str) {
    let (user, unit, path, audience) = match &target {
        Target::Staff(role, path) => (None, None, path.clone(), role.as_str().to_string()),
        Target::Unit(id) => (None, Some(*id), String::new(), String::new()),
        Target::User(id) => (Some(*id), None, String::new(), String::new()),
    };
    tx.defer::<Appended<Notifications>>().push(vec![
        Val::O(user),
        Val::O(unit),
        Val::S(path),
        Val::S(audience),
        Val::I(case_id),
        Val::S(kind.into()),
        Val::S(text.into()),
        Val::I(now_ms()),
    ]);
}

/// A notification as shown.
#[derive(Clone, Debug, Serialize)]
pub struct Note {
    /// Id (also the SSE event id).
    pub id: i64,
    /// Kind, e.g. `case.new`.
    pub kind: String,
    /// zh-CN text.
    pub text: String,
    /// Case number, if any.
    pub number: Option<String>,
    /// When (ms).
    pub at: i64,
    /// Already read.
    pub read: bool,
}

fn mine(w: &mut Where, p: &Principal) {
    let unit = p.unit_id.unwrap_or(-1);
    w.arg(
        // A staff notice is for the level holding the case; an account scoped below that level
        // (a community's staff for one grid) hears of the cases in its scope only.
        &format!(
            "(n.user_id = {} OR n.unit_id = {unit} OR (n.audience = '{}' AND ? LIKE n.node_path || '%' AND (c.node_path IS NULL OR c.node_path LIKE ? || '%')) OR (n.audience = '{}' AND n.node_path LIKE ?))",
            p.user_id,
            p.role.as_str(),
            p.role.as_str()
        ),
        p.scope_path.clone(),
    );
}

fn note_row(r: &Row) -> AppResult<Note> {
    Ok(Note {
        id: get(r, "id")?,
        kind: get(r, "kind")?,
        text: get(r, "text")?,
        number: get(r, "number")?,
        at: get(r, "created_at")?,
        read: get::<Option<i64>>(r, "read_at")?.is_some(),
    })
}

/// The caller's notifications newer than `after`, newest first.
pub async fn list(st: &AppState, p: &Principal, after: i64, limit: i64) -> AppResult<Vec<Note>> {
    select(st, p, &format!("n.id > {after}"), "n.id DESC", limit).await
}

/// The caller's notifications matching `cond`, in `order`, at most `limit`.
async fn select(st: &AppState, p: &Principal, cond: &str, order: &str, limit: i64) -> AppResult<Vec<Note>> {
    // Notifications carry case numbers and notes: not before the initial password is changed.
    p.ready()?;
    let mut w = Where::new();
    mine(&mut w, p);
    w.raw(cond);
    let page = w
        .page(
            &st.db,
            "n.id, n.kind, n.text, n.created_at, n.read_at, c.number",
            "FROM notifications n LEFT JOIN cases c ON c.id = n.case_id",
            order,
            (1, limit.clamp(1, 500)),
            note_row,
        )
        .await?;
    Ok(page.items)
}

/// How long after it was made a notification is still looked for by a live stream: on
/// PostgreSQL with several nodes a row can become visible after one with a larger id (its
/// batch committed later), so ids alone would skip it.
const LATE_MS: i64 = 10_000;

/// Notifications a live stream has not sent yet: newer than `last`, or made in the last
/// [`LATE_MS`] and not in `sent`; oldest first, so that a burst larger than one poll is sent
/// whole over the next polls.
async fn unsent(st: &AppState, p: &Principal, last: i64, sent: &HashMap<i64, i64>) -> AppResult<VecDeque<Note>> {
    let since = now_ms() - LATE_MS;
    let rows = select(st, p, &format!("(n.id > {last} OR n.created_at > {since})"), "n.id ASC", 200).await?;
    Ok(rows.into_iter().filter(|n| !sent.contains_key(&n.id)).collect())
}

/// Marks the caller's notifications read up to `upto`.
pub async fn mark_read(st: &AppState, p: &Principal, upto: i64) -> AppResult<()> {
    let notes = list(st, p, 0, 500).await?;
    let ids: Vec<String> = notes.iter().filter(|n| !n.read && n.id <= upto).map(|n| n.id.to_string()).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut tx = st.db.begin().await?;
    let sql = format!("UPDATE notifications SET read_at = $1 WHERE id IN ({}) AND read_at IS NULL", ids.join(","));
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now_ms()).execute(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

/// The latest notification id the caller can see (where a new stream starts).
pub async fn latest(st: &AppState, p: &Principal) -> AppResult<i64> {
    Ok(list(st, p, 0, 1).await?.first().map(|n| n.id).unwrap_or(0))
}

/// Server-sent events: one `notification` event per new row (after `from`), polled every
/// second.
pub fn stream(st: AppState, p: Principal, from: i64) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let start = (st, p, from, None::<VecDeque<Note>>, HashMap::<i64, i64>::new());
    let s = stream::unfold(start, |(st, p, mut last, pending, mut sent)| async move {
        let mut pending = match pending {
            Some(p) => p,
            None => {
                // Recent rows up to where the stream starts were there before it: not sent again.
                let seen = unsent(&st, &p, i64::MAX, &sent).await.unwrap_or_default();
                sent.extend(seen.iter().filter(|n| n.id <= last).map(|n| (n.id, n.at)));
                VecDeque::new()
            }
        };
        loop {
            if let Some(n) = pending.pop_front() {
                last = last.max(n.id);
                sent.insert(n.id, n.at);
                let ev = Event::default()
                    .id(n.id.to_string())
                    .event("notification")
                    .data(serde_json::to_string(&n).unwrap_or_default());
                return Some((Ok(ev), (st, p, last, Some(pending), sent)));
            }
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let forget = now_ms() - 2 * LATE_MS;
            sent.retain(|_, at| *at > forget);
            pending = unsent(&st, &p, last, &sent).await.unwrap_or_default();
        }
    });
    Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("keep-alive"))
}
