//! Open311 GeoReport v2 under `/open311/v2/`: discovery, services, service definitions,
//! POST requests (api_key = an access token; anonymous posting if the county allows it),
//! tokens, GET requests with the spec's filters, GET one request. `.xml` and `.json`.

pub mod format;

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::AppState;
use crate::auth::middleware::Caller;
use crate::cases::Status;
use crate::cases::categories::{self, Category};
use crate::cases::store::{self, CreateInput, Reporter};
use crate::db::get as col;
use crate::db::list::Where;
use crate::error::AppError;
use format::Format;

fn reply(f: Format, status: StatusCode, body: impl IntoResponse) -> Response {
    (status, [(header::CONTENT_TYPE, f.content_type())], body).into_response()
}

fn err(f: Format, code: u16, description: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    reply(f, status, format::errors(f, &[format::Error { code, description: description.into() }]))
}

/// Maps our errors to the spec's error list.
fn app_err(f: Format, e: AppError) -> Response {
    match e {
        AppError::Validation(v) => {
            let list: Vec<format::Error> =
                v.into_iter().map(|x| format::Error { code: 400, description: format!("{}: {}", x.field, x.message) }).collect();
            reply(f, StatusCode::BAD_REQUEST, format::errors(f, &list))
        }
        AppError::NotFound => err(f, 404, "未找到"),
        AppError::Unauthorized | AppError::BadCredentials => err(f, 403, "api_key 无效"),
        // A unit contact's or a Party member's key: they do not register cases.
        AppError::Forbidden => err(f, 403, "该 api_key 所属账号无权提交事项"),
        AppError::TooMany(m) => err(f, 429, m),
        AppError::Internal(_) => err(f, 500, "服务器内部错误"),
        e => err(f, 400, e.to_string()),
    }
}

/// An error refused before the handler (see [`crate::web::control`]), in the spec's error list
/// and the format the path asks for (XML unless it ends in `.json`).
pub fn refusal(path: &str, e: AppError) -> Response {
    refused(if path.ends_with(".json") { Format::Json } else { Format::Xml }, e)
}

/// [`app_err`], and a body over [`POST_LIMIT`] said so.
fn refused(f: Format, e: AppError) -> Response {
    match e {
        AppError::TooLarge => err(f, 413, "提交的内容过大（不能超过 1 MB）"),
        e => app_err(f, e),
    }
}

/// Query or form parameters with empty values treated as absent.
fn params(raw: HashMap<String, String>) -> HashMap<String, String> {
    raw.into_iter().filter(|(_, v)| !v.trim().is_empty()).collect()
}

async fn check_jurisdiction(st: &AppState, p: &HashMap<String, String>) -> Result<(), String> {
    match p.get("jurisdiction_id") {
        None => Ok(()),
        Some(j) => match crate::tree::store::find_by_code(&st.db, j).await {
            Ok(Some(n)) if n.kind == crate::tree::Kind::County => Ok(()),
            _ => Err(format!("未找到 jurisdiction_id {j}")),
        },
    }
}

fn service(c: &Category) -> format::Service {
    format::Service {
        service_code: c.code.clone(),
        service_name: c.name.clone(),
        description: c.description.clone(),
        metadata: !c.attrs.is_empty(),
        kind: "realtime".into(),
        keywords: c.group.clone(),
        group: c.group.clone(),
    }
}

