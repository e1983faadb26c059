//! A Beijing-sized data set for scale work: `linli demo --scale megacity [--cases N]` builds a
//! tree under node `110000` (343 streets, ~7,000 communities, ~60,000 non-overlapping grids),
//! units, and N cases over the past year with their history (2–9 steps, 7 on average:
//! follow-ups, overdue, returned and reworked ones) and search postings (written after the
//! cases, in their key's order). Deterministic (every
//! value a hash of the case's index); rows computed on one thread while a connection of the
//! load's own appends them in large transactions ([`crate::db::bulk`]), the secondary indexes
//! set aside; the rollups are rebuilt at the end with one GROUP BY, then the indexes.
//!
//! Not generated: reporters' personal data (encrypting 25 million phone numbers would measure
//! the cipher, not the system).

use std::time::Instant;

use serde::Serialize;

use crate::app::AppState;
use crate::db::bulk::Loader;
use crate::db::rows::Val;
use crate::db::{Db, Tx, get, now_ms};
use crate::error::{AppError, AppResult};
use crate::geo::{self, Point};

mod load;

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

/// Refuses if a data set is there, finished or not.
async fn exists(db: &Db) -> AppResult<()> {
    match state(db).await? {
        None => Ok(()),
        Some(true) => Err(AppError::Conflict(format!("规模数据（{ROOT}）已存在"))),
        Some(false) => Err(AppError::Conflict(format!(
            "上次生成的规模数据（{ROOT}）没有完成。确认没有别的生成正在运行后，可用 linli demo --scale megacity --restart 清除后重新生成"
        ))),
    }
}

/// Whether a data set is there (`None` if not), and if so whether its load finished:
/// recorded (demo.scale), or, by a build from before that record, counted (the rollups are
/// rebuilt once all the cases are in).
async fn state(db: &Db) -> AppResult<Option<bool>> {
    if crate::tree::store::find_by_code(db, ROOT).await?.is_none() {
        return Ok(None);
    }
    let finished: i64 = sqlx::query_scalar(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM audit_log WHERE action = 'demo.scale') \
         OR EXISTS (SELECT 1 FROM case_cube WHERE dim = 'county' AND member = $1) THEN 1 ELSE 0 END",
    )
    .bind(ROOT)
    .fetch_one(&db.pool)
    .await?;
    Ok(Some(finished == 1))
}

/// Clears what an unfinished run left (killed, or stopped by a server opening the database:
/// a tree and part of its cases, which a new run refuses and `demo --reset` cannot remove).
/// A finished data set is not touched. The caller makes sure no run is still going.
pub async fn clear_unfinished(db: &Db) -> AppResult<()> {
    if state(db).await? != Some(false) {
        return Ok(());
    }
    tracing::warn!("清除上次没有完成的规模数据");
    let under = format!("/{ROOT}/%");
    let mut tx = db.begin_after_deferred().await?;
    let cases = "SELECT id FROM cases WHERE node_path LIKE $1";
    for table in ["case_terms", "case_history", "case_photos", "notifications"] {
        let sql = format!("DELETE FROM {table} WHERE case_id IN ({cases})");
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&under).execute(&mut tx).await?;
    }
    sqlx::query("DELETE FROM cases WHERE node_path LIKE $1").bind(&under).execute(&mut tx).await?;
    tx.forget_all_cases();
    sqlx::query("DELETE FROM units WHERE node_path LIKE $1 AND is_demo = 1").bind(&under).execute(&mut tx).await?;
    // One statement: the tree's own references (parent_id) are checked at its end.
    sqlx::query("DELETE FROM nodes WHERE path LIKE $1 OR code = $2").bind(&under).bind(ROOT).execute(&mut tx).await?;
    tx.commit().await?;
    super::rollups::rebuild(db).await?;
    Ok(())
}

/// Builds the tree and units (after [`exists`]; the unique node code refuses a second tree
/// even so, and its transaction leaves nothing behind).
async fn tree(db: &Db, s: Scale) -> AppResult<usize> {
    let now = now_ms();
    let mut tx = db.begin().await?;
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

/// What a progress report counts: the cases (with their history) are written first, then
/// their search postings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Cases written, of all.
    Cases,
    /// Search postings written, of all.
    Postings,
}

