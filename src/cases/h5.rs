//! The residents' mobile site under `/m/`: report with photo and location (browser
//! geolocation, a pick on the grid map, or a grid's QR code), get a number, track it with
//! number + phone, rate it, and browse the public progress of non-private cases. Also the
//! grids' QR codes and printable posters.

use askama::Template;
use axum::extract::{Multipart, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get as route_get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::categories::{self, Category};
use super::store::{self, CreateInput, Reporter, Step};
use super::{CaseRow, ROW_COLS, Status, photos};
use crate::app::AppState;
use crate::auth::middleware::{Caller, PRE_COOKIE};
use crate::auth::{Perm, Principal, random_hex};
use crate::db::get;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::ident::Mobile;
use crate::web::{Q, fmt_time, render};

/// Wrong guesses of a case's phone allowed per client address and per case in a window: the
/// phone shown masked to staff (`188****4791`) leaves 10,000 candidates, which an unlimited
/// lookup tries in about a minute.
const GUESSES_PER_ADDRESS: i64 = 30;
const GUESSES_PER_CASE: i64 = 10;
const GUESS_WINDOW_MS: i64 = 60 * 60 * 1000;

/// A case the phone number proves to be the caller's (404 otherwise, whatever was wrong; 429
/// once the address or the case has had too many wrong guesses this hour).
pub async fn owned(st: &AppState, number: &str, phone: &str, ip: &str) -> AppResult<(CaseRow, String)> {
    use crate::auth::throttle;
    let number = number.trim();
    let (by_ip, by_case) = (format!("track:{ip}"), format!("track#{}", number.chars().take(40).collect::<String>()));
    if throttle::blocked(st, &by_ip, GUESSES_PER_ADDRESS, GUESS_WINDOW_MS).await?
        || throttle::blocked(st, &by_case, GUESSES_PER_CASE, GUESS_WINDOW_MS).await?
    {
        return Err(AppError::TooMany("查询失败次数过多，请 1 小时后再试，或拨打热线查询".into()));
    }
    let sql = format!("SELECT {ROW_COLS}, c.reporter_phone_bidx FROM cases c WHERE c.number = $1");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(number).fetch_optional(st.db.read()).await?;
    let phone = Mobile::parse(phone).ok();
    let proven = match (&r, &phone) {
        (Some(r), Some(m)) => {
            let bidx: Option<String> = get(r, "reporter_phone_bidx")?;
            bidx.as_deref() == Some(st.keyring.blind_index("case_phone", m.as_str()).as_str())
        }
        _ => false,
    };
    let (Some(r), Some(m), true) = (r.as_ref(), phone, proven) else {
        throttle::note(st, &by_ip, GUESS_WINDOW_MS).await?;
        if r.is_some() {
            // Only a case that exists gets a counter: unknown numbers would fill the table.
            throttle::note(st, &by_case, GUESS_WINDOW_MS).await?;
        }
        return Err(AppError::NotFound);
    };
    Ok((CaseRow::from_row(r)?, m.as_str().to_string()))
}

/// The token a form of these pages carries: a signed-in visitor's session token (the CSRF
/// check expects it whenever the session cookie comes along), else a fresh double-submit one.
fn form_token(who: Option<&Principal>) -> String {
    who.map(Principal::csrf).filter(|c| !c.is_empty()).map(str::to_string).unwrap_or_else(|| random_hex(16))
}

fn with_pre_cookie(html: axum::response::Html<String>, pre: &str, status: StatusCode) -> Response {
    (status, [(header::SET_COOKIE, format!("{PRE_COOKIE}={pre}; Path=/; HttpOnly; SameSite=Strict"))], html).into_response()
}

#[derive(Template)]
#[template(path = "m/home.html")]
struct Home {
    recent: Vec<PublicCase>,
}

/// A case as the public sees it: no names, no phones, no notes.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PublicCase {
    /// Number.
    pub number: String,
    /// Category name.
    pub category: String,
    /// Status label.
    pub status: &'static str,
    /// Grid name.
    pub grid: String,
    /// Reported at.
    pub created: String,
}

