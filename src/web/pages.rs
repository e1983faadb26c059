//! The dashboard, the overview API, the error page and the offline API docs page.

use askama::Template;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value};

use super::{Layout, render};
use crate::app::AppState;
use crate::auth::{Perm, Principal};
use crate::error::{AppResult, FieldError};

/// The zh-CN error page.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// HTTP status.
    pub status: u16,
    /// Message.
    pub message: String,
    /// Field errors.
    pub fields: Vec<FieldError>,
    /// On the residents' site: its home, not the staff's console, is the way back.
    pub mobile: bool,
}

impl ErrorPage {
    /// Renders, falling back to plain text if the template itself fails.
    pub fn html(&self) -> Html<String> {
        Html(self.render().unwrap_or_else(|_| self.message.clone()))
    }
}

/// Counts inside the caller's scope: `streets`, `communities`, `grids`, `compounds`,
/// `buildings`, `relocation_sites`, `residents`. Later modules add their figures here.
pub async fn overview(st: &AppState, p: &Principal) -> AppResult<Map<String, Value>> {
    p.require(Perm::TreeRead)?;
    let counts = crate::tree::store::counts(&st.db, &p.scope_path).await?;
    let mut m = Map::new();
    for (key, kind) in [
        ("counties", "county"),
        ("streets", "street"),
        ("communities", "community"),
        ("grids", "grid"),
        ("compounds", "compound"),
        ("buildings", "building"),
        ("relocation_sites", "site"),
        ("residents", "residents"),
    ] {
        let n = counts.iter().find(|(k, _)| k == kind).map(|(_, n)| *n).unwrap_or(0);
        m.insert(key.into(), Value::from(n));
    }
    for (k, v) in case_figures(st, p).await? {
        m.insert(k.into(), Value::from(v));
    }
    m.extend(crate::registers::figures::all(st, p).await?);
    m.insert("scope".into(), Value::from(p.scope.clone()));
    Ok(m)
}

