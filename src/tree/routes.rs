//! Tree, grid and map: pages and API. Handlers only parse, call the store, render.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::geometry::{self, ImportReport};
use super::store::{self, NodeFilter, NodeInput, Page};
use super::{Kind, Node};
use crate::app::AppState;
use crate::auth::{Perm, Principal};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::geo::{self, Crs};
use crate::web::{FormBody, JsonBody, JsonValue, Layout, Q, render};

/// Message for a coordinate system we do not take.
const BAD_CRS: &str = "坐标系应为 wgs84 或 gcj02";

fn crs_of(s: Option<&str>) -> AppResult<Crs> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(Crs::Wgs84),
        Some(s) => Crs::parse(s).ok_or_else(|| AppError::field("crs", BAD_CRS)),
    }
}

// ---------- API ----------

async fn api_nodes(State(st): State<AppState>, p: Principal, Q(f): Q<NodeFilter>) -> AppResult<Json<Page<Node>>> {
    Ok(Json(store::list(&st, &p, &f).await?))
}

/// The filtered node list as xlsx (all pages).
async fn api_nodes_export(State(st): State<AppState>, p: Principal, Q(mut f): Q<NodeFilter>) -> AppResult<Response> {
    use crate::web::xlsx::{Cell, download, workbook};
    f.page = Some(1);
    f.per_page = Some(store::EXPORT_MAX);
    let page = store::list(&st, &p, &f).await?;
    let rows = page.items.iter().map(|n| {
        vec![
            Cell::from(n.code.as_str()),
            n.name.as_str().into(),
            n.kind.label().into(),
            n.parent_code.clone().unwrap_or_default().into(),
            n.address.as_str().into(),
            (if n.has_geometry { "有" } else { "" }).into(),
            (if n.retired { "已停用" } else { "正常" }).into(),
        ]
    });
    let bytes = workbook("区域节点", &["编码", "名称", "类型", "上级编码", "地址", "边界", "状态"], rows)?;
    Ok(download("区域节点.xlsx", bytes))
}

async fn api_node(State(st): State<AppState>, p: Principal, Path(code): Path<String>) -> AppResult<Json<Node>> {
    Ok(Json(store::get_node(&st, &p, &code).await?))
}

async fn api_node_create(
    State(st): State<AppState>,
    p: Principal,
    JsonBody(i): JsonBody<NodeInput>,
) -> AppResult<(StatusCode, Json<Node>)> {
    Ok((StatusCode::CREATED, Json(store::create(&st, &p, &i, false).await?)))
}

/// A PATCH: a field left out keeps its value (a rename alone emptied the address and note).
async fn api_node_update(
    State(st): State<AppState>,
    p: Principal,
    Path(code): Path<String>,
    JsonBody(given): JsonBody<serde_json::Map<String, serde_json::Value>>,
) -> AppResult<Json<Node>> {
    let n = store::find_by_code(&st.db, &code).await?.ok_or(AppError::NotFound)?;
    p.check(crate::auth::Perm::TreeWrite, &n.path)?;
    let text = |k: &str, kept: &str| match given.get(k) {
        None => Ok(kept.to_string()),
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(AppError::field(k, "应为文字")),
    };
    let version = match given.get("version") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| AppError::field("version", "应为整数"))?),
    };
    let i = NodeInput {
        name: text("name", &n.name)?,
        address: text("address", &n.address)?,
        note: text("note", &n.note)?,
        version,
        ..Default::default()
    };
    Ok(Json(store::update(&st, &p, &code, &i).await?))
}