async fn public_cases(st: &AppState, limit: i64, offset: i64) -> AppResult<Vec<PublicCase>> {
    let rows = sqlx::query(
        "SELECT c.number, c.status, c.created_at, cat.name AS cat, n.name AS grid FROM cases c JOIN categories cat ON cat.id = c.category_id \
         LEFT JOIN nodes n ON n.code = c.grid_code WHERE c.private = 0 AND c.status NOT IN ('submitted','rejected','voided') ORDER BY c.id DESC LIMIT $1 OFFSET $2",
    )
    .bind(limit)
    .bind(offset)
    .fetch_all(st.db.read())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PublicCase {
                number: get(r, "number")?,
                category: get(r, "cat")?,
                status: Status::parse(&get::<String>(r, "status")?).map(|s| s.label()).unwrap_or(""),
                grid: get::<Option<String>>(r, "grid")?.unwrap_or_default(),
                created: fmt_time(get::<i64>(r, "created_at")?),
            })
        })
        .collect()
}

async fn home(State(st): State<AppState>) -> AppResult<Response> {
    Ok(render(&Home { recent: public_cases(&st, 10, 0).await? })?.into_response())
}

#[derive(Template)]
#[template(path = "m/report.html")]
struct ReportPage {
    csrf: String,
    categories: Vec<Category>,
    grid: String,
    grid_name: String,
    form: ReportForm,
    errors: FieldErrors,
}

#[derive(Deserialize, Default, Clone)]
struct ReportForm {
    #[serde(default)]
    category: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    lng: String,
    #[serde(default)]
    lat: String,
    #[serde(default)]
    crs: String,
    #[serde(default)]
    grid: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    reporter_name: String,
    #[serde(default)]
    reporter_phone: String,
    #[serde(default)]
    private: String,
    /// The form's one-time value (see [`super::submissions`]).
    #[serde(default)]
    once: String,
    /// Answers to the categories' questions.
    #[serde(skip)]
    attrs: Answers,
}

/// Answers to the categories' questions as a form sends them: `attr.<category>.<question>` →
/// values (a multiple-choice question sends several). The H5 form and the staff form ask them.
#[derive(Clone, Default)]
pub(super) struct Answers(std::collections::HashMap<String, Vec<String>>);

impl Answers {
    /// Takes the form field `name` if it is an answer (`attr.…`); false otherwise.
    pub(super) fn take(&mut self, name: &str, value: String) -> bool {
        let Some(key) = name.strip_prefix("attr.") else { return false };
        self.0.entry(key.to_string()).or_default().push(value);
        true
    }

    /// The answer given to question `code` of category `cat` (the first, for a list).
    pub(super) fn first(&self, cat: &str, code: &str) -> &str {
        self.0.get(&format!("{cat}.{code}")).and_then(|v| v.first()).map(String::as_str).unwrap_or_default()
    }

    /// Whether `value` was among the answers to question `code` of category `cat`.
    pub(super) fn picked(&self, cat: &str, code: &str, value: &str) -> bool {
        self.0.get(&format!("{cat}.{code}")).is_some_and(|v| v.iter().any(|x| x == value))
    }

    /// Category `chosen`'s answers, as the case keeps them (another category's are left out).
    pub(super) fn of(&self, cats: &[Category], chosen: &str) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for a in cats.iter().filter(|c| c.code == chosen).flat_map(|c| &c.attrs) {
            let given: Vec<String> = self
                .0
                .get(&format!("{chosen}.{}", a.code))
                .map(|v| v.iter().map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
                .unwrap_or_default();
            let v = match (a.datatype.as_str(), given.first()) {
                ("multivaluelist", _) if !given.is_empty() => serde_json::json!(given),
                (_, Some(x)) => serde_json::Value::String(x.clone()),
                _ => continue,
            };
            out.insert(a.code.clone(), v);
        }
        serde_json::Value::Object(out)
    }
}

impl ReportPage {
    /// The message of an error on question `code`, if any.
    fn attr_error(&self, code: &str) -> Option<&str> {
        self.errors.get(&format!("attrs.{code}"))
    }
}

async fn report_page(st: &AppState, who: Option<&Principal>, mut form: ReportForm, errors: FieldErrors) -> AppResult<Response> {
    // Kept when the form comes back refused: sent again twice, it still makes one case.
    if form.once.is_empty() {
        form.once = super::submissions::new_form_key();
    }
    let grid_name = match form.grid.trim() {
        "" => String::new(),
        g => crate::tree::store::find_by_code(&st.db, g).await?.map(|n| n.name).unwrap_or_default(),
    };
    let pre = form_token(who);
    let status = if errors.0.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = ReportPage {
        csrf: pre.clone(),
        categories: categories::active(st).await?,
        grid: form.grid.clone(),
        grid_name,
        form,
        errors,
    };
    Ok(with_pre_cookie(render(&page)?, &pre, status))
}

