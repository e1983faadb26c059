//! Login, logout, password change, accounts and tokens: pages and API. Thin: parse, call
//! [`super::store`], render.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::middleware::{Caller, PRE_COOKIE, SESSION_COOKIE};
use super::store::{self, NewUser, UserAction, UserFilter};
use super::{Principal, Role, random_hex};
use crate::app::AppState;
use crate::db::list::Page;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::web::{FormBody, JsonBody, Layout, OptJson, Q, render};

#[derive(Deserialize, Default)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    username: String,
    error: String,
}

fn login_page(pre: String, next: String, username: String, error: String, status: StatusCode) -> Response {
    let cookie = format!("{PRE_COOKIE}={pre}; Path=/; HttpOnly; SameSite=Strict");
    match render(&LoginPage { csrf: pre, next, username, error }) {
        Ok(html) => (status, [(header::SET_COOKIE, cookie)], html).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize, Default)]
struct NextQ {
    next: Option<String>,
}

async fn login_get(Q(q): Q<NextQ>) -> Response {
    login_page(random_hex(16), q.next.unwrap_or_default(), String::new(), String::new(), StatusCode::OK)
}

fn safe_next(next: &str) -> String {
    // Only local paths: an open redirect would help phishing.
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') { next.to_string() } else { "/".into() }
}

async fn login_post(State(st): State<AppState>, Caller(_, ip): Caller, FormBody(f): FormBody<LoginForm>) -> Response {
    match store::login(&st, f.username.trim(), &f.password, &ip).await {
        Ok(ok) => {
            let cookie = format!("{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax", ok.token);
            let to = if ok.principal.must_change_password { "/password".to_string() } else { safe_next(&f.next) };
            ([(header::SET_COOKIE, cookie)], crate::web::see_other(&to)).into_response()
        }
        Err(e @ AppError::Internal(_)) => e.into_response(),
        Err(e) => login_page(random_hex(16), f.next, f.username, e.to_string(), e.status()),
    }
}

async fn logout_post(State(st): State<AppState>, p: Principal) -> AppResult<Response> {
    store::logout(&st, &p).await?;
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; Max-Age=0");
    Ok(([(header::SET_COOKIE, clear)], crate::web::see_other("/login")).into_response())
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    layout: Layout,
    errors: FieldErrors,
    forced: bool,
    done: bool,
}

async fn password_get(p: Principal) -> AppResult<Response> {
    let layout = Layout::new(&p, "修改密码", "/password");
    Ok(render(&PasswordPage { layout, errors: FieldErrors::default(), forced: p.must_change_password, done: false })?
        .into_response())
}

#[derive(Deserialize, Default)]
struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

async fn change_password(st: &AppState, p: &Principal, f: &PasswordForm) -> AppResult<()> {
    let mut errs = FieldErrors::default();
    if let Err(wrong) = store::check_own_password(st, p, &f.current).await? {
        errs.add("current", wrong);
    }
    if f.password != f.confirm {
        errs.add("confirm", "两次输入的新密码不一致");
    }
    errs.check("password", super::password::check_policy(&f.password));
    errs.finish()?;
    store::set_password(st, Some(p), &p.actor(), &p.username, &f.password, true).await
}

async fn password_post(State(st): State<AppState>, p: Principal, FormBody(f): FormBody<PasswordForm>) -> AppResult<Response> {
    let layout = Layout::new(&p, "修改密码", "/password");
    match change_password(&st, &p, &f).await {
        Ok(()) => {
            Ok(render(&PasswordPage { layout, errors: FieldErrors::default(), forced: false, done: true })?.into_response())
        }
        Err(AppError::Validation(v)) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            render(&PasswordPage { layout, errors: FieldErrors(v), forced: p.must_change_password, done: false })?,
        )
            .into_response()),
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    layout: Layout,
    page: Page<store::User>,
    filter: UserFilter,
    roles: Vec<(&'static str, &'static str)>,
    errors: FieldErrors,
    form: UserForm,
    notice: String,
}

#[derive(Deserialize, Default, Clone)]
struct UserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    password: String,
}

impl UserForm {
    fn into_new(self) -> AppResult<NewUser> {
        let role = Role::parse(&self.role).map_err(|m| AppError::field("role", m))?;
        Ok(NewUser {
            username: self.username.trim().into(),
            display_name: self.display_name,
            role,
            scope: self.scope.trim().into(),
            password: self.password,
            must_change: true,
        })
    }
}

async fn users_page(st: &AppState, p: &Principal, errors: FieldErrors, form: UserForm, notice: String) -> AppResult<Response> {
    users_page_of(st, p, UserFilter::default(), errors, form, notice).await
}

