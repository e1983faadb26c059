//! Register rows: validation of whole rows, scoped reads with filters/sort/paging and pinyin
//! search, audited writes, and all-or-nothing batches for imports.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{Field, Register, Ty, display, parse_value, pinyin_keys, text_of};
use crate::app::AppState;
use crate::audit::{self, Event};
use crate::auth::{Perm, Principal};
use crate::db::list::{Page, paging};
use crate::db::{Row, Tx, get, like_escape, now_ms};
use crate::error::{AppError, AppResult, FieldError};

/// A stored row.
#[derive(Clone, Debug)]
pub struct Rec {
    /// Row id.
    pub id: i64,
    /// Scope path.
    pub node_path: String,
    /// Display name.
    pub name: String,
    /// Stored values.
    pub data: Map<String, Value>,
    /// Retired.
    pub retired: bool,
    /// Optimistic lock.
    pub version: i64,
}

fn rec(r: &Row) -> AppResult<Rec> {
    let data: String = get(r, "data")?;
    Ok(Rec {
        id: get(r, "id")?,
        node_path: get(r, "node_path")?,
        name: get(r, "name")?,
        data: serde_json::from_str(&data).unwrap_or_default(),
        retired: get::<Option<i64>>(r, "retired_at")?.is_some(),
        version: get(r, "version")?,
    })
}

/// True when `p` may read a row of `reg` at `path`: inside its scope, or a row above it (a
/// county-level document) unless the register holds staff's personal records.
pub fn readable(p: &Principal, reg: &Register, path: &str) -> bool {
    p.in_scope(path) || (!reg.personal && above(p, path))
}

/// The row at `path` lies at an ancestor of the caller's scope.
fn above(p: &Principal, path: &str) -> bool {
    p.scope_path.starts_with(path)
}

/// Every row of a register the caller may read (the unit of work for filters and lists).
pub async fn rows(st: &AppState, p: &Principal, reg: &Register, retired: bool) -> AppResult<Vec<Rec>> {
    p.require(Perm::RegisterRead)?;
    Ok(county_rows(st, p, reg, retired).await?.into_iter().filter(|r| readable(p, reg, &r.node_path)).collect())
}

/// The rows inside the caller's scope and above it, whatever its role: for the figures counted
/// from them, which every role sees, never for the rows themselves.
pub(super) async fn scoped_rows(st: &AppState, p: &Principal, reg: &Register, retired: bool) -> AppResult<Vec<Rec>> {
    Ok(county_rows(st, p, reg, retired)
        .await?
        .into_iter()
        .filter(|r| p.in_scope(&r.node_path) || above(p, &r.node_path))
        .collect())
}

/// Every row of the register in the caller's county.
async fn county_rows(st: &AppState, p: &Principal, reg: &Register, retired: bool) -> AppResult<Vec<Rec>> {
    let county = p.county_path();
    let sql = format!(
        "SELECT id, node_path, name, data, retired_at, version FROM register_rows WHERE register = $1 AND node_path LIKE $2 ESCAPE '\\' {} ORDER BY id",
        if retired { "" } else { "AND retired_at IS NULL" }
    );
    let rs = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(reg.name)
        .bind(format!("{}%", like_escape(&county)))
        .fetch_all(st.db.read())
        .await?;
    rs.iter().map(rec).collect()
}

/// One row the caller may read.
pub async fn one(st: &AppState, p: &Principal, reg: &Register, id: i64) -> AppResult<Rec> {
    // Before the lookup: a 403 for a row that exists and a 404 for one that does not told a
    // role without the registers which rows there are.
    p.require(Perm::RegisterRead)?;
    let r =
        sqlx::query("SELECT id, node_path, name, data, retired_at, version FROM register_rows WHERE register = $1 AND id = $2")
            .bind(reg.name)
            .bind(id)
            .fetch_optional(st.db.read())
            .await?
            .ok_or(AppError::NotFound)?;
    let r = rec(&r)?;
    if !readable(p, reg, &r.node_path) {
        return Err(AppError::NotFound);
    }
    Ok(r)
}

