//! Incremental rollups: the counters of the rates per (local creation day, community, unit,
//! category), kept current in the same transaction as every change of a case, so rates and
//! rankings never scan the case table. A change subtracts the case's old contribution and adds
//! its new one; `verify` recounts from the cases and `rebuild` replaces the table.

use std::collections::BTreeMap;

use super::rates::Counts;
use crate::db::rows::{Val, insert_rows};
use crate::db::{Db, Deferred, Finish, Row, Tx, get};
use crate::error::AppResult;

/// Where a case's contribution is counted.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// Local (UTC+8) day of creation, as days since 1970-01-01.
    pub day: i64,
    /// Community code.
    pub community: String,
    /// Unit id (0: none).
    pub unit: i64,
    /// Category id.
    pub category: i64,
}

/// The day number of a timestamp in Asia/Shanghai.
pub fn day_of(ms: i64) -> i64 {
    (ms + 8 * 3_600_000).div_euclid(86_400_000)
}

const COLS: &str = "created_at, community_code, unit_id, category_id, status, contacted, solved, satisfaction, finished_at, resolve_due, \
     rework_count, dispatched_at, extension_count, accepted_at, sign_due, warn_level";

/// A case's contribution, computed by the same rules as [`super::rates`], from a row holding
/// the columns of `COLS` (as [`super::ROW_COLS`] does). Rejected and voided cases count nowhere.
pub(super) fn contribution(r: &Row) -> AppResult<Option<(Key, Counts)>> {
    let status: String = get(r, "status")?;
    if status == "rejected" || status == "voided" {
        return Ok(None);
    }
    let opt = |c: &str| get::<Option<i64>>(r, c);
    let contacted = opt("contacted")?;
    let sat: Option<String> = get(r, "satisfaction")?;
    let closed = status == "closed";
    let finished_at = opt("finished_at")?;
    let resolve_due = opt("resolve_due")?;
    let accepted_at = opt("accepted_at")?;
    let sign_due = opt("sign_due")?;
    let rework = get::<i64>(r, "rework_count")? > 0;
    let le = |a: Option<i64>, b: Option<i64>| matches!((a, b), (Some(x), Some(y)) if x <= y);
    let c = Counts {
        cases: 1,
        valid: contacted.is_some() as i64,
        contacted: (contacted == Some(1)) as i64,
        solved: (opt("solved")? == Some(1)) as i64,
        satisfied: (sat.as_deref() == Some("satisfied")) as i64,
        basic: (sat.as_deref() == Some("basically_satisfied")) as i64,
        closed: closed as i64,
        on_time: (closed && le(finished_at, resolve_due)) as i64,
        finished: (matches!(status.as_str(), "finished" | "followed_up" | "closed") || rework) as i64,
        reworked: rework as i64,
        dispatched: opt("dispatched_at")?.is_some() as i64,
        extended: (get::<i64>(r, "extension_count")? > 0) as i64,
        accepted: accepted_at.is_some() as i64,
        signed_in_time: le(accepted_at, sign_due) as i64,
        overdue: (matches!(status.as_str(), "registered" | "dispatched" | "accepted") && get::<i64>(r, "warn_level")? >= 2)
            as i64,
    };
    let key = Key {
        day: day_of(get(r, "created_at")?),
        community: get(r, "community_code")?,
        unit: opt("unit_id")?.unwrap_or(0),
        category: get(r, "category_id")?,
    };
    Ok(Some((key, c)))
}

/// The contribution of a case just submitted (nothing but `cases`): lets creation skip reading
/// the row back. `verify` (and its property test) would catch a drift from [`contribution`].
pub fn submitted(created_at: i64, community: &str, category: i64) -> (Key, Counts) {
    let key = Key { day: day_of(created_at), community: community.to_string(), unit: 0, category };
    (key, Counts { cases: 1, ..Counts::default() })
}

/// Counts a newly submitted case (at the end of the batch, see [`Deltas`]).
pub fn track_new(tx: &mut Tx, new: (Key, Counts)) {
    tx.cases_moved();
    tx.defer::<Deltas>().add(&new.0, &new.1, 1);
}

/// Changes a case (`SET` list `set`, with `$1` its id and `$2` the version it must still
/// have) and returns its new contribution in the same statement; `None` when the version
/// moved on.
pub async fn update(tx: &mut Tx, set: &str, args: Vec<Val>) -> AppResult<Option<Option<(Key, Counts)>>> {
    Ok(update_returning(tx, set, args, "").await?.map(|(counted, _)| counted))
}

