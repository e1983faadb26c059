//! The category catalogue (with time limits and extra attributes, also published as Open311
//! service definitions) and the working-day calendar, both edited by county admins.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;

use serde::{Deserialize, Serialize};

use super::calendar::{Calendar, DayKind, parse_exceptions};
use crate::app::AppState;
use crate::audit::{self, Event};
use crate::auth::{Perm, Principal};
use crate::db::{Db, Row, Tx, get, now_ms};
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

/// Every category, active first, by sort order, from the database.
async fn load_all(db: &Db) -> AppResult<Vec<Category>> {
    let sql = format!("SELECT {COLS} FROM categories ORDER BY active DESC, sort, code");
    sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(db.read()).await?.iter().map(row).collect()
}

/// The categories and the working-day calendar in memory: every case creation, step, case page
/// and Open311 `services` read them. A write to either bumps `category_version` in its
/// transaction and this node reloads at once; other nodes see the new version within two
/// seconds (the poller of `serve`, with the grid index).
#[derive(Clone, Debug, Default)]
pub struct CategoryCache(Arc<RwLock<Option<Versioned>>>, Arc<tokio::sync::Mutex<()>>);

/// The version the list was read at, the list, texts rendered from it (dropped with it), and
/// the calendar read at the same version.
type Versioned = (String, Arc<Vec<Category>>, Renderings, Arc<Calendar>);

/// Texts derived from one list (the Open311 service list in each format), by name.
type Renderings = Arc<RwLock<HashMap<&'static str, Bytes>>>;

impl CategoryCache {
    /// The cached list (loaded on first use).
    pub async fn get(&self, db: &Db) -> AppResult<Arc<Vec<Category>>> {
        self.cached(db, |(_, list, _, _)| list.clone()).await
    }

    /// The working-day calendar (loaded with the list).
    pub async fn calendar(&self, db: &Db) -> AppResult<Arc<Calendar>> {
        self.cached(db, |(_, _, _, cal)| cal.clone()).await
    }

    /// A part of what is loaded, loading it on first use.
    async fn cached<T>(&self, db: &Db, pick: impl Fn(&Versioned) -> T) -> AppResult<T> {
        let have = || self.0.read().unwrap_or_else(|e| e.into_inner()).as_ref().map(&pick);
        if let Some(v) = have() {
            return Ok(v);
        }
        // One load for a burst of first readers (a fresh server's first requests), not one each.
        let _loading = self.1.lock().await;
        if let Some(v) = have() {
            return Ok(v);
        }
        self.reload(db).await?;
        // reload always leaves a loaded state, and nothing empties it again.
        Ok(have().expect("loaded by reload"))
    }

    /// A text derived from the list (`render` runs once per list and name): the Open311
    /// service list is the most read answer there is and changes only with the categories.
    pub async fn rendered(&self, db: &Db, name: &'static str, render: impl Fn(&[Category]) -> String) -> AppResult<Bytes> {
        let list = self.get(db).await?;
        let memo = match &*self.0.read().unwrap_or_else(|e| e.into_inner()) {
            Some((_, l, memo, _)) if Arc::ptr_eq(l, &list) => memo.clone(),
            _ => return Ok(Bytes::from(render(&list))),
        };
        if let Some(b) = memo.read().unwrap_or_else(|e| e.into_inner()).get(name) {
            return Ok(b.clone());
        }
        let b = Bytes::from(render(&list));
        memo.write().unwrap_or_else(|e| e.into_inner()).insert(name, b.clone());
        Ok(b)
    }

    /// Reads the list again.
    pub async fn reload(&self, db: &Db) -> AppResult<Arc<Vec<Category>>> {
        let version = version(db).await?;
        let list = Arc::new(load_all(db).await?);
        let cal = Arc::new(calendar(db).await?);
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some((version, list.clone(), Renderings::default(), cal));
        Ok(list)
    }

    /// Reloads when another node moved the version; true if it did.
    pub async fn refresh(&self, db: &Db) -> AppResult<bool> {
        let v = version(db).await?;
        let same = self.0.read().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|(have, _, _, _)| *have == v);
        if !same {
            self.reload(db).await?;
        }
        Ok(!same)
    }
}

async fn version(db: &Db) -> AppResult<String> {
    crate::db::version::read(db, "category_version").await
}

/// Marks the categories changed, inside the writing transaction.
pub async fn bump_version(tx: &mut Tx) -> AppResult<()> {
    crate::db::version::bump(tx, "category_version").await
}

/// Every category, active first, by sort order.
pub async fn all(st: &AppState) -> AppResult<Vec<Category>> {
    Ok(st.cats.get(&st.db).await?.as_ref().clone())
}

/// Active categories (what reporters may choose).
pub async fn active(st: &AppState) -> AppResult<Vec<Category>> {
    Ok(st.cats.get(&st.db).await?.iter().filter(|c| c.active).cloned().collect())
}

