//! Units that take cases: member units of the alliance and county departments. The rosters
//! issue extends this registry; here it holds what dispatch needs.

use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::audit::{self, Event};
use crate::auth::{Perm, Principal};
use crate::db::list::{Page, Where, paging};
use crate::db::{Db, Row, get, now_ms};
use crate::error::{AppError, AppResult, FieldErrors};

/// Unit types of the brief.
pub const KINDS: [&str; 7] = ["机关", "事业", "国企", "非公", "教育", "医院", "部门"];

/// A unit.
#[derive(Clone, Debug, Serialize)]
pub struct Unit {
    /// units.id
    pub id: i64,
    /// Code (the id used by dispatch and by `--scope` of a unit contact).
    pub code: String,
    /// Name.
    pub name: String,
    /// Type (机关/事业/国企/非公/教育/医院/部门).
    pub kind: String,
    /// Contact person.
    pub contact_name: String,
    /// Contact phone (a work number, often someone's own mobile): shown starred, as the unit
    /// register shows it.
    #[serde(serialize_with = "starred")]
    pub contact_phone: String,
    /// Community codes served, comma separated (empty: the whole county).
    pub communities: String,
    /// Tree path of the county it belongs to.
    #[serde(skip)]
    pub node_path: String,
    /// Retired.
    pub retired: bool,
}

const COLS: &str = "id, code, name, kind, contact_name, contact_phone, communities, node_path, retired_at";

fn unit_row(r: &Row) -> AppResult<Unit> {
    Ok(Unit {
        id: get(r, "id")?,
        code: get(r, "code")?,
        name: get(r, "name")?,
        kind: get(r, "kind")?,
        contact_name: get(r, "contact_name")?,
        contact_phone: get(r, "contact_phone")?,
        communities: get(r, "communities")?,
        node_path: get(r, "node_path")?,
        retired: get::<Option<i64>>(r, "retired_at")?.is_some(),
    })
}

/// A contact number as shown, as the unit register shows it (138****1234, 0856-***4567).
pub fn shown_phone(phone: &str) -> String {
    if phone.trim().is_empty() { String::new() } else { crate::registers::masked_phone(phone) }
}

fn starred<S: serde::Serializer>(phone: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&shown_phone(phone))
}

impl Unit {
    /// The contact number as shown (see [`shown_phone`]).
    pub fn phone_shown(&self) -> String {
        shown_phone(&self.contact_phone)
    }

    /// True when the unit serves the community (an empty list serves all).
    pub fn serves(&self, community_code: &str) -> bool {
        self.communities.trim().is_empty() || self.communities.split(',').any(|c| c.trim() == community_code)
    }
}

/// Finds a unit by code or numeric id.
pub async fn find(db: &Db, key: &str) -> AppResult<Option<Unit>> {
    let key = key.trim().trim_start_matches("unit:");
    // A code that reads as a number (001) is that code before it is an id. Two lookups on
    // their unique indexes, not one `code = $1 OR id = $2`: PostgreSQL scanned the table for
    // that (61 µs a dispatch, whose assignee is looked up here).
    let sql = format!("SELECT {COLS} FROM units WHERE code = $1");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(key).fetch_optional(db.read()).await?;
    match (r, key.parse::<i64>()) {
        (Some(r), _) => unit_row(&r).map(Some),
        (None, Ok(id)) => by_id(db, id).await,
        (None, Err(_)) => Ok(None),
    }
}

/// Gets a unit by id.
pub async fn by_id(db: &Db, id: i64) -> AppResult<Option<Unit>> {
    let sql = format!("SELECT {COLS} FROM units WHERE id = $1");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(db.read()).await?;
    r.as_ref().map(unit_row).transpose()
}

/// Filters for the unit list.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct UnitFilter {
    /// Name or code contains.
    pub q: Option<String>,
    /// Type.
    pub kind: Option<String>,
    /// Only those serving this community.
    pub community: Option<String>,
    /// 1-based page.
    pub page: Option<i64>,
    /// Page size.
    #[serde(default, deserialize_with = "crate::db::list::asked_per_page")]
    pub per_page: Option<i64>,
}

