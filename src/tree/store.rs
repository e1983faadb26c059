//! Queries on the tree, shared by pages, API, CLI and the demo loader.

use serde::Deserialize;
use sqlx::AssertSqlSafe;

use crate::db::list::Where;

use super::{Kind, Node, check_code};
use crate::app::AppState;
use crate::audit::{self, Event};
use crate::auth::{Perm, Principal};
use crate::db::{Db, Row, get, like_escape, now_ms};
use crate::error::{AppError, AppResult, FieldErrors};

const NODE_COLS: &str = "n.id, n.code, n.kind, n.name, n.path, n.address, n.note, n.is_demo, n.retired_at, n.version, \
     (n.geometry IS NOT NULL) AS has_geo, p.code AS parent_code";
const NODE_FROM: &str = "FROM nodes n LEFT JOIN nodes p ON p.id = n.parent_id";

fn node_row(r: &Row) -> AppResult<Node> {
    let kind: String = get(r, "kind")?;
    Ok(Node {
        id: get(r, "id")?,
        code: get(r, "code")?,
        kind: Kind::parse(&kind).ok_or_else(|| AppError::Internal(format!("bad kind {kind}")))?,
        name: get(r, "name")?,
        parent_code: get(r, "parent_code")?,
        path: get(r, "path")?,
        address: get(r, "address")?,
        note: get(r, "note")?,
        is_demo: get::<i64>(r, "is_demo")? != 0,
        retired: get::<Option<i64>>(r, "retired_at")?.is_some(),
        version: get(r, "version")?,
        has_geometry: sqlx::Row::try_get::<bool, _>(r, "has_geo").or_else(|_| get::<i64>(r, "has_geo").map(|v| v != 0))?,
    })
}

/// Finds a node by code, ignoring scope (for internal lookups).
pub async fn find_by_code(db: &Db, code: &str) -> AppResult<Option<Node>> {
    let sql = format!("SELECT {NODE_COLS} {NODE_FROM} WHERE n.code = $1");
    let row = sqlx::query(AssertSqlSafe(sql)).bind(code.trim()).fetch_optional(db.read()).await?;
    row.as_ref().map(node_row).transpose()
}

/// Gets a node the caller may see.
pub async fn get_node(st: &AppState, p: &Principal, code: &str) -> AppResult<Node> {
    let n = find_by_code(&st.db, code).await?.ok_or(AppError::NotFound)?;
    p.check(Perm::TreeRead, &n.path)?;
    Ok(n)
}

/// Filters for listing nodes.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct NodeFilter {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only below this node (code).
    pub under: Option<String>,
    /// Only direct children of this node (code).
    pub parent: Option<String>,
    /// Name or code contains.
    pub q: Option<String>,
    /// Include retired nodes.
    pub retired: Option<bool>,
    /// 1-based page.
    pub page: Option<i64>,
    /// Page size (max 500).
    #[serde(default, deserialize_with = "crate::db::list::asked_per_page")]
    pub per_page: Option<i64>,
}

pub use crate::db::list::{EXPORT_MAX, Page, paging};

/// Lists nodes inside the caller's scope.
pub async fn list(st: &AppState, p: &Principal, f: &NodeFilter) -> AppResult<Page<Node>> {
    p.require(Perm::TreeRead)?;
    let mut w = Where::new();
    w.under("n.path", &p.scope_path);
    if let Some(k) = f.kind.as_deref().filter(|k| !k.is_empty()) {
        let k = Kind::parse(k).ok_or_else(|| AppError::field("kind", "节点类型无效"))?;
        w.arg("n.kind = ?", k.as_str());
    }
    if let Some(u) = f.under.as_deref().filter(|s| !s.is_empty()) {
        w.under("n.path", &get_node(st, p, u).await?.path);
    }
    if let Some(par) = f.parent.as_deref().filter(|s| !s.is_empty()) {
        get_node(st, p, par).await?;
        w.arg("p.code = ?", par);
    }
    if let Some(q) = f.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        w.contains(&["n.name", "n.code"], q);
    }
    if !f.retired.unwrap_or(false) {
        w.raw("n.retired_at IS NULL");
    }
    w.page(&st.db, NODE_COLS, NODE_FROM, "n.code", paging(f.page, f.per_page), node_row).await
}

