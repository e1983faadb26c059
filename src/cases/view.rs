//! A case as people see it: the full view with history and photos, personal data masked.

use std::sync::OnceLock;

use serde::Serialize;
use serde_json::Value;

use super::categories::Category;
use super::history::Entry;
use super::level_label;
use super::machine::{Status, channel_label, satisfaction_label};
use super::store::{AAD_NAME, AAD_PHONE, check_visible};
use super::{CaseRow, ROW_COLS, categories};
use crate::app::AppState;
use crate::auth::Principal;
use crate::db::cache::Ticket;
use crate::db::{Row, get, now_ms};
use crate::error::{AppError, AppResult};
use crate::ident::{Mobile, mask_name};
use crate::privacy::Keyring;
use crate::web::fmt_time;

/// One step of the history as shown.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// Action code.
    pub action: String,
    /// zh-CN label.
    pub label: String,
    /// Username (or `public`, `system`).
    pub actor: String,
    /// Role, unit or channel shown beside the actor.
    pub actor_label: String,
    /// ISO-like local time.
    pub at: String,
    /// Epoch ms.
    pub at_ms: i64,
    /// Note.
    pub note: String,
    /// Status after.
    pub status: String,
    /// Shown on the public timeline.
    pub public: bool,
}

impl Step {
    /// A recorded step as shown.
    pub(super) fn of(e: &Entry<'_>) -> Step {
        Step::new(e.action.into(), e.actor.into(), e.label.into(), e.at, e.note.into(), e.to.into(), e.public)
    }

    /// A step as shown, from its stored fields (`status` the status after it).
    fn new(action: String, actor: String, actor_label: String, at: i64, note: String, status: String, public: bool) -> Step {
        Step { label: step_label(&action), action, actor, actor_label, at: fmt_time(at), at_ms: at, note, status, public }
    }
}

fn step_label(action: &str) -> String {
    match action {
        "submit" => "受理".into(),
        "yellow_card" => "黄牌预警".into(),
        "red_card" => "红牌督办".into(),
        "auto_escalate" => "自动上报".into(),
        a => super::Action::parse(a).map(|x| x.label().to_string()).unwrap_or_else(|| a.to_string()),
    }
}

/// A case as shown to staff and the API.
#[derive(Clone, Debug, Serialize)]
pub struct CaseView {
    /// Number.
    pub number: String,
    /// Status.
    pub status: Status,
    /// zh-CN status.
    pub status_label: &'static str,
    /// Category code.
    pub category: String,
    /// Category name.
    pub category_name: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Channel code.
    pub channel: String,
    /// Channel label.
    pub channel_label: &'static str,
    /// WGS-84 point.
    pub lng: Option<f64>,
    /// WGS-84 point.
    pub lat: Option<f64>,
    /// Address text.
    pub address: String,
    /// Grid.
    pub grid_code: String,
    /// Community.
    pub community_code: String,
    /// Escalation level (0 社区, 1 街道, 2 县).
    pub level: i64,
    /// Level label.
    pub level_label: &'static str,
    /// Masked reporter name.
    pub reporter_name: String,
    /// Masked reporter phone.
    pub reporter_phone: String,
    /// Private case.
    pub private: bool,
    /// `unit`, `grid_worker`, `party_member` or empty.
    pub assignee_kind: String,
    /// Assignee id (unit code or `u<id>`).
    pub assignee: String,
    /// Assignee name.
    pub assignee_name: String,
    /// Created (local time).
    pub created_at: String,
    /// Sign-for deadline.
    pub sign_due: Option<String>,
    /// Resolve deadline.
    pub resolve_due: Option<String>,
    /// Past the resolve deadline and still running.
    pub overdue: bool,
    /// The resolve deadline in ms (to tell `overdue` again for a view kept in memory).
    #[serde(skip)]
    pub due_ms: Option<i64>,
    /// 0, 1 yellow, 2 red.
    pub warn_level: i64,
    /// Extension asked for, in working hours.
    pub extension_hours: Option<f64>,
    /// Counters.
    pub extension_count: i64,
    /// Counters.
    pub rework_count: i64,
    /// Counters.
    pub return_count: i64,
    /// Follow-up: contacted.
    pub contacted: Option<bool>,
    /// Follow-up: solved.
    pub solved: Option<bool>,
    /// satisfied | basically_satisfied | unsatisfied
    pub satisfaction: Option<String>,
    /// zh-CN satisfaction.
    pub satisfaction_label: &'static str,
    /// Resident's comment.
    pub rating_comment: String,
    /// Extra attributes.
    pub attrs: Value,
    /// Photo ids.
    pub photos: Vec<i64>,
    /// Optimistic-lock version to send back with an action.
    pub version: i64,
    /// The history.
    pub history: Vec<Step>,
}

