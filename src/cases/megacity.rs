//! A Beijing-sized data set for scale work: `linli demo --scale megacity [--cases N]` builds a
//! tree under node `110000` (343 streets, ~7,000 communities, ~60,000 non-overlapping grids),
//! units, and N cases over the past year with 3–6 history steps, follow-ups, overdue, returned
//! and reworked ones. Deterministic (fixed seed); batched multi-row inserts in large
//! transactions; the rollups are rebuilt at the end with one GROUP BY.
//!
//! Not generated: search terms and reporters' personal data (encrypting 25 million phone
//! numbers would measure the cipher, not the system).

use std::time::Instant;

use serde::Serialize;
use sqlx::Executor;

use crate::app::AppState;
use crate::db::rows::Val;
use crate::db::{Tx, get, now_ms};
use crate::error::{AppError, AppResult};
use crate::geo::{self, Point};

/// The root code of the scale data set.
pub const ROOT: &str = "110000";

/// How big to build.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Streets.
    pub streets: usize,
    /// Communities in all.
    pub communities: usize,
    /// Grids in all.
    pub grids: usize,
    /// Units.
    pub units: usize,
    /// Cases.
    pub cases: u64,
}

impl Scale {
    /// Beijing: 343 streets and towns, ~7,000 communities, ~60,000 grids, 22 million cases a
    /// year (the issue asks for 25 million by default).
    pub fn megacity(cases: u64) -> Scale {
        Scale { streets: 343, communities: 7_000, grids: 60_000, units: 300, cases }
    }
}

/// What was built, and how fast.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Grids created.
    pub grids: usize,
    /// Cases created.
    pub cases: u64,
    /// History rows created.
    pub history: u64,
    /// Seconds spent on cases.
    pub case_seconds: f64,
    /// Cases per second of the load itself.
    pub cases_per_second: f64,
    /// Seconds after the load: rollups counted and indexes built.
    pub finish_seconds: f64,
    /// Database growth per case, bytes (history included, no photos).
    pub bytes_per_case: f64,
}

async fn insert_rows(tx: &mut Tx, head: &str, cols: usize, rows: &[Vec<Val>]) -> AppResult<()> {
    Ok(crate::db::rows::insert_rows(tx, head, cols, rows, "").await?)
}

async fn ids(tx: &mut Tx, kind: &str) -> AppResult<Vec<(i64, String, String)>> {
    let rows = sqlx::query("SELECT id, code, path FROM nodes WHERE kind = $1 AND path LIKE '/110000/%' ORDER BY code")
        .bind(kind)
        .fetch_all(&mut *tx)
        .await?;
    rows.iter().map(|r| Ok((get(r, "id")?, get(r, "code")?, get(r, "path")?))).collect()
}