/// The row as the API and pages show it: `id`, the name field, every field (personal data
/// masked), and the computed columns.
pub fn item(st: &AppState, reg: &Register, r: &Rec) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), Value::from(r.id));
    for f in reg.fields {
        let v = r.data.get(f.key).cloned().unwrap_or(Value::Null);
        let shown = match f.ty {
            Ty::IdNumber | Ty::Secret | Ty::Mobile | Ty::Phone if !v.is_null() => Value::String(display(f, &v, &st.keyring)),
            _ => v,
        };
        m.insert(f.key.into(), shown);
    }
    let today = crate::cases::calendar::local_date(now_ms());
    for c in reg.computed {
        m.insert(c.key.into(), (c.f)(&r.data, today));
    }
    m.insert("retired".into(), Value::Bool(r.retired));
    m.insert("version".into(), Value::from(r.version));
    if !m.contains_key("name") && !m.contains_key("title") {
        m.insert("name".into(), Value::String(r.name.clone()));
    }
    Value::Object(m)
}

/// List parameters; any other query key filters on the field of that name (exact match).
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// Search: Chinese substring, full pinyin or initials.
    pub q: Option<String>,
    /// Sort key (a field or computed column); prefix `-` for descending.
    pub sort: Option<String>,
    /// 1-based page.
    pub page: Option<i64>,
    /// Page size.
    pub per_page: Option<i64>,
    /// Include retired rows.
    pub retired: Option<bool>,
    /// Field filters.
    pub filters: HashMap<String, String>,
}

impl ListQuery {
    /// Reads the query string of a list or export request.
    pub fn from_map(raw: &HashMap<String, String>) -> AppResult<ListQuery> {
        let int = |k: &str| -> AppResult<Option<i64>> {
            raw.get(k)
                .filter(|v| !v.trim().is_empty())
                .map(|v| v.trim().parse::<i64>().map_err(|_| AppError::field(k, "应为整数")))
                .transpose()
        };
        let reserved = ["q", "sort", "page", "per_page", "retired", "notice", "ns"];
        Ok(ListQuery {
            q: raw.get("q").cloned(),
            sort: raw.get("sort").cloned(),
            page: int("page")?,
            per_page: int("per_page")?.map(|n| n.min(crate::db::list::MAX_PER_PAGE)),
            retired: raw.get("retired").map(|v| v == "true"),
            filters: raw.iter().filter(|(k, _)| !reserved.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
    }
}

/// Filters, searches, sorts and pages the readable rows.
pub async fn list(st: &AppState, p: &Principal, reg: &Register, q: &ListQuery) -> AppResult<Page<Value>> {
    let mut items: Vec<Value> = rows(st, p, reg, q.retired.unwrap_or(false)).await?.iter().map(|r| item(st, reg, r)).collect();
    let needle = q.q.as_deref().map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty());
    if let Some(n) = &needle {
        items.retain(|it| {
            let name = it.get(reg.name_field).map(text_of).unwrap_or_default();
            let hay = format!(
                "{} {} {}",
                name,
                pinyin_keys(&name),
                reg.fields
                    .iter()
                    .filter(|f| f.list)
                    .map(|f| it.get(f.key).map(text_of).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            hay.to_lowercase().contains(n.as_str())
        });
    }
    for (k, v) in &q.filters {
        let known = reg.field(k).is_some() || reg.computed.iter().any(|c| c.key == k);
        if !known || v.trim().is_empty() {
            continue;
        }
        // A number matches by value: 100000 finds an amount stored as 100000.0.
        let want = v.trim();
        let num = want.parse::<f64>().ok();
        items.retain(|it| match (it.get(k.as_str()), num) {
            (Some(Value::Number(n)), Some(x)) => n.as_f64() == Some(x),
            (got, _) => got.map(text_of).as_deref() == Some(want),
        });
    }
    if let Some(s) = q.sort.as_deref().filter(|s| !s.is_empty()) {
        let (key, desc) = s.strip_prefix('-').map(|k| (k, true)).unwrap_or((s, false));
        if reg.field(key).is_none() && !reg.computed.iter().any(|c| c.key == key) {
            return Err(AppError::field("sort", "排序字段无效"));
        }
        items.sort_by(|a, b| {
            let (x, y) = (a.get(key).cloned().unwrap_or(Value::Null), b.get(key).cloned().unwrap_or(Value::Null));
            let o = match (x.as_f64(), y.as_f64()) {
                (Some(i), Some(j)) => i.partial_cmp(&j).unwrap_or(std::cmp::Ordering::Equal),
                _ => text_of(&x).cmp(&text_of(&y)),
            };
            if desc { o.reverse() } else { o }
        });
    }
    let (page, per) = paging(q.page, q.per_page);
    let total = items.len() as i64;
    let items = items.into_iter().skip(((page - 1) * per) as usize).take(per as usize).collect();
    Ok(Page { items, total, total_capped: false, page, per_page: per })
}

/// A row checked and normalised, ready to write.
#[derive(Clone, Debug)]
pub struct Valid {
    data: Map<String, Value>,
    node_path: String,
    name: String,
    search: String,
}

impl Valid {
    /// The row's values of the register's unique fields, if it has any.
    fn key(&self, reg: &Register) -> Option<String> {
        key_of(reg, &self.data)
    }
}

fn key_of(reg: &Register, data: &Map<String, Value>) -> Option<String> {
    // Without regard to case: dw001 beside DW001 made a second unit to dispatch to.
    (!reg.unique.is_empty()).then(|| {
        reg.unique.iter().map(|k| data.get(*k).map(text_of).unwrap_or_default().to_lowercase()).collect::<Vec<_>>().join("\u{1}")
    })
}

/// The unique keys of the register's active rows (county-wide: a unit's code is unique in the
/// county whatever the caller's scope), with their ids: for an import's report, before writing.
pub async fn taken_keys(st: &AppState, reg: &Register) -> AppResult<HashMap<String, i64>> {
    keys_of(&sqlx::query(KEYS_SQL).bind(reg.name).fetch_all(st.db.read()).await?, reg)
}

const KEYS_SQL: &str = "SELECT id, data FROM register_rows WHERE register = $1 AND retired_at IS NULL";

/// Refuses rows whose unique fields another active row holds (`this` the row being edited), or
/// an earlier row of `rows` does; inside `tx`, after making the register's writers take turns,
/// on every node: checked before the transaction, two forms at once would both find it free.
async fn check_keys<'a>(
    tx: &mut Tx,
    reg: &Register,
    rows: impl IntoIterator<Item = &'a Valid>,
    this: Option<i64>,
) -> AppResult<()> {
    if clashes(tx, reg, rows, this).await?.is_empty() { Ok(()) } else { Err(AppError::field(reg.unique[0], taken_message(reg))) }
}

/// The positions in `rows` of those whose unique fields another active row holds (see
/// [`check_keys`]).
async fn clashes<'a>(
    tx: &mut Tx,
    reg: &Register,
    rows: impl IntoIterator<Item = &'a Valid>,
    this: Option<i64>,
) -> AppResult<Vec<usize>> {
    if reg.unique.is_empty() {
        return Ok(Vec::new());
    }
    tx.serialise(&format!("register:{}", reg.name)).await?;
    let taken = keys_of(&sqlx::query(KEYS_SQL).bind(reg.name).fetch_all(&mut *tx).await?, reg)?;
    Ok(repeats(reg, taken, rows, this))
}

/// The positions in `rows` of those whose unique fields an active row other than `this`
/// (`taken`: key → id), or an earlier row of `rows`, already holds.
pub fn repeats<'a>(
    reg: &Register,
    mut taken: HashMap<String, i64>,
    rows: impl IntoIterator<Item = &'a Valid>,
    this: Option<i64>,
) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, v) in rows.into_iter().enumerate() {
        if let Some(k) = v.key(reg)
            && taken.insert(k, 0).is_some_and(|other| Some(other) != this)
        {
            out.push(i);
        }
    }
    out
}