/// [`update`], also returning the columns `also` (a select list starting with a comma, of
/// unqualified columns: SQLite's `RETURNING` takes no table alias) in the same row.
pub async fn update_returning(
    tx: &mut Tx,
    set: &str,
    args: Vec<Val>,
    also: &str,
) -> AppResult<Option<(Option<(Key, Counts)>, Row)>> {
    let sql = format!(
        "UPDATE cases SET {set} WHERE id = $1 AND version = $2 RETURNING id AS changed_id, version AS changed_version, {COLS}{also}"
    );
    let q = args.iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql)), crate::db::rows::bind);
    match q.fetch_optional(&mut *tx).await? {
        Some(r) => {
            // Before the commit: a copy read meanwhile is older, and is not kept.
            tx.case_changed(get(&r, "changed_id")?, get(&r, "changed_version")?);
            Ok(Some((contribution(&r)?, r)))
        }
        None => Ok(None),
    }
}

/// The counters with their column names.
pub fn fields(c: &Counts) -> [(&'static str, i64); 15] {
    [
        ("cases", c.cases),
        ("valid", c.valid),
        ("contacted", c.contacted),
        ("solved", c.solved),
        ("satisfied", c.satisfied),
        ("basic", c.basic),
        ("closed", c.closed),
        ("on_time", c.on_time),
        ("finished", c.finished),
        ("reworked", c.reworked),
        ("dispatched", c.dispatched),
        ("extended", c.extended),
        ("accepted", c.accepted),
        ("signed_in_time", c.signed_in_time),
        ("overdue", c.overdue),
    ]
}

/// The counter column names, in the order of [`fields`].
pub fn names() -> [&'static str; 15] {
    fields(&Counts::default()).map(|(n, _)| n)
}

/// `CAST(SUM(<alias>n) AS BIGINT) AS n` for every counter: the select list of any sum over
/// rollup rows (`alias` is `""` or a table alias with its dot).
pub fn sum_columns(alias: &str) -> String {
    names().map(|n| format!("CAST(SUM({alias}{n}) AS BIGINT) AS {n}")).join(", ")
}

/// The counters, mutable, in the order of [`fields`].
pub fn fields_mut(c: &mut Counts) -> [(&'static str, &mut i64); 15] {
    [
        ("cases", &mut c.cases),
        ("valid", &mut c.valid),
        ("contacted", &mut c.contacted),
        ("solved", &mut c.solved),
        ("satisfied", &mut c.satisfied),
        ("basic", &mut c.basic),
        ("closed", &mut c.closed),
        ("on_time", &mut c.on_time),
        ("finished", &mut c.finished),
        ("reworked", &mut c.reworked),
        ("dispatched", &mut c.dispatched),
        ("extended", &mut c.extended),
        ("accepted", &mut c.accepted),
        ("signed_in_time", &mut c.signed_in_time),
        ("overdue", &mut c.overdue),
    ]
}

/// Reads the counter columns of a row (rollup rows and sums over them; NULL sums are 0).
pub fn counts_of(r: &Row) -> AppResult<Counts> {
    let mut c = Counts::default();
    for (name, v) in fields_mut(&mut c) {
        *v = get::<Option<i64>>(r, name)?.unwrap_or(0);
    }
    Ok(c)
}

/// Counter-wise sum.
pub fn sum(a: &Counts, b: &Counts) -> Counts {
    let mut out = *a;
    for ((_, o), (_, v)) in fields_mut(&mut out).into_iter().zip(fields(b)) {
        *o += v;
    }
    out
}

/// A difference found by [`verify`].
#[derive(Clone, Debug)]
pub struct Diff {
    /// Which counter row, in words.
    pub what: String,
    /// What is stored.
    pub have: Counts,
    /// What a recount says.
    pub want: Counts,
}

impl Diff {
    /// The counters that differ, as `名称 现有→应为`, for the operator.
    pub fn changes(&self) -> String {
        fields(&self.have)
            .iter()
            .zip(fields(&self.want))
            .filter(|((_, h), (_, w))| h != w)
            .map(|((name, h), (_, w))| format!("{} {h}→{w}", counter_label(name)))
            .collect::<Vec<_>>()
            .join("，")
    }
}

/// A counter's name in Chinese.
fn counter_label(name: &str) -> &'static str {
    match name {
        "cases" => "事项数",
        "valid" => "有效回访",
        "contacted" => "联系上",
        "solved" => "已解决",
        "satisfied" => "满意",
        "basic" => "基本满意",
        "closed" => "已办结",
        "on_time" => "按时办结",
        "finished" => "已完成",
        "reworked" => "返工",
        "dispatched" => "已派单",
        "extended" => "延期",
        "accepted" => "已签收",
        "signed_in_time" => "按时签收",
        "overdue" => "超期",
        _ => "其他",
    }
}

/// A day number of the rollups (days since 1970-01-01 in Asia/Shanghai) as a date.
fn day_label(day: i64) -> String {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|d| d.checked_add_signed(chrono::TimeDelta::days(day)))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| day.to_string())
}