async fn api_node_delete(State(st): State<AppState>, p: Principal, Path(code): Path<String>) -> AppResult<StatusCode> {
    store::delete(&st, &p, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn api_node_retire(
    State(st): State<AppState>,
    p: Principal,
    Path((code, act)): Path<(String, String)>,
) -> AppResult<Json<Node>> {
    let retired = match act.as_str() {
        "retire" => true,
        "restore" => false,
        _ => return Err(AppError::NotFound),
    };
    Ok(Json(store::set_retired(&st, &p, &code, retired).await?))
}

async fn api_node_geojson(State(st): State<AppState>, p: Principal, Path(code): Path<String>) -> AppResult<Response> {
    let fc = geometry::export(&st, &p, &code).await?;
    Ok(([(header::CONTENT_TYPE, "application/geo+json")], fc.to_string()).into_response())
}

#[derive(Deserialize, Default)]
struct CrsQ {
    crs: Option<String>,
    community: Option<String>,
}

async fn api_node_geometry(
    State(st): State<AppState>,
    p: Principal,
    Path(code): Path<String>,
    Q(q): Q<CrsQ>,
    JsonValue(body): JsonValue,
) -> AppResult<StatusCode> {
    geometry::set_geometry(&st, &p, &code, &body, crs_of(q.crs.as_deref())?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn api_grids_import(
    State(st): State<AppState>,
    p: Principal,
    Q(q): Q<CrsQ>,
    JsonValue(body): JsonValue,
) -> AppResult<Response> {
    let community = q.community.ok_or_else(|| AppError::field("community", "请用 community 参数指定社区编码"))?;
    let rep = geometry::import(&st, &p, &community, &body, crs_of(q.crs.as_deref())?).await?;
    let status = if rep.ok { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok((status, Json(rep)).into_response())
}

#[derive(Deserialize, Default)]
struct GridQ {
    community: Option<String>,
    q: Option<String>,
    page: Option<i64>,
    #[serde(default, deserialize_with = "crate::db::list::asked_per_page")]
    per_page: Option<i64>,
}

async fn api_grids(State(st): State<AppState>, p: Principal, Q(q): Q<GridQ>) -> AppResult<Json<Value>> {
    let f = NodeFilter {
        kind: Some("grid".into()),
        under: q.community,
        q: q.q,
        page: q.page,
        per_page: q.per_page,
        ..Default::default()
    };
    let page = store::list(&st, &p, &f).await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|n| json!({"code": n.code, "community_code": n.parent_code, "name": n.name, "has_geometry": n.has_geometry}))
        .collect();
    Ok(Json(json!({"items": items, "total": page.total, "page": page.page, "per_page": page.per_page})))
}

async fn api_grid(State(st): State<AppState>, p: Principal, Path(code): Path<String>) -> AppResult<Json<Value>> {
    let n = store::get_node(&st, &p, &code).await?;
    if n.kind != Kind::Grid {
        return Err(AppError::NotFound);
    }
    let geometry = geometry::polygon_of(&st.db, &n.code).await?.map(|p| geo::polygon_to_geojson(&p));
    Ok(Json(json!({"code": n.code, "name": n.name, "community_code": n.parent_code, "retired": n.retired, "geometry": geometry})))
}

#[derive(Deserialize, Default)]
struct LocateQ {
    lng: Option<f64>,
    lat: Option<f64>,
    crs: Option<String>,
}

fn parse_point(q: &LocateQ) -> AppResult<(f64, f64, Crs)> {
    let mut errs = FieldErrors::default();
    let lng = q.lng.filter(|v| (-180.0..=180.0).contains(v));
    let lat = q.lat.filter(|v| (-90.0..=90.0).contains(v));
    if lng.is_none() {
        errs.add("lng", "经度必须是 -180～180 之间的数字");
    }
    if lat.is_none() {
        errs.add("lat", "纬度必须是 -90～90 之间的数字");
    }
    let crs = crs_of(q.crs.as_deref()).ok();
    if crs.is_none() {
        errs.add("crs", BAD_CRS);
    }
    errs.finish()?;
    Ok((lng.unwrap_or_default(), lat.unwrap_or_default(), crs.unwrap_or(Crs::Wgs84)))
}

async fn api_locate(State(st): State<AppState>, p: Principal, Q(q): Q<LocateQ>) -> AppResult<Json<geometry::GridRef>> {
    p.require(Perm::TreeRead)?;
    let (lng, lat, crs) = parse_point(&q)?;
    let found = st.grids.locate(lng, lat, crs).ok_or(AppError::NotFound)?;
    let node = store::find_by_code(&st.db, &found.grid_code).await?.ok_or(AppError::NotFound)?;
    p.check(Perm::TreeRead, &node.path)?;
    Ok(Json(found))
}

/// API routes (under /api/v1).
pub fn api() -> Router<AppState> {
    Router::new()
        .route("/nodes", get(api_nodes).post(api_node_create))
        .route("/nodes/export.xlsx", get(api_nodes_export))
        .route("/nodes/{code}", get(api_node).patch(api_node_update).delete(api_node_delete))
        .route("/nodes/{code}/geojson", get(api_node_geojson))
        .route("/nodes/{code}/geometry", axum::routing::put(api_node_geometry))
        .route("/nodes/{code}/{act}", post(api_node_retire))
        .route("/grids", get(api_grids))
        .route("/grids/import", post(api_grids_import))
        .route("/grids/locate", get(api_locate))
        .route("/grids/{code}", get(api_grid))
}

// ---------- pages ----------

#[derive(Template)]
#[template(path = "tree.html")]
struct TreePage {
    layout: Layout,
    node: Node,
    crumbs: Vec<Node>,
    children: Page<Node>,
    filter: NodeFilter,
    child_kinds: Vec<(&'static str, &'static str)>,
    can_write: bool,
    /// The viewer may open the resident register (residents and Party members may not).
    can_people: bool,
    errors: FieldErrors,
    form: NodeInput,
    notice: String,
    geo_report: Option<ImportReport>,
    geojson: String,
}

/// The node a user's tree and map open on: their scope's (a unit contact's scope is a unit,
/// whose area is the county: /tree answered 404 while /tree?node=… opened).
fn home_node(p: &Principal) -> &str {
    p.scope_path.trim_matches('/').rsplit('/').next().filter(|c| !c.is_empty()).unwrap_or(&p.scope)
}

impl TreePage {
    /// Page `n` of the children as listed now: the kind, search and retired filters kept (a
    /// type filter's pages led back to the unfiltered children).
    fn page_link(&self, n: i64) -> String {
        let mut link = format!("/tree?node={}", crate::web::urlencode(&self.node.code));
        for (k, v) in [("kind", self.filter.kind.as_deref()), ("q", self.filter.q.as_deref())] {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                link.push_str(&format!("&{k}={}", crate::web::urlencode(v)));
            }
        }
        if self.filter.retired == Some(true) {
            link.push_str("&retired=true");
        }
        format!("{link}&page={n}")
    }
}

#[derive(Deserialize, Default)]
struct TreeQ {
    node: Option<String>,
    kind: Option<String>,
    q: Option<String>,
    retired: Option<bool>,
    page: Option<i64>,
    notice: Option<String>,
    ns: Option<String>,
}

/// What a tree page shows besides the node: form errors and values, a notice, an import report.
#[derive(Default)]
struct Extras {
    errors: FieldErrors,
    form: NodeInput,
    notice: String,
    geo_report: Option<ImportReport>,
    /// The GeoJSON pasted, shown again beside its errors.
    geojson: String,
}

async fn tree_page(st: &AppState, p: &Principal, code: &str, mut filter: NodeFilter, x: Extras) -> AppResult<Response> {
    let node = store::get_node(st, p, code).await?;
    let mut crumbs = Vec::new();
    for c in node.path.trim_matches('/').split('/') {
        if let Some(n) = store::find_by_code(&st.db, c).await?.filter(|n| p.in_scope(&n.path)) {
            crumbs.push(n);
        }
    }
    // A kind asked for is looked for at any depth (the county's 社区 are its streets'
    // children); otherwise the node's own children.
    if filter.kind.as_deref().is_some_and(|k| !k.is_empty()) {
        filter.under = Some(node.code.clone());
    } else {
        filter.parent = Some(node.code.clone());
    }
    let children = store::list(st, p, &filter).await?;
    let child_kinds = node.kind.child_kinds().into_iter().map(|k| (k.as_str(), k.label())).collect();
    let Extras { errors, form, notice, geo_report, geojson } = x;
    let status = if errors.0.is_empty() && geo_report.as_ref().is_none_or(|r| r.ok) {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    // "花花桥社区" is already a community: its kind is not said twice.
    let title =
        if node.name.ends_with(node.kind.label()) { node.name.clone() } else { format!("{}{}", node.name, node.kind.label()) };
    let layout = Layout::new(p, &title, "/tree");
    let can_write = p.role.can(Perm::TreeWrite);
    Ok((
        status,
        render(&TreePage {
            layout,
            node,
            crumbs,
            children,
            filter,
            child_kinds,
            can_write,
            can_people: p.role.can(Perm::PersonRead),
            errors,
            form,
            notice,
            geo_report,
            geojson,
        })?,
    )
        .into_response())
}

async fn tree_get(State(st): State<AppState>, p: Principal, Q(q): Q<TreeQ>) -> AppResult<Response> {
    let code = q.node.unwrap_or_else(|| home_node(&p).to_string());
    let filter = NodeFilter { kind: q.kind, q: q.q, retired: q.retired, page: q.page, ..Default::default() };
    tree_page(
        &st,
        &p,
        &code,
        filter,
        Extras { notice: crate::web::checked_notice(&st.keyring, q.notice.as_deref(), q.ns.as_deref()), ..Extras::default() },
    )
    .await
}

async fn tree_create(State(st): State<AppState>, p: Principal, FormBody(f): FormBody<NodeInput>) -> AppResult<Response> {
    match store::create(&st, &p, &f, false).await {
        Ok(n) => Ok(crate::web::see_other(&format!("/tree?node={}", n.code)).into_response()),
        Err(AppError::Validation(v)) => {
            let parent = f.parent.clone();
            tree_page(&st, &p, &parent, NodeFilter::default(), Extras { errors: FieldErrors(v), form: f, ..Extras::default() })
                .await
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize, Default)]
struct GeoForm {
    #[serde(default)]
    geojson: String,
    #[serde(default)]
    crs: String,
}

async fn tree_action(
    State(st): State<AppState>,
    p: Principal,
    Path((code, act)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> AppResult<Response> {
    let back = |notice: &str| {
        crate::web::see_other(&format!("/tree?node={code}&{}", crate::web::notice_query(&st.keyring, notice))).into_response()
    };
    match act.as_str() {
        "edit" => {
            let f: NodeInput = form_of(body.clone()).await?;
            match store::update(&st, &p, &code, &f).await {
                Ok(_) => Ok(back("已保存")),
                Err(AppError::Validation(v)) => {
                    tree_page(
                        &st,
                        &p,
                        &code,
                        NodeFilter::default(),
                        Extras { errors: FieldErrors(v), form: f, ..Extras::default() },
                    )
                    .await
                }
                Err(e) => Err(e),
            }
        }
        "retire" | "restore" => {
            let n = store::set_retired(&st, &p, &code, act == "retire").await?;
            Ok(back(if n.retired { "已停用" } else { "已恢复" }))
        }
        "delete" => {
            let parent = store::get_node(&st, &p, &code).await?.parent_code.unwrap_or_default();
            store::delete(&st, &p, &code).await?;
            Ok(crate::web::see_other(&format!("/tree?node={parent}")).into_response())
        }
        "geometry" => {
            let f: GeoForm = form_of(body.clone()).await?;
            let imported = async {
                let crs = crs_of(Some(&f.crs))?;
                let v: Value =
                    serde_json::from_str(&f.geojson).map_err(|_| AppError::field("geojson", "不是有效的 GeoJSON 文本"))?;
                let node = store::get_node(&st, &p, &code).await?;
                match node.kind {
                    Kind::Community if v.get("type").and_then(Value::as_str) == Some("FeatureCollection") => {
                        geometry::import(&st, &p, &code, &v, crs).await
                    }
                    _ => {
                        geometry::set_geometry(&st, &p, &code, &v, crs).await?;
                        Ok(ImportReport { ok: true, created: 0, updated: 1, errors: vec![] })
                    }
                }
            };
            let x = match imported.await {
                Ok(rep) if rep.ok => Extras {
                    notice: format!("已导入：新建 {} 个，更新 {} 个", rep.created, rep.updated),
                    geo_report: Some(rep),
                    ..Extras::default()
                },
                Ok(rep) => Extras { geo_report: Some(rep), geojson: f.geojson, ..Extras::default() },
                // What was pasted stays, beside what is wrong with it.
                Err(AppError::Validation(v)) => Extras { errors: FieldErrors(v), geojson: f.geojson, ..Extras::default() },
                Err(e) => return Err(e),
            };
            tree_page(&st, &p, &code, NodeFilter::default(), x).await
        }
        _ => Err(AppError::NotFound),
    }
}

/// A urlencoded form body read as `T`, as [`crate::web::FormBody`] reads one: long fields are
/// checked by the form's own rules (read as a URI's query, 30 KB of text was a 400).
async fn form_of<T: serde::de::DeserializeOwned>(b: axum::body::Bytes) -> AppResult<T> {
    let req = axum::http::Request::builder()
        .method("POST")
        .header(axum::http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(b))
        .map_err(|_| AppError::BadRequest("表单内容格式错误".into()))?;
    use axum::extract::FromRequest;
    crate::web::FormBody::<T>::from_request(req, &()).await.map(|f| f.0)
}

#[derive(Template)]
#[template(path = "map.html")]
struct MapPage {
    layout: Layout,
    node: Node,
    svg: String,
    legend: Vec<(String, String, &'static str, bool)>,
    count: usize,
}

#[derive(Deserialize, Default)]
struct MapQ {
    node: Option<String>,
}

async fn map_get(State(st): State<AppState>, p: Principal, Q(q): Q<MapQ>) -> AppResult<Response> {
    let node = store::get_node(&st, &p, q.node.as_deref().unwrap_or(home_node(&p))).await?;
    let grids = geometry::grid_polygons(&st.db, &node.path).await?;
    let mut communities: Vec<(String, String)> = Vec::new();
    for g in &grids {
        if !communities.iter().any(|(c, _)| *c == g.community_code) {
            communities.push((g.community_code.clone(), g.community_name.clone()));
        }
    }
    let colour = |c: &str| geo::palette(communities.iter().position(|(x, _)| x == c).unwrap_or(0));
    let hrefs: Vec<String> = grids.iter().map(|g| format!("/tree?node={}", g.code)).collect();
    let titles: Vec<String> = grids.iter().map(|g| format!("{} {}（{}）", g.code, g.name, g.community_name)).collect();
    let labels: Vec<String> = grids.iter().map(|g| g.code[12..].to_string()).collect();
    let items: Vec<geo::MapItem> = grids
        .iter()
        .enumerate()
        .map(|(i, g)| geo::MapItem {
            polygon: &g.polygon,
            label: &labels[i],
            href: &hrefs[i],
            fill: colour(&g.community_code),
            title: &titles[i],
        })
        .collect();
    let svg = geo::render_svg_with_tiles(&items, 1000, st.cfg.tile_url());
    // A community links to its own map only for a caller scoped at or above it (codes nest by
    // length: street 9, community 12, grid 15 digits).
    let linked = p.scope.len() <= 12;
    let legend = communities.iter().map(|(c, n)| (c.clone(), n.clone(), colour(c), linked)).collect();
    let layout = Layout::new(&p, &format!("网格地图 · {}", node.name), "/map");
    Ok(render(&MapPage { layout, node, svg, legend, count: grids.len() })?.into_response())
}

/// Page routes.
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/tree", get(tree_get))
        .route("/tree/create", post(tree_create))
        .route("/tree/{code}/{act}", post(tree_action))
        .route("/map", get(map_get))
}