fn keys_of(rows: &[Row], reg: &Register) -> AppResult<HashMap<String, i64>> {
    if reg.unique.is_empty() {
        return Ok(HashMap::new());
    }
    let mut out = HashMap::new();
    for r in rows {
        let data: Map<String, Value> = serde_json::from_str(&get::<String>(r, "data")?).unwrap_or_default();
        if let Some(k) = key_of(reg, &data) {
            out.insert(k, get::<i64>(r, "id")?);
        }
    }
    Ok(out)
}

/// The message for a row whose unique fields repeat another's.
pub fn taken_message(reg: &Register) -> String {
    let titles: Vec<&str> = reg.unique.iter().filter_map(|k| reg.field(k)).map(|f| f.title).collect();
    format!("已有{}相同的记录", titles.join("、"))
}

/// Checks every field of a raw row, collecting every error (the column title names the field).
pub async fn validate(st: &AppState, p: &Principal, reg: &Register, raw: &Map<String, Value>) -> Result<Valid, Vec<FieldError>> {
    let mut errs = Vec::new();
    let mut data = Map::new();
    let county = p.county_path();
    let mut node_path = county.clone();
    // The names of the nodes and units referred to so far, by field.
    let mut names: HashMap<&str, String> = HashMap::new();
    for f in reg.fields {
        let mut err = |m: String| errs.push(FieldError { field: f.key.into(), message: format!("{}：{m}", f.title) });
        let given = raw.get(f.key).unwrap_or(&Value::Null);
        // Here, not in the HTTP layer alone: an import (by the CLI too) comes this way, and a
        // NUL (an xlsx cell's _x0000_) passed its dry run and failed its write on PostgreSQL.
        if crate::ident::stray_control(&text_of(given)) {
            err(crate::ident::STRAY_CONTROL.into());
            continue;
        }
        let mut v = match parse_value(f, given, &st.keyring) {
            Ok(v) => v,
            Err(m) => {
                err(m);
                continue;
            }
        };
        // A name kept beside a code (community_name beside community) is that code's name,
        // whatever was typed: a second 花花桥社区 row held 燎原社区's money, and a row kept
        // its community's old name after a rename.
        if let Some(named) = f.key.strip_suffix("_name").and_then(|k| names.get(k)) {
            v = Value::String(named.clone());
        }
        if v.is_null() {
            if f.required {
                err("必填".into());
            }
            continue;
        }
        match check_ref(st, f, &v).await {
            Ok(Some(r)) => {
                if reg.scope_field == Some(f.key)
                    && let Some(path) = r.path
                {
                    node_path = path;
                }
                // A unit given by its id is kept by its code.
                v = Value::String(r.code);
                names.insert(f.key, r.name);
            }
            Ok(None) => {}
            Err(m) => err(m),
        }
        data.insert(f.key.into(), v);
    }
    // A term ends on or after the day it starts; a part is not more than its whole.
    for (low, high, says) in ORDERED {
        let out_of_order = match (data.get(low), data.get(high)) {
            (Some(Value::String(a)), Some(Value::String(b))) => a > b,
            (Some(Value::Number(a)), Some(Value::Number(b))) => a.as_f64() > b.as_f64(),
            _ => false,
        };
        let (Some(fl), Some(fh)) = (reg.field(low), reg.field(high)) else { continue };
        if out_of_order {
            // Said on the field that ends a term, on the part otherwise.
            let (on, other) = if says == "不能早于" { (fh, fl) } else { (fl, fh) };
            errs.push(FieldError { field: on.key.into(), message: format!("{}：{says}{}", on.title, other.title) });
        }
    }
    if errs.is_empty() && !p.in_scope(&node_path) {
        let message = match reg.scope_field {
            Some(_) => "不在您的管辖范围内".into(),
            None => format!("{SCOPE_TITLE}：{}由县级统一维护，不在您的管辖范围内", reg.title),
        };
        errs.push(FieldError { field: reg.scope_field.unwrap_or(SCOPE).into(), message });
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let name = data.get(reg.name_field).map(text_of).unwrap_or_default();
    let search = format!("{name} {}", pinyin_keys(&name)).to_lowercase();
    Ok(Valid { data, node_path, name, search })
}

/// The key of the error on a row outside the caller's scope, in a register without a scope
/// field (the county's): no field of the form holds it.
pub const SCOPE: &str = "scope";
/// How that key is named to people (an import's column, a form's message).
pub const SCOPE_TITLE: &str = "管辖范围";

/// The zh-CN name of a field key of `reg` (the key itself for one it does not have).
pub fn field_title<'a>(reg: &Register, key: &'a str) -> &'a str {
    match reg.field(key) {
        Some(f) => f.title,
        None if key == SCOPE => SCOPE_TITLE,
        None => key,
    }
}

