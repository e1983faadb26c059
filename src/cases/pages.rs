//! Staff pages of the case loop: the role's inbox with filters and bulk actions and live
//! updates, the case page with timeline and only the allowed actions, staff entry, the rates
//! and ranking page, and admin pages for categories, calendar, units and webhooks.

use askama::Template;
use axum::Router;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::categories::{self, Category};
use super::flow::{self, ActionInput};
use super::machine::{Action, CHANNELS, SATISFACTION};
use super::rates::{self, RateRow, RatesQuery};
use super::store::{self, CaseFilter, CaseView, CreateInput, Reporter};
use super::{Assignee, Status, notify, photos};
use crate::app::AppState;
use crate::auth::{Principal, Role};
use crate::db::list::Page;
use crate::error::{AppError, AppResult, FieldError, FieldErrors};
use crate::web::{FormBody, Layout, Q, render};

/// A tab of the inbox: label, query string.
type Tab = (&'static str, String);

fn tabs(p: &Principal) -> Vec<Tab> {
    match p.role {
        Role::UnitContact | Role::GridWorker | Role::PartyMember => vec![
            ("待接单", "status=dispatched&mine=true".into()),
            ("处置中", "status=accepted&mine=true".into()),
            ("逾期", "overdue=true&mine=true".into()),
            ("全部", "mine=true".into()),
        ],
        Role::Resident => vec![("我的报事", String::new())],
        Role::StreetAdmin | Role::CountyAdmin => vec![
            ("上报待办", format!("level={}&status=registered", if p.role == Role::StreetAdmin { 1 } else { 2 })),
            ("待受理", "status=submitted".into()),
            ("待派单", "status=registered".into()),
            ("逾期", "overdue=true".into()),
            ("全部", String::new()),
        ],
        Role::CommunityStaff => vec![
            ("待受理", "status=submitted".into()),
            ("待派单", "status=registered".into()),
            ("待回访", "status=finished".into()),
            ("待结案", "status=followed_up".into()),
            ("逾期", "overdue=true".into()),
            ("全部", String::new()),
        ],
    }
}

#[derive(Template)]
#[template(path = "cases/inbox.html")]
struct Inbox {
    layout: Layout,
    tabs: Vec<Tab>,
    current: String,
    page: Page<CaseView>,
    filter: CaseFilter,
    categories: Vec<Category>,
    statuses: Vec<(&'static str, &'static str)>,
    channels: Vec<(&'static str, &'static str)>,
    staff: bool,
    /// Where the role registers or reports a case, if anywhere: (link, label).
    entry: Option<(&'static str, &'static str)>,
    notice: String,
    grids: GridNames,
}

/// Whether the role takes cases in: staff (the hotline's hand-overs, what a grid worker finds)
/// and residents (their own reports). A unit takes the cases sent to it and a Party member
/// claims wishes; neither registers one.
fn registers_cases(role: Role) -> bool {
    !matches!(role, Role::UnitContact | Role::PartyMember)
}

/// The console's way to a new case.
fn entry(role: Role) -> Option<(&'static str, &'static str)> {
    match role {
        Role::Resident => Some(("/m/report", "我要报事")),
        r if registers_cases(r) => Some(("/cases/new", "登记事项")),
        _ => None,
    }
}

/// Just the table, for live refresh of the inbox.
#[derive(Template)]
#[template(path = "cases/inbox_table.html")]
struct InboxTable {
    page: Page<CaseView>,
    current: String,
    grids: GridNames,
}

/// The names of the grids a page of cases is in (a code alone told a worker nothing).
#[derive(Default)]
struct GridNames(std::collections::HashMap<String, String>);

impl GridNames {
    /// One read for the page's grids.
    async fn of(st: &AppState, page: &Page<CaseView>) -> AppResult<GridNames> {
        let mut codes: Vec<&str> = page.items.iter().map(|c| c.grid_code.as_str()).filter(|c| !c.is_empty()).collect();
        codes.sort_unstable();
        codes.dedup();
        if codes.is_empty() {
            return Ok(GridNames::default());
        }
        let marks: Vec<String> = (1..=codes.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT code, name FROM nodes WHERE code IN ({})", marks.join(","));
        let rows = codes
            .iter()
            .fold(sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql)), |q, c| q.bind(c.to_string()))
            .fetch_all(st.db.read())
            .await?;
        Ok(GridNames(rows.into_iter().collect()))
    }

    /// A grid's name, or its code when unknown.
    fn name<'a>(&'a self, code: &'a str) -> &'a str {
        self.0.get(code).map(String::as_str).unwrap_or(code)
    }
}

