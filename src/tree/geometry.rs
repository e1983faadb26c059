//! Grid polygons: checks on the way in (closed, simple, inside the community, no overlap with
//! sibling grids), GeoJSON import/export, and the in-memory point → grid index.
//!
//! The index is rebuilt when this node changes a grid, and every node polls the
//! `grid_version` setting so that a change made on another PostgreSQL node is seen within
//! seconds.

use std::sync::{Arc, RwLock};

use serde::Serialize;
use serde_json::Value;

use super::Kind;
use super::store::find_by_code;
use crate::app::AppState;
use crate::audit::{self, Event};
use crate::auth::{Perm, Principal};
use crate::db::{Db, Tx, get, like_escape, now_ms};
use crate::error::{AppError, AppResult};
use crate::geo::{self, Crs, GeoError, GridIndex, Point, Polygon};

/// What the index returns for a point.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GridRef {
    /// The grid's code.
    pub grid_code: String,
    /// Its community's code.
    pub community_code: String,
    /// Its tree path (fixed at creation: a code's place in the tree never changes). Not part
    /// of the locate API's answer.
    #[serde(skip)]
    pub path: String,
}

/// The shared, swappable point → grid index.
#[derive(Clone)]
pub struct GridCache {
    inner: Arc<RwLock<(String, Arc<GridIndex<GridRef>>)>>,
}

impl Default for GridCache {
    fn default() -> Self {
        GridCache { inner: Arc::new(RwLock::new((String::new(), Arc::new(GridIndex::build(Vec::new()))))) }
    }
}

impl GridCache {
    /// The current index.
    pub fn index(&self) -> Arc<GridIndex<GridRef>> {
        self.inner.read().expect("grid index lock").1.clone()
    }

    /// Rebuilds from the database when `grid_version` moved (or always, if never built).
    pub async fn refresh(&self, db: &Db) -> AppResult<bool> {
        let version = crate::db::version::read(db, "grid_version").await?;
        if self.inner.read().expect("grid index lock").0 == version {
            return Ok(false);
        }
        let rows = sqlx::query(
            "SELECT n.code, n.path, n.geometry, p.code AS community FROM nodes n JOIN nodes p ON p.id = n.parent_id \
             WHERE n.kind = 'grid' AND n.retired_at IS NULL AND n.geometry IS NOT NULL",
        )
        // Every grid with its polygon: past any read budget at a city's size, so straight to
        // the pool rather than in place first.
        .fetch_all(&db.pool)
        .await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            let g: String = get(r, "geometry")?;
            let v: Value = serde_json::from_str(&g).map_err(|e| AppError::Internal(format!("stored geometry: {e}")))?;
            if let Ok(poly) = geo::polygon_from_geojson(&v) {
                items.push((
                    GridRef { grid_code: get(r, "code")?, community_code: get(r, "community")?, path: get(r, "path")? },
                    poly,
                ));
            }
        }
        let index = Arc::new(
            tokio::task::spawn_blocking(move || GridIndex::build(items)).await.map_err(|e| AppError::Internal(e.to_string()))?,
        );
        *self.inner.write().expect("grid index lock") = (version, index);
        Ok(true)
    }

    /// Finds the grid containing a point given in `crs`.
    pub fn locate(&self, lng: f64, lat: f64, crs: Crs) -> Option<GridRef> {
        let p = crs.to_wgs84(Point { lng, lat });
        self.index().locate(p).cloned()
    }
}

/// Marks the grid set as changed, inside the transaction that changed it.
pub async fn bump_grid_version(tx: &mut Tx) -> AppResult<()> {
    crate::db::version::bump(tx, "grid_version").await
}

/// Commits a transaction; when it changed grids, marks the grid set as changed first and
/// rebuilds this node's index after (other nodes notice through the version).
pub async fn commit(st: &AppState, mut tx: Tx, grids_changed: bool) -> AppResult<()> {
    if grids_changed {
        bump_grid_version(&mut tx).await?;
    }
    tx.commit().await?;
    if grids_changed {
        st.grids.refresh(&st.db).await?;
    }
    Ok(())
}

/// Reads a node's stored polygon.
pub async fn polygon_of(db: &Db, code: &str) -> AppResult<Option<Polygon>> {
    let r = sqlx::query("SELECT geometry FROM nodes WHERE code = $1").bind(code).fetch_optional(db.read()).await?;
    let Some(r) = r else { return Ok(None) };
    let Some(g) = get::<Option<String>>(&r, "geometry")? else {
        return Ok(None);
    };
    let v: Value = serde_json::from_str(&g).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(geo::polygon_from_geojson(&v).ok())
}

