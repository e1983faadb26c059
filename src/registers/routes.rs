//! Register API and pages, the same for every register.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::store::{self, ListQuery};
use super::xlsx::{self, ImportReport};
use super::{Register, System, Ty, catalog, figures};
use crate::app::AppState;
use crate::auth::Principal;
use crate::db::list::Page;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::web::xlsx::download;
use crate::web::{JsonBody, Layout, Q, render};

fn reg(name: &str) -> AppResult<&'static Register> {
    catalog::find(name).ok_or(AppError::NotFound)
}

async fn api_index() -> Json<Value> {
    Json(Value::Array(
        catalog::REGISTERS
            .iter()
            .map(|r| json!({"name": r.name, "title": r.title, "system": r.system, "system_title": r.system.label()}))
            .collect(),
    ))
}

async fn api_list(
    State(st): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    Q(raw): Q<HashMap<String, String>>,
) -> AppResult<Json<Page<Value>>> {
    Ok(Json(store::list(&st, &p, reg(&name)?, &ListQuery::from_map(&raw)?).await?))
}

async fn api_create(
    State(st): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> AppResult<(StatusCode, Json<Value>)> {
    Ok((StatusCode::CREATED, Json(store::create(&st, &p, reg(&name)?, &body).await?)))
}

async fn api_one(State(st): State<AppState>, p: Principal, Path((name, id)): Path<(String, i64)>) -> AppResult<Json<Value>> {
    let r = reg(&name)?;
    let mut item = store::item(&st, r, &store::one(&st, &p, r, id).await?);
    item["history"] = serde_json::to_value(store::history(&st, &p, r, id).await?).unwrap_or_default();
    if let Some(c) = store::linked_case(&st, &p, &item).await? {
        item["case"] = c;
    }
    Ok(Json(item))
}

async fn api_update(
    State(st): State<AppState>,
    p: Principal,
    Path((name, id)): Path<(String, i64)>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> AppResult<Json<Value>> {
    Ok(Json(store::update(&st, &p, reg(&name)?, id, &body).await?))
}

#[derive(Deserialize, Default)]
struct ToCaseBody {
    category: Option<String>,
    /// Why the encrypted fields are read (reveal).
    reason: Option<String>,
}

async fn api_retire(
    State(st): State<AppState>,
    p: Principal,
    Path((name, id, act)): Path<(String, i64, String)>,
    crate::web::OptJson(b): crate::web::OptJson<ToCaseBody>,
) -> AppResult<Response> {
    let retired = match act.as_str() {
        "retire" => true,
        "restore" => false,
        "to-case" => {
            let created = store::to_case(&st, &p, reg(&name)?, id, b.category.as_deref()).await?;
            return Ok((StatusCode::CREATED, Json(created)).into_response());
        }
        "reveal" => {
            let shown = super::reveal::reveal(&st, &p, reg(&name)?, id, b.reason.as_deref().unwrap_or_default()).await?;
            let fields: serde_json::Map<String, Value> =
                shown.into_iter().map(|(k, _, v)| (k.to_string(), Value::String(v))).collect();
            return Ok(Json(serde_json::json!({"fields": fields})).into_response());
        }
        _ => return Err(AppError::NotFound),
    };
    store::set_retired(&st, &p, reg(&name)?, id, retired).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn template(p: Principal, Path(name): Path<String>) -> AppResult<Response> {
    let r = reg(&name)?;
    p.require(crate::auth::Perm::RegisterRead)?;
    Ok(download(&format!("{}导入模板.xlsx", r.title), xlsx::template(r)?))
}

async fn export(
    State(st): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    Q(raw): Q<HashMap<String, String>>,
) -> AppResult<Response> {
    let r = reg(&name)?;
    Ok(download(&format!("{}.xlsx", r.title), xlsx::export(&st, &p, r, &ListQuery::from_map(&raw)?).await?))
}

#[derive(Deserialize, Default)]
struct ImportQ {
    dry_run: Option<bool>,
}

async fn api_import(
    State(st): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    Q(q): Q<ImportQ>,
    body: axum::body::Bytes,
) -> AppResult<Response> {
    let rep = xlsx::import(&st, &p, reg(&name)?, &body, q.dry_run.unwrap_or(true), &|_, _| {}).await?;
    // A refused import (a dry run's too) is a 422 with its report, as the grid import's.
    let status = if rep.ok { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok((status, Json(rep)).into_response())
}

/// API routes (under /api/v1).
pub fn api() -> Router<AppState> {
    Router::new()
        .route("/registers", get(api_index))
        .route("/registers/{name}", get(api_list).post(api_create))
        .route("/registers/{name}/template.xlsx", get(template))
        .route("/registers/{name}/export.xlsx", get(export))
        .route("/registers/{name}/import", post(api_import))
        .route("/registers/{name}/{id}", get(api_one).put(api_update))
        .route("/registers/{name}/{id}/{act}", post(api_retire))
}

/// A list column: key, title.
type Col = (&'static str, &'static str);

#[derive(Template)]
#[template(path = "registers/list.html")]
struct ListPage {
    layout: Layout,
    reg: &'static Register,
    cols: Vec<Col>,
    page: Page<Value>,
    q: String,
    query: String,
    filters: Vec<(&'static str, &'static str, Vec<&'static str>, String)>,
    errors: FieldErrors,
    form: Map<String, Value>,
    report: Option<ImportReport>,
    notice: String,
    /// The caller may add rows (the forms are shown).
    writable: bool,
    /// The messages of errors on no field the page has an input for (the scope), on top.
    loose: Vec<String>,
}

fn cols(r: &Register) -> Vec<Col> {
    let mut c: Vec<Col> = r.fields.iter().filter(|f| f.list && !matches!(f.ty, Ty::Secret)).map(|f| (f.key, f.title)).collect();
    c.extend(r.computed.iter().map(|x| (x.key, x.title)));
    c
}

/// A posted form as a register row (every value text; the CSRF token dropped).
fn form_map(body: &[u8]) -> Map<String, Value> {
    crate::auth::middleware::form_pairs(body)
        .into_iter()
        .filter(|(k, _)| k != "_csrf")
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

/// Shows a cell.
pub fn cell(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => {
            if *b {
                "是".into()
            } else {
                "否".into()
            }
        }
        Some(Value::Number(n)) => {
            n.as_f64().map(|x| if x.fract() == 0.0 { format!("{}", x as i64) } else { format!("{x:.2}") }).unwrap_or_default()
        }
        Some(o) => o.to_string(),
    }
}

/// The messages of `errors` on none of the fields `placed` beside an input: a refusal is never
/// silent for want of a place to say it.
fn loose(errors: &FieldErrors, placed: Vec<&str>) -> Vec<String> {
    errors.0.iter().filter(|e| !placed.contains(&e.field.as_str())).map(|e| e.message.clone()).collect()
}

struct Extras {
    errors: FieldErrors,
    form: Map<String, Value>,
    report: Option<ImportReport>,
    notice: String,
}

async fn list_page(
    st: &AppState,
    p: &Principal,
    r: &'static Register,
    raw: HashMap<String, String>,
    x: Extras,
) -> AppResult<Response> {
    let q = ListQuery { per_page: Some(20), ..ListQuery::from_map(&raw)? };
    let page = store::list(st, p, r, &q).await?;
    let filters = r
        .fields
        .iter()
        .filter_map(|f| match f.ty {
            Ty::Enum(v) if f.list => Some((f.key, f.title, v.to_vec(), raw.get(f.key).cloned().unwrap_or_default())),
            Ty::Bool if f.list => Some((f.key, f.title, vec!["是", "否"], raw.get(f.key).cloned().unwrap_or_default())),
            _ => None,
        })
        .collect();
    let query = raw
        .iter()
        .filter(|(k, v)| k.as_str() != "page" && !v.is_empty())
        .map(|(k, v)| format!("{}={}", crate::web::urlencode(k), crate::web::urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let status = if x.errors.0.is_empty() && x.report.as_ref().is_none_or(|r| r.ok) {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let writable = store::may_create(p, r);
    let loose = loose(&x.errors, if writable { r.fields.iter().map(|f| f.key).collect() } else { Vec::new() });
    let page = ListPage {
        loose,
        layout: Layout::new(p, r.title, &format!("/systems/{}", r.system.slug())),
        reg: r,
        cols: cols(r),
        page,
        q: raw.get("q").cloned().unwrap_or_default(),
        query,
        filters,
        errors: x.errors,
        form: x.form,
        report: x.report,
        notice: x.notice,
        writable,
    };
    Ok((status, render(&page)?).into_response())
}

async fn list_get(
    State(st): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    Q(raw): Q<HashMap<String, String>>,
) -> AppResult<Response> {
    let notice =
        crate::web::checked_notice(&st.keyring, raw.get("notice").map(String::as_str), raw.get("ns").map(String::as_str));
    list_page(&st, &p, reg(&name)?, raw, Extras { errors: FieldErrors::default(), form: Map::new(), report: None, notice }).await
}

async fn create_post(
    State(st): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> AppResult<Response> {
    let r = reg(&name)?;
    let form: Map<String, Value> = form_map(&body);
    match store::create(&st, &p, r, &form).await {
        Ok(_) => Ok(crate::web::see_other(&format!("/registers/{name}?{}", crate::web::notice_query(&st.keyring, "已新建")))
            .into_response()),
        Err(AppError::Validation(v)) => {
            list_page(&st, &p, r, HashMap::new(), Extras { errors: FieldErrors(v), form, report: None, notice: String::new() })
                .await
        }
        Err(e) => Err(e),
    }
}

async fn import_post(
    State(st): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    mut mp: Multipart,
) -> AppResult<Response> {
    let r = reg(&name)?;
    let (mut file, mut dry) = (Vec::new(), false);
    while let Some(field) = mp.next_field().await.map_err(|_| AppError::BadRequest("文件读取失败".into()))? {
        match field.name().unwrap_or_default() {
            "file" => file = field.bytes().await.map_err(|_| AppError::BadRequest("文件读取失败（可能过大）".into()))?.to_vec(),
            "dry_run" => dry = true,
            _ => {}
        }
    }
    let rep = xlsx::import(&st, &p, r, &file, dry, &|_, _| {}).await?;
    let notice = match (rep.ok, dry) {
        (true, true) => format!("试导入通过：{} 行全部有效，尚未写入", rep.valid_rows),
        (true, false) => format!("已导入 {} 行", rep.created),
        _ => String::new(),
    };
    list_page(&st, &p, r, HashMap::new(), Extras { errors: FieldErrors::default(), form: Map::new(), report: Some(rep), notice })
        .await
}

#[derive(Template)]
#[template(path = "registers/detail.html")]
struct Detail {
    layout: Layout,
    reg: &'static Register,
    item: Value,
    case: Option<Value>,
    history: Vec<store::RowEvent>,
    errors: FieldErrors,
    /// The messages of errors on no input of the page, on top.
    loose: Vec<String>,
    /// The viewer may edit and retire the row (the forms are shown).
    can_change: bool,
    /// The viewer may turn the row into a case.
    can_to_case: bool,
    /// The viewer may read the encrypted fields back.
    can_reveal: bool,
    /// (title, value) of the encrypted fields, once read back.
    revealed: Vec<(&'static str, String)>,
}

async fn detail(st: &AppState, p: &Principal, r: &'static Register, id: i64, errors: FieldErrors) -> AppResult<Response> {
    detail_shown(st, p, r, id, errors, Vec::new()).await
}

async fn detail_shown(
    st: &AppState,
    p: &Principal,
    r: &'static Register,
    id: i64,
    errors: FieldErrors,
    revealed: Vec<(&'static str, String)>,
) -> AppResult<Response> {
    let rec = store::one(st, p, r, id).await?;
    // The rules the actions themselves apply: a form is shown only where it would be taken.
    let can_reveal = super::reveal::has_secrets(r) && p.role.can(crate::auth::Perm::PersonReveal) && p.in_scope(&rec.node_path);
    let can_change = store::may_change(p, r, &rec.node_path);
    let can_to_case = store::may_to_case(p, r, &rec.node_path);
    let mut placed: Vec<&str> = if can_change { r.fields.iter().map(|f| f.key).collect() } else { Vec::new() };
    if can_reveal && revealed.is_empty() {
        placed.push("reason");
    }
    let loose = loose(&errors, placed);
    let item = store::item(st, r, &rec);
    let status = if errors.0.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let layout = Layout::new(p, &format!("{} · {}", r.title, rec.name), &format!("/systems/{}", r.system.slug()));
    let case = store::linked_case(st, p, &item).await?;
    let history = store::history(st, p, r, id).await?;
    let page = Detail { layout, reg: r, item, case, history, errors, loose, can_change, can_to_case, can_reveal, revealed };
    Ok((status, render(&page)?).into_response())
}

async fn detail_get(State(st): State<AppState>, p: Principal, Path((name, id)): Path<(String, i64)>) -> AppResult<Response> {
    detail(&st, &p, reg(&name)?, id, FieldErrors::default()).await
}

async fn detail_post(
    State(st): State<AppState>,
    p: Principal,
    Path((name, id, act)): Path<(String, i64, String)>,
    body: axum::body::Bytes,
) -> AppResult<Response> {
    let r = reg(&name)?;
    match act.as_str() {
        "edit" => {
            let mut form: Map<String, Value> = form_map(&body);
            if let Some(v) = form.get("version").and_then(Value::as_str).and_then(|s| s.parse::<i64>().ok()) {
                form.insert("version".into(), Value::from(v));
            }
            // Personal fields left empty or masked keep their stored value (store::update).
            match store::update(&st, &p, r, id, &form).await {
                Ok(_) => Ok(crate::web::see_other(&format!("/registers/{name}/{id}")).into_response()),
                Err(AppError::Validation(v)) => detail(&st, &p, r, id, FieldErrors(v)).await,
                Err(e) => Err(e),
            }
        }
        "retire" | "restore" => {
            store::set_retired(&st, &p, r, id, act == "retire").await?;
            Ok(crate::web::see_other(&format!("/registers/{name}")).into_response())
        }
        "to-case" => {
            let c = store::to_case(&st, &p, r, id, None).await?;
            Ok(crate::web::see_other(&format!("/cases/{}", c.number)).into_response())
        }
        "reveal" => {
            let reason = form_map(&body).get("reason").map(super::text_of).unwrap_or_default();
            match super::reveal::reveal(&st, &p, r, id, &reason).await {
                Ok(shown) => {
                    detail_shown(&st, &p, r, id, FieldErrors::default(), shown.into_iter().map(|(_, t, v)| (t, v)).collect())
                        .await
                }
                Err(AppError::Validation(v)) => detail(&st, &p, r, id, FieldErrors(v)).await,
                Err(e) => Err(e),
            }
        }
        _ => Err(AppError::NotFound),
    }
}

#[derive(Template)]
#[template(path = "registers/system.html")]
struct SystemPage {
    layout: Layout,
    registers: Vec<(&'static str, &'static str, usize)>,
    figures: Vec<(String, String)>,
    underfunded: Option<Vec<(String, String)>>,
    reverse: Option<Vec<figures::Department>>,
}

async fn system_page(State(st): State<AppState>, p: Principal, Path(slug): Path<String>) -> AppResult<Response> {
    let sys = System::ALL.into_iter().find(|s| s.slug() == slug).ok_or(AppError::NotFound)?;
    p.require(crate::auth::Perm::RegisterRead)?;
    let mut registers = Vec::new();
    for r in catalog::REGISTERS.iter().filter(|r| r.system == sys) {
        registers.push((r.name, r.title, store::rows(&st, &p, r, false).await?.len()));
    }
    let figures = figures::labelled(&st, &p, sys).await?;
    let (underfunded, reverse) = if sys == System::Assurance {
        (Some(figures::underfunded(&st, &p).await?), Some(figures::reverse_ranking(&st, &p).await?))
    } else {
        (None, None)
    };
    let layout = Layout::new(&p, sys.label(), &format!("/systems/{slug}"));
    Ok(render(&SystemPage { layout, registers, figures, underfunded, reverse })?.into_response())
}

/// Page routes.
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/systems/{slug}", get(system_page))
        .route("/registers/{name}", get(list_get).post(create_post))
        .route("/registers/{name}/import", post(import_post))
        .route("/registers/{name}/template.xlsx", get(template))
        .route("/registers/{name}/export.xlsx", get(export))
        .route("/registers/{name}/{id}", get(detail_get))
        .route("/registers/{name}/{id}/{act}", post(detail_post))
}
