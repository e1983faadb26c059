//! The resident register: pages and API.

use crate::audit::ReasonForm as RevealForm;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::{Person, PersonFilter, PersonInput, Revealed};
use crate::app::AppState;
use crate::auth::{Perm, Principal};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::tree::store::Page;
use crate::web::{FormBody, JsonBody, Layout, OptJson, Q, render};

async fn api_list(State(st): State<AppState>, p: Principal, Q(f): Q<PersonFilter>) -> AppResult<Json<Page<Person>>> {
    Ok(Json(super::list(&st, &p, &f).await?))
}

async fn api_create(
    State(st): State<AppState>,
    p: Principal,
    JsonBody(i): JsonBody<PersonInput>,
) -> AppResult<(StatusCode, Json<Person>)> {
    Ok((StatusCode::CREATED, Json(super::create(&st, &p, &i).await?)))
}

async fn api_get(State(st): State<AppState>, p: Principal, Path(id): Path<i64>) -> AppResult<Json<Person>> {
    Ok(Json(super::get_person(&st, &p, id).await?))
}

async fn api_reveal(
    State(st): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    OptJson(f): OptJson<RevealForm>,
) -> AppResult<Json<Revealed>> {
    Ok(Json(super::reveal(&st, &p, id, &f.reason).await?))
}

async fn api_update(
    State(st): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    JsonBody(i): JsonBody<PersonInput>,
) -> AppResult<Json<Person>> {
    Ok(Json(super::update(&st, &p, id, &i).await?))
}

async fn api_retire(
    State(st): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    OptJson(f): OptJson<RevealForm>,
) -> AppResult<StatusCode> {
    super::retire(&st, &p, id, &f.reason).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn export(State(st): State<AppState>, p: Principal, Q(f): Q<PersonFilter>) -> AppResult<Response> {
    Ok(crate::web::xlsx::download("居民名单.xlsx", super::export(&st, &p, &f).await?))
}

/// API routes (under /api/v1).
pub fn api() -> Router<AppState> {
    Router::new()
        .route("/persons", get(api_list).post(api_create))
        .route("/persons/export.xlsx", get(export))
        .route("/persons/{id}", get(api_get).put(api_update))
        .route("/persons/{id}/retire", post(api_retire))
        .route("/persons/{id}/reveal", post(api_reveal))
}

#[derive(Template)]
#[template(path = "people.html")]
struct PeoplePage {
    layout: Layout,
    page: Page<Person>,
    filter: PersonFilter,
    can_write: bool,
    errors: FieldErrors,
    form: PersonInput,
}

async fn people_page(
    st: &AppState,
    p: &Principal,
    filter: PersonFilter,
    errors: FieldErrors,
    form: PersonInput,
) -> AppResult<Response> {
    let page = super::list(st, p, &filter).await?;
    let status = if errors.0.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let layout = Layout::new(p, "居民信息", "/people");
    let can_write = p.role.can(Perm::PersonWrite);
    Ok((status, render(&PeoplePage { layout, page, filter, can_write, errors, form })?).into_response())
}

async fn people_get(State(st): State<AppState>, p: Principal, Q(f): Q<PersonFilter>) -> AppResult<Response> {
    people_page(&st, &p, f, FieldErrors::default(), PersonInput::default()).await
}

async fn people_post(State(st): State<AppState>, p: Principal, FormBody(f): FormBody<PersonInput>) -> AppResult<Response> {
    match super::create(&st, &p, &f).await {
        Ok(person) => Ok(crate::web::see_other(&format!("/people/{}", person.id)).into_response()),
        Err(AppError::Validation(v)) => people_page(&st, &p, PersonFilter::default(), FieldErrors(v), f).await,
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "person.html")]
struct PersonPage {
    layout: Layout,
    person: Person,
    revealed: Option<Revealed>,
    can_reveal: bool,
    can_write: bool,
    errors: FieldErrors,
}

async fn person_page(
    st: &AppState,
    p: &Principal,
    id: i64,
    revealed: Option<Revealed>,
    errors: FieldErrors,
) -> AppResult<Response> {
    let person = super::get_person(st, p, id).await?;
    let layout = Layout::new(p, &format!("居民 · {}", person.name), "/people");
    let status = if errors.0.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let (can_reveal, can_write) = (p.role.can(Perm::PersonReveal), p.role.can(Perm::PersonWrite));
    Ok((status, render(&PersonPage { layout, person, revealed, can_reveal, can_write, errors })?).into_response())
}

async fn person_get(State(st): State<AppState>, p: Principal, Path(id): Path<i64>) -> AppResult<Response> {
    person_page(&st, &p, id, None, FieldErrors::default()).await
}

async fn person_reveal(
    State(st): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    FormBody(f): FormBody<RevealForm>,
) -> AppResult<Response> {
    match super::reveal(&st, &p, id, &f.reason).await {
        Ok(revealed) => person_page(&st, &p, id, Some(revealed), FieldErrors::default()).await,
        Err(AppError::Validation(v)) => person_page(&st, &p, id, None, FieldErrors(v)).await,
        Err(e) => Err(e),
    }
}

async fn person_edit(
    State(st): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    FormBody(f): FormBody<PersonInput>,
) -> AppResult<Response> {
    match super::update(&st, &p, id, &f).await {
        Ok(_) => Ok(crate::web::see_other(&format!("/people/{id}")).into_response()),
        Err(AppError::Validation(v)) => person_page(&st, &p, id, None, FieldErrors(v)).await,
        Err(e) => Err(e),
    }
}

async fn person_retire(
    State(st): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    FormBody(f): FormBody<RevealForm>,
) -> AppResult<Response> {
    super::retire(&st, &p, id, &f.reason).await?;
    Ok(crate::web::see_other("/people").into_response())
}

/// Page routes.
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/people", get(people_get).post(people_post))
        .route("/people/{id}", get(person_get))
        .route("/people/export.xlsx", get(export))
        .route("/people/{id}/reveal", post(person_reveal))
        .route("/people/{id}/edit", post(person_edit))
        .route("/people/{id}/retire", post(person_retire))
}