/// The active grids of a community with polygons, except `skip`.
async fn sibling_grids<'e>(
    on: impl sqlx::Executor<'e, Database = sqlx::Any>,
    community_path: &str,
    skip: &[String],
) -> AppResult<Vec<(String, Polygon)>> {
    let rows = sqlx::query(
        "SELECT code, geometry FROM nodes WHERE kind = 'grid' AND path LIKE $1 ESCAPE '\\' AND retired_at IS NULL AND geometry IS NOT NULL",
    )
    .bind(format!("{}%", like_escape(community_path)))
    .fetch_all(on)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let code: String = get(r, "code")?;
        if skip.contains(&code) {
            continue;
        }
        if let Some(p) = stored_polygon(&get::<String>(r, "geometry")?) {
            out.push((code, p));
        }
    }
    Ok(out)
}

/// A polygon as `nodes.geometry` keeps it (GeoJSON text), if it reads as one.
fn stored_polygon(g: &str) -> Option<Polygon> {
    serde_json::from_str::<Value>(g).ok().and_then(|v| geo::polygon_from_geojson(&v).ok())
}

/// Grids of other communities (by the point index) whose box meets one of `parsed`: a
/// community without a boundary of its own does not keep its grids off its neighbours'.
fn other_communities_grids(st: &AppState, community_path: &str, parsed: &[(String, String, Polygon)]) -> Vec<String> {
    let index = st.grids.index();
    let mut codes: Vec<String> = parsed
        .iter()
        .flat_map(|(_, _, poly)| {
            let (min, max) = poly.bbox();
            index.near(min, max)
        })
        .filter_map(|i| index.get(i))
        .filter(|g| !g.path.starts_with(community_path))
        .map(|g| g.grid_code.clone())
        .collect();
    codes.sort();
    codes.dedup();
    codes
}

