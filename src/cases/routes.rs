//! The case API under `/api/v1`: categories, calendar, units, cases and their actions,
//! assignee suggestions, photos, rates, notifications and live events, webhooks.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::categories::{self, CategoryInput};
use super::flow::{self, ActionInput};
use super::rates::{self, RatesQuery};
use super::store::{self, CaseFilter, CaseView, CreateInput, Reporter};
use super::units::{self, UnitFilter, UnitInput};
use super::{Assignee, notify};
use crate::app::AppState;
use crate::auth::{Principal, Role};
use crate::db::list::Page;
use crate::db::{get as col, now_ms};
use crate::error::{AppError, AppResult};
use crate::web::{JsonBody, OptJson, Q};

async fn categories_list(State(st): State<AppState>) -> AppResult<Json<Value>> {
    let cats = categories::all(&st).await?;
    Ok(Json(json!({"items": cats})))
}

/// Creates a category, or changes one: a change names what it changes, and what it leaves out
/// keeps its value (a new time limit alone reset the questions, the description, 微心愿 and
/// the switch to 启用).
async fn category_save(
    State(st): State<AppState>,
    p: Principal,
    JsonBody(mut given): JsonBody<serde_json::Map<String, Value>>,
) -> AppResult<Json<categories::Category>> {
    let code = given.get("code").and_then(Value::as_str).unwrap_or_default().trim().to_lowercase();
    if let Some(old) = categories::by_code(&st, &code).await? {
        let kept = json!({"name": old.name, "group": old.group, "description": old.description, "sign_hours": old.sign_hours,
            "resolve_hours": old.resolve_hours, "unit_kind": old.unit_kind, "claimable": old.claimable, "attrs": old.attrs, "active": old.active});
        for (k, v) in kept.as_object().into_iter().flatten() {
            given.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if !given.contains_key("default_unit")
            && let Some(id) = old.default_unit_id
            && let Some(u) = units::by_id(&st.db, id).await?
        {
            given.insert("default_unit".into(), Value::String(u.code));
        }
    }
    let body = serde_json::to_vec(&Value::Object(given)).map_err(|e| AppError::Internal(e.to_string()))?;
    let i: CategoryInput = crate::web::parse_json(&body)?;
    Ok(Json(categories::save(&st, &p, &i).await?))
}

#[derive(Deserialize, Default)]
struct CalendarBody {
    /// Required: a body without it would empty the calendar.
    text: String,
    /// Confirms that an empty `text` is meant to delete every day.
    #[serde(default)]
    clear: bool,
}

async fn calendar_get(State(st): State<AppState>, _p: Principal) -> AppResult<Json<Value>> {
    Ok(Json(json!({"text": categories::calendar_text(&st.db).await?})))
}

async fn calendar_put(State(st): State<AppState>, p: Principal, JsonBody(b): JsonBody<CalendarBody>) -> AppResult<Json<Value>> {
    let n = categories::set_calendar(&st, &p, &b.text, b.clear).await?;
    Ok(Json(json!({"days": n})))
}

async fn units_list(State(st): State<AppState>, p: Principal, Q(f): Q<UnitFilter>) -> AppResult<Json<Page<units::Unit>>> {
    Ok(Json(units::list(&st, &p, &f).await?))
}

async fn unit_create(
    State(st): State<AppState>,
    p: Principal,
    JsonBody(i): JsonBody<UnitInput>,
) -> AppResult<(StatusCode, Json<units::Unit>)> {
    Ok((StatusCode::CREATED, Json(units::create(&st, &p, &i, false).await?)))
}

async fn case_create(
    State(st): State<AppState>,
    p: Principal,
    headers: axum::http::HeaderMap,
    JsonBody(mut i): JsonBody<CreateInput>,
) -> AppResult<(StatusCode, Json<store::Created>)> {
    if p.must_change_password {
        return Err(AppError::PasswordChangeRequired);
    }
    // A retry under the same key is answered as the first was, with its case.
    i.once = super::submissions::of_request(&headers, &p)?;
    Ok((StatusCode::CREATED, Json(store::create(&st, Reporter::User(&p), &i, Vec::new()).await?)))
}

async fn case_list(State(st): State<AppState>, p: Principal, Q(f): Q<CaseFilter>) -> AppResult<Json<Page<CaseView>>> {
    Ok(Json(store::list(&st, &p, &f).await?))
}

async fn case_get(State(st): State<AppState>, p: Principal, Path(number): Path<String>) -> AppResult<Json<CaseView>> {
    Ok(Json(store::view(&st, &p, &number).await?.for_viewer(&p)))
}

async fn case_act(
    State(st): State<AppState>,
    p: Principal,
    Path(number): Path<String>,
    JsonBody(i): JsonBody<ActionInput>,
) -> AppResult<Json<CaseView>> {
    Ok(Json(flow::act(&st, &p, &number, &i, Vec::new()).await?.for_viewer(&p)))
}

async fn case_reveal(
    State(st): State<AppState>,
    p: Principal,
    Path(number): Path<String>,
    OptJson(b): OptJson<crate::audit::ReasonForm>,
) -> AppResult<Json<super::reveal::Reporter>> {
    Ok(Json(super::reveal::reporter(&st, &p, &number, &b.reason).await?))
}

async fn case_assignees(State(st): State<AppState>, p: Principal, Path(number): Path<String>) -> AppResult<Json<Vec<Assignee>>> {
    Ok(Json(flow::suggestions(&st, &p, &number).await?))
}

/// Serves a photo of a case the caller may see.
pub async fn case_photo(
    State(st): State<AppState>,
    p: Principal,
    Path((number, id)): Path<(String, i64)>,
) -> AppResult<Response> {
    let (c, _) = store::load_visible(&st, &p, &number).await?;
    let r = sqlx::query("SELECT path, mime FROM case_photos WHERE id = $1 AND case_id = $2")
        .bind(id)
        .bind(c.id)
        .fetch_optional(st.db.read())
        .await?
        .ok_or(AppError::NotFound)?;
    let bytes = super::photos::read(&st.cfg.data_dir, &col::<String>(&r, "path")?).await?;
    Ok(([(header::CONTENT_TYPE, col::<String>(&r, "mime")?), (header::CACHE_CONTROL, "private, no-store".into())], bytes)
        .into_response())
}

async fn rates_get(State(st): State<AppState>, p: Principal, Q(q): Q<RatesQuery>) -> AppResult<Json<Value>> {
    let rows = rates::table(&st, &p, &q).await?;
    let level = q.level.unwrap_or_else(|| "community".into());
    Ok(Json(json!({"rank_among": rates::rank_among(&p, &level), "level": level, "items": rows})))
}

#[derive(serde::Deserialize)]
struct Weights {
    response: f64,
    solve: f64,
    satisfaction: f64,
}

async fn weights_get(State(st): State<AppState>, _: Principal) -> AppResult<Json<Value>> {
    let (response, solve, satisfaction) = rates::weights(&st).await?;
    Ok(Json(json!({"response": response, "solve": solve, "satisfaction": satisfaction})))
}

async fn weights_put(
    State(st): State<AppState>,
    p: Principal,
    crate::web::JsonBody(w): crate::web::JsonBody<Weights>,
) -> AppResult<Json<Value>> {
    rates::set_weights(&st, &p, (w.response, w.solve, w.satisfaction)).await?;
    weights_get(State(st), p).await
}

/// The ranking as xlsx.
pub async fn rates_export(State(st): State<AppState>, p: Principal, Q(q): Q<RatesQuery>) -> AppResult<Response> {
    use crate::web::xlsx::{Cell, download, workbook};
    let rows = rates::table(&st, &p, &q).await?;
    let pct = |v: Option<f64>| v.map(|x| Cell::Num((x * 1000.0).round() / 10.0)).unwrap_or_else(|| "".into());
    let data = rows.iter().map(|r| {
        vec![
            if r.ranked { Cell::from(r.rank) } else { "样本不足".into() },
            r.key.as_str().into(),
            r.name.as_str().into(),
            Cell::from(r.cases),
            pct(r.response_rate),
            pct(r.solve_rate),
            pct(r.satisfaction_rate),
            pct(r.composite),
            pct(r.close_rate),
            pct(r.on_time_rate),
            pct(r.rework_rate),
            pct(r.extension_rate),
            pct(r.sign_rate),
        ]
    });
    let headers = [
        "排名",
        "编码",
        "名称",
        "案件数",
        "响应率%",
        "解决率%",
        "满意率%",
        "综合得分%",
        "结案率%",
        "按期结案率%",
        "返工率%",
        "延期率%",
        "及时签收率%",
    ];
    Ok(download("办理情况排名.xlsx", workbook("排名", &headers, data)?))
}

#[derive(Deserialize, Default)]
struct AfterQ {
    after: Option<i64>,
}

async fn notes(State(st): State<AppState>, p: Principal, Q(q): Q<AfterQ>) -> AppResult<Json<Value>> {
    Ok(Json(json!({"items": notify::list(&st, &p, q.after.unwrap_or(0), 100).await?})))
}

#[derive(Deserialize, Default)]
struct ReadBody {
    upto: Option<i64>,
}

async fn notes_read(State(st): State<AppState>, p: Principal, OptJson(b): OptJson<ReadBody>) -> AppResult<StatusCode> {
    notify::mark_read(&st, &p, b.upto.unwrap_or(i64::MAX)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Server-sent events of the caller's notifications (resumes from `Last-Event-ID`).
pub async fn events(State(st): State<AppState>, p: Principal, headers: axum::http::HeaderMap) -> AppResult<Response> {
    let from = match headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()) {
        Some(id) => id,
        None => notify::latest(&st, &p).await?,
    };
    Ok(notify::stream(st, p, from).into_response())
}

#[derive(Deserialize, Default)]
struct WebhookBody {
    #[serde(default)]
    url: String,
    unit: Option<String>,
}

fn may_manage_hooks(p: &Principal) -> AppResult<()> {
    if matches!(p.role, Role::CountyAdmin | Role::UnitContact) { Ok(()) } else { Err(AppError::Forbidden) }
}

async fn hooks_list(State(st): State<AppState>, p: Principal) -> AppResult<Json<Value>> {
    may_manage_hooks(&p)?;
    let rows = sqlx::query("SELECT w.id, w.url, w.active, w.created_at, u.code AS unit FROM webhooks w LEFT JOIN units u ON u.id = w.unit_id ORDER BY w.id")
        .fetch_all(st.db.read())
        .await?;
    let mut items = Vec::new();
    for r in &rows {
        let unit: Option<String> = col(r, "unit")?;
        let mine = p.role == Role::CountyAdmin
            || (unit.is_some() && units::find(&st.db, unit.as_deref().unwrap_or("")).await?.map(|u| u.id) == p.unit_id);
        if mine {
            items.push(json!({"id": col::<i64>(r, "id")?, "url": col::<String>(r, "url")?, "unit": unit, "active": col::<i64>(r, "active")? == 1}));
        }
    }
    Ok(Json(json!({"items": items})))
}

/// Registers a webhook; the signing secret is returned once.
pub async fn hook_create_inner(st: &AppState, p: &Principal, url: &str, unit: Option<&str>) -> AppResult<Value> {
    may_manage_hooks(p)?;
    crate::web::http::check_url_resolved(url.trim(), st.cfg.webhook_allow_loopback)
        .await
        .map_err(|m| AppError::field("url", m))?;
    let unit_id = match (p.role, unit.map(str::trim).filter(|s| !s.is_empty())) {
        (Role::UnitContact, _) => p.unit_id,
        (_, Some(code)) => Some(units::find(&st.db, code).await?.ok_or_else(|| AppError::field("unit", "单位不存在"))?.id),
        _ => None,
    };
    let secret = crate::auth::random_hex(24);
    let mut tx = st.db.begin().await?;
    let r = sqlx::query("INSERT INTO webhooks (unit_id, url, secret, created_at) VALUES ($1,$2,$3,$4) RETURNING id")
        .bind(unit_id)
        .bind(url.trim())
        .bind(&secret)
        .bind(now_ms())
        .fetch_one(&mut tx)
        .await?;
    let id: i64 = col(&r, "id")?;
    let summary = format!("登记推送地址 {}", url.trim());
    let ev = crate::audit::Event {
        action: "webhook.create",
        entity: "webhook",
        entity_id: &id.to_string(),
        node_path: &p.scope_path,
        summary: &summary,
    };
    crate::audit::append(&mut tx, &st.chain, &p.actor(), ev);
    tx.commit().await?;
    Ok(json!({"id": id, "url": url.trim(), "secret": secret}))
}

async fn hook_create(
    State(st): State<AppState>,
    p: Principal,
    JsonBody(b): JsonBody<WebhookBody>,
) -> AppResult<(StatusCode, Json<Value>)> {
    Ok((StatusCode::CREATED, Json(hook_create_inner(&st, &p, &b.url, b.unit.as_deref()).await?)))
}

/// Deactivates a webhook the caller owns.
pub async fn hook_delete_inner(st: &AppState, p: &Principal, id: i64) -> AppResult<()> {
    may_manage_hooks(p)?;
    let mut tx = st.db.begin().await?;
    let cond = match p.role {
        Role::CountyAdmin => String::new(),
        _ => format!(" AND unit_id = {}", p.unit_id.unwrap_or(-1)),
    };
    let sql = format!("UPDATE webhooks SET active = 0 WHERE id = $1{cond}");
    if sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).execute(&mut tx).await?.rows_affected() == 0 {
        return Err(AppError::NotFound);
    }
    let ev = crate::audit::Event {
        action: "webhook.delete",
        entity: "webhook",
        entity_id: &id.to_string(),
        node_path: &p.scope_path,
        summary: "停用推送地址",
    };
    crate::audit::append(&mut tx, &st.chain, &p.actor(), ev);
    tx.commit().await?;
    Ok(())
}

async fn hook_delete(State(st): State<AppState>, p: Principal, Path(id): Path<i64>) -> AppResult<StatusCode> {
    hook_delete_inner(&st, &p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// API routes (under /api/v1).
pub fn api() -> Router<AppState> {
    Router::new()
        .route("/categories", get(categories_list).post(category_save))
        .route("/calendar", get(calendar_get).put(calendar_put))
        .route("/units", get(units_list).post(unit_create))
        .route("/cases", get(case_list).post(case_create))
        .route("/cases/export.xlsx", get(super::export::download_xlsx))
        .route("/cases/{number}", get(case_get))
        .route("/cases/{number}/actions", post(case_act))
        .route("/cases/{number}/reveal", post(case_reveal))
        .route("/cases/{number}/assignees", get(case_assignees))
        .route("/cases/{number}/photos/{id}", get(case_photo))
        .route("/rates", get(rates_get))
        .route("/rates/weights", get(weights_get).put(weights_put))
        .route("/rates/export.xlsx", get(rates_export))
        .route("/notifications", get(notes))
        .route("/notifications/read", post(notes_read))
        .route("/events", get(events))
        .route("/webhooks", get(hooks_list).post(hook_create))
        .route("/webhooks/{id}", delete(hook_delete))
}
