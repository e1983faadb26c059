//! The web shell: layout and menu, embedded assets, input extractors whose rejections are
//! zh-CN [`AppError`]s, and the middleware that renders errors as pages on HTML routes.

pub mod control;
pub mod http;
pub mod pages;
pub mod qr;
pub mod xlsx;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;

use crate::auth::{Perm, Principal};
use crate::error::{AppError, ErrorInfo};

/// A request's body read whole, up to `limit` bytes: over it a 413 that says so, broken off a
/// 400 (for the middlewares and handlers that read bodies themselves).
pub async fn read_body(body: axum::body::Body, limit: usize) -> Result<axum::body::Bytes, AppError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        // to_bytes's error says which only in its text.
        if e.to_string().contains("length limit") { AppError::TooLarge } else { AppError::unread_body(StatusCode::BAD_REQUEST) }
    })
}

/// JSON body whose rejection is a zh-CN 400/422.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| AppError::unread_body(e.status()))?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A JSON body as `T`: a value of the wrong type is a field error naming the field (`lng`,
/// `attrs.floor`), anything else that is not JSON a 400 with where it broke.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let syntax =
        |e: &serde_json::Error| AppError::BadRequest(format!("请求体不是有效的 JSON（第 {} 行第 {} 列）", e.line(), e.column()));
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        if inner.classify() != serde_json::error::Category::Data {
            return syntax(&inner);
        }
        if let Some(name) = msg.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
            let field = if path == "." { name.to_string() } else { format!("{path}.{name}") };
            return AppError::field(&field, "为必填项");
        }
        if path == "." || path.starts_with('[') {
            // The body as a whole is of the wrong kind (an array, a number…).
            return syntax(&inner);
        }
        AppError::field(&path, json_expectation(&msg))
    })?;
    de.end().map_err(|e| syntax(&e))?;
    Ok(value)
}

/// What a JSON value of the wrong type should have been, from serde's message.
fn json_expectation(msg: &str) -> String {
    if msg.starts_with("unknown variant") {
        return "取值无效".into();
    }
    let want = msg.rsplit("expected ").next().unwrap_or_default();
    let kind =
        if ["f64", "f32", "i64", "i32", "u64", "u32", "i16", "u16", "u8", "number", "integer"].iter().any(|k| want.contains(k)) {
            "数字"
        } else if want.contains("bool") {
            "是或否（true 或 false）"
        } else if want.contains("string") || want.contains("char") {
            "文本"
        } else if want.contains("sequence") {
            "数组"
        } else if want.contains("map") || want.contains("struct") {
            "对象"
        } else {
            return "值的类型不对".into();
        };
    format!("类型不对，应为{kind}")
}

/// JSON body that may be absent (an empty body gives `T::default()`).
pub struct OptJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptJson<T> {
    type Rejection = AppError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| AppError::unread_body(e.status()))?;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(OptJson(T::default()));
        }
        parse_json(&bytes).map(OptJson)
    }
}

/// Raw JSON value body (GeoJSON).
pub struct JsonValue(pub serde_json::Value);

impl<S: Send + Sync> FromRequest<S> for JsonValue {
    type Rejection = AppError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        JsonBody::<serde_json::Value>::from_request(req, state).await.map(|b| JsonValue(b.0))
    }
}

/// urlencoded form whose rejection is a zh-CN 400.
pub struct FormBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for FormBody<T> {
    type Rejection = AppError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Form::<T>::from_request(req, state)
            .await
            .map(|f| FormBody(f.0))
            .map_err(|_| AppError::BadRequest("表单内容格式错误".into()))
    }
}

/// Query string whose rejection is a zh-CN 400.
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Empty parameters are treated as absent, as HTML forms send them.
        let raw = parts.uri.query().unwrap_or_default();
        let cleaned: String = raw.split('&').filter(|kv| !kv.is_empty() && !kv.ends_with('=')).collect::<Vec<_>>().join("&");
        let _ = state;
        serde_urlencoded_from(&cleaned).map(Q).map_err(|e| AppError::BadRequest(format!("查询参数格式错误：{e}")))
    }
}

fn serde_urlencoded_from<T: DeserializeOwned>(s: &str) -> Result<T, String> {
    let uri: axum::http::Uri = format!("/?{s}").parse().map_err(|_| "无法解析".to_string())?;
    axum::extract::Query::<T>::try_from_uri(&uri).map(|q| q.0).map_err(|e| match e {
        axum::extract::rejection::QueryRejection::FailedToDeserializeQueryString(inner) => zh_serde(&inner.body_text()),
        _ => "无法解析".into(),
    })
}

