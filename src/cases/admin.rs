//! The county admin's configuration page: categories and time limits, the working-day
//! calendar, units, and webhooks.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::categories::{self, Category, CategoryInput};
use super::units::{self, Unit, UnitFilter, UnitInput};
use crate::app::AppState;
use crate::auth::{Principal, Role};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::web::{Layout, render};

#[derive(Template)]
#[template(path = "cases/admin.html")]
struct Admin {
    layout: Layout,
    categories: Vec<Category>,
    units: Vec<Unit>,
    calendar: String,
    hooks: Vec<(i64, String, String, bool)>,
    new_secret: String,
    errors: FieldErrors,
    kinds: Vec<&'static str>,
    open311_anonymous: bool,
    /// The composite's weights (响应, 解决, 满意).
    weights: (f64, f64, f64),
    /// The form refused (its path's last part) and what was typed into it, shown again.
    refused: Typed,
}

/// What was typed into a refused form: `(form, fields)`.
#[derive(Default)]
struct Typed(String, Vec<(String, String)>);

impl Admin {
    /// What was typed into field `name` of `form`, if that form was refused ("" otherwise).
    fn typed(&self, form: &str, name: &str) -> &str {
        let Typed(refused, fields) = &self.refused;
        if refused != form {
            return "";
        }
        fields.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }

    /// What was typed into field `name` of the refused `form`, or else `stored`.
    fn or_typed(&self, form: &str, name: &str, stored: impl std::fmt::Display) -> String {
        if self.refused.0 == form { self.typed(form, name).to_string() } else { stored.to_string() }
    }

    /// Whether checkbox `name` of `form` is ticked: as typed if that form was refused.
    fn ticked(&self, form: &str, name: &str, stored: bool) -> bool {
        if self.refused.0 == form { !self.typed(form, name).is_empty() } else { stored }
    }
}

/// The county admin's settings page and its forms are for the county admin only.
fn county_admin(p: &Principal) -> AppResult<()> {
    if p.role == Role::CountyAdmin { Ok(()) } else { Err(AppError::Forbidden) }
}

async fn admin_page(
    st: &AppState,
    p: &Principal,
    errors: FieldErrors,
    new_secret: String,
    refused: Typed,
) -> AppResult<Response> {
    county_admin(p)?;
    let units = units::list(st, p, &UnitFilter { per_page: Some(500), ..Default::default() }).await?.items;
    let rows = sqlx::query(
        "SELECT w.id, w.url, w.active, u.name AS unit FROM webhooks w LEFT JOIN units u ON u.id = w.unit_id ORDER BY w.id",
    )
    .fetch_all(st.db.read())
    .await?;
    let mut hooks = Vec::new();
    for r in &rows {
        use crate::db::get;
        hooks.push((
            get(r, "id")?,
            get(r, "url")?,
            get::<Option<String>>(r, "unit")?.unwrap_or_else(|| "全县".into()),
            get::<i64>(r, "active")? == 1,
        ));
    }
    let status = if errors.0.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = Admin {
        layout: Layout::new(p, "事项配置", "/admin"),
        categories: categories::all(st).await?,
        units,
        calendar: categories::calendar_text(&st.db).await?,
        hooks,
        new_secret,
        errors,
        kinds: units::KINDS.to_vec(),
        open311_anonymous: crate::open311::anonymous_allowed(st).await,
        weights: super::rates::weights(st).await?,
        refused,
    };
    Ok((status, render(&page)?).into_response())
}

async fn admin_get(State(st): State<AppState>, p: Principal) -> AppResult<Response> {
    admin_page(&st, &p, FieldErrors::default(), String::new(), Typed::default()).await
}

#[derive(Deserialize, Default)]
struct CatForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    sign_hours: String,
    #[serde(default)]
    resolve_hours: String,
    #[serde(default)]
    unit_kind: String,
    #[serde(default)]
    claimable: String,
    #[serde(default)]
    active: String,
}

#[derive(Deserialize, Default)]
struct MiscForm {
    #[serde(default)]
    calendar: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    unit: String,
}