/// Builds the tree and units (idempotent: refuses if the root exists).
async fn tree(st: &AppState, s: Scale) -> AppResult<usize> {
    if crate::tree::store::find_by_code(&st.db, ROOT).await?.is_some() {
        return Err(AppError::Conflict("规模数据（110000）已存在".into()));
    }
    let now = now_ms();
    let mut tx = st.db.begin().await?;
    let node = |code: String, kind: &str, name: String, parent: Option<i64>, path: String, geom: Option<String>| {
        vec![
            Val::S(code),
            Val::S(kind.into()),
            Val::S(name),
            Val::O(parent),
            Val::S(path),
            geom.map(Val::S).unwrap_or(Val::N),
            Val::I(1),
            Val::I(now),
            Val::I(now),
        ]
    };
    let head = "INSERT INTO nodes (code, kind, name, parent_id, path, geometry, is_demo, created_at, updated_at)";
    insert_rows(&mut tx, head, 9, &[node(ROOT.into(), "county", "北京市（规模演示）".into(), None, format!("/{ROOT}/"), None)])
        .await?;
    let root_id: i64 = get(&sqlx::query("SELECT id FROM nodes WHERE code = $1").bind(ROOT).fetch_one(&mut tx).await?, "id")?;
    let streets: Vec<Vec<Val>> = (0..s.streets)
        .map(|i| {
            let code = format!("{ROOT}{:03}", i + 1);
            let path = format!("/{ROOT}/{code}/");
            node(code, "street", format!("第{}街道", i + 1), Some(root_id), path, None)
        })
        .collect();
    insert_rows(&mut tx, head, 9, &streets).await?;
    let streets = ids(&mut tx, "street").await?;
    // Communities on a square lattice around 116.4°E 39.9°N, 0.01° × 0.008° each.
    let side = (s.communities as f64).sqrt().ceil() as usize;
    let (w, h) = (0.01, 0.008);
    let origin = Point::new(116.4 - side as f64 * w / 2.0, 39.9 - side as f64 * h / 2.0);
    let mut comms = Vec::with_capacity(s.communities);
    let mut i = 0usize;
    for (si, (sid, scode, spath)) in streets.iter().enumerate() {
        let count = s.communities / s.streets + usize::from(si < s.communities % s.streets);
        for k in 0..count {
            let code = format!("{scode}{:03}", k + 1);
            let (col, row) = ((i % side) as f64, (i / side) as f64);
            let poly = geo::Polygon::rect(
                origin.lng + col * w,
                origin.lat + row * h,
                origin.lng + (col + 1.0) * w,
                origin.lat + (row + 1.0) * h,
            );
            comms.push(node(
                code.clone(),
                "community",
                format!("社区{i}"),
                Some(*sid),
                format!("{spath}{code}/"),
                Some(geo::polygon_to_geojson(&poly).to_string()),
            ));
            i += 1;
        }
    }
    insert_rows(&mut tx, head, 9, &comms).await?;
    let order: std::collections::HashMap<String, usize> = comms
        .iter()
        .enumerate()
        .filter_map(|(i, c)| match &c[0] {
            Val::S(code) => Some((code.clone(), i)),
            _ => None,
        })
        .collect();
    let comms = ids(&mut tx, "community").await?;
    let mut grids = Vec::with_capacity(s.grids);
    for (cid, ccode, cpath) in comms.iter() {
        let i = order[ccode];
        let n = s.grids / s.communities + usize::from(i < s.grids % s.communities);
        let (col, row) = ((i % side) as f64, (i / side) as f64);
        let min = Point::new(origin.lng + col * w, origin.lat + row * h);
        let max = Point::new(min.lng + w, min.lat + h);
        for (g, poly) in geo::split_rect(min, max, n).iter().enumerate() {
            let code = format!("{ccode}{:03}", g + 1);
            grids.push(node(
                code.clone(),
                "grid",
                format!("网格{}", g + 1),
                Some(*cid),
                format!("{cpath}{code}/"),
                Some(geo::polygon_to_geojson(poly).to_string()),
            ));
        }
    }
    let n_grids = grids.len();
    insert_rows(&mut tx, head, 9, &grids).await?;
    let units: Vec<Vec<Val>> = (0..s.units)
        .map(|i| {
            vec![
                Val::S(format!("BJ{:04}", i + 1)),
                Val::S(format!("规模演示单位{}", i + 1)),
                Val::S("部门".into()),
                Val::S(String::new()),
                Val::S(format!("/{ROOT}/")),
                Val::I(1),
                Val::I(now),
                Val::I(now),
            ]
        })
        .collect();
    insert_rows(
        &mut tx,
        "INSERT INTO units (code, name, kind, communities, node_path, is_demo, created_at, updated_at)",
        8,
        &units,
    )
    .await?;
    crate::tree::geometry::bump_grid_version(&mut tx).await?;
    tx.commit().await?;
    Ok(n_grids)
}

/// The steps a generated case went through, by its final status and whether it was returned
/// once by a unit and reworked once after a follow-up.
fn trail(status: &str, returned: bool, reworked: bool) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut t = vec![("submit", "", "submitted")];
    if status == "rejected" {
        t.push(("reject", "submitted", "rejected"));
        return t;
    }
    t.push(("register", "submitted", "registered"));
    if returned {
        t.push(("dispatch", "registered", "dispatched"));
        t.push(("return", "dispatched", "registered"));
    }
    t.push(("dispatch", "registered", "dispatched"));
    if status != "dispatched" {
        t.push(("accept", "dispatched", "accepted"));
    }
    if matches!(status, "finished" | "closed") {
        t.push(("finish", "accepted", "finished"));
    }
    if status == "closed" {
        if reworked {
            t.push(("follow_up", "finished", "followed_up"));
            t.push(("rework", "followed_up", "accepted"));
            t.push(("finish", "accepted", "finished"));
        }
        t.push(("follow_up", "finished", "followed_up"));
        t.push(("close", "followed_up", "closed"));
    }
    t
}