pub(super) const VIEW_COLS: &str = "c.id, c.number, c.status, c.title, c.description, c.channel, c.lng, c.lat, c.address, c.grid_code, c.community_code, c.level, \
     c.reporter_name_enc, c.reporter_phone_enc, c.private, c.assignee_kind, c.assignee_ref, c.assignee_name, c.created_at, c.sign_due, c.resolve_due, \
     c.warn_level, c.extension_hours, c.extension_count, c.rework_count, c.return_count, c.contacted, c.solved, c.satisfaction, c.rating_comment, \
     c.attrs, c.version, cat.code AS cat_code, cat.name AS cat_name";

fn is_running(s: Status) -> bool {
    matches!(s, Status::Registered | Status::Dispatched | Status::Accepted)
}

impl CaseView {
    /// Tells again what the clock moves (a view kept in memory was told when it was read).
    pub fn refresh(&mut self) {
        self.overdue = is_running(self.status) && self.due_ms.is_some_and(|d| d < now_ms());
    }
}

pub(super) fn view_row(keys: &Keyring, r: &Row) -> AppResult<CaseView> {
    let status = Status::parse(&get::<String>(r, "status")?).unwrap_or(Status::Submitted);
    let shown = |col: &str, aad: &[u8], mask: fn(&str) -> String| -> AppResult<String> {
        Ok(match get::<Option<Vec<u8>>>(r, col)? {
            Some(b) => keys.shown(&b, aad, mask)?,
            None => String::new(),
        })
    };
    let name = shown("reporter_name_enc", AAD_NAME, mask_name)?;
    let phone = shown("reporter_phone_enc", AAD_PHONE, |p| Mobile::parse(p).map(|m| m.masked()).unwrap_or_default())?;
    let due: Option<i64> = get(r, "resolve_due")?;
    let sign: Option<i64> = get(r, "sign_due")?;
    let sat: Option<String> = get(r, "satisfaction")?;
    let channel: String = get(r, "channel")?;
    let level: i64 = get(r, "level")?;
    let attrs: String = get(r, "attrs")?;
    Ok(CaseView {
        number: get(r, "number")?,
        status,
        status_label: status.label(),
        category: get(r, "cat_code")?,
        category_name: get(r, "cat_name")?,
        title: get(r, "title")?,
        description: get(r, "description")?,
        channel_label: channel_label(&channel),
        channel,
        lng: get(r, "lng")?,
        lat: get(r, "lat")?,
        address: get(r, "address")?,
        grid_code: get(r, "grid_code")?,
        community_code: get(r, "community_code")?,
        level,
        level_label: level_label(level),
        reporter_name: name,
        reporter_phone: phone,
        private: get::<i64>(r, "private")? != 0,
        assignee_kind: get(r, "assignee_kind")?,
        assignee: get(r, "assignee_ref")?,
        assignee_name: get(r, "assignee_name")?,
        created_at: fmt_time(get::<i64>(r, "created_at")?),
        sign_due: sign.map(fmt_time),
        resolve_due: due.map(fmt_time),
        overdue: is_running(status) && due.is_some_and(|d| d < now_ms()),
        due_ms: due,
        warn_level: get(r, "warn_level")?,
        extension_hours: get(r, "extension_hours")?,
        extension_count: get(r, "extension_count")?,
        rework_count: get(r, "rework_count")?,
        return_count: get(r, "return_count")?,
        contacted: get::<Option<i64>>(r, "contacted")?.map(|v| v != 0),
        solved: get::<Option<i64>>(r, "solved")?.map(|v| v != 0),
        satisfaction_label: sat.as_deref().map(satisfaction_label).unwrap_or(""),
        satisfaction: sat,
        rating_comment: get(r, "rating_comment")?,
        attrs: serde_json::from_str(&attrs).unwrap_or(Value::Null),
        photos: Vec::new(),
        version: get(r, "version")?,
        history: Vec::new(),
    })
}

