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

use crate::app::AppState;
use crate::db::{Tx, get, now_ms};
use crate::demo::Rng;
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
    /// Cases per second.
    pub cases_per_second: f64,
    /// Database growth per case, bytes (history included, no photos).
    pub bytes_per_case: f64,
}

async fn insert_rows(tx: &mut Tx, head: &str, cols: usize, rows: &[Vec<Val>]) -> AppResult<()> {
    // Small statements: binding cost grows faster than linearly with the parameter count
    // (seen with SQLite: 30,000 parameters took a second per statement, 600 take milliseconds).
    let per = (600 / cols).max(1);
    for chunk in rows.chunks(per) {
        let mut sql = String::with_capacity(chunk.len() * cols * 5 + head.len());
        sql.push_str(head);
        sql.push_str(" VALUES ");
        let mut n = 0;
        for (i, _) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            for c in 0..cols {
                n += 1;
                if c > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("${n}"));
            }
            sql.push(')');
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            for v in row {
                q = match v {
                    Val::I(x) => q.bind(*x),
                    Val::O(x) => q.bind(*x),
                    Val::S(x) => q.bind(x.clone()),
                    Val::N => q.bind(None::<String>),
                };
            }
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// A bound value.
#[derive(Clone, Debug)]
enum Val {
    I(i64),
    O(Option<i64>),
    S(String),
    N,
}

async fn ids(tx: &mut Tx, kind: &str) -> AppResult<Vec<(i64, String, String)>> {
    let rows = sqlx::query("SELECT id, code, path FROM nodes WHERE kind = $1 AND path LIKE '/110000/%' ORDER BY code")
        .bind(kind)
        .fetch_all(&mut **tx)
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
    let root_id: i64 = get(&sqlx::query("SELECT id FROM nodes WHERE code = $1").bind(ROOT).fetch_one(&mut *tx).await?, "id")?;
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

/// Builds everything; `progress(done, total)` is called after every batch of cases.
pub async fn generate(st: &AppState, s: Scale, progress: &(dyn Fn(u64, u64) + Sync)) -> AppResult<Report> {
    let n_grids = tree(st, s).await?;
    let cats: Vec<(i64, f64)> = sqlx::query("SELECT id, resolve_hours FROM categories ORDER BY id")
        .fetch_all(&st.db.pool)
        .await?
        .iter()
        .map(|r| Ok((get(r, "id")?, get(r, "resolve_hours")?)))
        .collect::<AppResult<_>>()?;
    if cats.is_empty() {
        return Err(AppError::Conflict("请先载入演示县（事项类别来自演示县）".into()));
    }
    let grids: Vec<(String, String)> =
        sqlx::query("SELECT code, path FROM nodes WHERE kind = 'grid' AND path LIKE '/110000/%' ORDER BY code")
            .fetch_all(&st.db.pool)
            .await?
            .iter()
            .map(|r| Ok((get(r, "code")?, get(r, "path")?)))
            .collect::<AppResult<_>>()?;
    let units: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM units WHERE code LIKE 'BJ%' ORDER BY id").fetch_all(&st.db.pool).await?;
    let size0 = st.db.size_bytes().await?;
    let first_id: i64 =
        sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(id) FROM cases").fetch_one(&st.db.pool).await?.unwrap_or(0) + 1;
    let mut rng = Rng::new(110_000);
    let now = now_ms();
    let t0 = Instant::now();
    let mut history = 0u64;
    let batch = 20_000u64;
    let mut done = 0u64;
    while done < s.cases {
        let n = batch.min(s.cases - done);
        let mut cases = Vec::with_capacity(n as usize);
        let mut steps = Vec::with_capacity(n as usize * 5);
        for k in 0..n {
            let i = done + k;
            let id = first_id + i as i64;
            let (gcode, gpath) = &grids[rng.below(grids.len() as u64) as usize];
            let (cat, hours) = cats[rng.below(cats.len() as u64) as usize];
            let created = now - (i as f64 / s.cases as f64 * 365.0 * 86_400_000.0) as i64 - rng.below(3_600_000) as i64;
            let roll = rng.below(100);
            let recent = now - created < 20 * 86_400_000;
            let status = match (recent, roll) {
                (_, 0..=2) => "rejected",
                (true, 3..=20) => "dispatched",
                (true, 21..=40) => "accepted",
                (true, 41..=50) => "finished",
                _ => "closed",
            };
            let unit = units[rng.below(units.len() as u64) as usize];
            let due = created + (hours * 3_600_000.0 * 1.8) as i64;
            let late = rng.below(100) < 8;
            let fin = created + if late { (hours * 3_600_000.0 * 2.5) as i64 } else { (hours * 3_600_000.0) as i64 };
            let reworked = status == "closed" && rng.below(100) < 5;
            let returned = status != "rejected" && rng.below(100) < 5;
            let mut trail: Vec<(&str, &str, &str)> = vec![("submit", "", "submitted")];
            match status {
                "rejected" => trail.push(("reject", "submitted", "rejected")),
                _ => {
                    trail.push(("register", "submitted", "registered"));
                    if returned {
                        trail.push(("return", "dispatched", "registered"));
                    }
                    trail.push(("dispatch", "registered", "dispatched"));
                    if status != "dispatched" {
                        trail.push(("accept", "dispatched", "accepted"));
                    }
                    if matches!(status, "finished" | "closed") {
                        trail.push(("finish", "accepted", "finished"));
                    }
                    if reworked {
                        trail.push(("rework", "followed_up", "accepted"));
                        trail.push(("finish", "accepted", "finished"));
                    }
                    if status == "closed" {
                        trail.push(("follow_up", "finished", "followed_up"));
                        trail.push(("close", "followed_up", "closed"));
                    }
                }
            }
            let sat = match rng.below(10) {
                0 => "unsatisfied",
                1..=2 => "basically_satisfied",
                _ => "satisfied",
            };
            let closed = status == "closed";
            let dispatched = status != "rejected";
            let accepted = matches!(status, "accepted" | "finished" | "closed");
            let number = format!("BJ-{}-{:09}", chrono::Datelike::year(&super::calendar::local_date(created)), i + 1);
            cases.push(vec![
                Val::I(id),
                Val::S(number),
                Val::I(cat),
                Val::S("规模演示事项".into()),
                Val::S("规模演示事项".into()),
                Val::S(["resident_h5", "hotline_12345", "grid_visit", "open311"][(i % 4) as usize].into()),
                Val::S(status.into()),
                Val::S(gcode.clone()),
                Val::S(gcode[..12].to_string()),
                Val::S(gpath.clone()),
                Val::O(dispatched.then_some(unit)),
                Val::I(created),
                Val::O(dispatched.then_some(created + 3_600_000)),
                Val::O(accepted.then_some(created + 7_200_000)),
                Val::O(matches!(status, "finished" | "closed").then_some(fin)),
                Val::O(closed.then_some(fin + 86_400_000)),
                Val::O(dispatched.then_some(created + 4 * 3_600_000)),
                Val::O((status != "rejected").then_some(due)),
                Val::I(reworked as i64),
                Val::I(returned as i64),
                Val::O(closed.then_some(1)),
                Val::O(closed.then_some((sat != "unsatisfied") as i64)),
                if closed { Val::S(sat.into()) } else { Val::N },
                Val::I(trail.len() as i64),
                Val::I(created),
            ]);
            let span = 3_600_000 * 6;
            for (j, (a, f, t)) in trail.iter().enumerate() {
                steps.push(vec![
                    Val::I(id),
                    Val::S((*a).into()),
                    Val::S((*f).into()),
                    Val::S((*t).into()),
                    Val::S("system:scale".into()),
                    Val::I(created + j as i64 * span),
                ]);
            }
        }
        history += steps.len() as u64;
        let mut tx = st.db.begin().await?;
        insert_rows(
            &mut tx,
            "INSERT INTO cases (id, number, category_id, title, description, channel, status, grid_code, community_code, node_path, unit_id, created_at, \
             dispatched_at, accepted_at, finished_at, closed_at, sign_due, resolve_due, rework_count, return_count, contacted, solved, satisfaction, version, updated_at)",
            25,
            &cases,
        )
        .await?;
        insert_rows(&mut tx, "INSERT INTO case_history (case_id, action, from_status, to_status, actor, at)", 6, &steps).await?;
        tx.commit().await?;
        done += n;
        progress(done, s.cases);
    }
    let secs = t0.elapsed().as_secs_f64();
    st.db.fix_sequence("cases").await?;
    super::rollups::rebuild(&st.db).await?;
    st.grids.refresh(&st.db).await?;
    let size1 = st.db.size_bytes().await?;
    Ok(Report {
        grids: n_grids,
        cases: s.cases,
        history,
        case_seconds: secs,
        cases_per_second: s.cases as f64 / secs.max(1e-9),
        bytes_per_case: (size1 - size0).max(0) as f64 / (s.cases.max(1) as f64),
    })
}
