//! The audit log: filtered list, xlsx export and chain verification, as pages and API.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{StoredEntry, Verdict};
use crate::app::AppState;
use crate::auth::{Perm, Principal, Role};
use crate::db::list::{EXPORT_MAX, Page, Where, paging};
use crate::error::{AppError, AppResult};
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
    #[serde(default, deserialize_with = "crate::db::list::asked_per_page")]
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
    let mut w = Where::new();
    // The county sees everything, including failed logins that belong to no node.
    if p.role != Role::CountyAdmin {
        w.under("node_path", &p.scope_path);
    }
    if let Some(a) = f.action.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        w.under("action", a);
    }
    if let Some(a) = f.actor.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        w.arg("actor = ?", a);
    }
    if let Some(q) = f.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        w.contains(&["summary", "entity_id"], q);
    }
    if let Some(d) = f.from.as_deref().filter(|s| !s.trim().is_empty()) {
        w.raw(&format!("at >= {}", day_ms(d, "from")?));
    }
    if let Some(d) = f.to.as_deref().filter(|s| !s.trim().is_empty()) {
        w.raw(&format!("at < {}", day_ms(d, "to")? + 86_400_000));
    }
    let paging = if all { (1, EXPORT_MAX) } else { paging(f.page, f.per_page.or(Some(50))) };
    let cols = "seq, at, actor, ip, action, entity, entity_id, node_path, summary, prev_hash, hash";
    w.page(&st.db, cols, "FROM audit_log", "seq DESC", paging, |r| Ok(StoredEntry::from_row(r)?)).await
}

/// Builds the xlsx export of a filtered log.
pub fn to_xlsx(rows: &[StoredEntry]) -> AppResult<Vec<u8>> {
    let headers = ["序号", "时间", "操作人", "来源地址", "操作", "操作代码", "对象类型", "对象", "摘要", "哈希"];
    crate::web::xlsx::workbook(
        "审计日志",
        &headers,
        rows.iter().map(|e| {
            vec![
                Cell::from(e.seq),
                fmt_time(e.at).into(),
                e.actor.as_str().into(),
                e.ip.as_str().into(),
                super::labels::action(&e.action).into(),
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
    let file = to_xlsx(&page.items)?;
    // Taking the log away is itself in it, as every other export is.
    super::exported(&st, &p, "audit", &format!("导出审计日志 {} 条", page.items.len())).await?;
    Ok(crate::web::xlsx::download("审计日志.xlsx", file))
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
    groups: &'static [(&'static str, &'static str)],
}

async fn page(st: &AppState, p: &Principal, f: AuditFilter, verdict: Option<Verdict>) -> AppResult<Response> {
    let page = search(st, p, &f, false).await?;
    let enc =
        |k: &str, v: &Option<String>| v.as_deref().map(|v| format!("{k}={}&", crate::web::urlencode(v))).unwrap_or_default();
    let export_query =
        [enc("action", &f.action), enc("actor", &f.actor), enc("from", &f.from), enc("to", &f.to), enc("q", &f.q)].concat();
    Ok(render(&AuditPage {
        layout: Layout::new(p, "审计日志", "/audit"),
        page,
        filter: f,
        verdict,
        export_query,
        groups: super::labels::GROUPS,
    })?
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
