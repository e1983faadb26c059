//! Gapless counters (case numbers: `case:2026` → 1, 2, 3…) taken inside the writer's batch.
//!
//! Why: bumping the counter row with a statement per creation costs every creation a
//! statement under the writer (on PostgreSQL a round trip). The first creation of a batch
//! reads the row in a statement that also locks it (an upsert that changes nothing), so no
//! other node can take numbers until this batch commits; the batch's later creations count on
//! from the value the earlier ones took, and the last value is written at the end of the batch
//! ([`super::Deferred`]). A request rolled back takes its numbers with it (they were only its
//! own record), so the numbers stay gapless as before.

use std::collections::BTreeMap;

use super::{Deferred, Finish, Tx, get};

/// The last value each counter took in a transaction, and then in its batch.
#[derive(Default)]
pub struct Counters(BTreeMap<String, i64>);

impl Deferred for Counters {
    // The row is locked from the batch's first use on; when it is written does not matter.
    const ORDER: u8 = 10;

    fn absorb(&mut self, later: Self) {
        // A later transaction counted on from the earlier ones: its values are the newer.
        self.0.extend(later.0);
    }

    async fn write(self, at: &mut Finish<'_>) -> Result<(), sqlx::Error> {
        for (name, value) in self.0 {
            sqlx::query("UPDATE counters SET value = $1 WHERE name = $2").bind(value).bind(name).execute(&mut *at).await?;
        }
        Ok(())
    }
}

/// Creates counter `$1` if missing and locks its row (on PostgreSQL, to the commit) without
/// changing it: an upsert that sets the value to itself.
const LOCK_COUNTER: &str =
    "INSERT INTO counters (name, value) VALUES ($1, 0) ON CONFLICT (name) DO UPDATE SET value = counters.value";

/// Ids reserved at once by [`Tx::next_id`], at most.
pub const ID_BLOCK: usize = 64;

/// The ids a batch reserved and has not used yet, per table (the smallest last), and the
/// highest it reserved (on SQLite the next reservation counts on from it: the batch's rows are
/// not in the table yet).
#[derive(Default)]
pub struct Ids(BTreeMap<&'static str, (Vec<i64>, i64)>);

impl Deferred for Ids {
    const ORDER: u8 = 11;

    fn absorb(&mut self, later: Self) {
        // A later transaction took its ids from what the earlier ones left.
        self.0.extend(later.0);
    }

    async fn write(self, _: &mut Finish<'_>) -> Result<(), sqlx::Error> {
        // Nothing to keep: the sequence (or the table's largest id) moved with the rows.
        Ok(())
    }
}

impl Tx {
    /// A new id for a row of `table`, known before the row is written, so that the batch's
    /// new rows can wait for its end (a creation then runs no statement under the writer).
    /// The batch's first new row reserves ids for itself and for the requests queued behind
    /// it (at most [`ID_BLOCK`]) in one statement, the next ones take them in order, and reserve
    /// again when they run out: on PostgreSQL from the table's own sequence (so every node, and
    /// whatever else writes the table, takes ids from the one source; ids a batch leaves unused
    /// are skipped, as a sequence skips them anyway, and a lone request skips none); on SQLite,
    /// whose one writer holds the file's lock for the batch, counting on from the largest id
    /// the table ever had.
    pub async fn next_id(&mut self, table: &'static str) -> Result<i64, sqlx::Error> {
        let (mut left, mut high) = match self.defer::<Ids>().0.remove(table) {
            Some(ids) => ids,
            None => self.batch_deferred::<Ids>().and_then(|i| i.0.get(table).cloned()).unwrap_or_default(),
        };
        if left.is_empty() {
            let block = (self.queued() + 1).min(ID_BLOCK);
            left = if self.on_postgres() {
                let sql =
                    format!("SELECT nextval(pg_get_serial_sequence('{table}', 'id')) AS id FROM generate_series(1, {block})");
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *self).await?;
                rows.iter().rev().map(|r| get::<i64>(r, "id")).collect::<Result<_, _>>()?
            } else {
                // AUTOINCREMENT never gives an id twice, even the id of a deleted row.
                let sql = format!(
                    "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0), \
                     COALESCE((SELECT MAX(id) FROM {table}), 0)) AS id"
                );
                let last: i64 = get(&sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(&mut *self).await?, "id")?;
                let last = last.max(high);
                (last + 1..=last + block as i64).rev().collect()
            };
            high = left.first().copied().unwrap_or(high).max(high);
        }
        let id = left.pop().expect("a block of ids is never empty");
        self.defer::<Ids>().0.insert(table, (left, high));
        Ok(id)
    }

    /// Makes the transactions that call this with the same `name` run one after another, on
    /// every node, from here to their batch's commit: for a rule checked by a read (one active
    /// record per ID number), whose read must then see what another node's writer has just
    /// committed. On PostgreSQL the counter row `name` stays locked until the commit (each
    /// later statement reads a new snapshot); on SQLite the one writer serialises them anyway.
    pub async fn serialise(&mut self, name: &str) -> Result<(), sqlx::Error> {
        sqlx::query(LOCK_COUNTER).bind(name).execute(&mut *self).await.map(drop)
    }

    /// The next value of counter `name` (1 for a new one), gapless across transactions,
    /// batches and nodes.
    pub async fn next_in(&mut self, name: &str) -> Result<i64, sqlx::Error> {
        let known = match self.defer::<Counters>().0.get(name) {
            Some(v) => Some(*v),
            None => self.batch_deferred::<Counters>().and_then(|c| c.0.get(name).copied()),
        };
        let last = match known {
            Some(v) => v,
            None => {
                let sql = format!("{LOCK_COUNTER} RETURNING value");
                get(&sqlx::query(sqlx::AssertSqlSafe(sql)).bind(name).fetch_one(&mut *self).await?, "value")?
            }
        };
        self.defer::<Counters>().0.insert(name.to_string(), last + 1);
        Ok(last + 1)
    }
}
