//! Reading back a row's encrypted fields (a household visit's notes, an ID number), for staff
//! who may see personal data, with a reason, audited.
//!
//! Why: these fields were written encrypted and shown only as （已加密） or masked: a
//! grid worker's visit notes could be entered and never read again by anyone.

use serde_json::Value;

use super::{Field, Register, Ty, decrypt, store};
use crate::app::AppState;
use crate::audit::{self, Event};
use crate::auth::{Perm, Principal};
use crate::error::{AppError, AppResult};

/// Whether a field is kept encrypted, so that [`reveal`] reads it back.
fn encrypted(f: &&Field) -> bool {
    matches!(f.ty, Ty::Secret | Ty::IdNumber)
}

/// Whether a register holds fields [`reveal`] reads back.
pub fn has_secrets(reg: &Register) -> bool {
    reg.fields.iter().any(|f| encrypted(&f))
}

/// The encrypted fields of row `id` in clear, as (key, title, value); the reason goes to the
/// audit log with who read them.
pub async fn reveal(
    st: &AppState,
    p: &Principal,
    reg: &Register,
    id: i64,
    reason: &str,
) -> AppResult<Vec<(&'static str, &'static str, String)>> {
    let row = store::one(st, p, reg, id).await?;
    // Rows at an ancestor of the scope are readable (a county register's rows), but their
    // personal data is not one's own scope's: a worker for one grid saw the community's.
    if !p.in_scope(&row.node_path) {
        return Err(AppError::NotFound);
    }
    // After the scope: a row outside it stays a 404 either way.
    p.require(Perm::PersonReveal)?;
    if !has_secrets(reg) {
        return Err(AppError::NotFound);
    }
    let reason = crate::audit::reason(reason, true)?;
    let mut out = Vec::new();
    for f in reg.fields.iter().filter(encrypted) {
        let clear = match row.data.get(f.key).and_then(Value::as_str) {
            Some(stored) => decrypt(&st.keyring, stored, f.key)
                .ok_or_else(|| AppError::Internal(format!("register {} row {id}: {} does not decrypt", reg.name, f.key)))?,
            None => String::new(),
        };
        out.push((f.key, f.title, clear));
    }
    let titles: Vec<&str> = out.iter().map(|(_, t, _)| *t).collect();
    let summary = format!("查看{}「{}」的{}{}{}", reg.title, row.name, titles.join("、"), crate::audit::REASON, reason);
    let entity = format!("register:{}", reg.name);
    let ev = Event {
        action: "register.reveal",
        entity: &entity,
        entity_id: &id.to_string(),
        node_path: &row.node_path,
        summary: &summary,
    };
    audit::record(&st.db, &st.chain, &p.actor(), ev).await?;
    Ok(out)
}
