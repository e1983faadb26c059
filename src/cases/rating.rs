//! A resident's rating of a finished case (评价): from the H5 site (proving ownership with the
//! phone given at reporting) or, as the reporting account, through the API. One rating per
//! finish; 不满意 sends the case back to its assignee (返工) with a new clock. A case closed
//! without an answer from the resident (the follow-up did not reach them) can still be rated
//! once: it counts in the satisfaction rate and the case stays closed.

use serde_json::json;

use super::flow::{Sets, tell};
use super::history::{self, Entry};
use super::machine::{Action, SATISFACTION, Status};
use super::{CaseRow, categories, jobs};
use crate::app::AppState;
use crate::audit::{self, Event};
use crate::db::now_ms;
use crate::db::rows::Val;
use crate::error::{AppError, AppResult};

/// Who rates: the audit's actor and the history's name and label.
pub struct Rater<'a> {
    /// The audit entry's actor.
    pub actor: audit::Actor,
    /// The history's actor.
    pub username: &'a str,
    /// The history's label.
    pub label: &'a str,
}

/// A resident rates a finished case from the H5 site, proving ownership with the phone
/// number given at reporting.
pub async fn rate_public(st: &AppState, number: &str, phone: &str, satisfaction: &str, comment: &str, ip: &str) -> AppResult<()> {
    let (c, _) = super::h5::owned(st, number, phone, ip).await?;
    let rater = Rater { actor: audit::Actor { name: "public".into(), ip: ip.into() }, username: "public", label: "居民" };
    rate(st, &c, &rater, satisfaction, comment).await
}

/// Records `rater`'s rating of `c` (the caller has checked who may).
pub async fn rate(st: &AppState, c: &CaseRow, rater: &Rater<'_>, satisfaction: &str, comment: &str) -> AppResult<()> {
    if !SATISFACTION.iter().any(|(k, _)| *k == satisfaction) {
        return Err(AppError::field("satisfaction", "请选择满意、基本满意或不满意"));
    }
    if comment.chars().count() > 500 {
        return Err(AppError::field("comment", "评价不能超过 500 字"));
    }
    if crate::ident::stray_control(comment) {
        return Err(AppError::field("comment", crate::ident::STRAY_CONTROL));
    }
    let closed = c.status == Status::Closed;
    let to = match closed {
        true => Status::Closed,
        false => Action::Rate
            .next(c.status)
            .ok_or_else(|| AppError::Conflict(format!("案件当前为「{}」，暂不能评价", c.status.label())))?,
    };
    // One rating per finish: after a follow-up that reached the resident, or a rating, the
    // answer stands (a rework's new finish is rated anew).
    if matches!(c.status, Status::FollowedUp | Status::Closed) && c.satisfaction.is_some() {
        return Err(AppError::Conflict("该事项已评价过，不能再次评价".into()));
    }
    let displeased = satisfaction == "unsatisfied";
    // A closed case is not reopened: the answer is recorded and counted.
    let unsatisfied = displeased && !closed;
    let to = if unsatisfied { Status::Accepted } else { to };
    let cat = categories::by_id(st, c.category_id).await?;
    let cal = st.cats.calendar(&st.db).await?;
    let now = now_ms();
    let mut tx = st.db.begin().await?;
    let before = c.counted.clone();
    let mut set = Sets::new(vec![Val::I(c.id), Val::I(c.version), Val::I(now)]);
    let part = if unsatisfied {
        // Sent back for rework: the answer is in the history, and the case waits for the next
        // finish's, as after a staff's 返工 (the old 不满意 stayed on the case and was shown
        // after the work was done again).
        format!("status = '{}', contacted = NULL, solved = NULL, satisfaction = NULL, rating_comment = ''", to.as_str())
    } else {
        format!(
            "status = '{}', contacted = 1, solved = {}, satisfaction = {}, rating_comment = {}",
            to.as_str(),
            (!displeased) as i64,
            set.arg(satisfaction.to_string()),
            set.arg(comment.trim().to_string())
        )
    };
    set.push(part);
    if unsatisfied {
        let (due, yellow) = cal.clock(now, cat.resolve_hours);
        jobs::schedule_sla(&mut tx, &cal, c.id, yellow, due);
        let part = format!(
            "rework_count = rework_count + 1, finished_at = NULL, clock_start = $3, resolve_due = {}, yellow_at = {}, warn_level = 0",
            set.arg(due),
            set.arg(yellow)
        );
        set.push(part);
    }
    set.apply(&mut tx, before, "该案件刚被处理过，请刷新后再评价").await?;
    let note = format!(
        "{}{}",
        super::machine::satisfaction_label(satisfaction),
        if comment.trim().is_empty() { String::new() } else { format!("：{}", comment.trim()) }
    );
    let step = |action, from, actor, label, note| Entry {
        case_id: c.id,
        action,
        from,
        to: to.as_str(),
        actor,
        label,
        note,
        public: true,
        at: now,
    };
    history::record(&mut tx, step("rate", c.status.as_str(), rater.username, rater.label, &note), Vec::new());
    if unsatisfied {
        history::record(&mut tx, step("rework", to.as_str(), "system", "系统", "居民不满意，退回承办方返工"), Vec::new());
    }
    tell(&mut tx, c, if unsatisfied { Action::Rework } else { Action::Rate }, &note, None);
    let body = json!({"event": "case.rate", "number": c.number, "status": to.as_str(), "satisfaction": satisfaction});
    jobs::enqueue_webhooks(&mut tx, c.id, c.unit_id, c.version + 1, &body);
    let summary = format!("居民评价 {}：{note}", c.number);
    let ev = Event { action: "case.rate", entity: "case", entity_id: &c.number, node_path: &c.node_path, summary: &summary };
    audit::append(&mut tx, &st.chain, &rater.actor, ev);
    tx.commit().await?;
    Ok(())
}
