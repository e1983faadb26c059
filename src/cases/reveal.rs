//! The reporter's name and phone number in clear, for the staff handling the case, with a
//! reason, audited.
//!
//! Why: the reporter's contact is stored encrypted and shown masked everywhere, yet the
//! follow-up (回访) is a telephone call: without this the staff could not make it. Only staff
//! who may act on the case as staff (in scope, at or above its level) and may see personal
//! data (`PersonReveal`) read it; a unit's contact or a grid worker sees the masked number.

use serde::Serialize;

use super::store::{self, AAD_NAME, AAD_PHONE};
use crate::app::AppState;
use crate::audit::{self, Event};
use crate::auth::{Perm, Principal};
use crate::db::get;
use crate::error::{AppError, AppResult};

/// A case's reporter in clear.
#[derive(Debug, Serialize)]
pub struct Reporter {
    /// Name (empty when none was given).
    pub reporter_name: String,
    /// Mobile number (empty when none was given: a resident's own report through their account).
    pub reporter_phone: String,
}

/// Whether `p` may read the reporter of a case they see as staff: the page offers the form
/// only then.
pub fn may(p: &Principal, staff: bool) -> bool {
    staff && p.role.can(Perm::PersonReveal)
}

/// The reporter of case `number` in clear; `reason` goes to the audit log with who read it.
pub async fn reporter(st: &AppState, p: &Principal, number: &str, reason: &str) -> AppResult<Reporter> {
    let (c, _) = store::load_visible(st, p, number).await?;
    if !may(p, c.is_staff(p)) {
        return Err(AppError::Forbidden);
    }
    let reason = audit::reason(reason, true)?;
    let r = sqlx::query("SELECT reporter_name_enc, reporter_phone_enc FROM cases WHERE id = $1")
        .bind(c.id)
        .fetch_one(st.db.read())
        .await?;
    let clear = |col: &str, aad: &[u8]| -> AppResult<String> {
        Ok(st.keyring.decrypt_opt(get::<Option<Vec<u8>>>(&r, col)?.as_deref(), aad)?)
    };
    let out = Reporter {
        reporter_name: clear("reporter_name_enc", AAD_NAME)?,
        reporter_phone: clear("reporter_phone_enc", AAD_PHONE)?,
    };
    let summary = format!("查看事项 {number} 的报事人联系方式{}{reason}", audit::REASON);
    let ev = Event { action: "case.reveal", entity: "case", entity_id: number, node_path: &c.node_path, summary: &summary };
    audit::record(&st.db, &st.chain, &p.actor(), ev).await?;
    Ok(out)
}
