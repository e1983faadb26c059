//! Background work as rows of the `jobs` table: SLA timers (yellow card, red card, automatic
//! escalation), webhook deliveries and housekeeping ([`crate::housekeeping`]).
//!
//! - Enqueueing is idempotent: every job has a unique `dedup_key`, so scheduling twice is a no-op.
//! - Claiming is exclusive: on PostgreSQL `FOR UPDATE SKIP LOCKED`, on SQLite the single writer.
//!   A claim is a lease (`locked_until`); a node that dies mid-job loses the lease and another
//!   node takes the job over, so nothing is skipped.
//! - A job's effects and its `done_at` mark commit in one transaction, and the mark is
//!   conditional (`done_at IS NULL`), so a job that runs twice changes nothing the second time.
//!   Webhooks are the exception by nature (the remote side sees at-least-once delivery; each
//!   carries a stable `X-Linli-Delivery` id for de-duplication).

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::notify::{self, Target};
use crate::app::AppState;
use crate::db::rows::{Appendable, Appended, Val, insert_rows};
use crate::db::{Backend, Deferred, Finish, Tx, get, now_ms};
use crate::error::{AppError, AppResult};

/// Schedules a job unless one with the same key exists (written at the end of the write
/// batch, with the batch's other jobs: see [`crate::db::Deferred`]).
pub fn enqueue(tx: &mut Tx, kind: &str, key: &str, payload: &Value, run_at: i64) {
    tx.defer::<Appended<Jobs>>().push(vec![
        Val::S(kind.into()),
        Val::S(key.into()),
        Val::S(payload.to_string()),
        Val::I(run_at),
        Val::I(now_ms()),
    ]);
}

/// Job rows appended at the end of the write batch.
pub struct Jobs;

impl Appendable for Jobs {
    const ORDER: u8 = 60;
    const HEAD: &'static str = "INSERT INTO jobs (kind, dedup_key, payload, run_at, created_at)";
    const COLS: usize = 5;
    const TAIL: &'static str = "ON CONFLICT (dedup_key) DO NOTHING";
}

/// A claimed job.
#[derive(Debug)]
pub struct Job {
    /// jobs.id
    pub id: i64,
    /// Kind.
    pub kind: String,
    /// Payload.
    pub payload: Value,
    /// Attempts so far, including this one.
    pub attempts: i64,
}

/// Claims up to `limit` due jobs for `worker` with a lease of `lease_ms`.
pub async fn claim(st: &AppState, worker: &str, now: i64, limit: i64, lease_ms: i64) -> AppResult<Vec<Job>> {
    let lock = if st.db.backend == Backend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "UPDATE jobs SET locked_by = $1, locked_until = $2, attempts = attempts + 1 WHERE id IN (\
           SELECT id FROM jobs WHERE done_at IS NULL AND run_at <= $3 AND (locked_until IS NULL OR locked_until < $3) \
           ORDER BY run_at LIMIT {limit} {lock}) RETURNING id, kind, payload, attempts"
    );
    let mut tx = st.db.begin().await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(worker).bind(now + lease_ms).bind(now).fetch_all(&mut tx).await?;
    tx.commit().await?;
    rows.iter()
        .map(|r| {
            let payload: String = get(r, "payload")?;
            Ok(Job {
                id: get(r, "id")?,
                kind: get(r, "kind")?,
                payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
                attempts: get(r, "attempts")?,
            })
        })
        .collect()
}

