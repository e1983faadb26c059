//! The category catalogue (with time limits and extra attributes, also published as Open311
//! service definitions) and the working-day calendar, both edited by county admins.

use serde::{Deserialize, Serialize};

use super::calendar::{Calendar, DayKind, parse_exceptions};
use crate::app::AppState;
use crate::audit::{self, Event};
use crate::auth::{Perm, Principal};
use crate::db::{Db, Row, get, now_ms};
use crate::error::{AppError, AppResult, FieldErrors};

/// One extra attribute a category asks for.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Attr {
    /// Field code.
    pub code: String,
    /// zh-CN question.
    pub name: String,
    /// string | number | text | singlevaluelist | multivaluelist | datetime
    pub datatype: String,
    /// Must be answered.
    #[serde(default)]
    pub required: bool,
    /// Allowed values for lists: (key, label).
    #[serde(default)]
    pub values: Vec<(String, String)>,
}

/// A category.
#[derive(Clone, Debug, Serialize)]
pub struct Category {
    /// categories.id
    #[serde(skip)]
    pub id: i64,
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Group (e.g. 公共设施, 为民服务).
    pub group: String,
    /// Description.
    pub description: String,
    /// Sign-for limit in working hours.
    pub sign_hours: f64,
    /// Resolve limit in working hours.
    pub resolve_hours: f64,
    /// Default responsible unit type.
    pub unit_kind: String,
    /// Default unit id.
    #[serde(skip)]
    pub default_unit_id: Option<i64>,
    /// Party members may claim it (微心愿).
    pub claimable: bool,
    /// Extra attributes.
    pub attrs: Vec<Attr>,
    /// Offered to reporters.
    pub active: bool,
}

const COLS: &str =
    "id, code, name, grp, description, sign_hours, resolve_hours, unit_kind, default_unit_id, claimable, attrs, active";

fn row(r: &Row) -> AppResult<Category> {
    let attrs: String = get(r, "attrs")?;
    Ok(Category {
        id: get(r, "id")?,
        code: get(r, "code")?,
        name: get(r, "name")?,
        group: get(r, "grp")?,
        description: get(r, "description")?,
        sign_hours: get(r, "sign_hours")?,
        resolve_hours: get(r, "resolve_hours")?,
        unit_kind: get(r, "unit_kind")?,
        default_unit_id: get(r, "default_unit_id")?,
        claimable: get::<i64>(r, "claimable")? != 0,
        attrs: serde_json::from_str(&attrs).unwrap_or_default(),
        active: get::<i64>(r, "active")? != 0,
    })
}

/// Every category, active first, by sort order.
pub async fn all(db: &Db) -> AppResult<Vec<Category>> {
    let sql = format!("SELECT {COLS} FROM categories ORDER BY active DESC, sort, code");
    sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&db.pool).await?.iter().map(row).collect()
}

/// Active categories (what reporters may choose).
pub async fn active(db: &Db) -> AppResult<Vec<Category>> {
    Ok(all(db).await?.into_iter().filter(|c| c.active).collect())
}

/// One category by code.
pub async fn by_code(db: &Db, code: &str) -> AppResult<Option<Category>> {
    let sql = format!("SELECT {COLS} FROM categories WHERE code = $1");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(code.trim()).fetch_optional(&db.pool).await?;
    r.as_ref().map(row).transpose()
}

/// One category by id.
pub async fn by_id(db: &Db, id: i64) -> AppResult<Category> {
    let sql = format!("SELECT {COLS} FROM categories WHERE id = $1");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_one(&db.pool).await?;
    row(&r)
}

/// Fields of a category.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CategoryInput {
    /// Code.
    #[serde(default)]
    pub code: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Group.
    #[serde(default)]
    pub group: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Sign-for limit, working hours.
    pub sign_hours: Option<f64>,
    /// Resolve limit, working hours.
    pub resolve_hours: Option<f64>,
    /// Default unit type.
    #[serde(default)]
    pub unit_kind: String,
    /// Default unit code.
    #[serde(default)]
    pub default_unit: String,
    /// 微心愿.
    #[serde(default)]
    pub claimable: bool,
    /// Extra attributes.
    #[serde(default)]
    pub attrs: Vec<Attr>,
    /// Active (default true).
    pub active: Option<bool>,
}

