//! The cases of the scale data set and their history and search postings, computed in Rust
//! on one thread while the writer appends the previous batch on another.
//!
//! The postings come after all the cases, in their key's order (term, then case), with the
//! postings already in the database (the demo county's) taken out and merged into the stream
//! at their places: each one is then appended at the end of the `(term, case_id)` B-tree,
//! where a posting written beside its case, or before an older posting of a later term, lands
//! inside the tree (a search from the root for each, SQLite's uniqueness check included, and
//! pages split in the middle of the tree).
//!
//! Why not `INSERT … SELECT` inside the database (the earlier generator): SQLite evaluated the
//! thirty expressions of a case row in its bytecode interpreter at ≈ 9 µs a case, three times
//! what stepping a prepared INSERT costs, and all of it on the writer's one core. Every value
//! is a function of the case's index (multiplicative hashes), so the data set is the same on
//! both engines and on every run.

use crate::db::rows::Val;
use crate::db::{Db, get};
use crate::error::{AppError, AppResult};

/// The columns of a generated case.
const CASE_COLS: [&str; 26] = [
    "id",
    "number",
    "category_id",
    "title",
    "description",
    "channel",
    "status",
    "grid_code",
    "community_code",
    "node_path",
    "unit_id",
    "created_at",
    "dispatched_at",
    "accepted_at",
    "finished_at",
    "closed_at",
    "sign_due",
    "resolve_due",
    "rework_count",
    "return_count",
    "contacted",
    "solved",
    "satisfaction",
    "version",
    "updated_at",
    "warn_level",
];

/// The columns of a history step.
const HISTORY_COLS: [&str; 6] = ["case_id", "action", "from_status", "to_status", "actor", "at"];

/// The columns of a search posting.
const TERM_COLS: [&str; 2] = ["term", "case_id"];

/// A grid cases are spread over.
struct Grid {
    code: String,
    path: String,
}

/// A category, with the durations its deadlines come from and its search terms.
struct Cat {
    id: i64,
    sign_ms: i64,
    resolve_ms: i64,
    /// Its terms, as places in [`Plan::terms`].
    terms: Vec<usize>,
}

/// What every case row is computed from, read once before the load.
pub(super) struct Plan {
    grids: Vec<Grid>,
    cats: Vec<Cat>,
    /// Every category's terms, in order.
    terms: Vec<String>,
    /// The postings in the database before the load, in their key's order.
    old: Vec<(String, i64)>,
    unit0: i64,
    units: i64,
    first_id: i64,
    /// Milliseconds between two consecutive cases (the year spread over all of them).
    span: i64,
    now: i64,
}

impl Plan {
    /// Reads the generated tree's grids, the categories and the generated units.
    pub(super) async fn read(db: &Db, grids: usize, first_id: i64, total: u64, now: i64) -> AppResult<Plan> {
        let rows = sqlx::query("SELECT code, path FROM nodes WHERE kind = 'grid' AND path LIKE '/110000/%' ORDER BY code")
            .fetch_all(&db.pool)
            .await?;
        let g: Vec<Grid> =
            rows.iter().map(|r| Ok(Grid { code: get(r, "code")?, path: get(r, "path")? })).collect::<AppResult<_>>()?;
        if g.len() != grids {
            return Err(AppError::Conflict("规模数据的网格不完整".into()));
        }
        let rows =
            sqlx::query("SELECT id, name, sign_hours, resolve_hours FROM categories ORDER BY id").fetch_all(&db.pool).await?;
        // Generated cases are searchable by their category's name (a few terms each: the whole
        // generated text would be ~15 postings per case, 375 million rows at 25 M cases).
        let names: Vec<std::collections::BTreeSet<String>> =
            rows.iter().map(|r| Ok(crate::cases::search::doc_terms(&get::<String>(r, "name")?))).collect::<AppResult<_>>()?;
        let terms: Vec<String> = names.iter().flatten().cloned().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        let place = |t: &String| terms.binary_search(t).expect("a term of the set");
        let cats: Vec<Cat> = rows
            .iter()
            .zip(&names)
            .map(|(r, n)| {
                let (sign, resolve): (f64, f64) = (get(r, "sign_hours")?, get(r, "resolve_hours")?);
                let terms = n.iter().map(place).collect();
                Ok(Cat { id: get(r, "id")?, sign_ms: (sign * 3.6e6) as i64, resolve_ms: (resolve * 3.6e6) as i64, terms })
            })
            .collect::<AppResult<_>>()?;
        if cats.is_empty() {
            return Err(AppError::Conflict("请先载入演示县（事项类别来自演示县）".into()));
        }
        if cats.len() > usize::from(u16::MAX) {
            return Err(AppError::Conflict("事项类别过多，无法生成规模数据".into()));
        }
        // Units were inserted by one statement, so their ids are consecutive on both engines.
        let r = sqlx::query("SELECT MIN(id) AS lo, COUNT(*) AS n, MAX(id) AS hi FROM units WHERE code LIKE 'BJ%'")
            .fetch_one(&db.pool)
            .await?;
        let (lo, n, hi): (i64, i64, i64) = (get(&r, "lo")?, get(&r, "n")?, get(&r, "hi")?);
        if hi - lo + 1 != n || n == 0 {
            return Err(AppError::Conflict("规模数据的单位编号不连续".into()));
        }
        let span = 365 * 86_400_000 / total.max(1) as i64;
        // Sorted here, in the order of `terms` above (bytes), whatever the engine's collation.
        let mut old: Vec<(String, i64)> = sqlx::query_as("SELECT term, case_id FROM case_terms").fetch_all(&db.pool).await?;
        old.sort_unstable();
        Ok(Plan { grids: g, cats, terms, old, unit0: lo, units: n, first_id, span, now })
    }