/// Fields for creating or editing a node.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct NodeInput {
    /// Kind (create only).
    #[serde(default)]
    pub kind: String,
    /// Code (create only).
    #[serde(default)]
    pub code: String,
    /// Parent code (create only).
    #[serde(default)]
    pub parent: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Address.
    #[serde(default)]
    pub address: String,
    /// Note.
    #[serde(default)]
    pub note: String,
    /// Expected version (edit only); a stale one is a 409.
    pub version: Option<i64>,
}

fn check_name(errs: &mut FieldErrors, name: &str) {
    let n = name.trim().chars().count();
    if n == 0 {
        errs.add("name", "名称不能为空");
    } else if n > 64 {
        errs.add("name", "名称不能超过 64 个字");
    } else if crate::ident::has_control(name) {
        errs.add("name", "名称含有不可见的控制字符");
    }
}

/// Address and note: bounded, no control characters but line breaks in the note.
fn check_details(errs: &mut FieldErrors, input: &NodeInput) {
    if input.address.trim().chars().count() > 200 {
        errs.add("address", "地址不能超过 200 个字");
    } else if crate::ident::has_control(&input.address) {
        errs.add("address", "地址含有不可见的控制字符");
    }
    if input.note.trim().chars().count() > 1000 {
        errs.add("note", "备注不能超过 1000 个字");
    } else if crate::ident::has_control(&input.note.replace(['\n', '\r', '\t'], " ")) {
        errs.add("note", "备注含有不可见的控制字符");
    }
}

/// The node that is a user's scope is changed from the level above (a community's staff do
/// not rename or retire their community); the county's, by the county admin.
fn own_level(p: &Principal, n: &Node) -> AppResult<()> {
    if n.path == p.scope_path && p.role != crate::auth::Role::CountyAdmin {
        return Err(AppError::Conflict(format!("本级{}由上级修改或停用", n.kind.label())));
    }
    Ok(())
}

/// Creates a node under a parent in the caller's scope.
pub async fn create(st: &AppState, p: &Principal, input: &NodeInput, is_demo: bool) -> AppResult<Node> {
    let mut errs = FieldErrors::default();
    check_details(&mut errs, input);
    let kind = Kind::parse(input.kind.trim());
    if kind.is_none() {
        errs.add("kind", "节点类型无效");
    }
    check_name(&mut errs, &input.name);
    let parent = if input.parent.trim().is_empty() { None } else { find_by_code(&st.db, input.parent.trim()).await? };
    if let Some(par) = &parent {
        p.check(Perm::TreeWrite, &par.path)?;
        if par.retired {
            errs.add("parent", "上级节点已停用");
        }
    }
    let code = input.code.trim().to_uppercase();
    if let Some(kind) = kind {
        match (kind.parent_kind(), &parent) {
            (None, None) => p.check(Perm::TreeWrite, &format!("/{code}/"))?,
            (None, Some(_)) => errs.add("parent", "县级节点不能有上级"),
            (Some(pk), Some(par)) if par.kind != pk => errs.add("parent", format!("{}的上级必须是{}", kind.label(), pk.label())),
            (Some(_), None) => errs.add("parent", "请填写存在的上级节点编码"),
            _ => {}
        }
        errs.check("code", check_code(kind, &code, parent.as_ref().map(|n| n.code.as_str())));
    }
    errs.finish()?;
    let kind = kind.expect("checked above");
    let path = format!("{}{code}/", parent.as_ref().map(|n| n.path.as_str()).unwrap_or("/"));
    let now = now_ms();
    let mut tx = st.db.begin().await?;
    if sqlx::query("SELECT id FROM nodes WHERE code = $1").bind(&code).fetch_optional(&mut tx).await?.is_some() {
        return Err(AppError::field("code", "该编码已存在"));
    }
    if let Some(par) = &parent {
        // The parent locked and still active: it may have been retired since it was read
        // (retiring locks the node before it counts the active children).
        let q = sqlx::query("UPDATE nodes SET version = version WHERE id = $1 AND retired_at IS NULL").bind(par.id);
        if q.execute(&mut tx).await?.rows_affected() == 0 {
            return Err(AppError::field("parent", "上级节点已停用"));
        }
    }
    sqlx::query(
        "INSERT INTO nodes (code, kind, name, parent_id, path, address, note, is_demo, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$9)",
    )
    .bind(&code)
    .bind(kind.as_str())
    .bind(input.name.trim())
    .bind(parent.as_ref().map(|n| n.id))
    .bind(&path)
    .bind(input.address.trim())
    .bind(input.note.trim())
    .bind(is_demo as i64)
    .bind(now)
    .execute(&mut tx)
    .await?;
    let summary = format!("新建{}「{}」", kind.label(), input.name.trim());
    let ev = Event { action: "node.create", entity: "node", entity_id: &code, node_path: &path, summary: &summary };
    audit::append(&mut tx, &st.chain, &p.actor(), ev);
    tx.commit().await?;
    find_by_code(&st.db, &code).await?.ok_or(AppError::NotFound)
}

