//! The rates of 接诉即办 practice, per county, street, community or unit and period.
//!
//! Over the cases created in the period (rejected and voided ones excluded):
//! - valid follow-ups V = cases with a follow-up recorded (contacted is not null);
//! - 响应率 = contacted ÷ V; 解决率 = solved ÷ V;
//! - 满意率 = (满意 + 0.9 × 基本满意) ÷ V;
//! - composite = w_r × 响应率 + w_s × 解决率 + w_m × 满意率 (default weights 0.1 / 0.5 / 0.4,
//!   configurable in `settings` as `rate_weights` = "0.1,0.5,0.4");
//! - 结案率 = closed ÷ cases; 按期结案率 = closed with finished_at ≤ resolve_due ÷ closed;
//! - 返工率 = cases with a rework ÷ cases that reached 办结 at least once (finished, followed up, closed or reworked);
//! - 延期率 = cases with an approved extension ÷ cases dispatched at least once;
//! - 及时签收率 = accepted with accepted_at ≤ sign_due ÷ accepted.
//!
//! A rate with an empty denominator is reported as null. Read from the incremental rollups
//! ([`super::rollups`]), one GROUP BY over a few rows per day and community, never a scan of
//! the cases; `linli rollups verify` recounts them from the cases.

use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::{Perm, Principal};
use crate::db::get;
use crate::db::list::Where;
use crate::error::{AppError, AppResult};

/// Query of `GET /api/v1/rates`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RatesQuery {
    /// county | street | community | unit
    pub level: Option<String>,
    /// YYYY-MM-DD (inclusive).
    pub from: Option<String>,
    /// YYYY-MM-DD (inclusive).
    pub to: Option<String>,
}

/// One row of the ranking.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RateRow {
    /// Code of the street/community/unit (county code for the county).
    pub key: String,
    /// Name.
    pub name: String,
    /// Cases counted.
    pub cases: i64,
    /// Valid follow-ups.
    pub follow_ups: i64,
    /// 响应率
    pub response_rate: Option<f64>,
    /// 解决率
    pub solve_rate: Option<f64>,
    /// 满意率
    pub satisfaction_rate: Option<f64>,
    /// Weighted composite.
    pub composite: Option<f64>,
    /// 结案率
    pub close_rate: Option<f64>,
    /// 按期结案率
    pub on_time_rate: Option<f64>,
    /// 返工率
    pub rework_rate: Option<f64>,
    /// 延期率
    pub extension_rate: Option<f64>,
    /// 及时签收率
    pub sign_rate: Option<f64>,
    /// Rank by composite (1 = best); 0 when not ranked (see `ranked`).
    pub rank: i64,
    /// Ranked: at least [`MIN_FOLLOW_UPS`] answered follow-ups. Rows with fewer are listed
    /// after the ranked ones, unranked: a unit with two satisfied residents is not first.
    pub ranked: bool,
}

/// Answered follow-ups a row needs to be ranked.
pub const MIN_FOLLOW_UPS: i64 = 10;

/// Whether some rows are listed without a rank (the page says why).
pub fn some_unranked(rows: &[RateRow]) -> bool {
    rows.iter().any(|r| !r.ranked)
}

/// Raw counters of one group (also what the rollups of the scale issue keep).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counts {
    /// Cases.
    pub cases: i64,
    /// Follow-ups recorded.
    pub valid: i64,
    /// Contacted.
    pub contacted: i64,
    /// Solved.
    pub solved: i64,
    /// 满意.
    pub satisfied: i64,
    /// 基本满意.
    pub basic: i64,
    /// Closed.
    pub closed: i64,
    /// Closed on time.
    pub on_time: i64,
    /// Reached 办结.
    pub finished: i64,
    /// Reworked.
    pub reworked: i64,
    /// Dispatched.
    pub dispatched: i64,
    /// Extended.
    pub extended: i64,
    /// Accepted.
    pub accepted: i64,
    /// Accepted in time.
    pub signed_in_time: i64,
    /// Still running and past the deadline (red card from the SLA job): a state, not an
    /// event, so the overview reads the current overdue count from the cube.
    pub overdue: i64,
}