/// The case (by `key`, `c.number` or `c.id`), its history and its photo ids in one statement:
/// on PostgreSQL every statement is a round trip, and the case page is the most read page
/// there is. The case's row comes first (`d_kind` 0), then one row per step (1) and per photo
/// (2) with the case's columns left NULL: repeated beside every step, they were decoded (and
/// sent, on PostgreSQL) once per step.
fn detailed_sql(key: &str) -> String {
    let view: Vec<&str> = VIEW_COLS.split(", ").collect();
    let extra: Vec<&str> = ROW_COLS.split(", ").filter(|c| !view.contains(c)).collect();
    let nulls = vec!["NULL"; view.len() + extra.len()].join(", ");
    let extra = extra.join(", ");
    let case_id = format!("(SELECT c.id FROM cases c WHERE {key} = $1)");
    format!(
        "SELECT {VIEW_COLS}, {extra}, CAST(0 AS BIGINT) AS d_kind, CAST(NULL AS BIGINT) AS d_id, CAST(NULL AS TEXT) AS d_action, \
         CAST(NULL AS TEXT) AS d_actor, CAST(NULL AS TEXT) AS d_actor_label, CAST(NULL AS BIGINT) AS d_at, CAST(NULL AS TEXT) AS d_note, \
         CAST(NULL AS TEXT) AS d_to_status, CAST(NULL AS BIGINT) AS d_public \
         FROM cases c JOIN categories cat ON cat.id = c.category_id WHERE {key} = $1 \
         UNION ALL SELECT {nulls}, 1, h.id, h.action, h.actor, h.actor_label, h.at, h.note, h.to_status, h.public \
         FROM case_history h WHERE h.case_id = {case_id} \
         UNION ALL SELECT {nulls}, 2, p.id, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM case_photos p WHERE p.case_id = {case_id} \
         ORDER BY d_kind, d_id"
    )
}

/// The full view of a case the caller may see, read in one statement on one quick-read
/// connection (index-bounded reads: on SQLite they run in place).
pub async fn view(st: &AppState, p: &Principal, number: &str) -> AppResult<CaseView> {
    Ok(read_visible(st, p, number).await?.2)
}

/// A case the caller may see, as [`super::store::load_visible`] gives it, with its full view
/// read by the same statement (a step answers with the view before it plus the step).
pub async fn read_visible(st: &AppState, p: &Principal, number: &str) -> AppResult<(CaseRow, Category, CaseView)> {
    let number = number.trim();
    let (c, v) = match st.db.case_cache.get(number).and_then(|v| v.downcast::<Cached>().ok()) {
        Some(k) => {
            // The clock moves without the case changing (a category's change forgets every
            // page kept, see crate::db::cache).
            let mut v = k.view.clone();
            v.refresh();
            (k.row.clone(), v)
        }
        None => read_detailed(st, number).await?,
    };
    let cat = categories::by_id(st, c.category_id).await?;
    check_visible(p, &c, &cat)?;
    Ok((c, cat, v))
}