/// Rows of `table` (keyed by `key`) that differ from the rows `want` (a SELECT with the same
/// columns) computes, both ways, with `EXCEPT` in the database: verifying 25 million cases
/// must not load them. Stored rows that are all zero count as absent.
async fn except_diff(
    db: &Db,
    table: &str,
    key: &[&str],
    want: &str,
    name: impl Fn(&Row) -> AppResult<String>,
) -> AppResult<Vec<Diff>> {
    let names = names();
    let cols = key.iter().chain(names.iter()).copied().collect::<Vec<_>>().join(", ");
    let nonzero = names.iter().map(|n| format!("{n} <> 0")).collect::<Vec<_>>().join(" OR ");
    let have = format!("SELECT {cols} FROM {table} WHERE {nonzero}");
    let mut by_key: BTreeMap<String, Diff> = BTreeMap::new();
    for (side, sql) in
        [(0, format!("SELECT {cols} FROM ({want}) w EXCEPT {have}")), (1, format!("{have} EXCEPT SELECT {cols} FROM ({want}) w"))]
    {
        // Scans whole tables by design: straight to the pool, not in place first.
        for r in sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&db.pool).await? {
            let what = name(&r)?;
            let d = by_key.entry(what.clone()).or_insert(Diff { what, have: Counts::default(), want: Counts::default() });
            if side == 0 {
                d.want = counts_of(&r)?;
            } else {
                d.have = counts_of(&r)?;
            }
        }
    }
    Ok(by_key.into_values().collect())
}

/// Differences between the stored rollups and a recount of the cases (the incremental rules of
/// [`contribution`] against the SQL of [`rebuild_in`]), then between the cube and the sums of
/// the fine rollups.
pub async fn verify(db: &Db) -> AppResult<Vec<Diff>> {
    let key = ["day", "community_code", "unit_id", "category_id"];
    let mut out = except_diff(db, "case_rollups", &key, &recount_sql(), |r| {
        Ok(format!(
            "{} 社区 {} 单位 #{} 类别 #{}",
            day_label(get::<i64>(r, "day")?),
            get::<String>(r, "community_code")?,
            get::<i64>(r, "unit_id")?,
            get::<i64>(r, "category_id")?
        ))
    })
    .await?;
    let cube = super::cube::recount_sql().join(" UNION ALL ");
    out.extend(
        except_diff(db, "case_cube", &["dim", "grain", "period", "member"], &cube, |r| {
            let dim = match get::<String>(r, "dim")?.as_str() {
                "county" => "全县",
                "street" => "街道",
                "community" => "社区",
                _ => "单位",
            };
            let (grain, period) = (get::<i64>(r, "grain")?, get::<i64>(r, "period")?);
            let when = if grain == 1 { day_label(period) } else { format!("{} 起 {grain} 天", day_label(period * grain)) };
            Ok(format!("按{dim}汇总 {} {when}", get::<String>(r, "member")?))
        })
        .await?,
    );
    Ok(out)
}

/// The fine rollups recounted from the cases: one SELECT … GROUP BY with the rules of
/// [`contribution`].
fn recount_sql() -> String {
    let sum = |cond: &str| format!("CAST(SUM(CASE WHEN {cond} THEN 1 ELSE 0 END) AS BIGINT)");
    let day = "CAST((created_at + 28800000) / 86400000 AS BIGINT)";
    let counters = [
        ("valid", "contacted IS NOT NULL"),
        ("contacted", "contacted = 1"),
        ("solved", "solved = 1"),
        ("satisfied", "satisfaction = 'satisfied'"),
        ("basic", "satisfaction = 'basically_satisfied'"),
        ("closed", "status = 'closed'"),
        ("on_time", "status = 'closed' AND finished_at <= resolve_due"),
        ("finished", "status IN ('finished', 'followed_up', 'closed') OR rework_count > 0"),
        ("reworked", "rework_count > 0"),
        ("dispatched", "dispatched_at IS NOT NULL"),
        ("extended", "extension_count > 0"),
        ("accepted", "accepted_at IS NOT NULL"),
        ("signed_in_time", "accepted_at <= sign_due"),
        ("overdue", "status IN ('registered', 'dispatched', 'accepted') AND warn_level >= 2"),
    ];
    let sums: Vec<String> = counters.iter().map(|(n, c)| format!("{} AS {n}", sum(c))).collect();
    format!(
        "SELECT {day} AS day, community_code, COALESCE(unit_id, 0) AS unit_id, category_id, CAST(COUNT(*) AS BIGINT) AS cases, {} \
         FROM cases WHERE status NOT IN ('rejected', 'voided') GROUP BY {day}, community_code, COALESCE(unit_id, 0), category_id",
        sums.join(", ")
    )
}