fn ratio(n: i64, d: i64) -> Option<f64> {
    (d > 0).then(|| (n as f64 / d as f64 * 10000.0).round() / 10000.0)
}

/// The formulas, applied to counters.
pub fn rates(c: &Counts, w: (f64, f64, f64), key: String, name: String) -> RateRow {
    let resp = ratio(c.contacted, c.valid);
    let solve = ratio(c.solved, c.valid);
    let sat = (c.valid > 0).then(|| ((c.satisfied as f64 + 0.9 * c.basic as f64) / c.valid as f64 * 10000.0).round() / 10000.0);
    let composite = match (resp, solve, sat) {
        (Some(r), Some(s), Some(m)) => Some(((w.0 * r + w.1 * s + w.2 * m) * 10000.0).round() / 10000.0),
        _ => None,
    };
    RateRow {
        key,
        name,
        cases: c.cases,
        follow_ups: c.valid,
        response_rate: resp,
        solve_rate: solve,
        satisfaction_rate: sat,
        composite,
        close_rate: ratio(c.closed, c.cases),
        on_time_rate: ratio(c.on_time, c.closed),
        rework_rate: ratio(c.reworked, c.finished),
        extension_rate: ratio(c.extended, c.dispatched),
        sign_rate: ratio(c.signed_in_time, c.accepted),
        rank: 0,
        ranked: c.valid >= MIN_FOLLOW_UPS && composite.is_some(),
    }
}

/// The configured weights of the composite.
pub async fn weights(st: &AppState) -> AppResult<(f64, f64, f64)> {
    let r = sqlx::query("SELECT value FROM settings WHERE key = 'rate_weights'").fetch_optional(st.db.read()).await?;
    let parsed = r.and_then(|r| get::<String>(&r, "value").ok()).and_then(|v| {
        let xs: Vec<f64> = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
        (xs.len() == 3).then(|| (xs[0], xs[1], xs[2]))
    });
    Ok(parsed.unwrap_or((0.1, 0.5, 0.4)))
}

/// Sets the weights of the composite (响应, 解决, 满意): each 0–1, together 1. The county's
/// choice (domain.md: the official weights are unpublished), audited.
pub async fn set_weights(st: &AppState, p: &Principal, w: (f64, f64, f64)) -> AppResult<()> {
    if p.role != crate::auth::Role::CountyAdmin {
        return Err(AppError::Forbidden);
    }
    let mut errs = crate::error::FieldErrors::default();
    for (key, name, v) in [("response", "响应率权重", w.0), ("solve", "解决率权重", w.1), ("satisfaction", "满意率权重", w.2)]
    {
        if !(0.0..=1.0).contains(&v) {
            errs.add(key, format!("{name}应在 0～1 之间"));
        }
    }
    if errs.0.is_empty() && ((w.0 + w.1 + w.2) - 1.0).abs() > 1e-6 {
        errs.add("satisfaction", format!("三项权重之和应为 1（现为 {}）", ((w.0 + w.1 + w.2) * 1000.0).round() / 1000.0));
    }
    errs.finish()?;
    let value = format!("{},{},{}", w.0, w.1, w.2);
    let mut tx = st.db.begin().await?;
    sqlx::query("INSERT INTO settings (key, value) VALUES ('rate_weights', $1) ON CONFLICT (key) DO UPDATE SET value = $1")
        .bind(&value)
        .execute(&mut tx)
        .await?;
    let summary = format!("综合得分权重：响应 {}、解决 {}、满意 {}", w.0, w.1, w.2);
    let ev = crate::audit::Event {
        action: "settings.rate_weights",
        entity: "settings",
        entity_id: "rate_weights",
        node_path: &p.scope_path,
        summary: &summary,
    };
    crate::audit::append(&mut tx, &st.chain, &p.actor(), ev);
    tx.commit().await?;
    Ok(())
}