/// A case's answers to its category's questions, as (question, answer) in the category's
/// words (a list's key shown by its label).
pub fn answers(cat: &Category, attrs: &serde_json::Value) -> Vec<(String, String)> {
    let label = |a: &Attr, v: &serde_json::Value| {
        let key = crate::registers::text_of(v);
        a.values.iter().find(|(k, _)| *k == key).map(|(_, l)| l.clone()).unwrap_or(key)
    };
    cat.attrs
        .iter()
        .filter_map(|a| {
            let v = attrs.get(&a.code).filter(|v| !v.is_null())?;
            let shown = match v.as_array() {
                Some(xs) => xs.iter().map(|x| label(a, x)).collect::<Vec<_>>().join("、"),
                None => label(a, v),
            };
            Some((a.name.clone(), shown))
        })
        .collect()
}

/// One category by code.
pub async fn by_code(st: &AppState, code: &str) -> AppResult<Option<Category>> {
    Ok(st.cats.get(&st.db).await?.iter().find(|c| c.code == code.trim()).cloned())
}

/// One category by id.
pub async fn by_id(st: &AppState, id: i64) -> AppResult<Category> {
    st.cats.get(&st.db).await?.iter().find(|c| c.id == id).cloned().ok_or(AppError::NotFound)
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
    } else if crate::ident::has_control(&i.name) {
        errs.add("name", "类别名称含有不可见的控制字符");
    }
    if i.group.chars().count() > 32 || crate::ident::has_control(&i.group) {
        errs.add("group", "分组不超过 32 个字，且不含控制字符");
    }
    if i.description.chars().count() > 500 {
        errs.add("description", "说明不能超过 500 个字");
    }
    if !i.unit_kind.trim().is_empty() && !super::units::KINDS.contains(&i.unit_kind.trim()) {
        errs.add("unit_kind", format!("默认单位类型应为 {} 之一", super::units::KINDS.join("、")));
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
    .execute(&mut tx)
    .await?;
    let summary = format!("保存事项类别「{}」（签收 {sign} 小时，办结 {resolve} 小时）", i.name.trim());
    let ev = Event { action: "category.save", entity: "category", entity_id: &code, node_path: &p.scope_path, summary: &summary };
    audit::append(&mut tx, &st.chain, &p.actor(), ev);
    bump_version(&mut tx).await?;
    // Pages and lists show the category's name, and who may claim decides what a Party
    // member's list holds.
    tx.forget_all_cases();
    tx.commit().await?;
    st.cats.reload(&st.db).await?;
    by_code(st, &code).await?.ok_or(AppError::NotFound)
}

/// The working-day calendar with the configured exceptions, from the database (requests use
/// the cached one: [`CategoryCache::calendar`]).
pub async fn calendar(db: &Db) -> AppResult<Calendar> {
    calendar_of(&sqlx::query(CALENDAR_SQL).fetch_all(db.read()).await?)
}

/// The exceptions' statement, for [`calendar_of`].
pub const CALENDAR_SQL: &str = "SELECT day, kind FROM calendar_days";

/// The calendar of [`CALENDAR_SQL`]'s rows.
pub fn calendar_of(rows: &[crate::db::Row]) -> AppResult<Calendar> {
    let mut ex = Vec::with_capacity(rows.len());
    for r in rows {
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
    let rows = sqlx::query("SELECT day, kind, name FROM calendar_days ORDER BY day").fetch_all(db.read()).await?;
    let mut out = String::new();
    for r in &rows {
        let kind: String = get(r, "kind")?;
        let name: String = get(r, "name")?;
        out.push_str(&format!("{} {} {}\n", get::<String>(r, "day")?, if kind == "workday" { "班" } else { "休" }, name));
    }
    Ok(out)
}

/// Replaces the exceptions from the admin's text (all or nothing).
///
/// A calendar with no day at all deletes every holiday and working weekend, which moves every
/// deadline: refused unless `clear_all` says so (an emptied box, a missing field).
pub async fn set_calendar(st: &AppState, p: &Principal, text: &str, clear_all: bool) -> AppResult<usize> {
    if p.role != crate::auth::Role::CountyAdmin {
        return Err(AppError::Forbidden);
    }
    let days = parse_exceptions(text).map_err(|m| AppError::field("calendar", m))?;
    if days.is_empty() && !clear_all {
        return Err(AppError::field("calendar", "日历为空：保存会删除全部节假日和调休日。如确需清空，请勾选“确认清空”"));
    }
    let mut tx = st.db.begin().await?;
    sqlx::query("DELETE FROM calendar_days").execute(&mut tx).await?;
    for (d, kind, name) in &days {
        let k = if *kind == DayKind::Workday { "workday" } else { "holiday" };
        sqlx::query(
            "INSERT INTO calendar_days (day, kind, name) VALUES ($1,$2,$3) ON CONFLICT (day) DO UPDATE SET kind = $2, name = $3",
        )
        .bind(d.format("%Y-%m-%d").to_string())
        .bind(k)
        .bind(name)
        .execute(&mut tx)
        .await?;
    }
    let summary = format!("更新工作日历：{} 个节假日或调休日", days.len());
    let ev = Event { action: "calendar.save", entity: "calendar", entity_id: "-", node_path: &p.scope_path, summary: &summary };
    audit::append(&mut tx, &st.chain, &p.actor(), ev);
    bump_version(&mut tx).await?;
    tx.commit().await?;
    st.cats.reload(&st.db).await?;
    Ok(days.len())
}