/// Edits name, address and note of a node.
pub async fn update(st: &AppState, p: &Principal, code: &str, input: &NodeInput) -> AppResult<Node> {
    let n = find_by_code(&st.db, code).await?.ok_or(AppError::NotFound)?;
    p.check(Perm::TreeWrite, &n.path)?;
    own_level(p, &n)?;
    let mut errs = FieldErrors::default();
    check_name(&mut errs, &input.name);
    check_details(&mut errs, input);
    errs.finish()?;
    let mut tx = st.db.begin().await?;
    let res = sqlx::query("UPDATE nodes SET name = $1, address = $2, note = $3, version = version + 1, updated_at = $4 WHERE id = $5 AND version = $6")
        .bind(input.name.trim())
        .bind(input.address.trim())
        .bind(input.note.trim())
        .bind(now_ms())
        .bind(n.id)
        .bind(input.version.unwrap_or(n.version))
        .execute(&mut tx)
        .await?;
    if res.rows_affected() == 0 {
        return Err(AppError::Conflict("该记录已被他人修改，请刷新后重试".into()));
    }
    if n.name != input.name.trim() {
        crate::registers::names::follow(&mut tx, crate::registers::names::Renamed::Node, code, input.name.trim()).await?;
    }
    let summary = format!("修改{}：名称「{}」→「{}」", n.kind.label(), n.name, input.name.trim());
    let ev = Event { action: "node.update", entity: "node", entity_id: code, node_path: &n.path, summary: &summary };
    audit::append(&mut tx, &st.chain, &p.actor(), ev);
    tx.commit().await?;
    find_by_code(&st.db, code).await?.ok_or(AppError::NotFound)
}

/// Retires (or restores) a node. Retiring keeps it for history and references.
pub async fn set_retired(st: &AppState, p: &Principal, code: &str, retired: bool) -> AppResult<Node> {
    let n = find_by_code(&st.db, code).await?.ok_or(AppError::NotFound)?;
    p.check(Perm::TreeWrite, &n.path)?;
    own_level(p, &n)?;
    if n.kind == Kind::County && retired {
        return Err(AppError::Conflict("县级节点不能停用".into()));
    }
    let mut tx = st.db.begin().await?;
    // The node first (which locks it), then its children counted: a child being created under
    // it either committed before, and is counted, or finds its parent retired.
    sqlx::query("UPDATE nodes SET retired_at = $1, version = version + 1, updated_at = $2 WHERE id = $3")
        .bind(retired.then(now_ms))
        .bind(now_ms())
        .bind(n.id)
        .execute(&mut tx)
        .await?;
    if !retired && let Some(parent) = &n.parent_code {
        // Restored under an active parent only (locked, as creating a child locks it).
        let q = sqlx::query("UPDATE nodes SET version = version WHERE code = $1 AND retired_at IS NULL").bind(parent);
        if q.execute(&mut tx).await?.rows_affected() == 0 {
            return Err(AppError::Conflict("上级节点已停用，请先恢复上级节点".into()));
        }
        if n.kind == Kind::Grid {
            super::geometry::check_restore(st, &mut tx, &n).await?;
        }
    }
    if retired {
        let active = sqlx::query("SELECT COUNT(*) AS c FROM nodes WHERE parent_id = $1 AND retired_at IS NULL")
            .bind(n.id)
            .fetch_one(&mut tx)
            .await?;
        if get::<i64>(&active, "c")? > 0 {
            return Err(AppError::Conflict("请先停用其下级节点".into()));
        }
        // Residents still living there could no longer be edited (their place is gone), and a
        // case still open would run in a place that is not there.
        let residents: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM persons WHERE node_id = $1 AND retired_at IS NULL")
            .bind(n.id)
            .fetch_one(&mut tx)
            .await?;
        if residents > 0 {
            return Err(AppError::Conflict(format!(
                "该{}还有 {residents} 位在册居民，请先为他们办理迁出或迁到其他地点",
                n.kind.label()
            )));
        }
        let column = match n.kind {
            Kind::Grid => Some("grid_code"),
            Kind::Community => Some("community_code"),
            _ => None,
        };
        if let Some(col) = column {
            let sql = format!("SELECT COUNT(*) FROM cases WHERE {col} = $1 AND status NOT IN ('closed','rejected','voided')");
            let open: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(&n.code).fetch_one(&mut tx).await?;
            if open > 0 {
                return Err(AppError::Conflict(format!(
                    "该{}还有 {open} 件未办结的事项，请办结或转到其他网格后再停用",
                    n.kind.label()
                )));
            }
        }
    }
    let (act, verb) = if retired { ("node.retire", "停用") } else { ("node.restore", "恢复") };
    let summary = format!("{verb}{}「{}」", n.kind.label(), n.name);
    let ev = Event { action: act, entity: "node", entity_id: code, node_path: &n.path, summary: &summary };
    audit::append(&mut tx, &st.chain, &p.actor(), ev);
    super::geometry::commit(st, tx, n.kind == Kind::Grid).await?;
    find_by_code(&st.db, code).await?.ok_or(AppError::NotFound)
}