#[derive(Deserialize, Default)]
struct GridQ {
    grid: Option<String>,
}

async fn report_get(State(st): State<AppState>, Caller(who, _): Caller, Q(q): Q<GridQ>) -> AppResult<Response> {
    report_page(&st, who.as_ref(), ReportForm { grid: q.grid.unwrap_or_default(), ..Default::default() }, FieldErrors::default())
        .await
}

fn num(s: &str) -> Option<f64> {
    s.trim().parse().ok()
}

async fn report_post(State(st): State<AppState>, Caller(who, ip): Caller, mut mp: Multipart) -> AppResult<Response> {
    let mut f = ReportForm::default();
    let mut pics = Vec::new();
    let (mut bad_photo, mut bad_text) = (None, None);
    while let Some(field) = mp.next_field().await.map_err(|_| AppError::BadRequest("表单内容读取失败".into()))? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "photos" {
            let bytes = field.bytes().await.map_err(|_| AppError::BadRequest("照片读取失败（可能过大）".into()))?;
            if !bytes.is_empty() {
                match photos::check(bytes.to_vec()) {
                    Ok(p) => pics.push(p),
                    Err(m) => bad_photo = Some(m),
                }
            }
            continue;
        }
        let v = field.text().await.unwrap_or_default();
        // Shown again without them.
        let v = if crate::ident::stray_control(&v) {
            bad_text.get_or_insert(name.clone());
            v.chars().filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r')).collect()
        } else {
            v
        };
        match name.as_str() {
            "category" => f.category = v,
            "description" => f.description = v,
            "lng" => f.lng = v,
            "lat" => f.lat = v,
            "crs" => f.crs = v,
            "grid" => f.grid = v,
            "address" => f.address = v,
            "reporter_name" => f.reporter_name = v,
            "reporter_phone" => f.reporter_phone = v,
            "private" => f.private = v,
            "once" => f.once = v,
            other => {
                f.attrs.take(other, v);
            }
        }
    }
    let refused = match (bad_text, bad_photo) {
        (Some(field), _) => Some((field, crate::ident::STRAY_CONTROL.to_string())),
        (None, Some(m)) => Some(("photos".to_string(), m)),
        (None, None) => None,
    };
    if let Some((field, message)) = refused {
        return report_page(&st, who.as_ref(), f, FieldErrors(vec![crate::error::FieldError { field, message }])).await;
    }
    let input = CreateInput {
        category: f.category.clone(),
        description: f.description.clone(),
        lng: num(&f.lng),
        lat: num(&f.lat),
        crs: Some(if f.crs.is_empty() { "wgs84".into() } else { f.crs.clone() }),
        grid: Some(f.grid.clone()),
        address: f.address.clone(),
        channel: Some("resident_h5".into()),
        reporter_name: Some(f.reporter_name.clone()),
        reporter_phone: Some(f.reporter_phone.clone()),
        private: !f.private.is_empty(),
        attrs: f.attrs.of(&categories::active(&st).await?, &f.category),
        once: super::submissions::of_form(&f.once),
        ..Default::default()
    };
    // A signed-in resident reports as themselves: the case is then among their own (我的报事).
    let reporter = match &who {
        Some(p) if p.role == crate::auth::Role::Resident => Reporter::User(p),
        _ => Reporter::Public { channel: "resident_h5", ip: &ip },
    };
    match store::create(&st, reporter, &input, pics).await {
        Ok(c) => Ok(crate::web::see_other(&format!("/m/done?number={}", c.number)).into_response()),
        Err(AppError::Validation(v)) => report_page(&st, who.as_ref(), f, FieldErrors(v)).await,
        Err(AppError::TooMany(m)) => {
            // The form as it was typed, with why: it can be sent again later.
            let errors = FieldErrors(vec![crate::error::FieldError { field: String::new(), message: m }]);
            let mut r = report_page(&st, who.as_ref(), f, errors).await?;
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            Ok(r)
        }
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "m/done.html")]
struct Done {
    number: String,
}

#[derive(Deserialize, Default)]
struct NumberQ {
    number: Option<String>,
    phone: Option<String>,
}

async fn done(Q(q): Q<NumberQ>) -> AppResult<Response> {
    Ok(render(&Done { number: q.number.unwrap_or_default() })?.into_response())
}