async fn root(State(st): State<AppState>, Path(file): Path<String>, Query(raw): Query<HashMap<String, String>>) -> Response {
    let Some((f, name)) = Format::from_path_suffix(&file) else { return err(Format::Xml, 404, "格式应为 .xml 或 .json") };
    let p = params(raw);
    if let Err(m) = check_jurisdiction(&st, &p).await {
        return err(f, 404, m);
    }
    match name {
        "discovery" => {
            let d = format::Discovery {
                changeset: crate::db::now_ms(),
                contact: "沿河土家族自治县城市基层党建综合体".into(),
                key_service: "请联系县委组织部在“访问令牌”页面签发 api_key".into(),
                endpoints: vec![format::Endpoint {
                    specification: "http://wiki.open311.org/GeoReport_v2".into(),
                    url: "/open311/v2".into(),
                    changeset: crate::db::now_ms(),
                    kind: "production".into(),
                    formats: vec!["text/xml".into(), "application/json".into()],
                }],
            };
            reply(f, StatusCode::OK, format::discovery(f, &d))
        }
        "services" => match st
            .cats
            .rendered(&st.db, f.content_type(), |cats| {
                format::services(f, &cats.iter().filter(|c| c.active).map(service).collect::<Vec<_>>())
            })
            .await
        {
            Ok(body) => reply(f, StatusCode::OK, body),
            Err(e) => app_err(f, e),
        },
        "requests" => list_requests(&st, f, &p).await.unwrap_or_else(|r| r),
        _ => err(f, 404, "未知的资源"),
    }
}

async fn definition(State(st): State<AppState>, Path(file): Path<String>) -> Response {
    let Some((f, code)) = Format::from_path_suffix(&file) else { return err(Format::Xml, 404, "格式应为 .xml 或 .json") };
    match categories::by_code(&st, code).await {
        Ok(Some(c)) if c.active => {
            let attrs = c
                .attrs
                .iter()
                .enumerate()
                .map(|(i, a)| format::Attribute {
                    variable: true,
                    code: a.code.clone(),
                    datatype: a.datatype.clone(),
                    required: a.required,
                    datatype_description: String::new(),
                    order: i as u32 + 1,
                    description: a.name.clone(),
                    values: a.values.iter().map(|(k, n)| format::AttributeValue { key: k.clone(), name: n.clone() }).collect(),
                })
                .collect();
            reply(
                f,
                StatusCode::OK,
                format::service_definition(f, &format::ServiceDefinition { service_code: c.code, attributes: attrs }),
            )
        }
        Ok(_) => err(f, 404, format!("未找到 service_code {code}")),
        Err(e) => app_err(f, e),
    }
}

/// Whether the county allows posting without an api_key.
pub async fn anonymous_allowed(st: &AppState) -> bool {
    sqlx::query("SELECT value FROM settings WHERE key = 'open311_anonymous'")
        .fetch_optional(st.db.read())
        .await
        .ok()
        .flatten()
        .and_then(|r| col::<String>(&r, "value").ok())
        .is_some_and(|v| v == "1" || v == "true")
}

