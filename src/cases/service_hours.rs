//! 双报到: a Party member's hours on a need they claimed (a 微心愿) become their 志愿服务记录,
//! and the community's closing of the case confirms it ("谁记录谁证明").
//!
//! Why here: the hours per member of the service system were only what someone typed into the
//! register, although the member's work is a case with its own history. The record is written
//! in the step's transaction, so a finish without its record (or the reverse) cannot be.

use serde_json::{Map, Value, json};

use super::CaseRow;
use super::machine::Action;
use crate::app::AppState;
use crate::auth::{Principal, Role};
use crate::db::Tx;
use crate::error::{AppError, AppResult};
use crate::registers::{catalog, store};

/// The register the hours go to.
fn register() -> AppResult<&'static crate::registers::Register> {
    catalog::find("service_records").ok_or_else(|| AppError::Internal("no service_records register".into()))
}

/// What a step does to the service records, worked out before the writer is taken.
pub(super) enum Record {
    /// Nothing.
    None,
    /// A claimed need finished: its record.
    Write(Box<store::Valid>),
    /// The case closed: the records made from it are confirmed.
    Confirm,
    /// The work was sent back, reassigned or returned: its unconfirmed records are withdrawn
    /// (a rework finished again would count the hours twice).
    Withdraw,
}

/// Checks the hours a member gives when finishing a need they claimed (0–24, or none given:
/// no record), and prepares the record; a close confirms.
pub(super) async fn prepare(
    st: &AppState,
    p: &Principal,
    c: &CaseRow,
    category: &str,
    a: Action,
    hours: Option<f64>,
) -> AppResult<Record> {
    match a {
        Action::Close => return Ok(Record::Confirm),
        Action::Rework | Action::Reassign | Action::Return => return Ok(Record::Withdraw),
        _ => {}
    }
    let claimer = p.role == Role::PartyMember && c.assignee_user_id == Some(p.user_id);
    let (Action::Finish, true, Some(h)) = (a, claimer, hours) else { return Ok(Record::None) };
    if !(h > 0.0 && h <= 24.0) {
        return Err(AppError::field("hours", "服务时长应大于 0 小时、不超过 24 小时"));
    }
    let reg = register()?;
    let today = super::calendar::local_date(crate::db::now_ms()).format("%Y-%m-%d").to_string();
    // The category, not the resident's words: they may hold a phone number or a name.
    let raw = json!({"member": p.display_name, "what": format!("认领事项 {}（{category}）", c.number),
        "community": c.community_code, "date": today, "hours": h, "confirmed": false, "case": c.number});
    let raw: Map<String, Value> = raw.as_object().cloned().unwrap_or_default();
    // Checked as at the case's community, where the record belongs: a member scoped to one
    // grid may record their work there (their own scope would refuse the community's row).
    let path =
        c.node_path.find(&format!("/{}/", c.community_code)).map(|i| c.node_path[..i + c.community_code.len() + 2].to_string());
    let at = Principal { scope_path: path.unwrap_or_else(|| p.scope_path.clone()), ..p.clone() };
    let v = store::validate(st, &at, reg, &raw).await.map_err(AppError::Validation)?;
    Ok(Record::Write(Box::new(v)))
}

/// Writes what [`prepare`] worked out, in the step's transaction.
pub(super) async fn apply(tx: &mut Tx, st: &AppState, p: &Principal, number: &str, r: Record) -> AppResult<()> {
    let reg = register()?;
    match r {
        Record::None => Ok(()),
        Record::Write(v) => store::insert(tx, st, p, reg, &v, false).await.map(drop),
        Record::Confirm => store::confirm_service(tx, st, p, number).await,
        Record::Withdraw => store::withdraw_service(tx, st, p, number).await,
    }
}