#[derive(Template)]
#[template(path = "m/track.html")]
struct Track {
    csrf: String,
    number: String,
    phone: String,
    found: Option<TrackView>,
    error: String,
    /// Fields named: the lookup's (number, phone) and the rating's (satisfaction, comment).
    errors: FieldErrors,
    /// The rating's comment as typed, when the rating comes back.
    comment: String,
}

struct TrackView {
    category: String,
    status: &'static str,
    can_rate: bool,
    satisfaction: String,
    steps: Vec<Step>,
}

/// What a track page shows besides the lookup: a refused form's fields.
#[derive(Default)]
struct Refused {
    errors: FieldErrors,
    comment: String,
    status: Option<StatusCode>,
    /// A refusal of the whole form (shown at the top).
    message: String,
}

/// The lookup page; a link may carry the number. The phone goes in a POST: in a URL it would
/// stay in the browser's history and in proxies' logs.
async fn track(State(st): State<AppState>, Caller(who, ip): Caller, Q(q): Q<NumberQ>) -> AppResult<Response> {
    let (number, phone) = (q.number.unwrap_or_default(), q.phone.unwrap_or_default());
    track_page(&st, who.as_ref(), &ip, number, phone, Refused::default()).await
}

async fn track_post(State(st): State<AppState>, Caller(who, ip): Caller, Form(q): Form<NumberQ>) -> AppResult<Response> {
    let (number, phone) = (q.number.unwrap_or_default(), q.phone.unwrap_or_default());
    let mut errors = FieldErrors::default();
    if number.trim().is_empty() {
        errors.add("number", "请填写事项编号");
    }
    if phone.trim().is_empty() {
        errors.add("phone", "请填写报事时留的手机号");
    }
    if !errors.0.is_empty() {
        // Nothing looked up: the form again, the missing fields named.
        let refused = Refused { errors, status: Some(StatusCode::UNPROCESSABLE_ENTITY), ..Default::default() };
        return track_page(&st, who.as_ref(), &ip, number, phone, refused).await;
    }
    track_page(&st, who.as_ref(), &ip, number, phone, Refused::default()).await
}

async fn track_page(
    st: &AppState,
    who: Option<&Principal>,
    ip: &str,
    number: String,
    phone: String,
    refused: Refused,
) -> AppResult<Response> {
    let mut error = refused.message;
    let mut found: Option<TrackView> = None;
    let mut status = refused.status.unwrap_or(StatusCode::OK);
    // A lookup sent without its number or phone is not tried (nor counted as a wrong guess).
    let incomplete = refused.errors.get("number").is_some() || refused.errors.get("phone").is_some();
    if !number.is_empty() && !incomplete {
        match owned(st, &number, &phone, ip).await {
            Ok((c, _)) => {
                let v = store::view_by_id(st, c.id).await?;
                found = Some(TrackView {
                    category: v.category_name,
                    status: v.status_label,
                    can_rate: matches!(c.status, Status::Finished | Status::FollowedUp | Status::Closed)
                        && v.satisfaction.is_none(),
                    satisfaction: v.satisfaction_label.to_string(),
                    steps: v.history.into_iter().filter(|s| s.public).collect(),
                });
            }
            Err(AppError::NotFound) => error = "没有找到：请核对编号和报事时留的手机号".into(),
            Err(AppError::TooMany(m)) => {
                error = m;
                status = StatusCode::TOO_MANY_REQUESTS;
            }
            Err(e) => return Err(e),
        }
    }
    if !found.as_ref().is_some_and(|v| v.can_rate) {
        // No rating form to mark: its refusal goes at the top.
        for f in ["satisfaction", "comment"] {
            if let Some(m) = refused.errors.get(f) {
                error = if error.is_empty() { m.to_string() } else { format!("{error}；{m}") };
            }
        }
    }
    let pre = form_token(who);
    let page = Track { csrf: pre.clone(), number, phone, found, error, errors: refused.errors, comment: refused.comment };
    Ok(with_pre_cookie(render(&page)?, &pre, status))
}

#[derive(Deserialize, Default)]
struct RateForm {
    #[serde(default)]
    number: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    satisfaction: String,
    #[serde(default)]
    comment: String,
}