#[derive(Deserialize, Default)]
struct InboxQ {
    #[serde(default)]
    fragment: bool,
    notice: Option<String>,
    ns: Option<String>,
}

async fn inbox(
    State(st): State<AppState>,
    p: Principal,
    Q(f): Q<CaseFilter>,
    Q(x): Q<InboxQ>,
    uri: axum::http::Uri,
) -> AppResult<Response> {
    let current = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !["fragment=", "notice=", "ns=", "page="].iter().any(|k| kv.starts_with(k)))
        .collect::<Vec<_>>()
        .join("&");
    let page = store::list(&st, &p, &f).await?;
    let grids = GridNames::of(&st, &page).await?;
    if x.fragment {
        return Ok(render(&InboxTable { page, current, grids })?.into_response());
    }
    let page = Inbox {
        layout: Layout::new(&p, "事项办理", "/cases"),
        tabs: tabs(&p),
        current,
        page,
        filter: f,
        categories: categories::all(&st).await?,
        statuses: Status::ALL.iter().map(|s| (s.as_str(), s.label())).collect(),
        channels: CHANNELS.to_vec(),
        staff: super::staff_level(p.role).is_some(),
        entry: entry(p.role),
        notice: crate::web::checked_notice(&st.keyring, x.notice.as_deref(), x.ns.as_deref()),
        grids,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Template)]
#[template(path = "cases/case.html")]
struct CasePage {
    layout: Layout,
    case: CaseView,
    actions: Vec<(&'static str, &'static str)>,
    assignees: Vec<Assignee>,
    satisfaction: Vec<(&'static str, &'static str)>,
    map: String,
    errors: FieldErrors,
    /// A Party member: their finish records the hours of their service.
    member: bool,
    /// The answers to the category's questions (asked on the H5 form).
    answers: Vec<(String, String)>,
    /// The case's grid by name (the list names it so; the page showed its code).
    grid_name: String,
    /// The viewer may read the reporter's contact in clear (see [`super::reveal`]).
    can_reveal: bool,
    /// The reporter's contact, just read in clear.
    revealed: Option<super::reveal::Reporter>,
}

/// The actions the viewer may take now (the page shows only these), and whether they handle
/// the case as staff.
async fn allowed(st: &AppState, p: &Principal, number: &str) -> AppResult<(Vec<Action>, bool)> {
    let (c, cat) = store::load_visible(st, p, number).await?;
    let actions = Action::ALL
        .into_iter()
        .filter(|a| *a != Action::Rate && a.next(c.status).is_some())
        .filter(|a| super::flow::may(*a, &c, p, cat.claimable))
        .filter(|a| !matches!(a, Action::ApproveExtension | Action::RejectExtension) || c.extension_hours.is_some())
        .filter(|a| *a != Action::RequestExtension || c.extension_hours.is_none())
        .filter(|a| *a != Action::Escalate || c.level < 2)
        .collect();
    Ok((actions, c.is_staff(p)))
}

async fn case_page(st: &AppState, p: &Principal, number: &str, errors: FieldErrors) -> AppResult<Response> {
    case_page_with(st, p, number, errors, None).await
}