async fn users_page_of(
    st: &AppState,
    p: &Principal,
    filter: UserFilter,
    errors: FieldErrors,
    form: UserForm,
    notice: String,
) -> AppResult<Response> {
    let page = store::list_users(st, p, &filter).await?;
    let roles = Role::ALL.iter().filter(|r| r.rank() >= p.role.rank()).map(|r| (r.as_str(), r.label())).collect();
    let status = if errors.0.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok((
        status,
        render(&UsersPage { layout: Layout::new(p, "账号与角色", "/users"), page, filter, roles, errors, form, notice })?,
    )
        .into_response())
}

async fn users_get(State(st): State<AppState>, p: Principal, Q(f): Q<UserFilter>) -> AppResult<Response> {
    users_page_of(&st, &p, f, FieldErrors::default(), UserForm::default(), String::new()).await
}

async fn users_post(State(st): State<AppState>, p: Principal, FormBody(f): FormBody<UserForm>) -> AppResult<Response> {
    let res = match f.clone().into_new() {
        Ok(nu) => store::create_user(&st, Some(&p), &p.actor(), nu).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match res {
        Ok(()) => {
            users_page(
                &st,
                &p,
                FieldErrors::default(),
                UserForm::default(),
                format!("已创建账号 {}，首次登录须修改密码", f.username.trim()),
            )
            .await
        }
        Err(AppError::Validation(v)) => users_page(&st, &p, FieldErrors(v), f, String::new()).await,
        Err(e) => Err(e),
    }
}

#[derive(Deserialize, Default)]
struct ResetForm {
    #[serde(default)]
    password: String,
}

async fn user_action(st: &AppState, p: &Principal, name: &str, action: &str, pw: &str) -> AppResult<()> {
    match action {
        "lock" => store::set_lock(st, Some(p), &p.actor(), name, UserAction::Lock).await,
        "unlock" => store::set_lock(st, Some(p), &p.actor(), name, UserAction::Unlock).await,
        "reset-password" => store::set_password(st, Some(p), &p.actor(), name, pw, false).await,
        _ => Err(AppError::NotFound),
    }
}

async fn user_action_page(
    State(st): State<AppState>,
    p: Principal,
    Path((name, action)): Path<(String, String)>,
    FormBody(f): FormBody<ResetForm>,
) -> AppResult<Response> {
    match user_action(&st, &p, &name, &action, &f.password).await {
        Ok(()) => users_page(&st, &p, FieldErrors::default(), UserForm::default(), format!("已对账号 {name} 执行操作")).await,
        Err(AppError::Validation(v)) => users_page(&st, &p, FieldErrors(v), UserForm::default(), String::new()).await,
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    layout: Layout,
    tokens: Vec<store::TokenInfo>,
    new_token: String,
}

#[derive(Deserialize, Default)]
struct TokenForm {
    #[serde(default)]
    name: String,
    /// Days of validity: a number in JSON, text in a form (empty for the default).
    #[serde(default)]
    expires_in_days: Option<serde_json::Value>,
}

/// A 403 with its own zh-CN message, answered as an [`AppError`] is (JSON for the API, the
/// error page on page routes).
fn forbidden(message: &str) -> Response {
    let mut resp = (StatusCode::FORBIDDEN, Json(json!({"error": message}))).into_response();
    resp.extensions_mut().insert(crate::error::ErrorInfo { message: message.into(), fields: Vec::new() });
    resp
}

/// Only a signed-in person issues personal access tokens, not a token.
fn token_caller(p: &Principal) -> Option<Response> {
    (p.via == super::Via::Token).then(|| forbidden(store::TOKEN_FROM_TOKEN))
}

impl TokenForm {
    /// The days asked for; a text that is not a whole number is refused by field.
    fn days(&self) -> AppResult<Option<i64>> {
        match &self.expires_in_days {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(serde_json::Value::String(s)) => s.trim().parse().map(Some).map_err(|_| Self::bad_days()),
            Some(v) => v.as_i64().map(Some).ok_or_else(Self::bad_days),
        }
    }

    fn bad_days() -> AppError {
        AppError::field("expires_in_days", format!("有效期应为 1～{} 天", store::TOKEN_MAX_DAYS))
    }
}

async fn tokens_get(State(st): State<AppState>, p: Principal) -> AppResult<Response> {
    let tokens = store::list_tokens(&st, &p).await?;
    Ok(render(&TokensPage { layout: Layout::new(&p, "访问令牌", "/tokens"), tokens, new_token: String::new() })?.into_response())
}

async fn tokens_post(State(st): State<AppState>, p: Principal, FormBody(f): FormBody<TokenForm>) -> AppResult<Response> {
    if let Some(refused) = token_caller(&p) {
        return Ok(refused);
    }
    let name = if f.name.trim().is_empty() { "未命名".to_string() } else { f.name.trim().chars().take(40).collect() };
    let new_token = store::issue_token(&st, Some(&p), &p.actor(), &p.username, &name, f.days()?).await?;
    let tokens = store::list_tokens(&st, &p).await?;
    Ok(render(&TokensPage { layout: Layout::new(&p, "访问令牌", "/tokens"), tokens, new_token })?.into_response())
}

async fn token_revoke_page(State(st): State<AppState>, p: Principal, Path(id): Path<i64>) -> AppResult<Response> {
    store::revoke_token(&st, &p, id).await?;
    Ok(crate::web::see_other("/tokens").into_response())
}

/// Page routes.
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_get).post(login_post))
        .route("/logout", post(logout_post))
        .route("/password", get(password_get).post(password_post))
        .route("/users", get(users_get).post(users_post))
        .route("/users/{name}/{action}", post(user_action_page))
        .route("/tokens", get(tokens_get).post(tokens_post))
        .route("/tokens/{id}/revoke", post(token_revoke_page))
}