/// Pairs of fields whose first may not exceed the second, where a register has both, and how
/// it is said.
const ORDERED: [(&str, &str, &str); 5] = [
    ("start_date", "end_date", "不能早于"),
    ("contract_start", "contract_end", "不能早于"),
    ("term_start", "term_end", "不能早于"),
    ("target", "baseline", "不能多于"),
    ("hired", "posts", "不能多于"),
];

/// A node or unit a field refers to.
struct Ref {
    /// A node's path (a unit has none).
    path: Option<String>,
    /// Its code as kept.
    code: String,
    name: String,
}

/// Checks a node or unit reference (`None`: the field refers to nothing).
async fn check_ref(st: &AppState, f: &Field, v: &Value) -> Result<Option<Ref>, String> {
    let code = v.as_str().unwrap_or_default();
    match f.ty {
        Ty::Node(kinds) => match crate::tree::store::find_by_code(&st.db, code).await {
            Ok(Some(n)) if !n.retired && kinds.contains(&n.kind) => {
                Ok(Some(Ref { path: Some(n.path), code: n.code, name: n.name }))
            }
            Ok(Some(n)) if !n.retired => {
                Err(format!("{code} 是{}「{}」，此处应填{}编码", n.kind.label(), n.name, super::node_kinds(kinds)))
            }
            Ok(_) => Err(format!("区域编码 {code} 不存在")),
            Err(_) => Err("无法校验区域编码".into()),
        },
        Ty::Unit(kinds) => match crate::cases::units::find(&st.db, code).await {
            Ok(Some(u)) if !kinds.is_empty() && !kinds.contains(&u.kind.as_str()) => {
                Err(format!("{code} 是{}单位「{}」，此处应填{}类单位的编码", u.kind, u.name, kinds.join("、")))
            }
            Ok(Some(u)) => Ok(Some(Ref { path: None, code: u.code, name: u.name })),
            _ => Err(format!("单位 {code} 不存在")),
        },
        _ => Ok(None),
    }
}