    /// The rows of cases `lo..hi` (0-based), appended to `out`.
    pub(super) fn rows(&self, lo: u64, hi: u64, out: &mut Rows) {
        for i in lo..hi {
            self.case(i as i64, out);
        }
    }

    /// The place in `cats` of case `i`'s category.
    fn category(&self, i: i64) -> usize {
        ((i * 40_503 + 7) % 65_521 % self.cats.len() as i64) as usize
    }

    /// Every case's category (as [`Plan::category`]) and how many postings the load writes in
    /// all: the cases' and the ones in the database before.
    pub(super) fn categories(&self, total: u64) -> (Vec<u16>, u64) {
        let cats: Vec<u16> = (0..total as i64).map(|i| self.category(i) as u16).collect();
        let postings: u64 = cats.iter().map(|&c| self.cats[usize::from(c)].terms.len() as u64).sum();
        (cats, postings + self.old.len() as u64)
    }

    /// Appends the next `max` search postings (fewer at the end) to `out.terms`, from where
    /// `at` stands, in their key's order: term, then case; the ones in the database before
    /// in their places. `cats` is [`Plan::categories`].
    pub(super) fn postings(&self, cats: &[u16], at: &mut Cursor, max: usize, out: &mut Rows) {
        let mut n = 0;
        while at.term < self.terms.len() && n < max {
            let has: Vec<bool> = self.cats.iter().map(|c| c.terms.contains(&at.term)).collect();
            let term = &self.terms[at.term];
            n += self.old_postings(Some(term), at, max - n, out);
            while at.case < cats.len() && n < max {
                if has[usize::from(cats[at.case])] {
                    out.terms.extend([Val::S(term.clone()), Val::I(self.first_id + at.case as i64)]);
                    n += 1;
                }
                at.case += 1;
            }
            if at.case == cats.len() {
                (at.term, at.case) = (at.term + 1, 0);
            }
        }
        self.old_postings(None, at, max - n, out);
    }

    /// Appends up to `max` of the postings there before, from where `at` stands, up to those
    /// of term `upto` (all of them when `None`); returns how many.
    fn old_postings(&self, upto: Option<&String>, at: &mut Cursor, max: usize, out: &mut Rows) -> usize {
        let rest = &self.old[at.old..];
        // Within a term the older cases come first: their ids are below `first_id`.
        let n = rest.iter().take(max).take_while(|(t, _)| upto.is_none_or(|u| t <= u)).count();
        out.terms.extend(rest[..n].iter().flat_map(|(t, id)| [Val::S(t.clone()), Val::I(*id)]));
        at.old += n;
        n
    }

