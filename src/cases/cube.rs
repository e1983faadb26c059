//! The coarse rollups ("cube") that rates and rankings read, so that a month by street or a
//! year by unit costs the same with 25 million cases as with 1,500: the counters of
//! [`super::rollups`] summed per dimension (county, street, community, unit) and grain (a day,
//! or a block of [`BLOCK`] days). A period is read as whole blocks plus the days at its edges.
//! Kept in the same transaction as every change (one multi-row upsert per batch, see
//! [`rollups::Deltas`]); rebuilt and verified from the fine rollups.

use std::collections::BTreeMap;

use super::rates::Counts;
use super::rollups::{self, Key};
use crate::db::{Db, Row, Tx, get};
use crate::error::AppResult;

/// Days per block of the coarse grain.
pub const BLOCK: i64 = 32;

/// Dimensions of the cube.
pub const DIMS: [&str; 4] = ["county", "street", "community", "unit"];

/// One cell.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cell {
    /// county | street | community | unit
    pub dim: String,
    /// 1 (day) or [`BLOCK`].
    pub grain: i64,
    /// Day number, or day number ÷ [`BLOCK`].
    pub period: i64,
    /// Area code, or `<county code>:<unit id>`.
    pub member: String,
}

/// The cells a fine rollup key counts in.
pub fn cells(k: &Key) -> Vec<Cell> {
    let c = k.community.as_str();
    let county = c.get(..6).unwrap_or(c);
    let mut members =
        vec![("county", county.to_string()), ("street", c.get(..9).unwrap_or(c).to_string()), ("community", c.into())];
    if k.unit > 0 {
        members.push(("unit", format!("{county}:{}", k.unit)));
    }
    let mut out = Vec::with_capacity(members.len() * 2);
    for (dim, member) in members {
        for (grain, period) in [(1, k.day), (BLOCK, k.day.div_euclid(BLOCK))] {
            out.push(Cell { dim: dim.into(), grain, period, member: member.clone() });
        }
    }
    out
}

/// The cell changes of fine rollup changes (merged per cell, zeros dropped).
pub fn cells_of<'a>(fine: impl Iterator<Item = (&'a Key, &'a Counts)>) -> BTreeMap<Cell, Counts> {
    let mut delta: BTreeMap<Cell, Counts> = BTreeMap::new();
    for (k, c) in fine {
        for cell in cells(k) {
            let e = delta.entry(cell).or_default();
            *e = rollups::sum(e, c);
        }
    }
    delta.retain(|_, c| *c != Counts::default());
    delta
}

/// The cube recounted from the fine rollups: one SELECT per dimension and grain.
pub fn recount_sql() -> Vec<String> {
    let sums = rollups::sum_columns("");
    let mut out = Vec::new();
    for (dim, member, cond) in [
        ("county", "SUBSTR(community_code, 1, 6)", "1 = 1"),
        ("street", "SUBSTR(community_code, 1, 9)", "1 = 1"),
        ("community", "community_code", "1 = 1"),
        ("unit", "SUBSTR(community_code, 1, 6) || ':' || CAST(unit_id AS TEXT)", "unit_id > 0"),
    ] {
        for (grain, period) in [(1, "day".to_string()), (BLOCK, format!("day / {BLOCK}"))] {
            out.push(format!(
                "SELECT CAST('{dim}' AS TEXT) AS dim, CAST({grain} AS BIGINT) AS grain, {period} AS period, {member} AS member, {} \
                 FROM case_rollups WHERE {cond} GROUP BY {period}, {member}",
                sums
            ));
        }
    }
    out
}

/// Replaces the cube with sums of the fine rollups, inside `tx` (after they were rebuilt).
pub async fn rebuild_in(tx: &mut Tx) -> AppResult<usize> {
    sqlx::query("DELETE FROM case_cube").execute(&mut *tx).await?;
    let mut n = 0;
    for select in recount_sql() {
        let sql = format!("INSERT INTO case_cube (dim, grain, period, member, {}) {select}", rollups::names().join(", "));
        n += sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await?.rows_affected() as usize;
    }
    Ok(n)
}

