//! The audit log: filtered list, xlsx export and chain verification, as pages and API.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use sqlx::AssertSqlSafe;

use super::{StoredEntry, Verdict};
use crate::app::AppState;
use crate::auth::{Perm, Principal, Role};
use crate::db::{get as col, like_escape};
use crate::error::{AppError, AppResult};
use crate::tree::store::{Page, paging};
use crate::web::xlsx::Cell;
use crate::web::{Layout, Q, fmt_time, render};

/// Filters for the log.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AuditFilter {
    /// Action prefix, e.g. `login` or `person.reveal`.
    pub action: Option<String>,
    /// Exact actor.
    pub actor: Option<String>,
    /// From date (YYYY-MM-DD, Asia/Shanghai).
    pub from: Option<String>,
    /// To date inclusive.
    pub to: Option<String>,
    /// Text in the summary or entity key.
    pub q: Option<String>,
    /// 1-based page.
    pub page: Option<i64>,
    /// Page size.
    pub per_page: Option<i64>,
}

fn day_ms(s: &str, field: &str) -> AppResult<i64> {
    let d =
        chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| AppError::field(field, "日期格式应为 YYYY-MM-DD"))?;
    Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_millis() - 8 * 3600 * 1000)
}

/// Runs a filtered query; `limit` None means everything (export).
pub async fn search(st: &AppState, p: &Principal, f: &AuditFilter, all: bool) -> AppResult<Page<StoredEntry>> {
    p.require(Perm::AuditRead)?;
    let mut wh: Vec<String> = vec!["1=1".into()];
    let mut args: Vec<String> = Vec::new();
    let mut ints: Vec<i64> = Vec::new();
    let arg = |v: String, args: &mut Vec<String>| {
        args.push(v);
        format!("${}", args.len())
    };
    if p.role != Role::CountyAdmin {
        let a = arg(format!("{}%", like_escape(&p.scope_path)), &mut args);
        wh.push(format!("node_path LIKE {a} ESCAPE '\\'"));
    }
    if let Some(a) = f.action.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let a = arg(format!("{}%", like_escape(a)), &mut args);
        wh.push(format!("action LIKE {a} ESCAPE '\\'"));
    }
    if let Some(a) = f.actor.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let a = arg(a.to_string(), &mut args);
        wh.push(format!("actor = {a}"));
    }
    if let Some(q) = f.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let a = arg(format!("%{}%", like_escape(q)), &mut args);
        wh.push(format!("(summary LIKE {a} ESCAPE '\\' OR entity_id LIKE {a} ESCAPE '\\')"));
    }
    if let Some(d) = f.from.as_deref().filter(|s| !s.trim().is_empty()) {
        ints.push(day_ms(d, "from")?);
        wh.push(format!("at >= {}", ints[ints.len() - 1]));
    }
    if let Some(d) = f.to.as_deref().filter(|s| !s.trim().is_empty()) {
        ints.push(day_ms(d, "to")? + 86_400_000);
        wh.push(format!("at < {}", ints[ints.len() - 1]));
    }
    let wsql = wh.join(" AND ");
    let mut cq = sqlx::query(AssertSqlSafe(format!("SELECT COUNT(*) AS c FROM audit_log WHERE {wsql}")));
    for a in &args {
        cq = cq.bind(a.clone());
    }
    let total: i64 = col(&cq.fetch_one(&st.db.pool).await?, "c")?;
    let (page, per) = if all { (1, total.max(1)) } else { paging(f.page, f.per_page.or(Some(50))) };
    let sql = format!(
        "SELECT seq, at, actor, ip, action, entity, entity_id, node_path, summary, prev_hash, hash FROM audit_log WHERE {wsql} ORDER BY seq DESC LIMIT {per} OFFSET {}",
        (page - 1) * per
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for a in &args {
        q = q.bind(a.clone());
    }
    let items = q.fetch_all(&st.db.pool).await?.iter().map(StoredEntry::from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(Page { items, total, page, per_page: per })
}

/// Builds the xlsx export of a filtered log.
pub fn to_xlsx(rows: &[StoredEntry]) -> AppResult<Vec<u8>> {
    let headers = ["序号", "时间", "操作人", "来源地址", "操作", "对象类型", "对象", "摘要", "哈希"];
    crate::web::xlsx::workbook(
        "审计日志",
        &headers,
        rows.iter().map(|e| {
            vec![
                Cell::from(e.seq),
                fmt_time(e.at).into(),
                e.actor.as_str().into(),
                e.ip.as_str().into(),
                e.action.as_str().into(),
                e.entity.as_str().into(),
                e.entity_id.as_str().into(),
                e.summary.as_str().into(),
                e.hash.as_str().into(),
            ]
        }),
    )
}

async fn api_list(State(st): State<AppState>, p: Principal, Q(f): Q<AuditFilter>) -> AppResult<Json<Page<StoredEntry>>> {
    Ok(Json(search(&st, &p, &f, false).await?))
}

async fn export(State(st): State<AppState>, p: Principal, Q(f): Q<AuditFilter>) -> AppResult<Response> {
    let page = search(&st, &p, &f, true).await?;
    Ok(crate::web::xlsx::download("审计日志.xlsx", to_xlsx(&page.items)?))
}

async fn api_verify(State(st): State<AppState>, p: Principal) -> AppResult<Json<Verdict>> {
    p.require(Perm::AuditRead)?;
    Ok(Json(super::verify(&st.db, &st.chain).await?))
}

/// API routes (under /api/v1).
pub fn api() -> Router<AppState> {
    Router::new().route("/audit", get(api_list)).route("/audit/export.xlsx", get(export)).route("/audit/verify", get(api_verify))
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    page: Page<StoredEntry>,
    filter: AuditFilter,
    verdict: Option<Verdict>,
    export_query: String,
}

async fn page(st: &AppState, p: &Principal, f: AuditFilter, verdict: Option<Verdict>) -> AppResult<Response> {
    let page = search(st, p, &f, false).await?;
    let enc =
        |k: &str, v: &Option<String>| v.as_deref().map(|v| format!("{k}={}&", crate::web::urlencode(v))).unwrap_or_default();
    let export_query =
        [enc("action", &f.action), enc("actor", &f.actor), enc("from", &f.from), enc("to", &f.to), enc("q", &f.q)].concat();
    Ok(render(&AuditPage { layout: Layout::new(p, "审计日志", "/audit"), page, filter: f, verdict, export_query })?
        .into_response())
}

async fn audit_get(State(st): State<AppState>, p: Principal, Q(f): Q<AuditFilter>) -> AppResult<Response> {
    page(&st, &p, f, None).await
}

async fn audit_verify(State(st): State<AppState>, p: Principal) -> AppResult<Response> {
    p.require(Perm::AuditRead)?;
    let v = super::verify(&st.db, &st.chain).await?;
    page(&st, &p, AuditFilter::default(), Some(v)).await
}

/// Page routes.
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/audit", get(audit_get))
        .route("/audit/verify", post(audit_verify))
        .route("/audit/export.xlsx", get(export))
}