async fn post_request(
    State(st): State<AppState>,
    Path(file): Path<String>,
    Caller(_, ip): Caller,
    body: axum::body::Body,
) -> Response {
    let Some((f, "requests")) = Format::from_path_suffix(&file) else { return err(Format::Xml, 404, "未知的资源") };
    let body = match crate::web::read_body(body, POST_LIMIT).await {
        Ok(b) => b,
        Err(e) => return refused(f, e),
    };
    let pairs = crate::auth::middleware::form_pairs(&body);
    let raw: HashMap<String, String> = pairs.iter().cloned().collect();
    let p = params(raw);
    if let Err(m) = check_jurisdiction(&st, &p).await {
        return err(f, 404, m);
    }
    let principal = match p.get("api_key") {
        Some(k) => match crate::auth::cache::resolve(&st, k, &ip).await {
            Ok(Some(pr)) => Some(pr),
            Ok(None) => return err(f, 403, "api_key 无效"),
            Err(e) => return app_err(f, e),
        },
        None if anonymous_allowed(&st).await => None,
        None => return err(f, 403, "需要 api_key"),
    };
    let Some(code) = p.get("service_code") else { return err(f, 400, "service_code 为必填") };
    let num = |k: &str| -> Result<Option<f64>, String> {
        match p.get(k) {
            None => Ok(None),
            Some(v) => v.trim().parse::<f64>().map(Some).map_err(|_| format!("{k} 应为数字")),
        }
    };
    let (lat, lng) = match (num("lat"), num("long")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(m), _) | (_, Err(m)) => return err(f, 400, m),
    };
    if lat.is_none() && !p.contains_key("address_string") && !p.contains_key("address_id") {
        return err(f, 400, "需要提供 lat/long、address_string 或 address_id 之一");
    }
    let attrs = match categories::by_code(&st, code).await {
        Ok(cat) => answers(cat.as_ref(), &pairs),
        Err(e) => return app_err(f, e),
    };
    let name = [p.get("last_name"), p.get("first_name")].into_iter().flatten().cloned().collect::<Vec<_>>().join("");
    let input = CreateInput {
        category: code.clone(),
        description: p.get("description").cloned().unwrap_or_default(),
        lng,
        lat,
        grid: p.get("address_id").cloned(),
        address: p.get("address_string").cloned().unwrap_or_default(),
        channel: Some("open311".into()),
        reporter_name: (!name.is_empty()).then_some(name),
        reporter_phone: p.get("phone").cloned(),
        attrs,
        ..Default::default()
    };
    let who = match &principal {
        Some(pr) => Reporter::User(pr),
        None => Reporter::Public { channel: "open311", ip: &ip },
    };
    match store::create(&st, who, &input, Vec::new()).await {
        Ok(c) => {
            let created = format::Created {
                service_request_id: Some(c.number),
                token: None,
                service_notice: String::new(),
                account_id: String::new(),
            };
            reply(f, StatusCode::CREATED, format::created(f, &[created]))
        }
        Err(e) => app_err(f, e),
    }
}

/// A request's body: a form of a few fields (media are links, not uploads).
pub const POST_LIMIT: usize = 1 << 20;

/// The answers to the service's own attributes (`attribute[code]=…`, a multi-valued one as
/// `attribute[code][]=…` repeated); any other attribute is ignored, as GeoReport allows.
fn answers(cat: Option<&Category>, pairs: &[(String, String)]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for a in cat.map(|c| c.attrs.as_slice()).unwrap_or_default() {
        let (one, many) = (format!("attribute[{}]", a.code), format!("attribute[{}][]", a.code));
        let given: Vec<&str> =
            pairs.iter().filter(|(k, _)| *k == one || *k == many).map(|(_, v)| v.trim()).filter(|v| !v.is_empty()).collect();
        let v = match (a.datatype.as_str(), given.first()) {
            ("multivaluelist", Some(_)) => serde_json::json!(given),
            (_, Some(x)) => serde_json::Value::String(x.to_string()),
            _ => continue,
        };
        out.insert(a.code.clone(), v);
    }
    serde_json::Value::Object(out)
}

const REQ_COLS: &str = "c.number, c.status, c.description, c.grid_code, c.lng, c.lat, c.created_at, c.updated_at, c.resolve_due, \
     cat.code AS cat_code, cat.name AS cat_name, u.name AS unit_name";

/// Statuses whose text the public does not see: not yet vetted (待受理), or turned away (不予受理,
/// 作废) — the resident site's public list leaves them out for the same reason.
const UNVETTED: &str = "('submitted','rejected','voided')";

fn request_row(r: &crate::db::Row) -> Result<format::Request, AppError> {
    let status = Status::parse(&col::<String>(r, "status")?).unwrap_or(Status::Submitted);
    let shown = !matches!(status, Status::Submitted | Status::Rejected | Status::Voided);
    let mut req = request_fields(r, status)?;
    if !shown {
        // Looked up by its id (a poster following its own request): the status only.
        (req.description, req.address, req.lat, req.long) = (String::new(), String::new(), None, None);
    }
    Ok(req)
}

