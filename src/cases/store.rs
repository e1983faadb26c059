//! Creating cases and reading them: routing to a grid, numbering, reporter privacy, history,
//! search and the lists behind every queue. Transitions live in [`super::flow`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::categories::{self, Category};
use super::machine::{Status, channel_label, satisfaction_label};
use super::notify::{self, Target};
use super::{CaseRow, ROW_COLS, level_label, photos, search, visible};
use crate::app::AppState;
use crate::audit::{self, Event};
use crate::auth::{Principal, Role};
use crate::db::list::{Page, Where, paging};
use crate::db::{Row, Tx, get, now_ms};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::geo::Crs;
use crate::ident::{Mobile, mask_name};
use crate::privacy::Keyring;
use crate::web::fmt_time;

/// Associated data binding reporter ciphertexts to their fields.
pub const AAD_NAME: &[u8] = b"case.reporter_name";
/// See [`AAD_NAME`].
pub const AAD_PHONE: &[u8] = b"case.reporter_phone";

/// What a reporter sends.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CreateInput {
    /// Category code.
    #[serde(default)]
    pub category: String,
    /// What happened.
    #[serde(default)]
    pub description: String,
    /// Short title (derived when empty).
    #[serde(default)]
    pub title: String,
    /// Longitude.
    pub lng: Option<f64>,
    /// Latitude.
    pub lat: Option<f64>,
    /// `wgs84` (default) or `gcj02`.
    pub crs: Option<String>,
    /// A grid chosen instead of a point (e.g. from a grid's QR code).
    pub grid: Option<String>,
    /// Address text.
    #[serde(default)]
    pub address: String,
    /// Channel code.
    pub channel: Option<String>,
    /// Reporter's name.
    pub reporter_name: Option<String>,
    /// Reporter's mobile.
    pub reporter_phone: Option<String>,
    /// Hide from the public timeline.
    #[serde(default)]
    pub private: bool,
    /// Answers to the category's extra attributes.
    #[serde(default)]
    pub attrs: Value,
}

/// Who is reporting.
pub enum Reporter<'a> {
    /// A logged-in account (staff entry, resident account, integration token).
    User(&'a Principal),
    /// Anonymous: the resident H5 site or Open311 without a key.
    Public {
        /// Channel to record.
        channel: &'a str,
        /// Client address for the audit log.
        ip: &'a str,
    },
}

/// The answer to a creation.
#[derive(Clone, Debug, Serialize)]
pub struct Created {
    /// Case number.
    pub number: String,
    /// Status (`submitted`).
    pub status: Status,
    /// Grid it was routed to.
    pub grid_code: String,
    /// Its community.
    pub community_code: String,
}

struct Place {
    grid_code: String,
    community_code: String,
    path: String,
    lng: Option<f64>,
    lat: Option<f64>,
}

async fn route(st: &AppState, i: &CreateInput, errs: &mut FieldErrors) -> AppResult<Option<Place>> {
    let crs = match i.crs.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Some(Crs::Wgs84),
        Some(s) => errs.check("crs", Crs::parse(s).ok_or("坐标系应为 wgs84 或 gcj02")),
    };
    let point = match (i.lng, i.lat) {
        (Some(x), Some(y)) if (-180.0..=180.0).contains(&x) && (-90.0..=90.0).contains(&y) => Some((x, y)),
        (None, None) => None,
        _ => {
            errs.add("lng", "经纬度无效：经度 -180～180，纬度 -90～90，且须同时提供");
            return Ok(None);
        }
    };
    if let (Some((x, y)), Some(crs)) = (point, crs) {
        let Some(g) = st.grids.locate(x, y, crs) else {
            errs.add("lng", "该位置不在任何网格内，请在地图上重新选择");
            return Ok(None);
        };
        let n = crate::tree::store::find_by_code(&st.db, &g.grid_code).await?.ok_or(AppError::NotFound)?;
        let w = crs.to_wgs84(crate::geo::Point { lng: x, lat: y });
        return Ok(Some(Place {
            grid_code: g.grid_code,
            community_code: g.community_code,
            path: n.path,
            lng: Some(w.lng),
            lat: Some(w.lat),
        }));
    }
    if let Some(code) = i.grid.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        return Ok(match crate::tree::store::find_by_code(&st.db, code).await? {
            Some(n) if n.kind == crate::tree::Kind::Grid && !n.retired => Some(Place {
                community_code: n.parent_code.clone().unwrap_or_default(),
                grid_code: n.code,
                path: n.path,
                lng: None,
                lat: None,
            }),
            // Below a grid (compound, building): the grid it lies in.
            Some(n) if matches!(n.kind, crate::tree::Kind::Compound | crate::tree::Kind::Building) && !n.retired => {
                let grid = n.path.split('/').find(|s| s.len() == 15).unwrap_or_default().to_string();
                Some(Place {
                    community_code: grid.get(..12).unwrap_or_default().to_string(),
                    grid_code: grid,
                    path: n.path,
                    lng: None,
                    lat: None,
                })
            }
            // A community-wide matter (a research finding): no grid.
            Some(n) if n.kind == crate::tree::Kind::Community && !n.retired => {
                Some(Place { community_code: n.code, grid_code: String::new(), path: n.path, lng: None, lat: None })
            }
            _ => {
                errs.add("grid", "网格不存在或已停用");
                None
            }
        });
    }
    errs.add("lng", "请提供位置：经纬度，或所在网格");
    Ok(None)
}