const STATUSES: [&str; 5] = ["rejected", "dispatched", "accepted", "finished", "closed"];

/// The lookup tables of [`scale_tables`].
const SCALE_TABLES: [&str; 4] = ["scale_grids", "scale_cats", "scale_steps", "scale_terms"];

/// Lookup tables the generating SQL joins against (dropped at the end).
async fn scale_tables(st: &AppState, grids: i64) -> AppResult<(i64, i64, i64)> {
    let mut tx = st.db.begin().await?;
    for t in SCALE_TABLES {
        tx.execute(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {t}"))).await?;
    }
    tx.execute("CREATE TABLE scale_grids (idx BIGINT PRIMARY KEY, code TEXT NOT NULL, path TEXT NOT NULL)").await?;
    tx.execute("CREATE TABLE scale_cats (idx BIGINT PRIMARY KEY, id BIGINT NOT NULL, sign_ms BIGINT NOT NULL, resolve_ms BIGINT NOT NULL)").await?;
    tx.execute("CREATE TABLE scale_terms (category_id BIGINT NOT NULL, term TEXT NOT NULL)").await?;
    tx.execute(
        "CREATE TABLE scale_steps (status TEXT NOT NULL, returned BIGINT NOT NULL, reworked BIGINT NOT NULL, seq BIGINT NOT NULL, \
         action TEXT NOT NULL, from_status TEXT NOT NULL, to_status TEXT NOT NULL)",
    )
    .await?;
    let rows = sqlx::query("SELECT code, path FROM nodes WHERE kind = 'grid' AND path LIKE '/110000/%' ORDER BY code")
        .fetch_all(&mut tx)
        .await?;
    let g: Vec<Vec<Val>> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| Ok(vec![Val::I(i as i64), Val::S(get(r, "code")?), Val::S(get(r, "path")?)]))
        .collect::<AppResult<_>>()?;
    if g.len() as i64 != grids {
        return Err(AppError::Conflict("规模数据的网格不完整".into()));
    }
    insert_rows(&mut tx, "INSERT INTO scale_grids (idx, code, path)", 3, &g).await?;
    let rows = sqlx::query("SELECT id, name, sign_hours, resolve_hours FROM categories ORDER BY id").fetch_all(&mut tx).await?;
    // Generated cases are searchable by their category's name (a few terms each: the whole
    // generated text would be ~15 postings per case, 375 million rows at 25 M cases).
    let mut terms = Vec::new();
    for r in &rows {
        let id: i64 = get(r, "id")?;
        for t in super::search::doc_terms(&get::<String>(r, "name")?) {
            terms.push(vec![Val::I(id), Val::S(t)]);
        }
    }
    insert_rows(&mut tx, "INSERT INTO scale_terms (category_id, term)", 2, &terms).await?;
    let c: Vec<Vec<Val>> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (sign, resolve): (f64, f64) = (get(r, "sign_hours")?, get(r, "resolve_hours")?);
            Ok(vec![Val::I(i as i64), Val::I(get(r, "id")?), Val::I((sign * 3.6e6) as i64), Val::I((resolve * 3.6e6) as i64)])
        })
        .collect::<AppResult<_>>()?;
    if c.is_empty() {
        return Err(AppError::Conflict("请先载入演示县（事项类别来自演示县）".into()));
    }
    insert_rows(&mut tx, "INSERT INTO scale_cats (idx, id, sign_ms, resolve_ms)", 4, &c).await?;
    let mut steps = Vec::new();
    for status in STATUSES {
        for (ret, rew) in [(false, false), (true, false), (false, true), (true, true)] {
            for (j, (a, f, t)) in trail(status, ret, rew).into_iter().enumerate() {
                let row = [Val::S(status.into()), Val::I(ret as i64), Val::I(rew as i64), Val::I(j as i64)];
                steps.push(row.into_iter().chain([Val::S(a.into()), Val::S(f.into()), Val::S(t.into())]).collect());
            }
        }
    }
    insert_rows(&mut tx, "INSERT INTO scale_steps (status, returned, reworked, seq, action, from_status, to_status)", 7, &steps)
        .await?;
    // Units were inserted by one statement, so their ids are consecutive on both engines.
    let r = sqlx::query("SELECT MIN(id) AS lo, COUNT(*) AS n, MAX(id) AS hi FROM units WHERE code LIKE 'BJ%'")
        .fetch_one(&mut tx)
        .await?;
    let (lo, n, hi): (i64, i64, i64) = (get(&r, "lo")?, get(&r, "n")?, get(&r, "hi")?);
    if hi - lo + 1 != n {
        return Err(AppError::Conflict("规模数据的单位编号不连续".into()));
    }
    tx.commit().await?;
    Ok((c.len() as i64, lo, n))
}