async fn rate(State(st): State<AppState>, Caller(who, ip): Caller, Form(f): Form<RateForm>) -> AppResult<Response> {
    let refused = match super::rating::rate_public(&st, &f.number, &f.phone, &f.satisfaction, &f.comment, &ip).await {
        Ok(()) => Refused::default(),
        // The rating form again, what is wrong named and the comment kept.
        Err(AppError::Validation(v)) => Refused {
            errors: FieldErrors(v),
            comment: f.comment,
            status: Some(StatusCode::UNPROCESSABLE_ENTITY),
            ..Default::default()
        },
        // Rated already, or not yet finished: the case as it is, and why.
        Err(AppError::Conflict(m)) => Refused { message: m, status: Some(StatusCode::CONFLICT), ..Default::default() },
        Err(e) => return Err(e),
    };
    // The case as it is now, answered in place: a redirect would put the phone in a URL.
    track_page(&st, who.as_ref(), &ip, f.number, f.phone, refused).await
}

#[derive(Template)]
#[template(path = "m/public.html")]
struct PublicList {
    items: Vec<PublicCase>,
    page: i64,
    /// A next page may hold more.
    more: bool,
}

/// Cases per page of the public list, and pages at most (the newest 2,000: the public list
/// is a window on recent work, not an archive to walk).
const PUBLIC_PER_PAGE: i64 = 20;
const PUBLIC_PAGES: i64 = 100;

#[derive(serde::Deserialize, Default)]
struct PublicQ {
    page: Option<i64>,
}

async fn public_list(State(st): State<AppState>, crate::web::Q(q): crate::web::Q<PublicQ>) -> AppResult<Response> {
    let page = q.page.unwrap_or(1).clamp(1, PUBLIC_PAGES);
    let mut items = public_cases(&st, PUBLIC_PER_PAGE + 1, (page - 1) * PUBLIC_PER_PAGE).await?;
    let more = items.len() as i64 > PUBLIC_PER_PAGE && page < PUBLIC_PAGES;
    items.truncate(PUBLIC_PER_PAGE as usize);
    Ok(render(&PublicList { items, page, more })?.into_response())
}

#[derive(Template)]
#[template(path = "m/public_case.html")]
struct PublicOne {
    case: PublicCase,
    steps: Vec<Step>,
}

async fn public_one(State(st): State<AppState>, Path(number): Path<String>) -> AppResult<Response> {
    let (c, _) = store::load(&st, &number).await?;
    if c.private || matches!(c.status, Status::Submitted | Status::Rejected | Status::Voided) {
        return Err(AppError::NotFound);
    }
    let v = store::view_by_id(&st, c.id).await?;
    let grid = crate::tree::store::find_by_code(&st.db, &v.grid_code).await?.map(|n| n.name).unwrap_or_default();
    let case = PublicCase { number: v.number, category: v.category_name, status: v.status_label, grid, created: v.created_at };
    // The public sees what happened and when, never who or the notes.
    let steps =
        v.history.into_iter().filter(|s| s.public).map(|s| Step { note: String::new(), actor: String::new(), ..s }).collect();
    Ok(render(&PublicOne { case, steps })?.into_response())
}

#[derive(Template)]
#[template(path = "m/pick.html")]
struct Pick {
    /// Where the choice stands: (code, name) from the top, empty at the start.
    trail: Vec<(String, String)>,
    /// The places to choose from next: (link, name).
    choices: Vec<(String, String)>,
    /// A community's grids drawn, to tap (empty above the community level).
    svg: String,
}

#[derive(Deserialize)]
struct PickQuery {
    #[serde(default)]
    node: String,
}