/// The levels a scope's staff may rank at, with their names: none above the scope (a street's
/// admin has no county row), and a grid's staff see their community's.
pub fn levels(p: &Principal) -> Vec<(&'static str, &'static str)> {
    let depth = p.scope.len().min(12);
    [("street", "按街道", 9), ("community", "按社区", 12), ("unit", "按承办单位", 99), ("county", "全县", 6)]
        .into_iter()
        .filter(|(_, _, d)| *d >= depth)
        .map(|(l, n, _)| (l, n))
        .collect()
}

/// What a row's rank is among: streets and communities rank among the whole county's (the same
/// rank whoever looks: a street's admin saw their street ranked 1 of 1); units among the units
/// that handled the scope's cases.
pub fn rank_among(p: &Principal, level: &str) -> &'static str {
    if level == "unit" && p.scope.len() > 6 { "本辖区排名" } else { "全县排名" }
}

/// The ranking table for a level and period inside the caller's scope, best composite first.
pub async fn table(st: &AppState, p: &Principal, q: &RatesQuery) -> AppResult<Vec<RateRow>> {
    p.require(Perm::TreeRead)?;
    if super::staff_level(p.role).is_none() {
        return Err(AppError::Forbidden);
    }
    let level = q.level.as_deref().unwrap_or("community");
    if !["county", "street", "community", "unit"].contains(&level) {
        return Err(AppError::field("level", "统计层级应为县（county）、街道（street）、社区（community）或单位（unit）"));
    }
    if !levels(p).iter().any(|(l, _)| *l == level) {
        return Err(AppError::field("level", "该层级高于您的管辖范围"));
    }
    let scope_code = p.scope.as_str();
    // Streets and communities are ranked among the county's, and the scope's rows kept.
    let ranked_over = if level == "unit" { scope_code } else { scope_code.get(..6).unwrap_or(scope_code) };
    let day = |d: Option<&str>, field: &str| -> AppResult<Option<i64>> {
        match d.map(str::trim).filter(|s| !s.is_empty()) {
            Some(d) => Ok(Some(super::rollups::day_of(super::store::day_start(d, field)?))),
            None => Ok(None),
        }
    };
    let (from, to) = (day(q.from.as_deref(), "from")?, day(q.to.as_deref(), "to")?);
    let wts = weights(st).await?;
    // (key, name, counters). Read from the rollups, never from the case table.
    let mut groups: Vec<(String, String, Counts)> = Vec::new();
    if level == "unit" && scope_code.len() > 6 {
        // Units ranked on the cases of a street or community: the fine rollups of its communities.
        groups = unit_rows_below_county(st, scope_code, from, to).await?;
    } else {
        // Unit members are "<county>:<unit>"; an unscoped caller reads every county's.
        let prefix = if level == "unit" && !scope_code.is_empty() { format!("{scope_code}:") } else { ranked_over.to_string() };
        let rows = super::cube::sums(&st.db, level, &prefix, from, to).await?;
        if level == "unit" {
            let mut by_unit: std::collections::BTreeMap<i64, Counts> = Default::default();
            for (member, c) in rows {
                let id = member.rsplit(':').next().and_then(|x| x.parse().ok()).unwrap_or(0);
                let e = by_unit.entry(id).or_default();
                *e = super::rollups::sum(e, &c);
            }
            let units: std::collections::HashMap<i64, (String, String)> = sqlx::query("SELECT id, code, name FROM units")
                .fetch_all(st.db.read())
                .await?
                .iter()
                .map(|r| Ok((get(r, "id")?, (get(r, "code")?, get(r, "name")?))))
                .collect::<AppResult<_>>()?;
            for (id, c) in by_unit {
                let (code, name) = units.get(&id).cloned().unwrap_or_else(|| (id.to_string(), id.to_string()));
                groups.push((code, name, c));
            }
        } else {
            // Under the county: a grid's staff keep their community's row, above their scope.
            let names = node_names(st, level, &format!("/{ranked_over}/")).await?;
            for (member, c) in rows {
                let name = names.get(&member).cloned().unwrap_or_else(|| member.clone());
                groups.push((member, name, c));
            }
        }
    }
    let mut out: Vec<RateRow> = groups.into_iter().map(|(k, n, c)| rates(&c, wts, k, n)).collect();
    out.sort_by(|a, b| {
        b.ranked
            .cmp(&a.ranked)
            .then(b.composite.partial_cmp(&a.composite).unwrap_or(std::cmp::Ordering::Equal))
            .then(a.key.cmp(&b.key))
    });
    for (i, r) in out.iter_mut().filter(|r| r.ranked).enumerate() {
        r.rank = i as i64 + 1;
    }
    if level != "unit" {
        // A grid's staff keep their community's row.
        out.retain(|r| r.key.starts_with(scope_code) || scope_code.starts_with(r.key.as_str()));
    }
    Ok(out)
}