fn check_attrs(cat: &Category, v: &Value, errs: &mut FieldErrors) {
    for a in &cat.attrs {
        let val = v.get(&a.code);
        let present = val.is_some_and(|x| !x.is_null() && x.as_str() != Some(""));
        if a.required && !present {
            errs.add(&format!("attrs.{}", a.code), format!("请填写“{}”", a.name));
            continue;
        }
        let Some(val) = val.filter(|_| present) else { continue };
        let ok = match a.datatype.as_str() {
            "number" => val.as_f64().is_some() || val.as_str().is_some_and(|s| s.trim().parse::<f64>().is_ok()),
            "singlevaluelist" => val.as_str().is_some_and(|s| a.values.iter().any(|(k, _)| k == s)),
            "multivaluelist" => val
                .as_array()
                .is_some_and(|xs| xs.iter().all(|x| x.as_str().is_some_and(|s| a.values.iter().any(|(k, _)| k == s)))),
            _ => val.is_string(),
        };
        if !ok {
            errs.add(&format!("attrs.{}", a.code), format!("“{}”的值无效", a.name));
        }
    }
}

/// Next number in a named sequence, inside the transaction.
pub async fn next_seq(tx: &mut Tx, name: &str) -> AppResult<i64> {
    let r = sqlx::query("INSERT INTO counters (name, value) VALUES ($1, 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value")
        .bind(name)
        .fetch_one(&mut **tx)
        .await?;
    Ok(get(&r, "value")?)
}