async fn case_page_with(
    st: &AppState,
    p: &Principal,
    number: &str,
    errors: FieldErrors,
    revealed: Option<super::reveal::Reporter>,
) -> AppResult<Response> {
    // A resident's page names who acted by role or unit, as the API does.
    let case = store::view(st, p, number).await?.for_viewer(p);
    let (allowed, staff) = allowed(st, p, number).await?;
    let actions: Vec<(&str, &str)> = allowed
        .into_iter()
        // No form that can only be refused: the extensions are used up.
        .filter(|a| *a != Action::RequestExtension || case.extension_count < flow::MAX_EXTENSIONS)
        .map(|a| (a.as_str(), a.label()))
        .collect();
    let assignees = if actions.iter().any(|(a, _)| *a == "dispatch" || *a == "reassign") {
        flow::suggestions(st, p, number).await?
    } else {
        Vec::new()
    };
    let map = pin_map(st, &case).await?;
    let status = if errors.0.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let layout = Layout::new(p, &format!("{} · {}", case.number, case.category_name), "/cases");
    let member = p.role == Role::PartyMember;
    let answers =
        categories::by_code(st, &case.category).await?.map(|c| categories::answers(&c, &case.attrs)).unwrap_or_default();
    let grid_name = crate::tree::store::find_by_code(&st.db, &case.grid_code).await?.map(|n| n.name).unwrap_or_default();
    let page = CasePage {
        layout,
        case,
        actions,
        assignees,
        satisfaction: SATISFACTION.to_vec(),
        map,
        errors,
        member,
        answers,
        grid_name,
        can_reveal: super::reveal::may(p, staff),
        revealed,
    };
    Ok((status, render(&page)?).into_response())
}

/// The case's grid with a pin at its point.
async fn pin_map(st: &AppState, c: &CaseView) -> AppResult<String> {
    let Some(poly) = crate::tree::geometry::polygon_of(&st.db, &c.grid_code).await? else { return Ok(String::new()) };
    let mut items = vec![crate::geo::MapItem { polygon: &poly, label: "", href: "", fill: "#fdecea", title: &c.grid_code }];
    let pin = c.lng.zip(c.lat).map(|(x, y)| crate::geo::Polygon::rect(x - 0.00005, y - 0.00005, x + 0.00005, y + 0.00005));
    if let Some(p) = &pin {
        items.push(crate::geo::MapItem { polygon: p, label: "", href: "", fill: "#b71c1c", title: "位置" });
    }
    Ok(crate::geo::render_svg_with_tiles(&items, 360, st.cfg.tile_url()))
}

async fn case_get(State(st): State<AppState>, p: Principal, Path(number): Path<String>) -> AppResult<Response> {
    case_page(&st, &p, &number, FieldErrors::default()).await
}

/// Reads an action form with optional photos.
async fn read_action(mut mp: Multipart) -> AppResult<(ActionInput, Vec<photos::Photo>, Option<String>)> {
    let mut i = ActionInput::default();
    let (mut pics, mut bad) = (Vec::new(), None);
    while let Some(field) = mp.next_field().await.map_err(|_| AppError::BadRequest("表单内容读取失败".into()))? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "photos" {
            let b = field.bytes().await.map_err(|_| AppError::BadRequest("照片读取失败（可能过大）".into()))?;
            if !b.is_empty() {
                match photos::check(b.to_vec()) {
                    Ok(p) => pics.push(p),
                    Err(m) => bad = Some(m),
                }
            }
            continue;
        }
        let v = field.text().await.unwrap_or_default();
        if crate::ident::stray_control(&v) {
            return Err(AppError::field(&name, crate::ident::STRAY_CONTROL));
        }
        match name.as_str() {
            "action" => i.action = v,
            // A version that is not a number is refused below, not taken as none given.
            "version" if !v.trim().is_empty() => i.version = Some(v.trim().parse().unwrap_or(-1)),
            "note" => i.note = v,
            "assignee" => i.assignee = v,
            // Yes, no, or not answered; anything else is refused, not taken as no.
            "contacted" | "solved" => {
                let flag = match v.trim() {
                    "" => None,
                    "true" | "1" | "on" => Some(true),
                    "false" | "0" | "off" => Some(false),
                    _ => {
                        i.unreadable.push(if name == "contacted" { "contacted" } else { "solved" });
                        None
                    }
                };
                if name == "contacted" {
                    i.contacted = flag;
                } else {
                    i.solved = flag;
                }
            }
            "satisfaction" => i.satisfaction = Some(v),
            "hours" => i.hours = v.parse().ok(),
            _ => {}
        }
    }
    Ok((i, pics, bad))
}