fn zh_serde(msg: &str) -> String {
    if msg.contains("invalid digit") || msg.contains("invalid float") {
        "数字格式不正确".into()
    } else if msg.contains("provided string was not `true` or `false`") {
        "应为是或否（true 或 false）".into()
    } else {
        "参数值无效".into()
    }
}

/// Middleware: an error answer made by the framework rather than by linli (a path, form,
/// multipart or JSON body it could not read, a wrong content type, a body over the limit)
/// carries English text (or none) and no [`ErrorInfo`]; it becomes linli's own zh-CN error
/// with the same status, in JSON or, under [`html_errors`], as a page.
pub async fn framework_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    // linli's own error answers carry ErrorInfo or are pages (a form shown again with its
    // message); the framework's are plain text, or empty.
    let plain = resp.headers().get(header::CONTENT_TYPE).is_none_or(|t| t.as_bytes().starts_with(b"text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || resp.extensions().get::<ErrorInfo>().is_some() || !plain {
        return resp;
    }
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "提交的内容过大",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "提交的内容类型不受支持，请按页面表单或接口说明提交",
        StatusCode::METHOD_NOT_ALLOWED => "不支持该请求方式",
        s if s.is_server_error() => return AppError::Internal(format!("framework answered {status}")).into_response(),
        _ => "请求格式错误，请检查链接或提交的内容",
    };
    let mut r = AppError::BadRequest(message.into()).into_response();
    *r.status_mut() = status;
    r
}

/// A 303 redirect to `to`, its control characters (which a header cannot hold: a request
/// could put them in a path or a "back" parameter) percent-encoded, so the redirect after a
/// saved action cannot fail.
pub fn see_other(to: &str) -> Redirect {
    let clean: String = to.chars().map(|c| if c.is_control() { urlencode(&c.to_string()) } else { c.to_string() }).collect();
    Redirect::to(&clean)
}

/// Middleware for page routes: an error response becomes a zh-CN HTML page; 401 becomes a
/// redirect to the login page and a pending password change a redirect to the form.
pub async fn html_errors(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    as_page(&path, next.run(req).await)
}

/// Whether a path is a person's page (not the API, not Open311): its errors are pages.
pub fn is_page(path: &str) -> bool {
    !(path.starts_with("/api/") || path.starts_with("/open311/") || path == "/api")
}

/// The answer to a page request: linli's own error answer becomes the zh-CN error page (or the
/// redirect to log in); anything else is left as it is.
pub fn as_page(path: &str, resp: Response) -> Response {
    let Some(info) = resp.extensions().get::<ErrorInfo>().cloned() else {
        return resp;
    };
    let status = resp.status();
    if status == StatusCode::UNAUTHORIZED && path != "/login" {
        return see_other(&format!("/login?next={}", urlencode(path))).into_response();
    }
    if status == StatusCode::FORBIDDEN && info.message.contains("初始密码") {
        return Redirect::to("/password").into_response();
    }
    let mobile = path == "/m" || path.starts_with("/m/");
    let message =
        if mobile && status == StatusCode::NOT_FOUND { "未找到该页面或事项".to_string() } else { info.message };
    let page = pages::ErrorPage { status: status.as_u16(), message, fields: info.fields, mobile };
    (status, page.html()).into_response()
}

/// The 404 page of a path no route serves.
pub fn not_found_page(path: &str) -> Response {
    let mobile = path == "/m" || path.starts_with("/m/");
    let message = if mobile { "未找到该页面或事项" } else { "未找到该页面" };
    let page = pages::ErrorPage { status: 404, message: message.into(), fields: Vec::new(), mobile };
    (StatusCode::NOT_FOUND, page.html()).into_response()
}