/// Creates or replaces a category (county admins).
pub async fn save(st: &AppState, p: &Principal, i: &CategoryInput) -> AppResult<Category> {
    p.require(Perm::AuditRead)?;
    if p.role != crate::auth::Role::CountyAdmin {
        return Err(AppError::Forbidden);
    }
    let mut errs = FieldErrors::default();
    let code = i.code.trim().to_lowercase();
    if code.is_empty() || code.len() > 32 || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        errs.add("code", "类别编码应为 1～32 位字母、数字或下划线");
    }
    if i.name.trim().is_empty() || i.name.chars().count() > 32 {
        errs.add("name", "类别名称不能为空，且不超过 32 个字");
    }
    let hours = |v: Option<f64>, f: &str, errs: &mut FieldErrors| match v {
        Some(h) if h > 0.0 && h <= 2000.0 => h,
        _ => {
            errs.add(f, "时限应为 0～2000 之间的工作小时数");
            0.0
        }
    };
    let sign = hours(i.sign_hours, "sign_hours", &mut errs);
    let resolve = hours(i.resolve_hours, "resolve_hours", &mut errs);
    if sign > resolve && resolve > 0.0 {
        errs.add("sign_hours", "签收时限不能长于办结时限");
    }
    for a in &i.attrs {
        if !["string", "number", "text", "singlevaluelist", "multivaluelist", "datetime"].contains(&a.datatype.as_str()) {
            errs.add("attrs", format!("属性 {} 的类型无效", a.code));
        }
    }
    let unit = if i.default_unit.trim().is_empty() { None } else { super::units::find(&st.db, &i.default_unit).await? };
    if !i.default_unit.trim().is_empty() && unit.is_none() {
        errs.add("default_unit", "默认承办单位不存在");
    }
    errs.finish()?;
    let attrs = serde_json::to_string(&i.attrs).map_err(|e| AppError::Internal(e.to_string()))?;
    let now = now_ms();
    let mut tx = st.db.begin().await?;
    sqlx::query(
        "INSERT INTO categories (code, name, grp, description, sign_hours, resolve_hours, unit_kind, default_unit_id, claimable, attrs, active, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$12) ON CONFLICT (code) DO UPDATE SET name = $2, grp = $3, description = $4, \
         sign_hours = $5, resolve_hours = $6, unit_kind = $7, default_unit_id = $8, claimable = $9, attrs = $10, active = $11, updated_at = $12",
    )
    .bind(&code)
    .bind(i.name.trim())
    .bind(i.group.trim())
    .bind(i.description.trim())
    .bind(sign)
    .bind(resolve)
    .bind(i.unit_kind.trim())
    .bind(unit.map(|u| u.id))
    .bind(i.claimable as i64)
    .bind(&attrs)
    .bind(i.active.unwrap_or(true) as i64)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let summary = format!("保存事项类别「{}」（签收 {sign} 小时，办结 {resolve} 小时）", i.name.trim());
    let ev = Event { action: "category.save", entity: "category", entity_id: &code, node_path: &p.scope_path, summary: &summary };
    audit::append(&mut tx, &st.chain, &p.actor(), ev).await?;
    tx.commit().await?;
    by_code(&st.db, &code).await?.ok_or(AppError::NotFound)
}

/// The working-day calendar with the configured exceptions.
pub async fn calendar(db: &Db) -> AppResult<Calendar> {
    let rows = sqlx::query("SELECT day, kind FROM calendar_days").fetch_all(&db.pool).await?;
    let mut ex = Vec::with_capacity(rows.len());
    for r in &rows {
        let day: String = get(r, "day")?;
        let kind: String = get(r, "kind")?;
        if let Ok(d) = chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d") {
            ex.push((d, if kind == "workday" { DayKind::Workday } else { DayKind::Holiday }));
        }
    }
    Ok(Calendar::new(ex))
}

/// The exceptions as the admin edits them (one per line).
pub async fn calendar_text(db: &Db) -> AppResult<String> {
    let rows = sqlx::query("SELECT day, kind, name FROM calendar_days ORDER BY day").fetch_all(&db.pool).await?;
    let mut out = String::new();
    for r in &rows {
        let kind: String = get(r, "kind")?;
        let name: String = get(r, "name")?;
        out.push_str(&format!("{} {} {}\n", get::<String>(r, "day")?, if kind == "workday" { "班" } else { "休" }, name));
    }
    Ok(out)
}

/// Replaces the exceptions from the admin's text (all or nothing).
pub async fn set_calendar(st: &AppState, p: &Principal, text: &str) -> AppResult<usize> {
    if p.role != crate::auth::Role::CountyAdmin {
        return Err(AppError::Forbidden);
    }
    let days = parse_exceptions(text).map_err(|m| AppError::field("calendar", m))?;
    let mut tx = st.db.begin().await?;
    sqlx::query("DELETE FROM calendar_days").execute(&mut *tx).await?;
    for (d, kind, name) in &days {
        let k = if *kind == DayKind::Workday { "workday" } else { "holiday" };
        sqlx::query(
            "INSERT INTO calendar_days (day, kind, name) VALUES ($1,$2,$3) ON CONFLICT (day) DO UPDATE SET kind = $2, name = $3",
        )
        .bind(d.format("%Y-%m-%d").to_string())
        .bind(k)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    }
    let summary = format!("更新工作日历：{} 个节假日或调休日", days.len());
    let ev = Event { action: "calendar.save", entity: "calendar", entity_id: "-", node_path: &p.scope_path, summary: &summary };
    audit::append(&mut tx, &st.chain, &p.actor(), ev).await?;
    tx.commit().await?;
    Ok(days.len())
}