/// Inserts a valid row inside `tx` (audited).
pub async fn insert(tx: &mut Tx, st: &AppState, p: &Principal, reg: &Register, v: &Valid, is_demo: bool) -> AppResult<i64> {
    let now = now_ms();
    let r = sqlx::query(
        "INSERT INTO register_rows (register, node_path, name, search, data, is_demo, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$7) RETURNING id",
    )
    .bind(reg.name)
    .bind(&v.node_path)
    .bind(&v.name)
    .bind(&v.search)
    .bind(Value::Object(v.data.clone()).to_string())
    .bind(is_demo as i64)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let id: i64 = get(&r, "id")?;
    sync_unit(tx, reg, &v.data, &v.node_path).await?;
    if !is_demo {
        let summary = format!("新建{}「{}」", reg.title, v.name);
        let ev = Event {
            action: "register.create",
            entity: &format!("register:{}", reg.name),
            entity_id: &id.to_string(),
            node_path: &v.node_path,
            summary: &summary,
        };
        audit::append(tx, &st.chain, &p.actor(), ev);
    }
    Ok(id)
}

/// Confirms the 志愿服务记录 made from case `number` (its community closed it: the work was
/// done and checked with the resident). One statement: the records are the case's own.
pub async fn confirm_service(tx: &mut Tx, st: &AppState, p: &Principal, number: &str) -> AppResult<()> {
    settle_service(tx, st, p, number, true).await
}

/// Retires the unconfirmed 志愿服务记录 made from case `number`: the work was sent back (返工),
/// handed to someone else or returned, and is recorded again when it is finished.
pub async fn withdraw_service(tx: &mut Tx, st: &AppState, p: &Principal, number: &str) -> AppResult<()> {
    settle_service(tx, st, p, number, false).await
}

async fn settle_service(tx: &mut Tx, st: &AppState, p: &Principal, number: &str, confirm: bool) -> AppResult<()> {
    let marker = format!("%{}%", like_escape(&format!("\"case\":{}", Value::String(number.to_string()))));
    let set = if confirm { "data = REPLACE(data, '\"confirmed\":false', '\"confirmed\":true')" } else { "retired_at = $1" };
    let sql = format!(
        "UPDATE register_rows SET {set}, version = version + 1, updated_at = $1 \
         WHERE register = 'service_records' AND retired_at IS NULL AND data LIKE $2 ESCAPE '\\' AND data LIKE '%\"confirmed\":false%'"
    );
    let n = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now_ms()).bind(&marker).execute(&mut *tx).await?.rows_affected();
    if n > 0 {
        let what = if confirm { "结案确认" } else { "退回后停用" };
        let summary = format!("{what}志愿服务记录（事项 {number}，{n} 条）");
        let ev = Event {
            action: "register.update",
            entity: "register:service_records",
            entity_id: number,
            node_path: &p.scope_path,
            summary: &summary,
        };
        audit::append(tx, &st.chain, &p.actor(), ev);
    }
    Ok(())
}

/// Registers a grid worker keeps for the grid in their charge (入户走访, 网格信箱): their own
/// work, written within their scope. Every other register is written by community staff and
/// above.
const GRID_WORK: &[&str] = &["visits", "mailbox"];

/// Whether `p` may write rows of `reg` at all (within the scope, see [`may_write_at`]).
pub fn may_write(p: &Principal, reg: &Register) -> bool {
    p.role.can(Perm::TreeWrite) || (p.role == crate::auth::Role::GridWorker && GRID_WORK.contains(&reg.name))
}