async fn case_act(State(st): State<AppState>, p: Principal, Path(number): Path<String>, mp: Multipart) -> AppResult<Response> {
    let (i, pics, bad) = read_action(mp).await?;
    if let Some(m) = bad {
        return case_page(&st, &p, &number, FieldErrors(vec![FieldError { field: "photos".into(), message: m }])).await;
    }
    match flow::act(&st, &p, &number, &i, pics).await {
        Ok(_) => Ok(crate::web::see_other(&format!("/cases/{number}")).into_response()),
        Err(AppError::Validation(v)) => case_page(&st, &p, &number, FieldErrors(v)).await,
        Err(e) => Err(e),
    }
}

/// The reporter's contact in clear on the case page (for the follow-up call), audited.
async fn case_reveal(
    State(st): State<AppState>,
    p: Principal,
    Path(number): Path<String>,
    FormBody(f): FormBody<crate::audit::ReasonForm>,
) -> AppResult<Response> {
    match super::reveal::reporter(&st, &p, &number, &f.reason).await {
        Ok(r) => case_page_with(&st, &p, &number, FieldErrors::default(), Some(r)).await,
        Err(AppError::Validation(v)) => case_page(&st, &p, &number, FieldErrors(v)).await,
        Err(e) => Err(e),
    }
}

#[derive(Deserialize, Default)]
struct BulkForm {
    #[serde(default)]
    numbers: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    back: String,
}

/// Bulk register / dispatch / close from the inbox: each case succeeds or fails alone.
async fn bulk(State(st): State<AppState>, p: Principal, body: axum::body::Bytes) -> AppResult<Response> {
    let pairs: Vec<(String, String)> = crate::auth::middleware::form_pairs(&body);
    let get1 = |k: &str| pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let f = BulkForm {
        numbers: String::new(),
        action: get1("action"),
        assignee: get1("assignee"),
        note: get1("note"),
        back: get1("back"),
    };
    let numbers: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "n")
        .map(|(_, v)| v.clone())
        .chain(f.numbers.split(',').map(str::to_string))
        .filter(|s| !s.trim().is_empty())
        .collect();
    if numbers.is_empty() {
        return Err(AppError::field("n", "请先勾选案件"));
    }
    if numbers.len() > BULK_MAX {
        return Err(AppError::field("n", format!("一次最多批量处理 {BULK_MAX} 件")));
    }
    let (mut ok, mut failed) = (0, Vec::new());
    for n in &numbers {
        let i =
            ActionInput { action: f.action.clone(), assignee: f.assignee.clone(), note: f.note.clone(), ..Default::default() };
        match flow::act(&st, &p, n, &i, Vec::new()).await {
            Ok(_) => ok += 1,
            Err(AppError::Internal(e)) => return Err(AppError::Internal(e)),
            // A number as typed goes into a signed notice only if it reads as one (any text
            // posted as `n` was echoed into the system's own green message).
            Err(e) => failed.push(format!(
                "{}：{}",
                if is_case_number(n) { n.trim() } else { "（无效编号）" },
                match e {
                    AppError::Validation(v) => v.into_iter().map(|x| x.message).collect::<Vec<_>>().join("；"),
                    e => e.to_string(),
                }
            )),
        }
    }
    // The notice travels in the redirect's URL: the first few failures, then how many more.
    let shown: Vec<&str> = failed.iter().take(NOTICE_FAILURES).map(String::as_str).collect();
    let more = failed.len().saturating_sub(NOTICE_FAILURES);
    let listed = if more > 0 { format!("{}；另有 {more} 件", shown.join("；")) } else { shown.join("；") };
    let notice = format!(
        "成功 {ok} 件{}",
        if failed.is_empty() { String::new() } else { format!("，失败 {} 件（{listed}）", failed.len()) }
    );
    let back = if f.back.starts_with("/cases") { f.back } else { "/cases".into() };
    let sep = if back.contains('?') { '&' } else { '?' };
    Ok(crate::web::see_other(&format!("{back}{sep}{}", crate::web::notice_query(&st.keyring, &notice))).into_response())
}