/// Validates and records a new case (status 待受理), notifies the community, queues webhooks.
pub async fn create(st: &AppState, who: Reporter<'_>, i: &CreateInput, photos: Vec<photos::Photo>) -> AppResult<Created> {
    let mut errs = FieldErrors::default();
    let cat = categories::by_code(&st.db, &i.category).await?.filter(|c| c.active);
    if cat.is_none() {
        errs.add("category", "请选择有效的事项类别");
    }
    let desc = i.description.trim();
    if desc.chars().count() < 2 || desc.chars().count() > 2000 {
        errs.add("description", "请描述情况（2～2000 字）");
    }
    if i.title.chars().count() > 60 {
        errs.add("title", "标题不能超过 60 个字");
    }
    let place = route(st, i, &mut errs).await?;
    let (default_channel, user) = match &who {
        Reporter::User(p) => (if p.role == Role::Resident { "resident_h5" } else { "staff" }, Some(*p)),
        Reporter::Public { channel, .. } => (*channel, None),
    };
    let channel = i.channel.as_deref().map(str::trim).filter(|s| !s.is_empty()).unwrap_or(default_channel);
    if !super::machine::CHANNELS.iter().any(|(c, _)| *c == channel) {
        errs.add("channel", "来源渠道无效");
    }
    let name = i.reporter_name.as_deref().map(str::trim).unwrap_or_default();
    if name.chars().count() > 32 {
        errs.add("reporter_name", "姓名不能超过 32 个字");
    }
    let phone = match i.reporter_phone.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => errs.check("reporter_phone", Mobile::parse(s)),
        None if user.is_none() => {
            errs.add("reporter_phone", "请留下手机号，用于查询进度和回访");
            None
        }
        None => None,
    };
    if let Some(c) = &cat {
        check_attrs(c, &i.attrs, &mut errs);
    }
    if photos.len() > photos::MAX_PER_STEP {
        errs.add("photos", format!("每次最多上传 {} 张照片", photos::MAX_PER_STEP));
    }
    errs.finish()?;
    let (cat, place) = (cat.expect("checked"), place.expect("checked"));
    if let Some(p) = user
        && !(p.in_scope(&place.path) || p.role == Role::Resident)
    {
        return Err(AppError::field("lng", "该位置不在您的管辖范围内"));
    }
    let now = now_ms();
    let title = if i.title.trim().is_empty() {
        format!("{}：{}", cat.name, desc.chars().take(20).collect::<String>())
    } else {
        i.title.trim().to_string()
    };
    let (actor, ip) = match &who {
        Reporter::User(p) => (p.username.clone(), p.ip.clone()),
        Reporter::Public { ip, .. } => ("public".to_string(), ip.to_string()),
    };
    let keys: &Keyring = &st.keyring;
    let mut tx = st.db.begin().await?;
    let year = chrono::Datelike::year(&super::calendar::local_date(now));
    let seq = next_seq(&mut tx, &format!("case:{year}")).await?;
    let number = format!("YH-{year}-{seq:06}");
    let row = sqlx::query(
        "INSERT INTO cases (number, category_id, title, description, channel, status, lng, lat, address, grid_code, community_code, node_path, \
         reporter_user_id, reporter_name_enc, reporter_phone_enc, reporter_phone_bidx, private, attrs, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,'submitted',$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$18) RETURNING id",
    )
    .bind(&number)
    .bind(cat.id)
    .bind(&title)
    .bind(desc)
    .bind(channel)
    .bind(place.lng)
    .bind(place.lat)
    .bind(i.address.trim())
    .bind(&place.grid_code)
    .bind(&place.community_code)
    .bind(&place.path)
    .bind(user.filter(|p| p.role == Role::Resident).map(|p| p.user_id))
    .bind((!name.is_empty()).then(|| keys.encrypt(name, AAD_NAME)))
    .bind(phone.as_ref().map(|m| keys.encrypt(m.as_str(), AAD_PHONE)))
    .bind(phone.as_ref().map(|m| keys.blind_index("case_phone", m.as_str())))
    .bind(i.private as i64)
    .bind(if i.attrs.is_object() { i.attrs.to_string() } else { "{}".into() })
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let id: i64 = get(&row, "id")?;
    let hid = history(&mut tx, id, "submit", "", "submitted", &actor, channel_label(channel), "").await?;
    photos::store(&mut tx, &st.cfg.data_dir, id, Some(hid), photos).await?;
    search::index(&mut tx, id, &format!("{title} {desc} {} {}", i.address, cat.name)).await?;
    let community_path = place.path.split('/').take(4).collect::<Vec<_>>().join("/") + "/";
    let text = format!("新{}：{}（{}）", cat.name, title, number);
    notify::push(&mut tx, Target::Staff(Role::CommunityStaff, community_path), id, "case.new", &text).await?;
    let body = serde_json::json!({"event": "case.created", "number": number, "status": "submitted", "category": cat.code,
        "grid_code": place.grid_code, "community_code": place.community_code, "at": fmt_time(now)});
    super::jobs::enqueue_webhooks(&mut tx, id, None, hid, &body).await?;
    let summary = format!("受理 {number}（{}，{}）", cat.name, channel_label(channel));
    let ev = Event { action: "case.create", entity: "case", entity_id: &number, node_path: &place.path, summary: &summary };
    audit::append(&mut tx, &st.chain, &crate::audit::Actor { name: actor, ip }, ev).await?;
    tx.commit().await?;
    Ok(Created { number, status: Status::Submitted, grid_code: place.grid_code, community_code: place.community_code })
}

/// Appends a step to the case history; returns its id.
#[allow(clippy::too_many_arguments)]
pub async fn history(
    tx: &mut Tx,
    case_id: i64,
    action: &str,
    from: &str,
    to: &str,
    actor: &str,
    label: &str,
    note: &str,
) -> AppResult<i64> {
    let r = sqlx::query(
        "INSERT INTO case_history (case_id, action, from_status, to_status, actor, actor_label, at, note) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING id",
    )
    .bind(case_id)
    .bind(action)
    .bind(from)
    .bind(to)
    .bind(actor)
    .bind(label)
    .bind(now_ms())
    .bind(note)
    .fetch_one(&mut **tx)
    .await?;
    Ok(get(&r, "id")?)
}