async fn admin_post(
    State(st): State<AppState>,
    p: Principal,
    Path(what): Path<String>,
    body: axum::body::Bytes,
) -> AppResult<Response> {
    // Each action checks its own permission too; set_open311 did not (any account could switch
    // anonymous posting on), so the page's rule now guards every form of it.
    county_admin(&p)?;
    let pairs = crate::auth::middleware::form_pairs(&body);
    let q = |k: &str| pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let result: AppResult<String> = match what.as_str() {
        "category" => {
            let f = CatForm {
                code: q("code"),
                name: q("name"),
                group: q("group"),
                sign_hours: q("sign_hours"),
                resolve_hours: q("resolve_hours"),
                unit_kind: q("unit_kind"),
                claimable: q("claimable"),
                active: q("active"),
            };
            let existing = categories::by_code(&st, &f.code).await?;
            let i = CategoryInput {
                code: f.code,
                name: f.name,
                group: f.group,
                sign_hours: f.sign_hours.trim().parse().ok(),
                resolve_hours: f.resolve_hours.trim().parse().ok(),
                unit_kind: f.unit_kind,
                claimable: !f.claimable.is_empty(),
                active: Some(!f.active.is_empty()),
                // Not on the form: kept as they are.
                description: existing.as_ref().map(|c| c.description.clone()).unwrap_or_default(),
                attrs: existing.map(|c| c.attrs).unwrap_or_default(),
                ..Default::default()
            };
            categories::save(&st, &p, &i).await.map(|_| String::new())
        }
        "calendar" => categories::set_calendar(
            &st,
            &p,
            &MiscForm { calendar: q("calendar"), ..Default::default() }.calendar,
            !q("clear").is_empty(),
        )
        .await
        .map(|_| String::new()),
        "unit" => {
            let i = UnitInput {
                code: q("code"),
                name: q("name"),
                kind: q("kind"),
                contact_name: q("contact_name"),
                contact_phone: q("contact_phone"),
                communities: q("communities"),
            };
            units::create(&st, &p, &i, false).await.map(|_| String::new())
        }
        "webhook" => {
            let m = MiscForm { url: q("url"), unit: q("unit"), ..Default::default() };
            super::routes::hook_create_inner(&st, &p, &m.url, Some(&m.unit))
                .await
                .map(|v| v["secret"].as_str().unwrap_or_default().to_string())
        }
        "open311" => set_open311(&st, &p, !q("anonymous").is_empty()).await.map(|_| String::new()),
        "weights" => {
            // An empty or unreadable box is out of range, and said so.
            let w = |k: &str| q(k).trim().parse::<f64>().unwrap_or(-1.0);
            super::rates::set_weights(&st, &p, (w("response"), w("solve"), w("satisfaction"))).await.map(|_| String::new())
        }
        "webhook-delete" => super::routes::hook_delete_inner(&st, &p, q("id").parse().unwrap_or(-1)).await.map(|_| String::new()),
        _ => Err(AppError::NotFound),
    };
    match result {
        Ok(secret) if secret.is_empty() => Ok(crate::web::see_other("/admin").into_response()),
        Ok(secret) => admin_page(&st, &p, FieldErrors::default(), secret, Typed::default()).await,
        Err(AppError::Validation(v)) => {
            // Shown again as typed, but for the form token, which the page sets anew.
            let typed = pairs.into_iter().filter(|(k, _)| k != "_csrf").collect();
            admin_page(&st, &p, FieldErrors(v), String::new(), Typed(what, typed)).await
        }
        Err(e) => Err(e),
    }
}

/// Turns anonymous Open311 posting on or off (a county option, audited).
async fn set_open311(st: &AppState, p: &Principal, on: bool) -> AppResult<()> {
    county_admin(p)?;
    let mut tx = st.db.begin().await?;
    sqlx::query("INSERT INTO settings (key, value) VALUES ('open311_anonymous', $1) ON CONFLICT (key) DO UPDATE SET value = $1")
        .bind(if on { "1" } else { "0" })
        .execute(&mut tx)
        .await?;
    let summary = if on { "允许 Open311 匿名提交" } else { "关闭 Open311 匿名提交" };
    let ev = crate::audit::Event {
        action: "settings.open311",
        entity: "settings",
        entity_id: "open311_anonymous",
        node_path: &p.scope_path,
        summary,
    };
    crate::audit::append(&mut tx, &st.chain, &p.actor(), ev);
    tx.commit().await?;
    Ok(())
}

/// Page routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/admin", get(admin_get)).route("/admin/{what}", post(admin_post))
}