/// A resident's text as the public sees it: numbers of 7 digits or more (phone numbers,
/// 身份证号, a house number with its room) are starred out, however they are written —
/// full-width digits, or digits grouped by spaces or dashes (138 1234 5678, 138-1234-5678).
fn masked(text: &str) -> String {
    // Read with full-width digits as digits; written back as typed where nothing is starred.
    let typed: Vec<char> = text.chars().collect();
    let chars: Vec<char> = crate::registers::half_width(text).chars().collect();
    let digit = |i: usize| chars.get(i).is_some_and(char::is_ascii_digit);
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if !digit(i) {
            out.push(typed[i]);
            i += 1;
            continue;
        }
        // The run: digits, and up to three separators between digit groups (138 - 1234 - 5678,
        // 138.1234.5678, 138/1234/5678).
        let sep = |c: char| matches!(c, ' ' | '-' | '.' | '/' | '\u{2013}' | '\u{2014}' | '\u{00b7}');
        let (mut j, mut digits) = (i, 0);
        while j < chars.len() {
            if digit(j) {
                digits += 1;
                j += 1;
                continue;
            }
            let gap = chars[j..].iter().take(4).take_while(|c| sep(**c)).count();
            if (1..=3).contains(&gap) && digit(j + gap) {
                j += gap;
            } else {
                break;
            }
        }
        // An ID number's check character goes with it.
        if digits >= 7 && chars.get(j).is_some_and(|c| matches!(c, 'X' | 'x')) {
            j += 1;
        }
        for k in i..j {
            let c = chars[k];
            out.push(if digits >= 7 && (c.is_ascii_digit() || c == 'X' || c == 'x') { '*' } else { typed[k] });
        }
        i = j;
    }
    out
}

/// A coordinate to about 100 m: the place of a problem, not of a door.
fn coarse(x: Option<f64>) -> Option<f64> {
    x.map(|v| (v * 1000.0).round() / 1000.0)
}

/// The public's view of a request: what the resident site's 办理公开 shows, plus the text with
/// numbers starred, and the place to about 100 m. The address a resident typed (a room
/// number, a home) is not published.
fn request_fields(r: &crate::db::Row, status: Status) -> Result<format::Request, AppError> {
    Ok(format::Request {
        service_request_id: col(r, "number")?,
        status: status.open311().into(),
        status_notes: status.label().into(),
        service_name: col(r, "cat_name")?,
        service_code: col(r, "cat_code")?,
        description: masked(&col::<String>(r, "description")?),
        agency_responsible: col::<Option<String>>(r, "unit_name")?.unwrap_or_default(),
        service_notice: String::new(),
        requested_datetime: col(r, "created_at")?,
        updated_datetime: col(r, "updated_at")?,
        expected_datetime: col(r, "resolve_due")?,
        address: String::new(),
        address_id: col(r, "grid_code")?,
        zipcode: String::new(),
        lat: coarse(col(r, "lat")?),
        long: coarse(col(r, "lng")?),
        media_url: String::new(),
    })
}