/// Marks a job done inside `tx`; false when it already was (then the caller rolls back).
async fn finish(tx: &mut Tx, id: i64, note: &str) -> AppResult<bool> {
    let n = sqlx::query("UPDATE jobs SET done_at = $1, last_error = $2, locked_until = NULL WHERE id = $3 AND done_at IS NULL")
        .bind(now_ms())
        .bind(note)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// How long a worker holds the jobs it claims, and the longest one job may run.
#[derive(Clone, Copy, Debug)]
pub struct Lease {
    /// The claim's lease: after it, another worker (another node) may claim the jobs again.
    pub ms: i64,
    /// The longest a job takes (a webhook's request gives up after 10 s), with a margin: no
    /// job is started later than this before the lease runs out, so none is still running
    /// when another worker may claim it (and deliver it a second time).
    pub longest_job_ms: i64,
}

impl Lease {
    /// A minute, and 15 s for one job.
    pub const DEFAULT: Lease = Lease { ms: 60_000, longest_job_ms: 15_000 };
}

/// Runs due jobs once each; returns how many were processed. `now` is injectable for tests.
pub async fn run_due(st: &AppState, worker: &str, now: i64) -> AppResult<usize> {
    run_due_within(st, worker, now, Lease::DEFAULT).await
}

/// [`run_due`] under `lease`: the jobs claimed that cannot start in time are handed back
/// (unlocked, their attempt not counted) for the next round, here or on another node.
pub async fn run_due_within(st: &AppState, worker: &str, now: i64, lease: Lease) -> AppResult<usize> {
    let jobs = claim(st, worker, now, 50, lease.ms).await?;
    let started = std::time::Instant::now();
    let last_start = Duration::from_millis((lease.ms - lease.longest_job_ms).max(0) as u64);
    let mut n = 0;
    let mut jobs = jobs.into_iter();
    while let Some(job) = jobs.next() {
        if n > 0 && started.elapsed() > last_start {
            let back: Vec<String> = std::iter::once(job.id).chain(jobs.map(|j| j.id)).map(|id| id.to_string()).collect();
            hand_back(st, worker, &back).await?;
            break;
        }
        n += 1;
        let res = match job.kind.as_str() {
            "sla" => sla(st, &job, now).await,
            "webhook" => webhook(st, &job).await,
            "housekeeping" => housekeeping(st, &job, now).await,
            other => {
                let mut tx = st.db.begin().await?;
                finish(&mut tx, job.id, &format!("未知任务类型 {other}")).await?;
                tx.commit().await?;
                Ok(())
            }
        };
        if let Err(e) = res {
            tracing::warn!(job = job.id, error = %e, "任务执行失败，稍后重试");
        }
    }
    Ok(n)
}

/// Unlocks jobs `ids` that `worker` claimed and did not start, and uncounts their attempt.
async fn hand_back(st: &AppState, worker: &str, ids: &[String]) -> AppResult<()> {
    let sql = format!(
        "UPDATE jobs SET locked_until = NULL, attempts = attempts - 1 WHERE locked_by = $1 AND done_at IS NULL AND id IN ({})",
        ids.join(",")
    );
    let mut tx = st.db.begin().await?;
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(worker).execute(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

/// One housekeeping run; its deletions and its done mark commit together.
async fn housekeeping(st: &AppState, job: &Job, now: i64) -> AppResult<()> {
    let mut tx = st.db.begin().await?;
    let swept = crate::housekeeping::sweep(st, &mut tx, now).await?;
    if finish(&mut tx, job.id, "").await? {
        tx.commit().await?;
        tracing::info!(
            sessions = swept.sessions,
            counters = swept.counters,
            jobs = swept.jobs,
            submissions = swept.submissions,
            "清理过期数据"
        );
    }
    Ok(())
}

/// The worker loop of `linli serve`.
pub async fn worker(st: AppState) {
    let name = format!("node-{}", crate::auth::random_hex(4));
    let mut slot = -1;
    loop {
        let now = now_ms();
        if now / crate::housekeeping::SLOT_MS != slot {
            match crate::housekeeping::schedule(&st, now).await {
                Ok(()) => slot = now / crate::housekeeping::SLOT_MS,
                Err(e) => tracing::warn!(error = %e, "安排清理任务出错"),
            }
        }
        match run_due(&st, &name, now_ms()).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "任务队列出错"),
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
}

/// Schedules the three SLA timers of the case's current clock.
pub fn schedule_sla(tx: &mut Tx, cal: &super::calendar::Calendar, case_id: i64, yellow_at: i64, due: i64) {
    let escalate_at = cal.add_working_hours(due, cal.hours_per_day());
    for (step, at) in [("yellow", yellow_at), ("red", due), ("escalate", escalate_at)] {
        let key = format!("sla:{case_id}:{step}:{due}");
        enqueue(tx, "sla", &key, &json!({"case_id": case_id, "step": step, "due": due}), at);
    }
}

async fn sla(st: &AppState, job: &Job, now: i64) -> AppResult<()> {
    let case_id = job.payload["case_id"].as_i64().unwrap_or(-1);
    let due = job.payload["due"].as_i64().unwrap_or(-1);
    let step = job.payload["step"].as_str().unwrap_or_default().to_string();
    let mut tx = st.db.begin().await?;
    if !finish(&mut tx, job.id, "").await? {
        return Ok(());
    }
    let sql = format!("SELECT {} FROM cases c WHERE c.id = $1", super::ROW_COLS);
    let Some(r) = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(case_id).fetch_optional(&mut tx).await? else {
        tx.commit().await?;
        return Ok(());
    };
    let c = super::CaseRow::from_row(&r)?;
    let running = matches!(c.status, super::Status::Registered | super::Status::Dispatched | super::Status::Accepted);
    // A superseded clock (extension, rework) or a case no longer running: nothing to do.
    if !running || c.resolve_due != Some(due) {
        tx.commit().await?;
        return Ok(());
    }
    let (level, warn, action, note) = match step.as_str() {
        "yellow" if c.warn_level < 1 => (c.level, 1, "yellow_card", "已用时限 80%，黄牌预警"),
        "red" if c.warn_level < 2 => (c.level, 2, "red_card", "已超过办理时限，红牌督办"),
        "escalate" if c.level < 2 => (c.level + 1, c.warn_level.max(2), "auto_escalate", "超期未办结，自动上报"),
        _ => {
            tx.commit().await?;
            return Ok(());
        }
    };
    // The red card makes the case count as overdue in the rollups.
    let before = if warn >= 2 && c.warn_level < 2 { Some(c.counted.clone()) } else { None };
    // The version was read above, under the writer: it cannot have moved on.
    let after = super::rollups::update(
        &mut tx,
        "warn_level = $3, level = $4, version = version + 1, updated_at = $5",
        vec![Val::I(case_id), Val::I(c.version), Val::I(warn), Val::I(level), Val::I(now)],
    )
    .await?
    .ok_or_else(|| AppError::Conflict("案件已被他人修改".into()))?;
    if let Some(before) = before {
        tx.defer::<super::rollups::Deltas>().moved(before.as_ref(), after.as_ref());
    }
    let status = c.status.as_str();
    let label = if action == "auto_escalate" { format!("{note}至{}", super::level_label(level)) } else { note.to_string() };
    let step = super::history::Entry {
        case_id,
        action,
        from: status,
        to: status,
        actor: "system",
        label: "系统",
        note: &label,
        public: false,
        at: now,
    };
    super::history::record(&mut tx, step, Vec::new());
    let text = format!("{} {}", c.number, label);
    // Cards go to whoever holds the case; an escalation also tells the community it left.
    notify::push(&mut tx, Target::holder(&c.node_path, c.level), case_id, action, &text);
    if let Some(u) = c.unit_id {
        notify::push(&mut tx, Target::Unit(u), case_id, action, &text);
    }
    if let Some(u) = c.assignee_user_id {
        notify::push(&mut tx, Target::User(u), case_id, action, &text);
    }
    if action == "auto_escalate" {
        let (role, path) = super::escalation_target(&c.node_path, level);
        notify::push(&mut tx, Target::Staff(role, path), case_id, action, &text);
    }
    tx.commit().await?;
    Ok(())
}

/// Queues one delivery per matching active webhook (county-wide ones, and the unit's own), at
/// the end of the write batch: one read of the webhooks per batch, not per write of a case.
pub fn enqueue_webhooks(tx: &mut Tx, case_id: i64, unit_id: Option<i64>, version: i64, body: &Value) {
    tx.defer::<Deliveries>().0.push((format!(":{case_id}:v{version}"), unit_id, body.to_string(), now_ms()));
}

/// Events waiting for the batch's end to become webhook deliveries: (dedup key suffix, unit,
/// body, time).
#[derive(Default)]
pub struct Deliveries(Vec<(String, Option<i64>, String, i64)>);

impl Deferred for Deliveries {
    const ORDER: u8 = 61;

    fn absorb(&mut self, later: Self) {
        self.0.extend(later.0);
    }

    async fn write(self, at: &mut Finish<'_>) -> Result<(), sqlx::Error> {
        let hooks: Vec<(i64, Option<i64>)> = sqlx::query("SELECT id, unit_id FROM webhooks WHERE active = 1")
            .fetch_all(&mut *at)
            .await?
            .iter()
            .map(|r| Ok((get(r, "id")?, get(r, "unit_id")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let mut rows = Vec::new();
        for (key, unit, body, now) in &self.0 {
            for (id, hook_unit) in &hooks {
                if hook_unit.is_none() || hook_unit == unit {
                    rows.push(vec![
                        Val::S("webhook".into()),
                        Val::S(format!("wh:{id}{key}")),
                        Val::S(format!("{{\"webhook_id\":{id},\"body\":{body}}}")),
                        Val::I(*now),
                        Val::I(*now),
                    ]);
                }
            }
        }
        insert_rows(at, Jobs::HEAD, Jobs::COLS, &rows, Jobs::TAIL).await
    }
}

/// `sha256=<hex>` of the body under the webhook's secret.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", crate::audit::hex(&mac.finalize().into_bytes()))
}

/// Retry schedule: 30 s, 1 min, 2 min … capped at 1 h; give up after 8 attempts.
pub fn backoff_ms(attempts: i64) -> i64 {
    (30_000i64 << (attempts - 1).clamp(0, 7)).min(3_600_000)
}

/// Most attempts before a delivery is abandoned.
pub const MAX_ATTEMPTS: i64 = 8;

async fn webhook(st: &AppState, job: &Job) -> AppResult<()> {
    let wid = job.payload["webhook_id"].as_i64().unwrap_or(-1);
    let row =
        sqlx::query("SELECT url, secret, active FROM webhooks WHERE id = $1").bind(wid).fetch_optional(st.db.read()).await?;
    let outcome = match &row {
        Some(r) if get::<i64>(r, "active")? == 1 => {
            let body = job.payload["body"].to_string();
            let (url, secret): (String, String) = (get(r, "url")?, get(r, "secret")?);
            let event = job.payload["body"]["event"].as_str().unwrap_or("case").to_string();
            let headers = [
                ("Content-Type", "application/json; charset=utf-8".to_string()),
                ("X-Linli-Event", event),
                ("X-Linli-Delivery", job.id.to_string()),
                ("X-Linli-Signature", signature(&secret, body.as_bytes())),
            ];
            crate::web::http::post(&url, &headers, body.as_bytes(), Duration::from_secs(10), st.cfg.webhook_allow_loopback).await
        }
        _ => Err("webhook 已停用或删除".into()),
    };
    let mut tx = st.db.begin().await?;
    match outcome {
        Ok(status) if (200..300).contains(&status) => {
            finish(&mut tx, job.id, "").await?;
        }
        failed => {
            let why = match failed {
                Ok(s) => format!("对方返回 HTTP {s}"),
                Err(e) => e,
            };
            if job.attempts >= MAX_ATTEMPTS || row.is_none() {
                finish(&mut tx, job.id, &format!("已放弃：{why}")).await?;
            } else {
                sqlx::query(
                    "UPDATE jobs SET run_at = $1, locked_until = NULL, last_error = $2 WHERE id = $3 AND done_at IS NULL",
                )
                .bind(now_ms() + backoff_ms(job.attempts))
                .bind(&why)
                .bind(job.id)
                .execute(&mut tx)
                .await?;
            }
        }
    }
    tx.commit().await.map_err(AppError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(1), 30_000);
        assert_eq!(backoff_ms(2), 60_000);
        assert_eq!(backoff_ms(4), 240_000);
        assert_eq!(backoff_ms(20), 3_600_000);
    }

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        let s = signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(s, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