/// Whether `p` may add rows to `reg` somewhere: a register without a scope field keeps its rows
/// at the county, so only a county-wide scope adds to it (a street's save was refused).
pub fn may_create(p: &Principal, reg: &Register) -> bool {
    may_write(p, reg) && (reg.scope_field.is_some() || p.in_scope(&p.county_path()))
}

/// Whether `p` may edit or retire the row of `reg` at `path` (the rule of [`update`]).
pub fn may_change(p: &Principal, reg: &Register, path: &str) -> bool {
    may_write_at(p, reg, Some(path)).is_ok()
}

/// Whether `p` may turn the row of `reg` at `path` into a case (the rule of [`to_case`]).
pub fn may_to_case(p: &Principal, reg: &Register, path: &str) -> bool {
    reg.to_case.is_some() && p.check(Perm::TreeWrite, path).is_ok()
}

/// `p` may write the row of `reg` at `path` (a row's scope; a new row's is checked with its
/// fields).
pub(crate) fn may_write_at(p: &Principal, reg: &Register, path: Option<&str>) -> AppResult<()> {
    p.ready()?;
    if let Some(path) = path
        && !p.in_scope(path)
    {
        return Err(AppError::NotFound);
    }
    if may_write(p, reg) { Ok(()) } else { Err(AppError::Forbidden) }
}

/// Creates one row.
pub async fn create(st: &AppState, p: &Principal, reg: &Register, raw: &Map<String, Value>) -> AppResult<Value> {
    may_write_at(p, reg, None)?;
    let v = validate(st, p, reg, raw).await.map_err(AppError::Validation)?;
    let mut tx = st.db.begin().await?;
    check_keys(&mut tx, reg, [&v], None).await?;
    let id = insert(&mut tx, st, p, reg, &v, false).await?;
    tx.commit().await?;
    Ok(item(st, reg, &one(st, p, reg, id).await?))
}

/// Replaces a row's values (optimistic lock on `version`).
pub async fn update(st: &AppState, p: &Principal, reg: &Register, id: i64, raw: &Map<String, Value>) -> AppResult<Value> {
    let old = one(st, p, reg, id).await?;
    may_write_at(p, reg, Some(&old.node_path))?;
    // Personal fields left out, empty, or sent back as shown (masked) keep their stored value:
    // the page and the API show them masked, and re-sending that must not wipe them.
    let mut raw = raw.clone();
    for f in reg.fields.iter().filter(|f| matches!(f.ty, Ty::Secret | Ty::IdNumber | Ty::Mobile | Ty::Phone)) {
        let sent = raw.get(f.key).and_then(Value::as_str).unwrap_or_default();
        if sent.trim().is_empty() || (f.ty != Ty::Secret && sent.contains('*')) {
            let stored = old.data.get(f.key).and_then(Value::as_str);
            let plain = match f.ty {
                Ty::Mobile | Ty::Phone => stored.map(str::to_string),
                _ => stored.and_then(|s| super::decrypt(&st.keyring, s, f.key)),
            };
            match plain {
                Some(v) => raw.insert(f.key.into(), Value::String(v)),
                None => raw.remove(f.key),
            };
        }
    }
    let raw = &raw;
    let v = validate(st, p, reg, raw).await.map_err(AppError::Validation)?;
    let version = raw.get("version").and_then(Value::as_i64).unwrap_or(old.version);
    let mut tx = st.db.begin().await?;
    check_keys(&mut tx, reg, [&v], Some(id)).await?;
    let n = sqlx::query("UPDATE register_rows SET node_path = $1, name = $2, search = $3, data = $4, updated_at = $5, version = version + 1 WHERE id = $6 AND version = $7")
        .bind(&v.node_path)
        .bind(&v.name)
        .bind(&v.search)
        .bind(Value::Object(v.data.clone()).to_string())
        .bind(now_ms())
        .bind(id)
        .bind(version)
        .execute(&mut tx)
        .await?
        .rows_affected();
    if n != 1 {
        return Err(AppError::Conflict("该记录已被他人修改，请刷新后重试".into()));
    }
    sync_unit(&mut tx, reg, &v.data, &v.node_path).await?;
    let changed: Vec<&str> = reg.fields.iter().filter(|f| old.data.get(f.key) != v.data.get(f.key)).map(|f| f.title).collect();
    let summary =
        format!("修改{}「{}」：{}", reg.title, v.name, if changed.is_empty() { "无变化".into() } else { changed.join("、") });
    let ev = Event {
        action: "register.update",
        entity: &format!("register:{}", reg.name),
        entity_id: &id.to_string(),
        node_path: &v.node_path,
        summary: &summary,
    };
    audit::append(&mut tx, &st.chain, &p.actor(), ev);
    tx.commit().await?;
    Ok(item(st, reg, &one(st, p, reg, id).await?))
}