/// Lists the units of the caller's county (everyone who dispatches needs the whole list).
pub async fn list(st: &AppState, p: &Principal, f: &UnitFilter) -> AppResult<Page<Unit>> {
    p.require(Perm::TreeRead)?;
    let mut w = Where::new();
    let county = p.county_path();
    w.under("node_path", &county).raw("retired_at IS NULL");
    if let Some(q) = f.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        w.contains(&["name", "code"], q);
    }
    if let Some(k) = f.kind.as_deref().filter(|s| !s.is_empty()) {
        w.arg("kind = ?", k);
    }
    if let Some(c) = f.community.as_deref().filter(|s| !s.is_empty()) {
        w.arg("(communities = '' OR communities LIKE ?)", format!("%{}%", crate::db::like_escape(c)));
    }
    w.page(&st.db, COLS, "FROM units", "code", paging(f.page, f.per_page), unit_row).await
}

/// Fields of a unit.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct UnitInput {
    /// Code.
    #[serde(default)]
    pub code: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Type.
    #[serde(default)]
    pub kind: String,
    /// Contact.
    #[serde(default)]
    pub contact_name: String,
    /// Contact phone.
    #[serde(default)]
    pub contact_phone: String,
    /// Communities served.
    #[serde(default)]
    pub communities: String,
}

/// Creates a unit in the caller's county (county admins).
pub async fn create(st: &AppState, p: &Principal, i: &UnitInput, is_demo: bool) -> AppResult<Unit> {
    let county = p.county_path();
    p.check(Perm::UserManage, &county)?;
    if p.scope_path != county && p.scope_path != "/" {
        return Err(AppError::Forbidden);
    }
    let mut errs = FieldErrors::default();
    let code = i.code.trim().to_uppercase();
    if code.is_empty() || code.len() > 32 || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        errs.add("code", "单位编码应为 1～32 位字母、数字或连字符");
    }
    if i.name.trim().is_empty() || i.name.chars().count() > 64 || crate::ident::has_control(&i.name) {
        errs.add("name", "单位名称不能为空，不超过 64 个字，且不含控制字符");
    }
    if i.contact_name.trim().chars().count() > 32 || crate::ident::has_control(&i.contact_name) {
        errs.add("contact_name", "联系人不超过 32 个字，且不含控制字符");
    }
    if !KINDS.contains(&i.kind.trim()) {
        errs.add("kind", format!("单位类型应为：{}", KINDS.join("、")));
    }
    let phone = i.contact_phone.trim();
    if !phone.is_empty()
        && let Err(e) = crate::ident::WorkPhone::parse(phone)
    {
        errs.add("contact_phone", e.to_string());
    }
    for c in i.communities.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        if crate::ident::CommunityCode::parse(c).is_err() {
            errs.add("communities", format!("社区代码 {c} 无效"));
        }
    }
    errs.finish()?;
    let mut tx = st.db.begin().await?;
    if sqlx::query("SELECT id FROM units WHERE code = $1").bind(&code).fetch_optional(&mut tx).await?.is_some() {
        return Err(AppError::field("code", "该单位编码已存在"));
    }
    let now = now_ms();
    sqlx::query(
        "INSERT INTO units (code, name, kind, contact_name, contact_phone, communities, node_path, is_demo, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$9)",
    )
    .bind(&code)
    .bind(i.name.trim())
    .bind(i.kind.trim())
    .bind(i.contact_name.trim())
    .bind(i.contact_phone.trim())
    .bind(i.communities.replace(' ', ""))
    .bind(&county)
    .bind(is_demo as i64)
    .bind(now)
    .execute(&mut tx)
    .await?;
    let summary = format!("新建单位「{}」", i.name.trim());
    let ev = Event { action: "unit.create", entity: "unit", entity_id: &code, node_path: &county, summary: &summary };
    audit::append(&mut tx, &st.chain, &p.actor(), ev);
    tx.commit().await?;
    find(&st.db, &code).await?.ok_or(AppError::NotFound)
}