async fn list_requests(st: &AppState, f: Format, p: &HashMap<String, String>) -> Result<Response, Response> {
    let mut w = Where::new();
    w.raw("c.private = 0");
    if p.values().any(|v| v.chars().any(char::is_control)) {
        return Err(err(f, 400, "参数中含有控制字符"));
    }
    let list =
        |k: &str| p.get(k).map(|v| v.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect::<Vec<_>>());
    for k in ["service_request_id", "service_code"] {
        if list(k).is_some_and(|l| l.len() > 200) {
            return Err(err(f, 400, format!("{k} 一次最多 200 个")));
        }
    }
    if let Some(ids) = list("service_request_id").filter(|l| !l.is_empty()) {
        w.any_of("c.number", &ids);
    }
    if let Some(codes) = list("service_code").filter(|l| !l.is_empty()) {
        w.any_of("cat.code", &codes);
    }
    let date = |k: &str| -> Result<Option<i64>, String> {
        match p.get(k) {
            None => Ok(None),
            Some(v) => format::parse_iso8601(v).map(Some).ok_or_else(|| format!("{k} 应为 ISO 8601 时间")),
        }
    };
    let (start, end) = match (date("start_date"), date("end_date")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(m), _) | (_, Err(m)) => return Err(err(f, 400, m)),
    };
    if p.get("service_request_id").is_none() {
        // Lists show vetted requests only; one looked up by its id shows its status.
        w.raw(&format!("c.status NOT IN {UNVETTED}"));
        // The spec's default window: the last 90 days.
        let end_ms = end.unwrap_or_else(crate::db::now_ms);
        w.raw(&format!("c.created_at >= {}", start.unwrap_or(end_ms - 90 * 86_400_000)));
        w.raw(&format!("c.created_at <= {end_ms}"));
    }
    if let Some(s) = list("status") {
        let open = s.iter().any(|x| x == "open");
        let closed = s.iter().any(|x| x == "closed");
        if s.iter().any(|x| x != "open" && x != "closed") {
            return Err(err(f, 400, "status 应为 open 或 closed"));
        }
        match (open, closed) {
            (true, false) => w.raw("c.status NOT IN ('closed','rejected','voided')"),
            (false, true) => w.raw("c.status IN ('closed','rejected','voided')"),
            _ => &mut w,
        };
    }
    let from = "FROM cases c JOIN categories cat ON cat.id = c.category_id LEFT JOIN units u ON u.id = c.unit_id";
    let page = w.page(&st.db, REQ_COLS, from, "c.id DESC", (1, 1000), request_row).await.map_err(|e| app_err(f, e))?;
    Ok(reply(f, StatusCode::OK, format::requests(f, &page.items)))
}

async fn one_request(State(st): State<AppState>, Path(file): Path<String>) -> Response {
    let Some((f, number)) = Format::from_path_suffix(&file) else { return err(Format::Xml, 404, "格式应为 .xml 或 .json") };
    let mut p = HashMap::new();
    p.insert("service_request_id".to_string(), number.to_string());
    match list_requests(&st, f, &p).await {
        Ok(r) if r.status() == StatusCode::OK => {
            // An empty list means no such (public) request.
            let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&body).to_string();
            if text.contains(number) {
                reply(f, StatusCode::OK, text)
            } else {
                err(f, 404, format!("未找到 service_request_id {number}"))
            }
        }
        Ok(r) | Err(r) => r,
    }
}

async fn token(State(st): State<AppState>, Path(file): Path<String>) -> Response {
    let Some((f, token)) = Format::from_path_suffix(&file) else { return err(Format::Xml, 404, "格式应为 .xml 或 .json") };
    // Requests are created synchronously, so the token is the request id itself.
    match store::load(&st, token).await {
        Ok((c, _)) if !c.private => reply(
            f,
            StatusCode::OK,
            format::tokens(f, &[format::TokenAnswer { token: token.into(), service_request_id: Some(c.number) }]),
        ),
        Ok(_) | Err(_) => err(f, 404, format!("未找到 token {token}")),
    }
}

/// Open311 routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/open311/v2/{file}", get(root).post(post_request))
        .route("/open311/v2/services/{file}", get(definition))
        .route("/open311/v2/requests/{file}", get(one_request))
        .route("/open311/v2/tokens/{file}", get(token))
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_in_public_text_are_starred() {
        assert_eq!(
            super::masked("电话13800138000，身份证52222819900101123X，3栋501室"),
            "电话***********，身份证******************，3栋501室"
        );
        assert_eq!(super::masked("2 单元 1234567"), "2 单元 *******");
        assert_eq!(super::masked("请联系138 1234 5678王先生"), "请联系*** **** ****王先生");
        assert_eq!(super::masked("电话138-1234-5678"), "电话***-****-****");
        assert_eq!(super::masked("电话１３８１２３４５６７８"), "电话***********");
        assert_eq!(super::masked("3 栋 2 单元 501 室"), "3 栋 2 单元 501 室", "short numbers stay");
        assert_eq!(super::masked("138 - 1234 - 5678"), "*** - **** - ****");
        assert_eq!(super::masked("138.1234.5678或138/1234/5678"), "***.****.****或***/****/****");
        assert_eq!(super::coarse(Some(108.47749)), Some(108.477));
    }
}