/// Replaces the rollups with a recount, inside `tx`. One INSERT … SELECT … GROUP BY, so it
/// scales to tens of millions of cases; the rules are the same as [`contribution`]'s, which
/// the property test checks through `verify`.
pub async fn rebuild_in(tx: &mut Tx) -> AppResult<usize> {
    // The recount includes every change made so far in the batch: their deltas are void.
    *tx.defer::<Deltas>() = Deltas { rebuilt: true, ..Deltas::default() };
    sqlx::query("DELETE FROM case_rollups").execute(&mut *tx).await?;
    let sql =
        format!("INSERT INTO case_rollups (day, community_code, unit_id, category_id, {}) {}", names().join(", "), recount_sql());
    let n = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await?.rows_affected() as usize;
    Ok(n + super::cube::rebuild_in(tx).await?)
}

/// Replaces the rollups with a recount.
pub async fn rebuild(db: &Db) -> AppResult<usize> {
    let mut tx = db.begin().await?;
    let n = rebuild_in(&mut tx).await?;
    tx.commit().await?;
    Ok(n)
}

/// The rollup changes of a transaction, then of a batch, merged per key and written at the end
/// of the batch (see [`crate::db::Deferred`]): one upsert of the fine rows and one of the cube
/// cells per batch, and the busiest rows (a day's county and street cells) locked on
/// PostgreSQL only for the commit.
#[derive(Debug, Default)]
pub struct Deltas {
    by_key: BTreeMap<Key, Counts>,
    /// Set by a rebuild, whose recount already holds every earlier change of the batch.
    rebuilt: bool,
}

impl Deltas {
    /// Adds `sign` × `c` at `key`.
    pub fn add(&mut self, key: &Key, c: &Counts, sign: i64) {
        let e = self.by_key.entry(key.clone()).or_default();
        for ((_, o), (_, v)) in fields_mut(e).into_iter().zip(fields(c)) {
            *o += v * sign;
        }
    }

    /// Moves a case's contribution from `before` to `after`.
    pub fn moved(&mut self, before: Option<&(Key, Counts)>, after: Option<&(Key, Counts)>) {
        if before == after {
            return;
        }
        if let Some((k, c)) = before {
            self.add(k, c, -1);
        }
        if let Some((k, c)) = after {
            self.add(k, c, 1);
        }
    }

    /// The fine rows that change, zeros dropped.
    pub fn changes(&self) -> impl Iterator<Item = (&Key, &Counts)> {
        self.by_key.iter().filter(|(_, c)| **c != Counts::default())
    }
}

/// `n = <table>.n + excluded.n` for every counter: an upsert that adds.
fn adding(table: &str) -> String {
    names().map(|n| format!("{n} = {table}.{n} + excluded.{n}")).join(", ")
}

impl Deferred for Deltas {
    const ORDER: u8 = 100;

    fn absorb(&mut self, later: Deltas) {
        if later.rebuilt {
            *self = later;
            return;
        }
        for (k, c) in later.by_key {
            let e = self.by_key.entry(k).or_default();
            *e = sum(e, &c);
        }
    }

    async fn write(self, at: &mut Finish<'_>) -> Result<(), sqlx::Error> {
        let counters = |c: &Counts| fields(c).map(|(_, v)| Val::I(v));
        let fine: Vec<Vec<Val>> = self
            .changes()
            .map(|(k, c)| {
                let mut row = vec![Val::I(k.day), Val::S(k.community.clone()), Val::I(k.unit), Val::I(k.category)];
                row.extend(counters(c));
                row
            })
            .collect();
        if fine.is_empty() {
            return Ok(());
        }
        let cols = names().join(", ");
        let head = format!("INSERT INTO case_rollups (day, community_code, unit_id, category_id, {cols})");
        let tail = format!("ON CONFLICT (day, community_code, unit_id, category_id) DO UPDATE SET {}", adding("case_rollups"));
        insert_rows(at, &head, 19, &fine, &tail).await?;
        let cells: Vec<Vec<Val>> = super::cube::cells_of(self.changes())
            .into_iter()
            .map(|(cell, c)| {
                let mut row = vec![Val::S(cell.dim), Val::I(cell.grain), Val::I(cell.period), Val::S(cell.member)];
                row.extend(counters(&c));
                row
            })
            .collect();
        let head = format!("INSERT INTO case_cube (dim, grain, period, member, {cols})");
        let tail = format!("ON CONFLICT (dim, grain, period, member) DO UPDATE SET {}", adding("case_cube"));
        insert_rows(at, &head, 19, &cells, &tail).await
    }
}