/// Retires (or restores) a row; rows are never deleted.
pub async fn set_retired(st: &AppState, p: &Principal, reg: &Register, id: i64, retired: bool) -> AppResult<()> {
    let old = one(st, p, reg, id).await?;
    may_write_at(p, reg, Some(&old.node_path))?;
    let mut tx = st.db.begin().await?;
    sqlx::query("UPDATE register_rows SET retired_at = $1, version = version + 1 WHERE id = $2")
        .bind(retired.then(now_ms))
        .bind(id)
        .execute(&mut tx)
        .await?;
    let summary = format!("{}{}「{}」", if retired { "停用" } else { "恢复" }, reg.title, old.name);
    let ev = Event {
        action: if retired { "register.retire" } else { "register.restore" },
        entity: &format!("register:{}", reg.name),
        entity_id: &id.to_string(),
        node_path: &old.node_path,
        summary: &summary,
    };
    audit::append(&mut tx, &st.chain, &p.actor(), ev);
    tx.commit().await?;
    Ok(())
}

/// One change of a row as its page and the API show it: when, what and a summary. Not the
/// audit entry: its address and hash chain are the audit log's, and who did it and why a
/// reveal was made are for those who may read the log.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RowEvent {
    /// Milliseconds since the epoch.
    pub at: i64,
    /// Action code (`register.update`).
    pub action: String,
    /// Its zh-CN name.
    pub label: String,
    /// What changed.
    pub summary: String,
    /// Who (for those who may read the audit log only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// The changes of one row, newest first, as `p` may see them.
pub async fn history(st: &AppState, p: &Principal, reg: &Register, id: i64) -> AppResult<Vec<RowEvent>> {
    let rows = sqlx::query(
        "SELECT at, actor, action, node_path, summary FROM audit_log WHERE entity = $1 AND entity_id = $2 ORDER BY seq DESC",
    )
    .bind(format!("register:{}", reg.name))
    .bind(id.to_string())
    .fetch_all(st.db.read())
    .await?;
    rows.iter()
        .map(|r| {
            // Whether the audit log shows `p` this entry (see audit::routes::search).
            let node_path: String = get(r, "node_path")?;
            let auditor =
                p.role.can(Perm::AuditRead) && (p.role == crate::auth::Role::CountyAdmin || node_path.starts_with(&p.scope_path));
            let action: String = get(r, "action")?;
            let mut summary: String = get(r, "summary")?;
            if !auditor && action == "register.reveal" {
                summary.truncate(summary.find(crate::audit::REASON).unwrap_or(summary.len()));
            }
            Ok(RowEvent {
                at: get(r, "at")?,
                label: crate::audit::labels::action(&action),
                action,
                summary,
                actor: if auditor { Some(get(r, "actor")?) } else { None },
            })
        })
        .collect()
}

