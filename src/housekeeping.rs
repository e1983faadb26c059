//! Rows nothing reads any more, removed by a job every ten minutes: sessions past their idle or
//! absolute timeout (refused already, never deleted), address and lookup counters whose window
//! ended a day ago, and jobs done more than 30 days ago. At a megacity's load the done jobs
//! alone (SLA timers, webhook deliveries) grow by ~200,000 rows a day.
//!
//! The job is scheduled by every node's worker with a key per ten-minute slot, so it runs once
//! per slot however many nodes there are (see [`crate::cases::jobs`]).

use serde::Serialize;

use crate::app::AppState;
use crate::db::Tx;
use crate::error::AppResult;

/// The job's slot: one housekeeping run per ten minutes.
pub const SLOT_MS: i64 = 10 * 60 * 1000;

/// How long a done job is kept (to see what ran, and a webhook's last error).
pub const DONE_JOBS_KEPT_MS: i64 = 30 * 86_400_000;

/// How long a counter row outlives its window.
const COUNTERS_KEPT_MS: i64 = 86_400_000;

/// At most this many done jobs go per run: a short write for the one writer, ~1.4 M a day.
const JOBS_PER_RUN: i64 = 10_000;

/// What one run removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Swept {
    /// Expired sessions.
    pub sessions: u64,
    /// Counter rows past their window.
    pub counters: u64,
    /// Done jobs past their keeping.
    pub jobs: u64,
    /// Submission keys past their day (see [`crate::cases::submissions`]).
    pub submissions: u64,
}

/// Schedules the housekeeping run of `now`'s slot (a no-op if it is already scheduled).
pub async fn schedule(st: &AppState, now: i64) -> AppResult<()> {
    let slot = now / SLOT_MS;
    let mut tx = st.db.begin().await?;
    crate::cases::jobs::enqueue(&mut tx, "housekeeping", &format!("housekeeping:{slot}"), &serde_json::json!({}), now);
    tx.commit().await?;
    Ok(())
}

/// Removes what nothing reads any more as of `now`, inside `tx` (the job's transaction).
pub async fn sweep(st: &AppState, tx: &mut Tx, now: i64) -> AppResult<Swept> {
    let (idle, absolute) = (st.cfg.idle_timeout_secs * 1000, st.cfg.absolute_timeout_secs * 1000);
    let sessions = sqlx::query("DELETE FROM sessions WHERE last_seen < $1 OR created_at < $2")
        .bind(now - idle)
        .bind(now - absolute)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let counters = sqlx::query("DELETE FROM ip_throttle WHERE window_start < $1")
        .bind(now - COUNTERS_KEPT_MS)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let jobs = sqlx::query("DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE done_at < $1 ORDER BY done_at LIMIT $2)")
        .bind(now - DONE_JOBS_KEPT_MS)
        .bind(JOBS_PER_RUN)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let submissions = sqlx::query("DELETE FROM submissions WHERE created_at < $1")
        .bind(now - crate::cases::submissions::KEPT_MS)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    Ok(Swept { sessions, counters, jobs, submissions })
}