/// A case as [`read_visible`] keeps it (see [`crate::db::cache`]).
struct Cached {
    row: CaseRow,
    view: CaseView,
}

/// Keeps the case as this node's step made it (`after`, the step's returned row, with `view`
/// its page), `t` taken before the case was read for the step: the page read right after a
/// step (a form's redirect, the next step) then costs no round trip on PostgreSQL.
pub(super) fn keep_stepped(st: &AppState, t: Ticket, after: &Row, view: &CaseView) -> AppResult<()> {
    keep(st, t, CaseRow::from_row(after)?, view.clone());
    Ok(())
}

/// Stores a case and its page read (or made) under ticket `t` (see [`crate::db::cache`]).
fn keep(st: &AppState, t: Ticket, row: CaseRow, view: CaseView) {
    let (number, id, version) = (row.number.clone(), row.id, row.version);
    st.db.case_cache.put(t, &number, id, version, std::sync::Arc::new(Cached { row, view }));
}

/// The case by number with its view, read in one statement (and kept, when the cache is on).
async fn read_detailed(st: &AppState, number: &str) -> AppResult<(CaseRow, CaseView)> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| detailed_sql("c.number"));
    let ticket = st.db.case_cache.ticket();
    // One statement, its connection given back before the category is looked up: on
    // PostgreSQL a cold category cache reads on the pool, and sixteen views each holding a
    // connection while waiting for another one stalled a fresh server for the pool's 10 s.
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(number).fetch_all(st.db.read()).await?;
    let r = rows.first().ok_or(AppError::NotFound)?;
    let c = CaseRow::from_row(r)?;
    let v = with_details(view_row(&st.keyring, r)?, &rows)?;
    if let Some(t) = ticket {
        keep(st, t, c.clone(), v.clone());
    }
    Ok((c, v))
}

/// The columns of [`view_row`] and of [`CaseRow`] that come from the case table, unqualified:
/// what an `UPDATE … RETURNING` gives back (SQLite's `RETURNING` takes no table alias); the
/// category's code and name are to be added beside them.
pub(super) fn returned_cols() -> &'static str {
    static COLS: OnceLock<String> = OnceLock::new();
    COLS.get_or_init(|| {
        let mut cols: Vec<&str> = VIEW_COLS.split(", ").filter_map(|c| c.strip_prefix("c.")).collect();
        for c in ROW_COLS.split(", ").filter_map(|c| c.strip_prefix("c.")) {
            if !cols.contains(&c) {
                cols.push(c);
            }
        }
        cols.join(", ")
    })
}

/// The full view by id (callers have checked visibility).
pub async fn view_by_id(st: &AppState, id: i64) -> AppResult<CaseView> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| detailed_sql("c.id"));
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_all(st.db.read()).await?;
    let r = rows.first().ok_or(AppError::NotFound)?;
    with_details(view_row(&st.keyring, r)?, &rows)
}

impl CaseView {
    /// The view as `p` may read it: a resident sees who acted by role or unit, not by the
    /// staff's login names (which the security probe read off its own report's history).
    pub fn for_viewer(mut self, p: &Principal) -> CaseView {
        if p.role == crate::auth::Role::Resident {
            for s in &mut self.history {
                s.actor.clear();
            }
        }
        self
    }
}

/// Adds the history (oldest first) and the photo ids of [`detailed_sql`]'s rows.
fn with_details(mut v: CaseView, rows: &[Row]) -> AppResult<CaseView> {
    for r in rows {
        match get::<i64>(r, "d_kind")? {
            1 => {}
            2 => {
                v.photos.push(get(r, "d_id")?);
                continue;
            }
            _ => continue,
        }
        v.history.push(Step::new(
            get(r, "d_action")?,
            get(r, "d_actor")?,
            get(r, "d_actor_label")?,
            get(r, "d_at")?,
            get(r, "d_note")?,
            get(r, "d_to_status")?,
            get::<i64>(r, "d_public")? != 0,
        ));
    }
    Ok(v)
}