/// The member-unit register extends the unit registry that dispatch uses: saving a row
/// creates or updates the unit of the same code, so both always agree.
async fn sync_unit(tx: &mut Tx, reg: &Register, data: &Map<String, Value>, path: &str) -> AppResult<()> {
    if reg.name != "units" {
        return Ok(());
    }
    let s = |k: &str| data.get(k).map(text_of).unwrap_or_default();
    let kind = if super::catalog::UNIT_KINDS.contains(&s("kind").as_str()) { s("kind") } else { "部门".into() };
    let now = now_ms();
    // A unit kept under its code in another case (dw900, from before codes were upper-cased)
    // takes this spelling, keeping its id and so its cases and contacts, instead of a twin.
    sqlx::query("UPDATE units SET code = $1 WHERE UPPER(code) = UPPER($1) AND code <> $1 AND NOT EXISTS (SELECT 1 FROM units u2 WHERE u2.code = $1)")
        .bind(s("code"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO units (code, name, kind, contact_name, contact_phone, communities, node_path, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$8) \
         ON CONFLICT (code) DO UPDATE SET name = $2, kind = $3, contact_name = $4, contact_phone = $5, updated_at = $8",
    )
    .bind(s("code"))
    .bind(s("name"))
    .bind(kind)
    .bind(s("contact_name"))
    .bind(s("contact_phone"))
    .bind(s("community"))
    .bind(crate::tree::ancestor(path, 1))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    super::names::follow(tx, super::names::Renamed::Unit, &s("code"), &s("name")).await?;
    Ok(())
}

/// Writes a batch of valid rows in one transaction: all or nothing. `Ok(Err(positions))`
/// when rows' unique fields were taken after the caller checked them (an import or a form at
/// the same time): nothing is written, and the positions say which rows, as an import's report
/// names them (the bare field error of a form named no row, and its field by key).
pub async fn insert_all(st: &AppState, p: &Principal, reg: &Register, rows: &[Valid]) -> AppResult<Result<usize, Vec<usize>>> {
    let mut tx = st.db.begin().await?;
    let taken = clashes(&mut tx, reg, rows, None).await?;
    if !taken.is_empty() {
        return Ok(Err(taken));
    }
    for v in rows {
        insert(&mut tx, st, p, reg, v, false).await?;
    }
    tx.commit().await?;
    Ok(Ok(rows.len()))
}

/// Turns a row into a case (a problem, a visit's finding, a mailbox message); the row keeps
/// the case number and follows it. A row becomes a case once.
pub async fn to_case(
    st: &AppState,
    p: &Principal,
    reg: &Register,
    id: i64,
    category: Option<&str>,
) -> AppResult<crate::cases::store::Created> {
    let tc = reg.to_case.ok_or(AppError::NotFound)?;
    let row = one(st, p, reg, id).await?;
    // The rule of may_to_case, with its answers: 404 outside the scope, 403 without the right.
    p.check(Perm::TreeWrite, &row.node_path)?;
    if row.data.get("case_number").and_then(Value::as_str).is_some_and(|s| !s.is_empty()) {
        return Err(AppError::Conflict("该记录已转为事项".into()));
    }
    let text = row.data.get(tc.text).map(text_of).unwrap_or_default();
    if text.trim().is_empty() {
        return Err(AppError::field(tc.text, "没有可转为事项的内容"));
    }
    let input = crate::cases::store::CreateInput {
        category: category.filter(|c| !c.is_empty()).unwrap_or(tc.category).to_string(),
        description: text.clone(),
        title: format!("{}：{}", reg.title, text.chars().take(20).collect::<String>()),
        grid: row.data.get(tc.node).map(text_of),
        channel: Some(tc.channel.to_string()),
        ..Default::default()
    };
    // The row records the case in the transaction that creates it, if it is still as read:
    // a second request for the same row (a double click) or an edit meanwhile rolls this
    // creation back instead of making a second case or losing the edit.
    let (actor, chain, title, register) = (p.actor(), st.chain.clone(), reg.title, reg.name);
    let also: crate::cases::store::Also = Box::new(move |tx, number| {
        Box::pin(async move {
            let mut data = row.data;
            data.insert("case_number".into(), Value::String(number.to_string()));
            let n = sqlx::query(
                "UPDATE register_rows SET data = $1, version = version + 1, updated_at = $2 WHERE id = $3 AND version = $4",
            )
            .bind(Value::Object(data).to_string())
            .bind(now_ms())
            .bind(id)
            .bind(row.version)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(AppError::Conflict("该记录刚被修改或已转为事项，请刷新后再试".into()));
            }
            let summary = format!("{title}「{}」转为事项 {number}", row.name);
            let ev = Event {
                action: "register.to_case",
                entity: &format!("register:{register}"),
                entity_id: &id.to_string(),
                node_path: &row.node_path,
                summary: &summary,
            };
            audit::append(tx, &chain, &actor, ev);
            Ok(())
        })
    });
    crate::cases::store::create_also(st, crate::cases::store::Reporter::User(p), &input, Vec::new(), Some(also)).await
}

/// The status of the case a row follows, if any.
/// The case a row follows (its `case_number`), if `p` may see that case: the field is
/// ordinary text, so any number can be typed into it.
pub async fn linked_case(st: &AppState, p: &Principal, row: &Value) -> AppResult<Option<Value>> {
    let Some(n) = row.get("case_number").and_then(Value::as_str).filter(|s| !s.is_empty()) else { return Ok(None) };
    match crate::cases::store::load_visible(st, p, n).await {
        Ok((c, _)) => Ok(Some(serde_json::json!({"number": n, "status": c.status.as_str(), "status_label": c.status.label()}))),
        Err(AppError::NotFound | AppError::Forbidden) => Ok(None),
        Err(e) => Err(e),
    }
}