/// The zh-CN name of a form or query field, for error lists that show messages away from their
/// fields (an unknown key shows no name: the message alone).
pub fn field_label(key: &str) -> &'static str {
    const LABELS: &[(&str, &str)] = &[
        ("status", "状态"),
        ("sort", "排序"),
        ("page", "页码"),
        ("per_page", "每页条数"),
        ("from", "开始日期"),
        ("to", "结束日期"),
        ("file", "文件"),
        ("geometry", "网格范围"),
        ("level", "层级"),
        ("code", "编码"),
        ("name", "名称"),
        ("group", "分组"),
        ("sign_hours", "签收时限"),
        ("resolve_hours", "办理时限"),
        ("unit_kind", "承办单位类型"),
        ("calendar", "节假日安排"),
        ("url", "推送地址"),
        ("unit", "单位"),
        ("kind", "类型"),
        ("contact_name", "联系人"),
        ("contact_phone", "联系电话"),
        ("communities", "服务社区"),
        ("username", "用户名"),
        ("password", "密码"),
        ("role", "角色"),
        ("scope", "管辖范围"),
        ("category", "类别"),
        ("description", "描述"),
        ("grid", "网格"),
        ("address", "地址"),
        ("lng", "经度"),
        ("lat", "纬度"),
        ("crs", "坐标系"),
        ("reporter_phone", "联系电话"),
        ("reporter_name", "报事人"),
        ("note", "说明"),
        ("assignee", "承办对象"),
        ("satisfaction", "满意度"),
        ("hours", "延期时长"),
        ("contacted", "是否联系上"),
        ("solved", "是否解决"),
        ("photos", "照片"),
        ("reason", "事由"),
        ("id_number", "身份证号"),
        ("mobile", "手机号"),
        ("node", "住址"),
        ("parent", "上级"),
        ("q", "搜索词"),
        ("community", "社区"),
        ("action", "操作"),
        ("comment", "评价"),
        ("title", "标题"),
        ("current", "当前密码"),
        ("confirm", "确认密码"),
        ("body", "请求内容"),
        ("credit_code", "统一社会信用代码"),
        ("expires_in_days", "有效天数"),
        ("display_name", "姓名"),
    ];
    LABELS.iter().find(|(k, _)| *k == key).map(|(_, l)| *l).unwrap_or("")
}

/// [`field_label`] for a message shown beside it: none when the message already names the
/// field (统一社会信用代码校验位错误 needs no 统一社会信用代码： before it).
pub fn field_prefix(key: &str, message: &str) -> &'static str {
    let l = field_label(key);
    if message.starts_with(l) { "" } else { l }
}

/// The query that carries a notice to the page a form redirects to (`notice=…&ns=…`), signed:
/// a page shows only notices this server wrote (a link with any `?notice=` text showed it as
/// a green message of the system's own, e.g. a fake 请拨打… warning).
pub fn notice_query(keys: &crate::privacy::Keyring, text: &str) -> String {
    format!("notice={}&ns={}", urlencode(text), notice_sig(keys, text))
}

/// The notice a page shows: `text` if `sig` is its signature ([`notice_query`]), else none.
pub fn checked_notice(keys: &crate::privacy::Keyring, text: Option<&str>, sig: Option<&str>) -> String {
    match (text, sig) {
        (Some(t), Some(s)) if !t.is_empty() && s == notice_sig(keys, t) => t.to_string(),
        _ => String::new(),
    }
}

fn notice_sig(keys: &crate::privacy::Keyring, text: &str) -> String {
    keys.blind_index("page_notice", text).chars().take(16).collect()
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Formats epoch milliseconds as Asia/Shanghai local time (UTC+8, no DST).
pub fn fmt_time(ms: impl std::borrow::Borrow<i64>) -> String {
    use chrono::{Datelike, Timelike};
    let ms = *ms.borrow();
    let tz = chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset");
    // Written out field by field: `format("%Y-…")` parses its pattern on every call, and a case
    // list formats three times per row.
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&tz))
        .map(|t| {
            let (d, h) = (t.date_naive(), t.time());
            format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", d.year(), d.month(), d.day(), h.hour(), h.minute(), h.second())
        })
        .unwrap_or_default()
}

/// A left-menu entry.
pub struct MenuItem {
    /// Link.
    pub href: &'static str,
    /// zh-CN label.
    pub label: &'static str,
    /// Section heading this item sits under.
    pub section: &'static str,
    /// True on the first item of a section (the template prints the heading there).
    pub heading: bool,
}

/// The shell around every logged-in page.
pub struct Layout {
    /// Page title.
    pub title: String,
    /// Display name of the user.
    pub user: String,
    /// Role label.
    pub role: String,
    /// Scope code.
    pub scope: String,
    /// CSRF token for forms.
    pub csrf: String,
    /// Current path, to highlight the menu.
    pub active: String,
    /// Menu entries the user may open.
    pub menu: Vec<MenuItem>,
}