/// Builds everything; `progress(stage, done, total)` is called after every transaction of
/// cases and every batch of postings.
///
/// The load takes the state's database for itself ([`crate::db::bulk::Loader`]): the state's
/// handle is closed by the time this returns (on SQLite at once), so open the database again
/// to go on. Refused before anything is closed if the data set exists, and before anything
/// is written if another process has the SQLite database open.
pub async fn generate(st: AppState, s: Scale, progress: &(dyn Fn(Stage, u64, u64) + Sync)) -> AppResult<Report> {
    exists(&st.db).await?;
    // Not a tree without its cases because a server had the database open.
    let db = Loader::ensure_alone(&st.db).await.map_err(|e| match e {
        sqlx::Error::Protocol(m) => AppError::Conflict(m),
        e => e.into(),
    })?;
    let n_grids = tree(&db, s).await?;
    let size0 = db.size_bytes().await?;
    let first_id: i64 =
        sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(id) FROM cases").fetch_one(&db.pool).await?.unwrap_or(0) + 1;
    let plan = std::sync::Arc::new(load::Plan::read(&db, n_grids, first_id, s.cases, now_ms()).await?);
    crate::db::indexes::set_aside(&db, &["cases", "case_history"]).await?;
    let mut loader = Loader::open(&db).await?;
    // On PostgreSQL `db` is the state's handle, still open; on SQLite both are closed already.
    db.close().await;
    let t0 = Instant::now();
    // Rows are computed on a thread of their own, a batch ahead of the writer, in buffers
    // that go back and forth between the two (each ≈ 25 MB of values).
    let (send, mut batches) = tokio::sync::mpsc::channel::<load::Rows>(1);
    let (give_back, mut returned) = tokio::sync::mpsc::channel::<load::Rows>(3);
    let total = s.cases;
    let (cats, postings) = plan.categories(total);
    let maker = tokio::task::spawn_blocking(move || {
        let mut next = |fill: &mut dyn FnMut(&mut load::Rows)| {
            let mut rows = returned.try_recv().unwrap_or_default();
            rows.clear();
            fill(&mut rows);
            send.blocking_send(rows).is_ok() // not when the writer stopped on an error
        };
        let mut lo = 0;
        while lo < total {
            let hi = (lo + ROWS_PER_BATCH).min(total);
            if !next(&mut |rows| plan.rows(lo, hi, rows)) {
                return;
            }
            lo = hi;
        }
        let (mut at, mut left) = (load::Cursor::default(), postings);
        while left > 0 {
            let n = POSTINGS_PER_BATCH.min(left);
            if !next(&mut |rows| plan.postings(&cats, &mut at, n as usize, rows)) {
                return;
            }
            left -= n;
        }
    });
    let (mut done, mut in_tx, mut history, mut posted) = (0u64, 0u64, 0u64, 0u64);
    while done < s.cases || posted < postings {
        let rows = batches.recv().await.ok_or_else(|| AppError::Internal("规模数据生成线程意外退出".into()))?;
        if done == s.cases && posted == 0 {
            // The postings go in one transaction: the ones there before come back in their
            // places by its end, or, interrupted, were never gone.
            loader.clear("case_terms").await?;
        }
        rows.write(&mut loader).await?;
        in_tx += rows.cases_in();
        posted += rows.postings_in();
        history += rows.history_in();
        let _ = give_back.try_send(rows);
        if in_tx > 0 && (in_tx >= CASES_PER_TRANSACTION || done + in_tx == s.cases) {
            loader.commit().await?;
            done += std::mem::take(&mut in_tx);
            progress(Stage::Cases, done, s.cases);
        } else if posted > 0 {
            progress(Stage::Postings, posted, postings);
        }
    }
    loader.commit().await?;
    drop(batches);
    maker.await.map_err(|e| AppError::Internal(format!("规模数据生成线程失败：{e}")))?;
    let db = loader.finish().await?;
    let secs = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    db.fix_sequence("cases").await?;
    db.bulk_cache(true).await?;
    super::rollups::rebuild(&db).await?;
    tracing::info!("重建索引");
    crate::db::indexes::restore(&db).await?;
    db.bulk_cache(false).await?;
    db.analyze().await?;
    let size1 = db.size_bytes().await?;
    // On the record like any other load: `audit verify` also checks that no case is newer
    // than the newest entry.
    let summary = format!("生成规模演示数据：{n_grids} 个网格，{} 件事项", s.cases);
    let path = format!("/{ROOT}/");
    let ev = crate::audit::Event { action: "demo.scale", entity: "node", entity_id: ROOT, node_path: &path, summary: &summary };
    crate::audit::record(&db, &st.chain, &crate::audit::Actor::system("demo"), ev).await?;
    db.close().await;
    Ok(Report {
        grids: n_grids,
        cases: s.cases,
        history,
        case_seconds: secs,
        cases_per_second: s.cases as f64 / secs.max(1e-9),
        finish_seconds: t1.elapsed().as_secs_f64(),
        bytes_per_case: (size1 - size0).max(0) as f64 / (s.cases.max(1) as f64),
    })
}

/// Cases per batch of rows handed from the row maker to the writer.
const ROWS_PER_BATCH: u64 = 10_000;

/// Search postings per batch of rows (and per progress report).
const POSTINGS_PER_BATCH: u64 = 200_000;

/// Cases per transaction (and per progress report): large, so the load's commits and
/// checkpoints are few, yet an interrupted load loses little.
const CASES_PER_TRANSACTION: u64 = 100_000;
