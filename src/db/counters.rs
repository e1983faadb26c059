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

impl Tx {
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
                let sql = "INSERT INTO counters (name, value) VALUES ($1, 0) \
                           ON CONFLICT (name) DO UPDATE SET value = counters.value RETURNING value";
                get(&sqlx::query(sql).bind(name).fetch_one(&mut *self).await?, "value")?
            }
        };
        self.defer::<Counters>().0.insert(name.to_string(), last + 1);
        Ok(last + 1)
    }
}