/// Cases one bulk action may take (each is a step of its own).
const BULK_MAX: usize = 500;
/// Failures a bulk action's notice names one by one.
const NOTICE_FAILURES: usize = 10;

#[derive(Template)]
#[template(path = "cases/new.html")]
struct NewCase {
    layout: Layout,
    categories: Vec<Category>,
    channels: Vec<(&'static str, &'static str)>,
    form: NewForm,
    errors: FieldErrors,
}

/// The fields the staff form has a place for (an error on any other is listed at its top).
const NEW_FIELDS: [&str; 8] = ["category", "channel", "grid", "lng", "address", "description", "reporter_name", "reporter_phone"];

impl NewCase {
    /// The message of an error on question `code` of the chosen category, if any.
    fn attr_error(&self, code: &str) -> Option<&str> {
        self.errors.get(&format!("attrs.{code}"))
    }

    /// Errors with no place of their own on the form: shown at its top, so none is silent.
    fn unplaced(&self) -> Vec<&str> {
        let asked = |field: &str| {
            field.strip_prefix("attrs.").is_some_and(|code| {
                self.categories.iter().any(|c| c.code == self.form.category && c.attrs.iter().any(|a| a.code == code))
            })
        };
        let mut beside = std::collections::HashSet::new();
        self.errors
            .0
            .iter()
            // A placed field shows its first message beside it; any further one is listed.
            .filter(|e| !(NEW_FIELDS.contains(&e.field.as_str()) || asked(&e.field)) || !beside.insert(e.field.as_str()))
            .map(|e| e.message.as_str())
            .collect()
    }
}

#[derive(Default, Clone)]
struct NewForm {
    category: String,
    description: String,
    grid: String,
    address: String,
    channel: String,
    reporter_name: String,
    reporter_phone: String,
    /// The form's one-time value (see [`super::submissions`]).
    once: String,
    /// Answers to the categories' questions.
    attrs: super::h5::Answers,
}

impl NewForm {
    fn parse(body: &[u8]) -> NewForm {
        let mut f = NewForm::default();
        for (k, v) in crate::auth::middleware::form_pairs(body) {
            match k.as_str() {
                "category" => f.category = v,
                "description" => f.description = v,
                "grid" => f.grid = v,
                "address" => f.address = v,
                "channel" => f.channel = v,
                "reporter_name" => f.reporter_name = v,
                "reporter_phone" => f.reporter_phone = v,
                "once" => f.once = v,
                other => {
                    f.attrs.take(other, v);
                }
            }
        }
        f
    }
}

async fn new_page(st: &AppState, p: &Principal, mut form: NewForm, errors: FieldErrors) -> AppResult<Response> {
    // Kept when the form comes back refused: sent again twice, it still makes one case.
    if form.once.is_empty() {
        form.once = super::submissions::new_form_key();
    }
    let status = if errors.0.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = NewCase {
        layout: Layout::new(p, "登记事项", "/cases/new"),
        categories: categories::active(st).await?,
        channels: CHANNELS.iter().copied().filter(|(c, _)| p.role != Role::Resident || *c == RESIDENT_CHANNEL).collect(),
        form,
        errors,
    };
    Ok((status, render(&page)?).into_response())
}

/// The one channel of a resident's own report.
const RESIDENT_CHANNEL: &str = "resident_h5";

