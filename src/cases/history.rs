//! The steps of a case (`case_history`), written at the end of the writer's batch.
//!
//! Why deferred: nothing reads a step inside the transaction that takes it (the case page
//! reads it after the commit), and every statement under the writer holds up the whole batch
//! (on PostgreSQL a round trip each). The batch's steps go in as one multi-row INSERT in the
//! order their requests were released, so each case's steps keep their order by id. A step with
//! photos is inserted on its own, in its place in that order, because its photos refer to it.

use crate::db::rows::{Val, insert_rows, values_text};
use crate::db::{Deferred, Finish, Tx, get};

use super::photos::Saved;

const HEAD: &str = "INSERT INTO case_history (case_id, action, from_status, to_status, actor, actor_label, at, note, public)";
const COLS: usize = 9;
/// Where [`record`] puts the case and the time in a row (its photos share them).
const CASE_ID: usize = 0;
const AT: usize = 6;

/// One step of a case, as recorded.
#[derive(Debug)]
pub struct Entry<'a> {
    /// The case.
    pub case_id: i64,
    /// Action code (`submit`, `dispatch`…).
    pub action: &'a str,
    /// Status before.
    pub from: &'a str,
    /// Status after.
    pub to: &'a str,
    /// Who took it (user name, `public` or `system`).
    pub actor: &'a str,
    /// How the actor is shown (unit or role name).
    pub label: &'a str,
    /// The note shown with the step.
    pub note: &'a str,
    /// Shown to the reporting resident.
    pub public: bool,
    /// When (the same instant as the case's change).
    pub at: i64,
}

/// Records a step of `tx` (and the photos taken with it), written at the end of the batch.
pub fn record(tx: &mut Tx, s: Entry<'_>, photos: Vec<Saved>) {
    let row = vec![
        Val::I(s.case_id),
        Val::S(s.action.into()),
        Val::S(s.from.into()),
        Val::S(s.to.into()),
        Val::S(s.actor.into()),
        Val::S(s.label.into()),
        Val::I(s.at),
        Val::S(s.note.into()),
        Val::I(s.public as i64),
    ];
    tx.defer::<Steps>().0.push((row, photos));
}

/// The batch's steps, in the order their requests were released.
#[derive(Default)]
pub struct Steps(Vec<(Vec<Val>, Vec<Saved>)>);

impl Deferred for Steps {
    // Before the other kinds: none of them refers to a step.
    const ORDER: u8 = 30;

    fn absorb(&mut self, later: Self) {
        self.0.extend(later.0);
    }

    async fn write(self, at: &mut Finish<'_>) -> Result<(), sqlx::Error> {
        let mut plain: Vec<Vec<Val>> = Vec::with_capacity(self.0.len());
        for (row, photos) in self.0 {
            if photos.is_empty() {
                plain.push(row);
                continue;
            }
            insert_rows(at, HEAD, COLS, &std::mem::take(&mut plain), "").await?;
            let (case_id, taken_at) = (row[CASE_ID].clone(), row[AT].clone());
            let sql = format!("{} RETURNING id", values_text(HEAD, 1, COLS, '$'));
            let q = row.iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql)), crate::db::rows::bind);
            let id: i64 = get(&q.fetch_one(&mut *at).await?, "id")?;
            let rows: Vec<Vec<Val>> = photos
                .into_iter()
                .map(|p| vec![case_id.clone(), Val::I(id), Val::S(p.path), Val::T(p.mime), Val::I(p.size), taken_at.clone()])
                .collect();
            let head = "INSERT INTO case_photos (case_id, history_id, path, mime, size, created_at)";
            insert_rows(at, head, 6, &rows, "").await?;
        }
        insert_rows(at, HEAD, COLS, &plain, "").await
    }
}