/// The polygons of the active grids `codes`.
async fn grids_by_code<'e>(
    on: impl sqlx::Executor<'e, Database = sqlx::Any>,
    codes: &[String],
) -> AppResult<Vec<(String, Polygon)>> {
    if codes.is_empty() {
        return Ok(Vec::new());
    }
    // Grid codes are 15 digits (checked on the way in): safe to write into the statement.
    let list = codes.iter().filter(|c| c.chars().all(|c| c.is_ascii_digit())).map(|c| format!("'{c}'")).collect::<Vec<_>>();
    let sql = format!(
        "SELECT code, geometry FROM nodes WHERE kind = 'grid' AND retired_at IS NULL AND geometry IS NOT NULL AND code IN ({})",
        list.join(",")
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(on).await?;
    let mut out = Vec::new();
    for r in &rows {
        if let Some(p) = stored_polygon(&get::<String>(r, "geometry")?) {
            out.push((get(r, "code")?, p));
        }
    }
    Ok(out)
}

/// Before a retired grid is restored: its polygon may not overlap an active grid (one may have
/// been drawn over its area meanwhile; both active, the lookup would send every case to one).
/// Run in the restoring transaction, under the import's lock, against the grids as they are.
pub(super) async fn check_restore(st: &AppState, tx: &mut Tx, grid: &super::Node) -> AppResult<()> {
    let Some(poly) = polygon_of(&st.db, &grid.code).await? else { return Ok(()) };
    let parsed = vec![(grid.code.clone(), grid.name.clone(), poly)];
    let mut errors = Vec::new();
    overlaps_now(st, tx, &crate::tree::ancestor(&grid.path, 1), &parsed, &[0], &mut errors).await?;
    match errors.into_iter().next() {
        Some(e) => Err(AppError::Conflict(format!("不能恢复：{}（请先调整边界）", e.message))),
        None => Ok(()),
    }
}

/// [`overlaps`] against the grids as they are now: every change of grid geometry takes one lock,
/// and the index is brought up to date under it (a neighbour's import committed a moment ago,
/// here or on another node, is in it then), so two changes to neighbouring grids cannot both
/// pass.
async fn overlaps_now(
    st: &AppState,
    tx: &mut Tx,
    community_path: &str,
    parsed: &[(String, String, Polygon)],
    origin: &[usize],
    errors: &mut Vec<ImportError>,
) -> AppResult<()> {
    tx.serialise("grid_geometry").await?;
    st.grids.refresh(&st.db).await?;
    let codes: Vec<String> = parsed.iter().map(|x| x.0.clone()).collect();
    let others = other_communities_grids(st, community_path, parsed);
    let mut near = sibling_grids(&mut *tx, community_path, &codes).await?;
    near.extend(grids_by_code(&mut *tx, &others).await?);
    overlaps(parsed, origin, &near, errors);
    Ok(())
}

/// Adds an error for each imported polygon that overlaps a sibling grid or an earlier one of
/// the import.
/// (`origin[i]` is the file's index of `parsed[i]`: features with errors were left out.)
fn overlaps(
    parsed: &[(String, String, Polygon)],
    origin: &[usize],
    siblings: &[(String, Polygon)],
    errors: &mut Vec<ImportError>,
) {
    for (i, (c, _, poly)) in parsed.iter().enumerate() {
        let others = siblings.iter().map(|(a, b)| (a, b)).chain(parsed.iter().take(i).map(|(a, _, b)| (a, b)));
        for (oc, op) in others {
            if geo::overlaps(poly, op) {
                errors.push(ImportError {
                    feature: origin[i],
                    code: Some(c.clone()),
                    message: GeoError::Overlaps(oc.clone()).to_string(),
                });
                break;
            }
        }
    }
}

/// One problem found in an import, by feature.
#[derive(Clone, Debug, Serialize)]
pub struct ImportError {
    /// 0-based feature index.
    pub feature: usize,
    /// The grid code, if the feature named one.
    pub code: Option<String>,
    /// What is wrong, zh-CN.
    pub message: String,
}

/// Result of a GeoJSON import.
#[derive(Clone, Debug, Serialize)]
pub struct ImportReport {
    /// True when everything was written.
    pub ok: bool,
    /// Grids created.
    pub created: usize,
    /// Grids whose geometry was replaced.
    pub updated: usize,
    /// Every problem; nothing is written unless empty.
    pub errors: Vec<ImportError>,
}

/// Parses a body (FeatureCollection, Feature or Polygon) into polygons in WGS-84.
pub fn parse_features(body: &Value, crs: Crs) -> Result<Vec<geo::ParsedFeature>, GeoError> {
    let feats = geo::features_from_collection(body)?;
    Ok(feats
        .into_iter()
        .map(|(props, poly)| {
            let poly = poly.map(|p| to_wgs84(p, crs)).and_then(|p| geo::validate(&p).map(|_| p));
            (props, poly)
        })
        .collect())
}

fn to_wgs84(p: Polygon, crs: Crs) -> Polygon {
    let conv = |ring: Vec<Point>| ring.into_iter().map(|pt| crs.to_wgs84(pt)).collect::<Vec<_>>();
    Polygon { exterior: conv(p.exterior), holes: p.holes.into_iter().map(conv).collect() }
}

/// Imports grid polygons into one community, all or nothing. Each feature's properties
/// name the grid by `code` (15 digits) or `seq` (1–999), with an optional `name`; unknown
/// grids are created, known ones get the new geometry.
pub async fn import(st: &AppState, p: &Principal, community: &str, body: &Value, crs: Crs) -> AppResult<ImportReport> {
    let comm = find_by_code(&st.db, community).await?.ok_or(AppError::NotFound)?;
    p.check(Perm::TreeWrite, &comm.path)?;
    if comm.kind != Kind::Community {
        return Err(AppError::field("community", "请指定一个社区编码"));
    }
    if comm.retired {
        return Err(AppError::field("community", "该社区已停用，不能导入网格"));
    }
    let feats = parse_features(body, crs).map_err(|e| AppError::field("geojson", e.to_string()))?;
    if feats.is_empty() {
        return Err(AppError::field("geojson", "没有可导入的要素"));
    }
    let comm_poly = polygon_of(&st.db, &comm.code).await?;
    let mut errors = Vec::new();
    let mut parsed: Vec<(String, String, Polygon)> = Vec::new();
    let mut origin = Vec::new();
    for (i, (props, poly)) in feats.into_iter().enumerate() {
        let code = match (props.get("code").and_then(Value::as_str), props.get("seq").and_then(Value::as_u64)) {
            (Some(c), _) => Some(c.trim().to_string()),
            (None, Some(s)) => Some(format!("{}{:03}", comm.code, s)),
            _ => None,
        };
        let name = props.get("name").and_then(Value::as_str).unwrap_or_default().trim().to_string();
        let mut err = |m: String| errors.push(ImportError { feature: i, code: code.clone(), message: m });
        if name.chars().count() > 64 {
            err("网格名称不能超过 64 个字".into());
            continue;
        }
        let Some(c) = code.clone() else {
            err("要素缺少 code（15 位网格编码）或 seq（序号）属性".into());
            continue;
        };
        if let Err(m) = super::check_code(Kind::Grid, &c, Some(&comm.code)) {
            err(m);
            continue;
        }
        match poly {
            Err(e) => err(e.to_string()),
            Ok(poly) => {
                if let Some(cp) = &comm_poly
                    && !geo::within(&poly, cp)
                {
                    err(GeoError::OutsideParent(comm.name.clone()).to_string());
                    continue;
                }
                if parsed.iter().any(|(pc, _, _)| *pc == c) {
                    err(format!("网格 {c} 在文件中重复出现"));
                    continue;
                }
                parsed.push((c, name, poly));
                origin.push(i);
            }
        }
    }
    let codes: Vec<String> = parsed.iter().map(|x| x.0.clone()).collect();
    let others = other_communities_grids(st, &comm.path, &parsed);
    let mut near = sibling_grids(st.db.read(), &comm.path, &codes).await?;
    near.extend(grids_by_code(st.db.read(), &others).await?);
    overlaps(&parsed, &origin, &near, &mut errors);
    if !errors.is_empty() {
        return Ok(ImportReport { ok: false, created: 0, updated: 0, errors });
    }
    let (mut created, mut updated) = (0, 0);
    let now = now_ms();
    let mut tx = st.db.begin().await?;
    // Checked again against the grids as they are now, with the community's row locked (on
    // PostgreSQL; the one writer serialises SQLite): a change to a sibling committed since the
    // check above, here or on another node, is seen, and none can commit until this one has.
    sqlx::query("UPDATE nodes SET version = version WHERE id = $1").bind(comm.id).execute(&mut tx).await?;
    overlaps_now(st, &mut tx, &comm.path, &parsed, &origin, &mut errors).await?;
    if !errors.is_empty() {
        return Ok(ImportReport { ok: false, created: 0, updated: 0, errors });
    }
    for (code, name, poly) in &parsed {
        let geom = geo::polygon_to_geojson(poly).to_string();
        let existing = sqlx::query("SELECT id, kind, path FROM nodes WHERE code = $1").bind(code).fetch_optional(&mut tx).await?;
        if let Some(r) = existing {
            if get::<String>(&r, "kind")? != "grid" {
                return Err(AppError::Conflict(format!("编码 {code} 已被其他类型的节点使用")));
            }
            sqlx::query("UPDATE nodes SET geometry = $1, name = CASE WHEN $2 = '' THEN name ELSE $2 END, version = version + 1, updated_at = $3 WHERE code = $4")
                .bind(&geom)
                .bind(name)
                .bind(now)
                .bind(code)
                .execute(&mut tx)
                .await?;
            if !name.is_empty() {
                crate::registers::names::follow(&mut tx, crate::registers::names::Renamed::Node, code, name).await?;
            }
            updated += 1;
        } else {
            let nm = if name.is_empty() { format!("第{}网格", &code[12..]) } else { name.clone() };
            sqlx::query("INSERT INTO nodes (code, kind, name, parent_id, path, geometry, created_at, updated_at) VALUES ($1,'grid',$2,$3,$4,$5,$6,$6)")
                .bind(code)
                .bind(&nm)
                .bind(comm.id)
                .bind(format!("{}{code}/", comm.path))
                .bind(&geom)
                .bind(now)
                .execute(&mut tx)
                .await?;
            created += 1;
        }
    }
    let summary = format!("导入网格边界 {} 个（新建 {created}，更新 {updated}）", parsed.len());
    let ev = Event { action: "grid.import", entity: "node", entity_id: &comm.code, node_path: &comm.path, summary: &summary };
    audit::append(&mut tx, &st.chain, &p.actor(), ev);
    commit(st, tx, true).await?;
    Ok(ImportReport { ok: true, created, updated, errors: Vec::new() })
}

/// Sets one grid's (or community's) polygon from a GeoJSON body.
pub async fn set_geometry(st: &AppState, p: &Principal, code: &str, body: &Value, crs: Crs) -> AppResult<()> {
    let n = find_by_code(&st.db, code).await?.ok_or(AppError::NotFound)?;
    p.check(Perm::TreeWrite, &n.path)?;
    match n.kind {
        Kind::Grid => {
            let comm = n.parent_code.clone().unwrap_or_default();
            let mut fc = geo::features_from_collection(body).map_err(|e| AppError::field("geometry", e.to_string()))?;
            if fc.len() != 1 {
                return Err(AppError::field("geometry", "请只提供一个多边形"));
            }
            let (_, poly) = fc.remove(0);
            let mut props = serde_json::Map::new();
            props.insert("code".into(), Value::String(n.code.clone()));
            let poly = poly.map_err(|e| AppError::field("geometry", e.to_string()))?;
            let feature = geo::feature(Value::Object(props), &poly);
            let rep = import(st, p, &comm, &feature, crs).await?;
            if !rep.ok {
                let msg = rep.errors.into_iter().map(|e| e.message).collect::<Vec<_>>().join("；");
                return Err(AppError::field("geometry", msg));
            }
            Ok(())
        }
        Kind::Community => {
            let poly = geo::polygon_from_input(body)
                .map(|p| to_wgs84(p, crs))
                .map_err(|e| AppError::field("geometry", e.to_string()))?;
            geo::validate(&poly).map_err(|e| AppError::field("geometry", e.to_string()))?;
            let mut tx = st.db.begin().await?;
            // Checked under the grids' lock, against what is there now: the community's grids
            // inside its boundary (the grid import requires it), and no other community's area
            // taken (a boundary leaving its grids out, or covering a neighbour, was accepted).
            tx.serialise("grid_geometry").await?;
            for (code, grid) in sibling_grids(&mut tx, &n.path, &[]).await? {
                if !geo::within(&grid, &poly) {
                    return Err(AppError::field("geometry", format!("网格 {code} 不在新的社区边界内，请先调整该网格")));
                }
            }
            let neighbours = sqlx::query_as::<_, (String, String, String)>(
                "SELECT code, name, geometry FROM nodes WHERE kind = 'community' AND retired_at IS NULL AND geometry IS NOT NULL AND id <> $1",
            )
            .bind(n.id)
            .fetch_all(&mut tx)
            .await?;
            for (code, name, g) in neighbours {
                if stored_polygon(&g).is_some_and(|o| geo::overlaps(&poly, &o)) {
                    return Err(AppError::field("geometry", format!("与「{name}」（{code}）的边界重叠")));
                }
            }
            sqlx::query("UPDATE nodes SET geometry = $1, version = version + 1, updated_at = $2 WHERE id = $3")
                .bind(geo::polygon_to_geojson(&poly).to_string())
                .bind(now_ms())
                .bind(n.id)
                .execute(&mut tx)
                .await?;
            let ev =
                Event {
                    action: "node.geometry", entity: "node", entity_id: code, node_path: &n.path, summary: "更新社区边界"
                };
            audit::append(&mut tx, &st.chain, &p.actor(), ev);
            tx.commit().await?;
            Ok(())
        }
        _ => Err(AppError::field("geometry", "只有社区和网格可以设置边界")),
    }
}

/// All grid polygons under a node (the grid itself, a community, a street or the county)
/// as a FeatureCollection with `code`, `name`, `community_code` properties.
pub async fn export(st: &AppState, p: &Principal, code: &str) -> AppResult<Value> {
    let n = find_by_code(&st.db, code).await?.ok_or(AppError::NotFound)?;
    p.check(Perm::TreeRead, &n.path)?;
    let feats = grid_polygons(&st.db, &n.path).await?;
    Ok(geo::feature_collection(
        feats
            .iter()
            .map(|g| {
                geo::feature(serde_json::json!({"code": g.code, "name": g.name, "community_code": g.community_code}), &g.polygon)
            })
            .collect(),
    ))
}

/// A grid with its polygon, for maps and exports.
pub struct GridShape {
    /// Grid code.
    pub code: String,
    /// Grid name.
    pub name: String,
    /// Community code.
    pub community_code: String,
    /// Community name.
    pub community_name: String,
    /// Polygon (WGS-84).
    pub polygon: Polygon,
}

/// Active grids with geometry under a path, ordered by code.
pub async fn grid_polygons(db: &Db, path: &str) -> AppResult<Vec<GridShape>> {
    let rows = sqlx::query(
        "SELECT n.code, n.name, n.geometry, p.code AS community, p.name AS community_name FROM nodes n JOIN nodes p ON p.id = n.parent_id \
         WHERE n.kind = 'grid' AND n.retired_at IS NULL AND n.geometry IS NOT NULL AND n.path LIKE $1 ESCAPE '\\' ORDER BY n.code",
    )
    .bind(format!("{}%", like_escape(path)))
    .fetch_all(db.read())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let g: String = get(r, "geometry")?;
        let v: Value = serde_json::from_str(&g).map_err(|e| AppError::Internal(e.to_string()))?;
        if let Ok(polygon) = geo::polygon_from_geojson(&v) {
            out.push(GridShape {
                code: get(r, "code")?,
                name: get(r, "name")?,
                community_code: get(r, "community")?,
                community_name: get(r, "community_name")?,
                polygon,
            });
        }
    }
    Ok(out)
}
