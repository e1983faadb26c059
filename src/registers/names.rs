//! Names kept beside codes in register rows follow a rename.
//!
//! Why: a row keeps the name of the community or unit it refers to beside its code
//! (`community_name` beside `community`), always that code's name when the row was saved
//! (see [`super::store::validate`]). After a rename the rows showed, exported and were found
//! by the old name until each was edited again.

use serde_json::{Map, Value};

use super::catalog::REGISTERS;
use super::{Ty, pinyin_keys, text_of};
use crate::db::{Tx, get, like_escape, now_ms};
use crate::error::AppResult;

/// What was renamed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renamed {
    /// A tree node (a community, a site, a grid…).
    Node,
    /// A unit of the unit registry.
    Unit,
}

/// The rows referring to `code` (a node's or a unit's, as `what` says) get `name` as the
/// name kept beside it, in the same transaction as the rename. Returns the rows changed.
pub async fn follow(tx: &mut Tx, what: Renamed, code: &str, name: &str) -> AppResult<usize> {
    let mut changed = 0;
    for reg in REGISTERS {
        for f in reg.fields {
            let refers = matches!((f.ty, what), (Ty::Node(_), Renamed::Node) | (Ty::Unit(_), Renamed::Unit));
            let name_key = format!("{}_name", f.key);
            if !refers || reg.field(&name_key).is_none() {
                continue;
            }
            // Rows are stored as compact JSON: the pair as written there narrows the rows
            // read; each is checked once parsed.
            let pair = format!("\"{}\":{}", f.key, Value::String(code.into()));
            let rows = sqlx::query("SELECT id, data FROM register_rows WHERE register = $1 AND data LIKE $2 ESCAPE '\\'")
                .bind(reg.name)
                .bind(format!("%{}%", like_escape(&pair)))
                .fetch_all(&mut *tx)
                .await?;
            for r in &rows {
                let text: String = get(r, "data")?;
                let Ok(Value::Object(mut data)) = serde_json::from_str::<Value>(&text) else { continue };
                if data.get(f.key).and_then(Value::as_str) != Some(code)
                    || data.get(&name_key).and_then(Value::as_str) == Some(name)
                {
                    continue;
                }
                data.insert(name_key.clone(), Value::String(name.into()));
                store(tx, get(r, "id")?, &data, reg.name_field).await?;
                changed += 1;
            }
        }
    }
    Ok(changed)
}

/// Writes a row's data back with its list name and search keys (version bumped: a form opened
/// before must not write the old name back unseen).
async fn store(tx: &mut Tx, id: i64, data: &Map<String, Value>, name_field: &str) -> AppResult<()> {
    let row_name = data.get(name_field).map(text_of).unwrap_or_default();
    let search = format!("{row_name} {}", pinyin_keys(&row_name)).to_lowercase();
    sqlx::query(
        "UPDATE register_rows SET name = $1, search = $2, data = $3, updated_at = $4, version = version + 1 WHERE id = $5",
    )
    .bind(&row_name)
    .bind(&search)
    .bind(Value::Object(data.clone()).to_string())
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