/// One batch of cases `lo..hi` (0-based), generated inside the database: every value is a
/// function of the case's index (multiplicative hashes), so no row crosses the driver and the
/// data set is the same on both engines and on every run.
fn case_sql(lo: u64, hi: u64, first_id: i64, total: u64, now: i64, grids: i64, (cats, unit0, units): (i64, i64, i64)) -> String {
    let span = 365 * 86_400_000 / total.max(1) as i64;
    let recent = now - 20 * 86_400_000;
    format!(
        "INSERT INTO cases (id, number, category_id, title, description, channel, status, grid_code, community_code, node_path, unit_id, \
         created_at, dispatched_at, accepted_at, finished_at, closed_at, sign_due, resolve_due, rework_count, return_count, contacted, \
         solved, satisfaction, version, updated_at, warn_level) \
         SELECT {first_id} + y.i, 'BJ-' || SUBSTR(CAST(10000000000 + y.i + 1 AS TEXT), 2), c.id, '规模演示事项', '规模演示事项', \
           CASE y.i % 4 WHEN 0 THEN 'resident_h5' WHEN 1 THEN 'hotline_12345' WHEN 2 THEN 'grid_visit' ELSE 'open311' END, \
           y.status, g.code, SUBSTR(g.code, 1, 12), g.path, \
           CASE WHEN y.status <> 'rejected' THEN {unit0} + y.hu % {units} END, \
           y.created, \
           CASE WHEN y.status <> 'rejected' THEN y.created + 3600000 END, \
           CASE WHEN y.status IN ('accepted', 'finished', 'closed') THEN y.created + 7200000 END, \
           CASE WHEN y.status IN ('finished', 'closed') THEN y.created + c.resolve_ms * (2 + 3 * y.late) / 2 END, \
           CASE WHEN y.status = 'closed' THEN y.created + c.resolve_ms * (2 + 3 * y.late) / 2 + 86400000 END, \
           CASE WHEN y.status <> 'rejected' THEN y.created + 3600000 + c.sign_ms END, \
           CASE WHEN y.status <> 'rejected' THEN y.created + c.resolve_ms * 9 / 5 END, \
           CASE WHEN y.status = 'closed' THEN y.rew ELSE 0 END, \
           CASE WHEN y.status <> 'rejected' THEN y.ret ELSE 0 END, \
           CASE WHEN y.status = 'closed' THEN 1 END, \
           CASE WHEN y.status = 'closed' THEN CASE WHEN y.hs = 0 THEN 0 ELSE 1 END END, \
           CASE WHEN y.status = 'closed' THEN CASE WHEN y.hs = 0 THEN 'unsatisfied' WHEN y.hs < 3 THEN 'basically_satisfied' ELSE 'satisfied' END END, \
           1, y.created, \
           CASE WHEN y.status IN ('dispatched', 'accepted') AND y.created + c.resolve_ms * 9 / 5 < {now} THEN 2 ELSE 0 END \
         FROM (SELECT x.*, CASE WHEN x.roll < 3 THEN 'rejected' WHEN x.created > {recent} AND x.roll < 21 THEN 'dispatched' \
                 WHEN x.created > {recent} AND x.roll < 41 THEN 'accepted' WHEN x.created > {recent} AND x.roll < 51 THEN 'finished' \
                 ELSE 'closed' END AS status \
               FROM (SELECT s.i, {now} - s.i * {span} - (s.i * 7919 + 13) % 3600000 AS created, \
                       (s.i * 2654435761) % 1000003 % {grids} AS hg, (s.i * 40503 + 7) % 65521 % {cats} AS hc, \
                       (s.i * 69069 + 1) % 65537 % {units} AS hu, (s.i * 48271) % 2147483647 % 100 AS roll, \
                       CASE WHEN (s.i * 16807 + 3) % 100003 % 100 < 8 THEN 1 ELSE 0 END AS late, \
                       CASE WHEN (s.i * 31337 + 5) % 100019 % 100 < 5 THEN 1 ELSE 0 END AS rew, \
                       CASE WHEN (s.i * 22695477 + 9) % 100043 % 100 < 5 THEN 1 ELSE 0 END AS ret, \
                       (s.i * 1103515245 + 12345) % 65519 % 10 AS hs \
                     FROM seq s) x) y \
         JOIN scale_grids g ON g.idx = y.hg JOIN scale_cats c ON c.idx = y.hc"
    )
    .replacen("INSERT INTO cases", &format!("WITH RECURSIVE seq(i) AS (SELECT CAST({lo} AS BIGINT) UNION ALL SELECT i + 1 FROM seq WHERE i < {}) INSERT INTO cases", hi - 1), 1)
}