impl Layout {
    /// Builds the layout for a principal.
    pub fn new(p: &Principal, title: &str, active: &str) -> Layout {
        let mut menu = vec![MenuItem { href: "/", label: "工作台", section: "", heading: false }];
        let systems = [
            ("/systems/organization", "组织体系"),
            ("/systems/service", "服务体系"),
            ("/systems/development", "发展体系"),
            ("/systems/governance", "治理体系"),
            ("/systems/assurance", "保障体系"),
        ];
        let mut add = |href, label, section| menu.push(MenuItem { href, label, section, heading: false });
        for (href, label) in systems.into_iter().filter(|_| p.role.can(Perm::RegisterRead)) {
            add(href, label, "五大体系");
        }
        // Each section once, in this order (a heading is shown where the section changes).
        add("/cases", "事项办理", "事项");
        if p.role == crate::auth::Role::Resident {
            // The H5 form: a map, the grid found from the place, photos.
            add("/m/report", "我要报事", "事项");
        }
        add("/notifications", "消息", "事项");
        if crate::cases::staff_level(p.role).is_some() {
            add("/rates", "办理情况排名", "事项");
        }
        // The tree and the map for staff; a unit contact's or a resident's scope is no place in it.
        if p.role.can(Perm::RegisterRead) {
            add("/tree", "区域与网格", "基础信息");
            add("/map", "网格地图", "基础信息");
        }
        if p.role.can(Perm::PersonRead) {
            add("/people", "居民信息", "基础信息");
        }
        if p.role == crate::auth::Role::CountyAdmin {
            add("/admin", "事项配置", "系统管理");
        }
        if p.role.can(Perm::UserManage) {
            add("/users", "账号与角色", "系统管理");
        }
        if p.role.can(Perm::AuditRead) {
            add("/audit", "审计日志", "系统管理");
        }
        // Integrations are set up by staff and member units, not by residents or Party members.
        if !matches!(p.role, crate::auth::Role::Resident | crate::auth::Role::PartyMember) {
            add("/tokens", "访问令牌", "系统管理");
            add("/api/docs", "接口文档", "系统管理");
        }
        let mut last = "";
        for m in &mut menu {
            m.heading = m.section != last && !m.section.is_empty();
            last = m.section;
        }
        Layout {
            title: title.into(),
            user: p.display_name.clone(),
            role: p.role.label().into(),
            scope: p.scope.clone(),
            csrf: p.csrf().into(),
            active: active.into(),
            menu,
        }
    }
}

/// Renders an askama template into an HTML response (template errors become 500s).
pub fn render<T: askama::Template>(t: &T) -> Result<Html<String>, AppError> {
    t.render().map(Html).map_err(|e| AppError::Internal(format!("template: {e}")))
}

const CSS: &str = include_str!("../../assets/app.css");
const JS: &str = include_str!("../../assets/app.js");
const ICON: &str = include_str!("../../assets/icon.svg");
const M_CSS: &str = include_str!("../../assets/m.css");
const M_JS: &str = include_str!("../../assets/m.js");

/// Serves the embedded assets.
pub async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let (ct, body) = match name.as_str() {
        "app.css" => ("text/css; charset=utf-8", CSS),
        "app.js" => ("application/javascript; charset=utf-8", JS),
        "icon.svg" => ("image/svg+xml", ICON),
        "m.css" => ("text/css; charset=utf-8", M_CSS),
        "m.js" => ("application/javascript; charset=utf-8", M_JS),
        _ => return AppError::NotFound.into_response(),
    };
    ([(header::CONTENT_TYPE, ct), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn fmt_time_is_beijing_time() {
        let tz = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
        for ms in [0, 1_764_345_600_000, 1_767_196_799_999, 1_767_196_800_000, 253_402_271_999_000, -86_400_000] {
            let want = chrono::DateTime::from_timestamp_millis(ms).unwrap().with_timezone(&tz).format("%Y-%m-%d %H:%M:%S");
            assert_eq!(super::fmt_time(ms), want.to_string(), "{ms}");
        }
        assert_eq!(super::fmt_time(1_767_196_800_000_i64), "2026-01-01 00:00:00");
        assert_eq!(super::fmt_time(i64::MAX), "");
    }
}