/// Loads a case row by number (no visibility check).
pub async fn load(st: &AppState, number: &str) -> AppResult<(CaseRow, Category)> {
    let sql = format!("SELECT {ROW_COLS} FROM cases c WHERE c.number = $1");
    let r =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(number.trim()).fetch_optional(&st.db.pool).await?.ok_or(AppError::NotFound)?;
    let c = CaseRow::from_row(&r)?;
    let cat = categories::by_id(&st.db, c.category_id).await?;
    Ok((c, cat))
}

/// Loads a case the caller may see (404 otherwise).
pub async fn load_visible(st: &AppState, p: &Principal, number: &str) -> AppResult<(CaseRow, Category)> {
    if p.must_change_password {
        return Err(AppError::PasswordChangeRequired);
    }
    let (c, cat) = load(st, number).await?;
    if !c.visible_to(p, cat.claimable) {
        return Err(AppError::NotFound);
    }
    Ok((c, cat))
}

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

fn step_label(action: &str) -> String {
    match action {
        "submit" => "受理".into(),
        "yellow_card" => "黄牌预警".into(),
        "red_card" => "红牌督办".into(),
        "auto_escalate" => "自动上报".into(),
        a => super::Action::parse(a).map(|x| x.label().to_string()).unwrap_or_else(|| a.to_string()),
    }
}

/// The history of a case, oldest first.
pub async fn steps(st: &AppState, case_id: i64) -> AppResult<Vec<Step>> {
    let rows = sqlx::query(
        "SELECT action, actor, actor_label, at, note, to_status, public FROM case_history WHERE case_id = $1 ORDER BY id",
    )
    .bind(case_id)
    .fetch_all(&st.db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let action: String = get(r, "action")?;
            let at: i64 = get(r, "at")?;
            Ok(Step {
                label: step_label(&action),
                action,
                actor: get(r, "actor")?,
                actor_label: get(r, "actor_label")?,
                at: fmt_time(at),
                at_ms: at,
                note: get(r, "note")?,
                status: get(r, "to_status")?,
                public: get::<i64>(r, "public")? != 0,
            })
        })
        .collect()
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

const VIEW_COLS: &str = "c.id, c.number, c.status, c.title, c.description, c.channel, c.lng, c.lat, c.address, c.grid_code, c.community_code, c.level, \
     c.reporter_name_enc, c.reporter_phone_enc, c.private, c.assignee_kind, c.assignee_ref, c.assignee_name, c.created_at, c.sign_due, c.resolve_due, \
     c.warn_level, c.extension_hours, c.extension_count, c.rework_count, c.return_count, c.contacted, c.solved, c.satisfaction, c.rating_comment, \
     c.attrs, c.version, cat.code AS cat_code, cat.name AS cat_name";

fn is_running(s: Status) -> bool {
    matches!(s, Status::Registered | Status::Dispatched | Status::Accepted)
}