/// Case totals of the caller's scope. A county, street or community reads them from the
/// rollup cube (one row per block of days, whatever the number of cases); "overdue" is the
/// cube's count of running cases the SLA job has shown the red card. Other scopes count their
/// (few) cases. Totals leave out rejected and voided cases, like the rates.
async fn case_figures(st: &AppState, p: &Principal) -> AppResult<[(&'static str, i64); 4]> {
    let code = p.scope.as_str();
    let dim = match code.len() {
        6 => Some("county"),
        9 => Some("street"),
        12 => Some("community"),
        _ => None,
    };
    let c = match dim {
        Some(dim) => {
            let rows = crate::cases::cube::sums(&st.db, dim, code, None, None).await?;
            rows.iter().find(|(m, _)| m == code).map(|(_, c)| *c).unwrap_or_default()
        }
        None => {
            let r = sqlx::query(
                "SELECT COUNT(*) AS cases, CAST(SUM(CASE WHEN status = 'closed' THEN 1 ELSE 0 END) AS BIGINT) AS closed, \
                 CAST(SUM(CASE WHEN status IN ('registered', 'dispatched', 'accepted') AND warn_level >= 2 THEN 1 ELSE 0 END) AS BIGINT) AS overdue \
                 FROM cases WHERE node_path >= $1 AND node_path < $2 AND status NOT IN ('rejected', 'voided')",
            )
            .bind(&p.scope_path)
            .bind(crate::db::prefix_end(&p.scope_path))
            .fetch_one(st.db.read())
            .await?;
            let n = |col| crate::db::get::<Option<i64>>(&r, col).map(Option::unwrap_or_default);
            crate::cases::rates::Counts { cases: n("cases")?, closed: n("closed")?, overdue: n("overdue")?, ..Default::default() }
        }
    };
    Ok([("cases_total", c.cases), ("cases_closed", c.closed), ("cases_open", c.cases - c.closed), ("cases_overdue", c.overdue)])
}

async fn api_overview(State(st): State<AppState>, p: Principal) -> AppResult<Json<Map<String, Value>>> {
    Ok(Json(overview(&st, &p).await?))
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    layout: Layout,
    cards: Vec<(&'static str, i64, String)>,
    systems: bool,
}

async fn dashboard(State(st): State<AppState>, p: Principal) -> AppResult<Response> {
    // A resident's own site is the H5 one (their reports, 我要报事): the staff console showed
    // them the county's counts and cards that lead nowhere.
    if p.role == crate::auth::Role::Resident {
        return Ok(crate::web::see_other("/m").into_response());
    }
    // A unit's contact is shown its own queue only (below): the county's figures, counted
    // from every register, would be computed for nothing.
    let m = if p.role == crate::auth::Role::UnitContact { Map::new() } else { overview(&st, &p).await? };
    let n = |k: &str| m.get(k).and_then(Value::as_i64).unwrap_or(0);
    // Links only where the role may follow them (a unit contact's scope is a unit, not a node).
    let tree = if p.role.can(Perm::RegisterRead) { format!("/tree?node={}", p.scope) } else { String::new() };
    let to = |suffix: &str| if tree.is_empty() { String::new() } else { format!("{tree}{suffix}") };
    let map = if tree.is_empty() { String::new() } else { format!("/map?node={}", p.scope) };
    let people = if p.role.can(Perm::PersonRead) { "/people".to_string() } else { String::new() };
    // The case figures (the article's 为群众办理实事…) lead to the staff's case list.
    let staff = crate::cases::staff_level(p.role).is_some();
    let cases = |q: &str| if staff { format!("/cases{q}") } else { String::new() };
    // A unit's contact and a Party member work on what is theirs: their queue first, not the
    // county's totals (a unit's scope is the county's).
    let mut own = Vec::new();
    if matches!(p.role, crate::auth::Role::UnitContact | crate::auth::Role::PartyMember) {
        for (label, status, overdue) in [
            ("待接单", "dispatched", None),
            ("办理中", "accepted", None),
            ("已办结待回访", "finished", None),
            ("超期", "", Some(true)),
        ] {
            let f = crate::cases::store::CaseFilter {
                status: Some(status.to_string()).filter(|s| !s.is_empty()),
                overdue,
                mine: Some(true),
                per_page: Some(1),
                ..Default::default()
            };
            let total = crate::cases::store::list(&st, &p, &f).await?.total;
            let q = if status.is_empty() { "?mine=true&overdue=true".to_string() } else { format!("?mine=true&status={status}") };
            own.push((label, total, format!("/cases{q}")));
        }
    }
    let mut cards = vec![
        ("街道", n("streets"), to("&kind=street")),
        ("社区", n("communities"), to("&kind=community")),
        ("网格", n("grids"), map),
        ("小区", n("compounds"), to("&kind=compound")),
        ("楼栋", n("buildings"), to("&kind=building")),
        ("安置点", n("relocation_sites"), to("&kind=site")),
        ("居民", n("residents"), people),
        ("已结案事项", n("cases_closed"), cases("?status=closed")),
        ("在办事项", n("cases_open"), cases("?status=submitted,registered,dispatched,accepted,finished,followed_up")),
        ("超期事项", n("cases_overdue"), cases("?overdue=1")),
    ];
    if !own.is_empty() {
        // A Party member's scope is their community: its totals beside their own queue. A
        // unit's scope is the county's, whose totals are not the unit's.
        if p.role == crate::auth::Role::PartyMember {
            own.extend(cards.drain(..).filter(|(l, ..)| l.ends_with("事项")));
        }
        cards = own;
    }
    let systems = p.role.can(Perm::RegisterRead);
    Ok(render(&Dashboard { layout: Layout::new(&p, "工作台", "/"), cards, systems })?.into_response())
}

#[derive(Template)]
#[template(path = "api_docs.html")]
struct ApiDocs {
    layout: Layout,
    ops: Vec<(String, String, String)>,
}

async fn api_docs(p: Principal) -> AppResult<Response> {
    let doc = crate::openapi::spec();
    let mut ops = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                let summary = op.get("summary").and_then(Value::as_str).unwrap_or_default();
                ops.push((method.to_uppercase(), path.clone(), summary.to_string()));
            }
        }
    }
    Ok(render(&ApiDocs { layout: Layout::new(&p, "接口文档", "/api/docs"), ops })?.into_response())
}

/// Page routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(dashboard)).route("/api/docs", get(api_docs))
}

/// API routes (under /api/v1).
pub fn api() -> Router<AppState> {
    Router::new().route("/overview", get(api_overview))
}