async fn api_login(
    State(st): State<AppState>,
    Caller(_, ip): Caller,
    JsonBody(f): JsonBody<LoginForm>,
) -> AppResult<Json<serde_json::Value>> {
    let ok = store::login(&st, f.username.trim(), &f.password, &ip).await?;
    Ok(Json(json!({
        "token": ok.token,
        "expires_in": st.cfg.idle_timeout_secs,
        "must_change_password": ok.principal.must_change_password,
        "csrf": ok.principal.csrf(),
    })))
}

async fn api_logout(State(st): State<AppState>, p: Principal) -> AppResult<StatusCode> {
    store::logout(&st, &p).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn api_me(p: Principal) -> Json<serde_json::Value> {
    Json(
        json!({"username": p.username, "display_name": p.display_name, "role": p.role, "scope": p.scope, "must_change_password": p.must_change_password}),
    )
}

async fn api_password(State(st): State<AppState>, p: Principal, JsonBody(f): JsonBody<PasswordForm>) -> AppResult<StatusCode> {
    change_password(&st, &p, &f).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn api_users(State(st): State<AppState>, p: Principal, Q(f): Q<UserFilter>) -> AppResult<Json<Page<store::User>>> {
    Ok(Json(store::list_users(&st, &p, &f).await?))
}

async fn api_user_create(
    State(st): State<AppState>,
    p: Principal,
    JsonBody(f): JsonBody<UserForm>,
) -> AppResult<(StatusCode, Json<store::User>)> {
    let mut errs = FieldErrors::default();
    let role = errs.check("role", Role::parse(&f.role));
    errs.finish()?;
    let nu = NewUser { role: role.expect("checked"), ..f.into_new()? };
    Ok((StatusCode::CREATED, Json(store::create_user(&st, Some(&p), &p.actor(), nu).await?)))
}

async fn api_user_action(
    State(st): State<AppState>,
    p: Principal,
    Path((name, action)): Path<(String, String)>,
    OptJson(body): OptJson<ResetForm>,
) -> AppResult<StatusCode> {
    let pw = body.password;
    user_action(&st, &p, &name, &action, &pw).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn api_tokens(State(st): State<AppState>, p: Principal) -> AppResult<Json<serde_json::Value>> {
    Ok(Json(json!({"items": store::list_tokens(&st, &p).await?})))
}

async fn api_token_create(State(st): State<AppState>, p: Principal, req: axum::extract::Request) -> AppResult<Response> {
    use axum::extract::FromRequest;
    if let Some(refused) = token_caller(&p) {
        return Ok(refused);
    }
    // A JSON object ({} for every default): an empty body or `[]` was read as {} and issued a
    // token nobody asked for in those words.
    let bytes = axum::body::Bytes::from_request(req, &st).await.map_err(|e| AppError::unread_body(e.status()))?;
    if !bytes.trim_ascii_start().starts_with(b"{") {
        return Err(AppError::BadRequest(
            "请求体应为 JSON 对象，如 {\"name\": \"热线对接\", \"expires_in_days\": 90}（都可省略：{}）".into(),
        ));
    }
    let JsonBody(body) = JsonBody::<TokenForm>::from_request(axum::extract::Request::new(bytes.into()), &st).await?;
    let days = body.days()?;
    let name = Some(body.name).filter(|n| !n.trim().is_empty()).unwrap_or_else(|| "api".into());
    let token = store::issue_token(&st, Some(&p), &p.actor(), &p.username, &name, days).await?;
    let answer = json!({"token": token, "name": name, "expires_in_days": days.unwrap_or(store::TOKEN_DAYS)});
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

async fn api_token_revoke(State(st): State<AppState>, p: Principal, Path(id): Path<i64>) -> AppResult<StatusCode> {
    store::revoke_token(&st, &p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// API routes (under /api/v1).
pub fn api() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(api_login))
        .route("/auth/logout", post(api_logout))
        .route("/auth/password", post(api_password))
        .route("/me", get(api_me))
        .route("/users", get(api_users).post(api_user_create))
        .route("/users/{name}/{action}", post(api_user_action))
        .route("/tokens", get(api_tokens).post(api_token_create))
        .route("/tokens/{id}", delete(api_token_revoke))
}