fn view_row(keys: &Keyring, r: &Row) -> AppResult<CaseView> {
    let status = Status::parse(&get::<String>(r, "status")?).unwrap_or(Status::Submitted);
    let dec = |col: &str, aad: &[u8]| -> AppResult<Option<String>> {
        Ok(match get::<Option<Vec<u8>>>(r, col)? {
            Some(b) => Some(keys.decrypt(&b, aad)?),
            None => None,
        })
    };
    let name = dec("reporter_name_enc", AAD_NAME)?.map(|n| mask_name(&n)).unwrap_or_default();
    let phone =
        dec("reporter_phone_enc", AAD_PHONE)?.and_then(|p| Mobile::parse(&p).ok()).map(|m| m.masked()).unwrap_or_default();
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

/// The full view of a case the caller may see.
pub async fn view(st: &AppState, p: &Principal, number: &str) -> AppResult<CaseView> {
    let (c, _) = load_visible(st, p, number).await?;
    view_by_id(st, c.id).await
}

/// The full view by id (callers have checked visibility).
pub async fn view_by_id(st: &AppState, id: i64) -> AppResult<CaseView> {
    let sql = format!("SELECT {VIEW_COLS} FROM cases c JOIN categories cat ON cat.id = c.category_id WHERE c.id = $1");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_one(&st.db.pool).await?;
    let mut v = view_row(&st.keyring, &r)?;
    v.history = steps(st, id).await?;
    let photos = sqlx::query("SELECT id FROM case_photos WHERE case_id = $1 ORDER BY id").bind(id).fetch_all(&st.db.pool).await?;
    v.photos = photos.iter().map(|r| get(r, "id")).collect::<Result<_, _>>()?;
    Ok(v)
}

/// Filters of every case list and queue.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CaseFilter {
    /// Full-text query (Chinese, segmented).
    pub q: Option<String>,
    /// Status code, or a comma-separated list.
    pub status: Option<String>,
    /// Category code.
    pub category: Option<String>,
    /// Channel code.
    pub channel: Option<String>,
    /// Grid code.
    pub grid: Option<String>,
    /// Community code.
    pub community: Option<String>,
    /// Unit code.
    pub unit: Option<String>,
    /// Only overdue.
    pub overdue: Option<bool>,
    /// Only escalated to at least this level.
    pub level: Option<i64>,
    /// Only assigned to me (or my unit).
    pub mine: Option<bool>,
    /// Created from (YYYY-MM-DD).
    pub from: Option<String>,
    /// Created to, inclusive.
    pub to: Option<String>,
    /// 1-based page.
    pub page: Option<i64>,
    /// Page size.
    pub per_page: Option<i64>,
}

/// Local midnight (UTC+8) of a `YYYY-MM-DD`.
pub fn day_start(s: &str, field: &str) -> AppResult<i64> {
    let d =
        chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| AppError::field(field, "日期格式应为 YYYY-MM-DD"))?;
    Ok(super::calendar::local_ms(d, 0))
}

/// Lists the cases the caller may see, filtered, newest first.
pub async fn list(st: &AppState, p: &Principal, f: &CaseFilter) -> AppResult<Page<CaseView>> {
    if p.must_change_password {
        return Err(AppError::PasswordChangeRequired);
    }
    let mut w = Where::new();
    visible(&mut w, p);
    if let Some(s) = f.status.as_deref().filter(|s| !s.trim().is_empty()) {
        let codes: Vec<&str> = s.split(',').map(str::trim).collect();
        if codes.iter().any(|c| Status::parse(c).is_none()) {
            return Err(AppError::field("status", "状态无效"));
        }
        w.raw(&format!("c.status IN ({})", codes.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(",")));
    }
    for (val, col) in
        [(&f.category, "cat.code"), (&f.channel, "c.channel"), (&f.grid, "c.grid_code"), (&f.community, "c.community_code")]
    {
        if let Some(v) = val.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            w.arg(&format!("{col} = ?"), v);
        }
    }
    if let Some(u) = f.unit.as_deref().filter(|s| !s.trim().is_empty()) {
        let unit = super::units::find(&st.db, u).await?.ok_or_else(|| AppError::field("unit", "单位不存在"))?;
        w.raw(&format!("c.unit_id = {}", unit.id));
    }
    if f.overdue == Some(true) {
        w.raw(&format!("c.status IN ('registered','dispatched','accepted') AND c.resolve_due < {}", now_ms()));
    }
    if let Some(l) = f.level {
        w.raw(&format!("c.level >= {}", l.clamp(0, 2)));
    }
    if f.mine == Some(true) {
        w.raw(&match p.unit_id {
            Some(u) => format!("c.unit_id = {u}"),
            None => format!("c.assignee_user_id = {}", p.user_id),
        });
    }
    if let Some(d) = f.from.as_deref().filter(|s| !s.trim().is_empty()) {
        w.raw(&format!("c.created_at >= {}", day_start(d, "from")?));
    }
    if let Some(d) = f.to.as_deref().filter(|s| !s.trim().is_empty()) {
        w.raw(&format!("c.created_at < {}", day_start(d, "to")? + 86_400_000));
    }
    if let Some(q) = f.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let terms = search::query_terms(q);
        if terms.is_empty() {
            w.raw("1=0");
        }
        for t in terms {
            w.arg("c.id IN (SELECT case_id FROM case_terms WHERE term = ?)", t);
        }
    }
    let from = "FROM cases c JOIN categories cat ON cat.id = c.category_id";
    w.page(&st.db, VIEW_COLS, from, "c.id DESC", paging(f.page, f.per_page), |r| view_row(&st.keyring, r)).await
}