/// Builds everything; `progress(done, total)` is called after every batch of cases.
pub async fn generate(st: &AppState, s: Scale, progress: &(dyn Fn(u64, u64) + Sync)) -> AppResult<Report> {
    let n_grids = tree(st, s).await?;
    let lookups = scale_tables(st, n_grids as i64).await?;
    let size0 = st.db.size_bytes().await?;
    let first_id: i64 =
        sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(id) FROM cases").fetch_one(&st.db.pool).await?.unwrap_or(0) + 1;
    let h0: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM case_history").fetch_one(&st.db.pool).await?;
    let now = now_ms();
    crate::db::indexes::set_aside(&st.db, &["cases", "case_history"]).await?;
    st.db.bulk_cache(true).await?;
    let t0 = Instant::now();
    let batch = 100_000u64;
    let mut done = 0u64;
    while done < s.cases {
        let n = batch.min(s.cases - done);
        let mut tx = st.db.begin().await?;
        let sql = case_sql(done, done + n, first_id, s.cases, now, n_grids as i64, lookups);
        tx.execute(sqlx::AssertSqlSafe(sql)).await?;
        let (lo, hi) = (first_id + done as i64, first_id + (done + n) as i64 - 1);
        let steps = format!(
            "INSERT INTO case_history (case_id, action, from_status, to_status, actor, at) \
             SELECT c.id, t.action, t.from_status, t.to_status, 'system:scale', c.created_at + t.seq * 21600000 \
             FROM cases c JOIN scale_steps t ON t.status = c.status AND t.returned = c.return_count AND t.reworked = c.rework_count \
             WHERE c.id BETWEEN {lo} AND {hi} ORDER BY c.id, t.seq"
        );
        tx.execute(sqlx::AssertSqlSafe(steps)).await?;
        let terms = format!(
            "INSERT INTO case_terms (term, case_id) SELECT t.term, c.id FROM cases c JOIN scale_terms t ON t.category_id = c.category_id \
             WHERE c.id BETWEEN {lo} AND {hi}"
        );
        tx.execute(sqlx::AssertSqlSafe(terms)).await?;
        tx.commit().await?;
        done += n;
        progress(done, s.cases);
    }
    let secs = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    st.db.bulk_cache(false).await?;
    let history = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM case_history").fetch_one(&st.db.pool).await? - h0;
    let mut tx = st.db.begin().await?;
    for t in SCALE_TABLES {
        tx.execute(sqlx::AssertSqlSafe(format!("DROP TABLE {t}"))).await?;
    }
    tx.commit().await?;
    st.db.fix_sequence("cases").await?;
    super::rollups::rebuild(&st.db).await?;
    tracing::info!("重建索引");
    st.db.bulk_cache(true).await?;
    crate::db::indexes::restore(&st.db).await?;
    st.db.bulk_cache(false).await?;
    st.grids.refresh(&st.db).await?;
    let size1 = st.db.size_bytes().await?;
    Ok(Report {
        grids: n_grids,
        cases: s.cases,
        history: history as u64,
        case_seconds: secs,
        cases_per_second: s.cases as f64 / secs.max(1e-9),
        finish_seconds: t1.elapsed().as_secs_f64(),
        bytes_per_case: (size1 - size0).max(0) as f64 / (s.cases.max(1) as f64),
    })
}