/// Deletes a node nothing refers to; otherwise 409 asking to retire it instead.
pub async fn delete(st: &AppState, p: &Principal, code: &str) -> AppResult<()> {
    let n = find_by_code(&st.db, code).await?.ok_or(AppError::NotFound)?;
    p.check(Perm::TreeWrite, &n.path)?;
    let mut tx = st.db.begin().await?;
    // Whatever names the node keeps it: children, residents, cases, register rows, accounts.
    let refs = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM nodes WHERE parent_id = $1) + (SELECT COUNT(*) FROM persons WHERE node_id = $1) \
         + (SELECT COUNT(*) FROM cases WHERE node_path = $2 OR grid_code = $3 OR community_code = $3) \
         + (SELECT COUNT(*) FROM register_rows WHERE node_path = $2) + (SELECT COUNT(*) FROM users WHERE scope_path = $2) AS c",
    )
    .bind(n.id)
    .bind(&n.path)
    .bind(code)
    .fetch_one(&mut tx)
    .await?;
    if get::<i64>(&refs, "c")? > 0 || n.kind == Kind::County {
        return Err(AppError::Conflict("该节点仍被下级节点、居民、事项、台账或账号引用，不能删除，请改为停用".into()));
    }
    sqlx::query("DELETE FROM nodes WHERE id = $1").bind(n.id).execute(&mut tx).await?;
    let summary = format!("删除{}「{}」", n.kind.label(), n.name);
    let ev = Event { action: "node.delete", entity: "node", entity_id: code, node_path: &n.path, summary: &summary };
    audit::append(&mut tx, &st.chain, &p.actor(), ev);
    super::geometry::commit(st, tx, n.kind == Kind::Grid).await?;
    Ok(())
}

/// Counts of active nodes by kind and of residents under a path.
pub async fn counts(db: &Db, path: &str) -> AppResult<Vec<(String, i64)>> {
    let pat = format!("{}%", like_escape(path));
    let rows =
        sqlx::query("SELECT kind, COUNT(*) AS c FROM nodes WHERE path LIKE $1 ESCAPE '\\' AND retired_at IS NULL GROUP BY kind")
            .bind(&pat)
            .fetch_all(db.read())
            .await?;
    let mut out = rows.iter().map(|r| Ok((get::<String>(r, "kind")?, get::<i64>(r, "c")?))).collect::<AppResult<Vec<_>>>()?;
    let res = sqlx::query(
        "SELECT COUNT(*) AS c FROM persons pe JOIN nodes n ON n.id = pe.node_id WHERE n.path LIKE $1 ESCAPE '\\' AND pe.retired_at IS NULL",
    )
    .bind(&pat)
    .fetch_one(db.read())
    .await?;
    out.push(("residents".into(), get(&res, "c")?));
    Ok(out)
}