async fn new_get(State(st): State<AppState>, p: Principal) -> AppResult<Response> {
    if !registers_cases(p.role) {
        return Err(AppError::Forbidden);
    }
    let channel = if p.role == Role::Resident { RESIDENT_CHANNEL } else { "staff" };
    new_page(&st, &p, NewForm { channel: channel.into(), ..Default::default() }, FieldErrors::default()).await
}

async fn new_post(State(st): State<AppState>, p: Principal, body: axum::body::Bytes) -> AppResult<Response> {
    if !registers_cases(p.role) {
        return Err(AppError::Forbidden);
    }
    let f = NewForm::parse(&body);
    let i = CreateInput {
        category: f.category.clone(),
        description: f.description.clone(),
        grid: Some(f.grid.clone()),
        address: f.address.clone(),
        channel: Some(f.channel.clone()),
        reporter_name: Some(f.reporter_name.clone()),
        reporter_phone: Some(f.reporter_phone.clone()),
        attrs: f.attrs.of(&categories::active(&st).await?, &f.category),
        once: super::submissions::of_form(&f.once),
        ..Default::default()
    };
    match store::create(&st, Reporter::User(&p), &i, Vec::new()).await {
        Ok(c) => Ok(crate::web::see_other(&format!("/cases/{}", c.number)).into_response()),
        Err(AppError::Validation(v)) => new_page(&st, &p, f, FieldErrors(v)).await,
        Err(AppError::TooMany(m)) => {
            // A resident over their limit: the form as typed, and why.
            let mut r = new_page(&st, &p, f, FieldErrors(vec![FieldError { field: String::new(), message: m }])).await?;
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            Ok(r)
        }
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "cases/rates.html")]
struct RatesPage {
    layout: Layout,
    rows: Vec<RateRow>,
    q: RatesQuery,
    query: String,
    levels: Vec<(&'static str, &'static str)>,
    rank_among: &'static str,
    weights: (f64, f64, f64),
}

async fn rates_page(State(st): State<AppState>, p: Principal, Q(q): Q<RatesQuery>, uri: axum::http::Uri) -> AppResult<Response> {
    let rows = rates::table(&st, &p, &q).await?;
    let query = uri.query().unwrap_or_default().to_string();
    let (levels, rank_among) = (rates::levels(&p), rates::rank_among(&p, q.level.as_deref().unwrap_or("community")));
    let layout = Layout::new(&p, "办理情况与排名", "/rates");
    let weights = rates::weights(&st).await?;
    Ok(render(&RatesPage { layout, rows, q, query, levels, rank_among, weights })?.into_response())
}

#[derive(Template)]
#[template(path = "cases/notifications.html")]
struct Notes {
    layout: Layout,
    items: Vec<notify::Note>,
}

async fn notes(State(st): State<AppState>, p: Principal) -> AppResult<Response> {
    let items = notify::list(&st, &p, 0, 200).await?;
    Ok(render(&Notes { layout: Layout::new(&p, "消息", "/notifications"), items })?.into_response())
}

async fn notes_read(State(st): State<AppState>, p: Principal) -> AppResult<Response> {
    notify::mark_read(&st, &p, i64::MAX).await?;
    Ok(crate::web::see_other("/notifications").into_response())
}

/// Page routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/cases", get(inbox))
        .route("/cases/export.xlsx", get(super::export::download_xlsx))
        .route("/cases/new", get(new_get).post(new_post))
        .route("/cases/bulk", post(bulk))
        .route("/cases/{number}", get(case_get))
        .route("/cases/{number}/act", post(case_act))
        .route("/cases/{number}/reveal", post(case_reveal))
        .route("/cases/{number}/photos/{id}", get(super::routes::case_photo))
        .route("/rates", get(rates_page))
        .route("/rates/export.xlsx", get(super::routes::rates_export))
        .route("/notifications", get(notes))
        .route("/notifications/read", post(notes_read))
        .route("/events", get(super::routes::events))
}

/// Whether `n` reads as a case number (YH-2026-000123): letters, digits and hyphens, at most 32.
fn is_case_number(n: &str) -> bool {
    let n = n.trim();
    !n.is_empty() && n.len() <= 32 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}