/// The periods that cover the days `a..=b` exactly: edge days and whole blocks between.
pub fn cover(a: i64, b: i64) -> (Vec<i64>, Option<(i64, i64)>) {
    if a > b {
        return (Vec::new(), None);
    }
    let (fb, lb) = ((a + BLOCK - 1).div_euclid(BLOCK), (b + 1).div_euclid(BLOCK) - 1);
    if fb > lb {
        return ((a..=b).collect(), None);
    }
    let days = (a..fb * BLOCK).chain((lb + 1) * BLOCK..=b).collect();
    (days, Some((fb, lb)))
}

/// Sums per member of `dim` whose member starts with `prefix`, over the days `from..=to`
/// (open ends: everything).
pub async fn sums(db: &Db, dim: &str, prefix: &str, from: Option<i64>, to: Option<i64>) -> AppResult<Vec<(String, Counts)>> {
    let (days, blocks) = match (from, to) {
        (None, None) => (Vec::new(), Some((i64::MIN / 2, i64::MAX / 2))),
        (a, b) => cover(a.unwrap_or(0), b.unwrap_or_else(|| rollups::day_of(crate::db::now_ms()) + 1)),
    };
    let cols = rollups::names().join(", ");
    // Member ranges and IN lists of periods keep every branch an index seek on
    // (dim, grain, period, member), whatever the scope.
    let where_member = "dim = $1 AND member >= $2 AND member < $3";
    let mut parts = Vec::new();
    if !days.is_empty() {
        let list: Vec<String> = days.iter().map(i64::to_string).collect();
        parts.push(format!(
            "SELECT member, {cols} FROM case_cube WHERE {where_member} AND grain = 1 AND period IN ({})",
            list.join(",")
        ));
    }
    if let Some((x, y)) = blocks {
        parts.push(format!(
            "SELECT member, {cols} FROM case_cube WHERE {where_member} AND grain = {BLOCK} AND period BETWEEN {x} AND {y}"
        ));
    }
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT r.member AS member, {} FROM ({}) r GROUP BY r.member",
        rollups::sum_columns("r."),
        parts.join(" UNION ALL ")
    );
    let rows: Vec<Row> = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(dim)
        .bind(prefix)
        .bind(crate::db::prefix_end(prefix))
        .fetch_all(db.read())
        .await?;
    rows.iter().map(|r| Ok((get(r, "member")?, rollups::counts_of(r)?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cover_is_exact() {
        for (a, b) in [(0, 0), (5, 40), (31, 64), (32, 63), (100, 465), (7, 7), (30, 33)] {
            let (days, blocks) = cover(a, b);
            let mut covered: Vec<i64> = days.clone();
            if let Some((x, y)) = blocks {
                for blk in x..=y {
                    covered.extend(blk * BLOCK..(blk + 1) * BLOCK);
                }
            }
            covered.sort();
            assert_eq!(covered, (a..=b).collect::<Vec<_>>(), "{a}..={b}");
            assert!(days.len() <= 2 * (BLOCK as usize - 1) || blocks.is_none(), "{a}..={b}");
        }
        // A year is a dozen blocks and at most 62 edge days.
        let (days, blocks) = cover(20_000, 20_364);
        let (x, y) = blocks.unwrap();
        assert!(days.len() <= 62 && y - x + 1 >= 10);
    }

    #[test]
    fn cells_of_a_key() {
        let k = Key { day: 100, community: "520627001001".into(), unit: 7, category: 3 };
        let cs = cells(&k);
        assert_eq!(cs.len(), 8);
        assert!(cs.contains(&Cell { dim: "unit".into(), grain: BLOCK, period: 3, member: "520627:7".into() }));
        assert!(cs.contains(&Cell { dim: "street".into(), grain: 1, period: 100, member: "520627001".into() }));
        let none = Key { unit: 0, ..k };
        assert_eq!(cells(&none).len(), 6);
    }
}