    /// One case and its history.
    fn case(&self, i: i64, out: &mut Rows) {
        const HOUR: i64 = 3_600_000;
        const DAY: i64 = 86_400_000;
        let created = self.now - i * self.span - (i * 7919 + 13) % HOUR;
        let g = &self.grids[((i * 2_654_435_761) % 1_000_003 % self.grids.len() as i64) as usize];
        let c = &self.cats[self.category(i)];
        let unit = self.unit0 + (i * 69_069 + 1) % 65_537 % self.units;
        let roll = (i * 48_271) % 2_147_483_647 % 100;
        let late = i64::from((i * 16_807 + 3) % 100_003 % 100 < 8);
        let rew = i64::from((i * 31_337 + 5) % 100_019 % 100 < 5);
        let ret = i64::from((i * 22_695_477 + 9) % 100_043 % 100 < 5);
        let hs = (i * 1_103_515_245 + 12_345) % 65_519 % 10;
        let recent = created > self.now - 20 * DAY;
        let status = match roll {
            0..3 => "rejected",
            3..21 if recent => "dispatched",
            21..41 if recent => "accepted",
            41..51 if recent => "finished",
            _ => "closed",
        };
        let handled = status != "rejected";
        let closed = status == "closed";
        let done_at = created + c.resolve_ms * (2 + 3 * late) / 2;
        let resolve_due = created + c.resolve_ms * 9 / 5;
        let when = |yes: bool, v: i64| Val::O(yes.then_some(v));
        let id = self.first_id + i;
        let (rew, ret) = (if closed { rew } else { 0 }, if handled { ret } else { 0 });
        out.cases.extend([
            Val::I(id),
            Val::S(format!("BJ-{:010}", i + 1)),
            Val::I(c.id),
            Val::T("规模演示事项"),
            Val::T("规模演示事项"),
            Val::T(["resident_h5", "hotline_12345", "grid_visit", "open311"][(i % 4) as usize]),
            Val::T(status),
            Val::S(g.code.clone()),
            Val::S(g.code[..12].to_owned()),
            Val::S(g.path.clone()),
            when(handled, unit),
            Val::I(created),
            when(handled, created + HOUR),
            when(matches!(status, "accepted" | "finished" | "closed"), created + 2 * HOUR),
            when(matches!(status, "finished" | "closed"), done_at),
            when(closed, done_at + DAY),
            when(handled, created + HOUR + c.sign_ms),
            when(handled, resolve_due),
            Val::I(rew),
            Val::I(ret),
            when(closed, 1),
            when(closed, i64::from(hs != 0)),
            match (closed, hs) {
                (false, _) => Val::N,
                (true, 0) => Val::T("unsatisfied"),
                (true, 1..3) => Val::T("basically_satisfied"),
                (true, _) => Val::T("satisfied"),
            },
            Val::I(1),
            Val::I(created),
            Val::I(if matches!(status, "dispatched" | "accepted") && resolve_due < self.now { 2 } else { 0 }),
        ]);
        for (seq, (action, from, to)) in super::trail(status, ret > 0, rew > 0).into_iter().enumerate() {
            let at = created + seq as i64 * 6 * HOUR;
            out.history.extend([Val::I(id), Val::T(action), Val::T(from), Val::T(to), Val::T("system:scale"), Val::I(at)]);
        }
    }
}

/// A batch of generated rows, each table's values one row after the other.
#[derive(Default)]
pub(super) struct Rows {
    /// Cases, a value for each of [`CASE_COLS`].
    pub cases: Vec<Val>,
    /// History steps, six values each.
    pub history: Vec<Val>,
    /// Search postings, two values each.
    pub terms: Vec<Val>,
}

/// Where the postings written so far end: the term (a place in [`Plan::terms`]), the next
/// case (0-based) to look at for it, and the next of the postings there before.
#[derive(Default)]
pub(super) struct Cursor {
    term: usize,
    case: usize,
    old: usize,
}

impl Rows {
    /// Appends the batch inside `load`.
    pub(super) async fn write(&self, load: &mut crate::db::bulk::Loader) -> AppResult<()> {
        load.append("cases", &CASE_COLS, &self.cases).await?;
        load.append("case_history", &HISTORY_COLS, &self.history).await?;
        load.append("case_terms", &TERM_COLS, &self.terms).await?;
        Ok(())
    }

    /// Cases in the batch.
    pub(super) fn cases_in(&self) -> u64 {
        (self.cases.len() / CASE_COLS.len()) as u64
    }

    /// Search postings in the batch.
    pub(super) fn postings_in(&self) -> u64 {
        (self.terms.len() / TERM_COLS.len()) as u64
    }

    /// History steps in the batch.
    pub(super) fn history_in(&self) -> u64 {
        (self.history.len() / HISTORY_COLS.len()) as u64
    }

    /// Empties the batch, keeping its memory for the next one (fresh memory for every batch
    /// cost the writer's core 7 % in page faults).
    pub(super) fn clear(&mut self) {
        self.cases.clear();
        self.history.clear();
        self.terms.clear();
    }
}