/// Names of the tree nodes of a kind inside a scope, by code (one query, not one per row).
async fn node_names(st: &AppState, kind: &str, scope_path: &str) -> AppResult<std::collections::HashMap<String, String>> {
    let rows = sqlx::query("SELECT code, name FROM nodes WHERE kind = $1 AND path LIKE $2 ESCAPE '\\'")
        .bind(kind)
        .bind(format!("{}%", crate::db::like_escape(scope_path)))
        .fetch_all(st.db.read())
        .await?;
    rows.iter().map(|r| Ok((get(r, "code")?, get(r, "name")?))).collect()
}

/// Unit counters over the communities under a street or community code, from the fine rollups.
async fn unit_rows_below_county(
    st: &AppState,
    scope_code: &str,
    from: Option<i64>,
    to: Option<i64>,
) -> AppResult<Vec<(String, String, Counts)>> {
    let mut w = Where::new();
    // A range, not LIKE: it can use the (community_code, day) index on both engines.
    w.under("r.community_code", scope_code);
    if let Some(d) = from {
        w.raw(&format!("r.day >= {d}"));
    }
    if let Some(d) = to {
        w.raw(&format!("r.day <= {d}"));
    }
    let sql = format!(
        "SELECT u.code AS k, MAX(u.name) AS nm, {} FROM case_rollups r JOIN units u ON u.id = r.unit_id WHERE {} GROUP BY u.code",
        super::rollups::sum_columns("r."),
        w.sql()
    );
    let rows = w.fetch_all(&st.db, sql).await?;
    rows.iter()
        .map(|r| Ok((get(r, "k")?, get::<Option<String>>(r, "nm")?.unwrap_or_default(), super::rollups::counts_of(r)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_on_a_hand_computed_set() {
        // 10 cases; 8 followed up: 7 contacted, 6 solved, 4 满意, 2 基本满意, 1 不满意.
        let c = Counts {
            cases: 10,
            valid: 8,
            contacted: 7,
            solved: 6,
            satisfied: 4,
            basic: 2,
            closed: 5,
            on_time: 4,
            finished: 8,
            reworked: 2,
            dispatched: 9,
            extended: 3,
            accepted: 9,
            signed_in_time: 6,
            overdue: 1,
        };
        let r = rates(&c, (0.1, 0.5, 0.4), "x".into(), "x".into());
        assert_eq!(r.response_rate, Some(0.875));
        assert_eq!(r.solve_rate, Some(0.75));
        assert_eq!(r.satisfaction_rate, Some(0.725)); // (4 + 1.8) / 8
        assert_eq!(r.composite, Some(0.7525)); // 0.0875 + 0.375 + 0.29
        assert_eq!(r.close_rate, Some(0.5));
        assert_eq!(r.on_time_rate, Some(0.8));
        assert_eq!(r.rework_rate, Some(0.25));
        assert_eq!(r.extension_rate, Some(0.3333));
        assert_eq!(r.sign_rate, Some(0.6667));
        let empty = rates(&Counts::default(), (0.1, 0.5, 0.4), "y".into(), "y".into());
        assert_eq!((empty.response_rate, empty.composite, empty.close_rate), (None, None, None));
    }
}