/// Choosing where a report is, a level at a time (街道 → 社区 → 网格): a list a phone can tap,
/// and a community's grids on a map. The whole county's grids at once were 156 unlabelled
/// cells on a phone's screen (and 60,000 in a megacity).
async fn pick(State(st): State<AppState>, crate::web::Q(q): crate::web::Q<PickQuery>) -> AppResult<Response> {
    use crate::tree::Kind;
    let node = match q.node.trim() {
        "" => None,
        code => Some(crate::tree::store::find_by_code(&st.db, code).await?.filter(|n| !n.retired).ok_or(AppError::NotFound)?),
    };
    // The children shown: a county's streets, a street's communities, a community's grids.
    let (parent_path, kind) = match &node {
        None => (None, Kind::Street),
        Some(n) if n.kind == Kind::Street => (Some(n.path.clone()), Kind::Community),
        Some(n) if n.kind == Kind::Community => (Some(n.path.clone()), Kind::Grid),
        Some(_) => return Err(AppError::NotFound),
    };
    let like = format!("{}%", crate::db::like_escape(parent_path.as_deref().unwrap_or("/")));
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT code, name FROM nodes WHERE kind = $1 AND retired_at IS NULL AND path LIKE $2 ESCAPE '\\' ORDER BY code",
    )
    .bind(kind.as_str())
    .bind(like)
    .fetch_all(st.db.read())
    .await?;
    let link = |code: &str| match kind {
        Kind::Grid => format!("/m/report?grid={code}"),
        _ => format!("/m/pick?node={code}"),
    };
    let choices = rows.iter().map(|(code, name)| (link(code), name.clone())).collect();
    let mut trail = Vec::new();
    if let Some(n) = &node {
        for code in n.path.trim_matches('/').split('/').skip(1) {
            if let Some(a) = crate::tree::store::find_by_code(&st.db, code).await? {
                trail.push((a.code, a.name));
            }
        }
    }
    let svg = match (&node, kind) {
        (Some(n), Kind::Grid) => {
            let grids = crate::tree::geometry::grid_polygons(&st.db, &n.path).await?;
            let hrefs: Vec<String> = grids.iter().map(|g| link(&g.code)).collect();
            let items: Vec<crate::geo::MapItem> = grids
                .iter()
                .enumerate()
                .map(|(i, g)| crate::geo::MapItem {
                    polygon: &g.polygon,
                    label: &g.name,
                    href: &hrefs[i],
                    fill: crate::geo::palette(i),
                    title: &g.name,
                })
                .collect();
            if items.is_empty() { String::new() } else { crate::geo::render_svg_with_tiles(&items, 800, st.cfg.tile_url()) }
        }
        _ => String::new(),
    };
    Ok(render(&Pick { trail, choices, svg })?.into_response())
}

/// Routes of the resident site (public: no login).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/m", route_get(home))
        .route("/m/report", route_get(report_get).post(report_post))
        .route("/m/done", route_get(done))
        .route("/m/track", route_get(track).post(track_post))
        .route("/m/rate", post(rate))
        .route("/m/public", route_get(public_list))
        .route("/m/public/{number}", route_get(public_one))
        .route("/m/pick", route_get(pick))
}

/// Where residents reach this site: the configured public address, else the request's host
/// (a host name and port only: a printed QR code must not carry whatever a client sent).
fn base_url(st: &AppState, headers: &axum::http::HeaderMap) -> String {
    if let Some(u) = st.cfg.public_url() {
        return u.to_string();
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let host = host.filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)));
    format!("http://{}", host.unwrap_or("127.0.0.1:8080"))
}

async fn grid_for_qr(st: &AppState, p: &Principal, code: &str) -> AppResult<crate::tree::Node> {
    let n = crate::tree::store::get_node(st, p, code).await?;
    p.check(Perm::TreeRead, &n.path)?;
    if n.kind != crate::tree::Kind::Grid {
        return Err(AppError::NotFound);
    }
    Ok(n)
}

async fn qr(
    State(st): State<AppState>,
    p: Principal,
    Path((code, fmt)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> AppResult<Response> {
    let n = grid_for_qr(&st, &p, &code).await?;
    let url = format!("{}/m/report?grid={}", base_url(&st, &headers), n.code);
    match fmt.as_str() {
        "qr.svg" => Ok(([(header::CONTENT_TYPE, "image/svg+xml")], crate::web::qr::svg(&url, 8).map_err(AppError::BadRequest)?)
            .into_response()),
        "qr.png" => {
            Ok(([(header::CONTENT_TYPE, "image/png")], crate::web::qr::png(&url, 8).map_err(AppError::BadRequest)?)
                .into_response())
        }
        "poster" => {
            let svg = crate::web::qr::svg(&url, 10).map_err(AppError::BadRequest)?;
            let community = n.parent_code.clone().unwrap_or_default();
            let cname = crate::tree::store::find_by_code(&st.db, &community).await?.map(|c| c.name).unwrap_or_default();
            Ok(render(&Poster { grid: n.name, code: n.code, community: cname, svg, url })?.into_response())
        }
        _ => Err(AppError::NotFound),
    }
}

#[derive(Template)]
#[template(path = "m/poster.html")]
struct Poster {
    grid: String,
    code: String,
    community: String,
    svg: String,
    url: String,
}

/// Staff routes for the grids' QR codes and posters.
pub fn qr_routes() -> Router<AppState> {
    Router::new().route("/grids/{code}/{fmt}", route_get(qr))
}
