//! SLA timers and webhooks through the job table: idempotence, interrupted jobs, retries,
//! signatures, and live notifications.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use http_body_util::BodyExt;
use linli::cases::jobs;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::both;
use crate::cases::{act, new_case};
use crate::harness::TestApp;

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&app.st.db.pool).await.unwrap()
}

async fn history_count(app: &TestApp, number: &str, action: &str) -> i64 {
    scalar(app, &format!("SELECT COUNT(*) FROM case_history h JOIN cases c ON c.id = h.case_id WHERE c.number = '{number}' AND h.action = '{action}'")).await
}

async fn sla_timers_run_once(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let n = new_case(&app, &staff, "ldd", "楼道灯不亮").await;
    act(&app, &staff, &n, json!({"action": "register"})).await;
    let yellow = scalar(&app, &format!("SELECT yellow_at FROM cases WHERE number = '{n}'")).await;
    let due = scalar(&app, &format!("SELECT resolve_due FROM cases WHERE number = '{n}'")).await;
    assert!(yellow < due);
    let id = scalar(&app, &format!("SELECT id FROM cases WHERE number = '{n}'")).await;
    assert_eq!(scalar(&app, &format!("SELECT COUNT(*) FROM jobs WHERE kind = 'sla' AND dedup_key LIKE 'sla:{id}:%'")).await, 3);
    // Let the demo's own due jobs settle first, then only ours remain.
    jobs::run_due(&app.st, "w0", yellow - 1).await.unwrap();
    while jobs::run_due(&app.st, "w0", yellow - 1).await.unwrap() > 0 {}
    // Yellow card at 80 %, exactly once however often the worker runs.
    jobs::run_due(&app.st, "w1", yellow + 1).await.unwrap();
    jobs::run_due(&app.st, "w1", yellow + 1).await.unwrap();
    let v = app.get(&format!("/api/v1/cases/{n}")).bearer(&staff).send().await.json();
    assert_eq!(v["warn_level"], 1);
    assert_eq!(history_count(&app, &n, "yellow_card").await, 1);
    // A worker claims the red-card job and dies: its lease keeps others off until it expires,
    // then another worker runs it — once.
    let claimed = jobs::claim(&app.st, "w-dead", due + 1, 50, 60_000).await.unwrap();
    assert!(claimed.iter().any(|j| j.payload["case_id"] == id && j.payload["step"] == "red"));
    assert_eq!(jobs::run_due(&app.st, "w2", due + 2).await.unwrap(), 0, "leased");
    assert!(jobs::run_due(&app.st, "w2", due + 61_000).await.unwrap() >= 1);
    jobs::run_due(&app.st, "w3", due + 62_000).await.unwrap();
    assert_eq!(history_count(&app, &n, "red_card").await, 1);
    let v = app.get(&format!("/api/v1/cases/{n}")).bearer(&staff).send().await.json();
    assert_eq!(v["warn_level"], 2);
    // Scheduling the same timers again is a no-op (dedup keys).
    let before = scalar(&app, "SELECT COUNT(*) FROM jobs").await;
    let mut tx = app.st.db.begin().await.unwrap();
    let cal = linli::cases::categories::calendar(&app.st.db).await.unwrap();
    jobs::schedule_sla(&mut tx, &cal, id, yellow, due);
    tx.commit().await.unwrap();
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM jobs").await, before);
    // Automatic escalation one working day after the deadline, with the street told.
    jobs::run_due(&app.st, "w4", due + 30 * 86_400_000).await.unwrap();
    assert_eq!(history_count(&app, &n, "auto_escalate").await, 1);
    let v = app.get(&format!("/api/v1/cases/{n}")).bearer(&staff).send().await.json();
    assert_eq!(v["level"], 1);
    let street = app.login("heping").await;
    let inbox = app.get("/api/v1/notifications").bearer(&street).send().await.json();
    assert!(
        inbox["items"].as_array().unwrap().iter().any(|x| x["kind"] == "auto_escalate" && x["number"] == n.as_str()),
        "{inbox}"
    );
}

async fn superseded_timers_do_nothing(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let n = new_case(&app, &staff, "wuye", "物业费收取不透明").await;
    act(&app, &staff, &n, json!({"action": "register"})).await;
    act(&app, &staff, &n, json!({"action": "dispatch", "assignee": "DW050"})).await;
    let u = app.login("dw050").await;
    act(&app, &u, &n, json!({"action": "accept"})).await;
    let due0 = scalar(&app, &format!("SELECT resolve_due FROM cases WHERE number = '{n}'")).await;
    act(&app, &u, &n, json!({"action": "request_extension", "hours": 70, "note": "需业主大会表决"})).await;
    act(&app, &staff, &n, json!({"action": "approve_extension"})).await;
    let due1 = scalar(&app, &format!("SELECT resolve_due FROM cases WHERE number = '{n}'")).await;
    assert!(due1 > due0);
    // Timers of the old deadline fire but change nothing.
    jobs::run_due(&app.st, "w", due0 + 1).await.unwrap();
    while jobs::run_due(&app.st, "w", due0 + 1).await.unwrap() > 0 {}
    assert_eq!(history_count(&app, &n, "red_card").await, 0);
    jobs::run_due(&app.st, "w", due1 + 1).await.unwrap();
    while jobs::run_due(&app.st, "w", due1 + 1).await.unwrap() > 0 {}
    assert_eq!(history_count(&app, &n, "red_card").await, 1);
}

/// Requests a test server received: (head, body).
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A one-connection-at-a-time HTTP server that answers 500 first, then 200, recording requests.
async fn flaky_server() -> (u16, Seen) {
    webhook_server(true, 0).await
}

/// A webhook receiver for ten requests, answering each after `delay_ms` (the first with 500
/// if `fail_first`).
async fn webhook_server(fail_first: bool, delay_ms: u64) -> (u16, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let rec = seen.clone();
    tokio::spawn(async move {
        for i in 0..10 {
            let Ok((mut s, _)) = listener.accept().await else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = s.read(&mut chunk).await.unwrap_or(0);
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(h) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.to_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                        .unwrap_or(0);
                    if buf.len() >= h + 4 + len || n == 0 {
                        rec.lock().unwrap().push((text[..h].to_string(), buf[h + 4..].to_vec()));
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
            let status = if i == 0 && fail_first { "500 Internal Server Error" } else { "200 OK" };
            let _ = s.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes()).await;
        }
    });
    (port, seen)
}

async fn webhook_signed_and_retried(app: TestApp) {
    let (port, seen) = flaky_server().await;
    let admin = app.login("admin").await;
    let r = app.post("/api/v1/webhooks").bearer(&admin).json(json!({"url": format!("http://127.0.0.1:{port}/sms")})).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let secret = r.json()["secret"].as_str().unwrap().to_string();
    let r = app.post("/api/v1/webhooks").bearer(&admin).json(json!({"url": "ftp://x"})).send().await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let staff = app.login("huahuaqiao").await;
    let n = new_case(&app, &staff, "laji", "垃圾桶满了").await;
    let now = linli::db::now_ms();
    while jobs::run_due(&app.st, "w", now).await.unwrap() > 0 {}
    assert_eq!(seen.lock().unwrap().len(), 1, "first attempt (answered 500)");
    let job = scalar(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'webhook' AND done_at IS NULL AND attempts = 1").await;
    assert_eq!(job, 1, "rescheduled with backoff");
    jobs::run_due(&app.st, "w", now + 1_000).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1, "not before the backoff");
    jobs::run_due(&app.st, "w", now + jobs::backoff_ms(1) + 5_000).await.unwrap();
    let reqs = seen.lock().unwrap().clone();
    assert_eq!(reqs.len(), 2, "retried once and delivered");
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'webhook' AND done_at IS NULL").await, 0);
    for (head, body) in &reqs {
        let sig = head.lines().find_map(|l| l.strip_prefix("X-Linli-Signature: ")).unwrap();
        assert_eq!(sig, jobs::signature(&secret, body), "HMAC-SHA256 over the exact body");
        assert!(head.contains("X-Linli-Event: case.created"));
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["number"], n.as_str());
    }
    let id = |h: &str| h.lines().find_map(|l| l.strip_prefix("X-Linli-Delivery: ")).unwrap().to_string();
    assert_eq!(id(&reqs[0].0), id(&reqs[1].0), "one delivery id across retries");
}

/// A slow receiver: the deliveries a worker could not start within its lease go back to the
/// queue, uncounted, instead of running after another node may have claimed them again.
async fn slow_webhooks_stay_within_the_lease(app: TestApp) {
    // The demo county's running cases have timers already due (cards, escalations): run them
    // first, so that only the deliveries below are due.
    while jobs::run_due(&app.st, "w0", linli::db::now_ms()).await.unwrap() > 0 {}
    let (port, seen) = webhook_server(false, 700).await;
    let admin = app.login("admin").await;
    let r =
        app.post("/api/v1/webhooks").bearer(&admin).json(json!({"url": format!("http://127.0.0.1:{port}/slow")})).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let staff = app.login("huahuaqiao").await;
    for what in ["垃圾桶满了", "路灯不亮", "井盖松动"] {
        new_case(&app, &staff, "laji", what).await;
    }
    let lease = jobs::Lease { ms: 1_500, longest_job_ms: 1_000 };
    let now = linli::db::now_ms();
    assert_eq!(jobs::run_due_within(&app.st, "w", now, lease).await.unwrap(), 1, "one delivery fits in the lease");
    assert_eq!(seen.lock().unwrap().len(), 1);
    let back = "SELECT COUNT(*) FROM jobs WHERE kind = 'webhook' AND done_at IS NULL AND locked_until IS NULL AND attempts = 0";
    assert_eq!(scalar(&app, back).await, 2, "the other two handed back, their attempt uncounted");
    while jobs::run_due_within(&app.st, "w", now, lease).await.unwrap() > 0 {}
    let id = |h: &str| h.lines().find_map(|l| l.strip_prefix("X-Linli-Delivery: ")).unwrap().to_string();
    let mut ids: Vec<String> = seen.lock().unwrap().iter().map(|(h, _)| id(h)).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((ids.len(), seen.lock().unwrap().len()), (3, 3), "each delivered once");
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'webhook' AND done_at IS NULL").await, 0);
}

/// The caller's live event stream (`/api/v1/events`).
async fn events(app: &TestApp, token: &str) -> axum::body::Body {
    use tower::ServiceExt;
    let req = axum::http::Request::builder()
        .uri("/api/v1/events")
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    resp.into_body()
}

/// What the stream sends until `done` holds of it (or `secs` pass).
async fn read_until(body: &mut axum::body::Body, secs: u64, done: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(secs), async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(d) = frame.data_ref() {
                text.push_str(&String::from_utf8_lossy(d));
                if done(&text) {
                    return;
                }
            }
        }
    })
    .await;
    text
}

/// A new case in 花花桥社区 by the demo resident; its number.
async fn resident_case(app: &TestApp, resident: &str, what: &str) -> String {
    let r = app
        .post("/api/v1/cases")
        .bearer(resident)
        .json(json!({"category": "ldd", "description": what, "grid": "520627001001002"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["number"].as_str().unwrap().to_string()
}

async fn live_notification_stream(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let mut body = events(&app, &staff).await;
    let resident = app.login("jumin").await;
    let number = resident_case(&app, &resident, "楼道灯坏了").await;
    let got = read_until(&mut body, 10, |t| t.contains(&number)).await;
    assert!(got.contains(&number), "a notification arrives within seconds: {got}");
    assert!(got.contains("event: notification") && got.contains("case.new"), "{got}");
    // A burst larger than one poll's worth comes whole, each once (the oldest used to be
    // skipped: each poll took the newest 50). Entered by the staff: a resident reports 30 an
    // hour at most.
    let texts: Vec<String> = (0..70).map(|i| format!("楼道灯坏了 {i}")).collect();
    let burst: Vec<_> = texts.iter().map(|t| resident_case(&app, &staff, t)).collect();
    let numbers = futures_util::future::join_all(burst).await;
    let got = read_until(&mut body, 20, |t| numbers.iter().all(|n| t.contains(n.as_str()))).await;
    for n in &numbers {
        assert_eq!(got.matches(&format!("\"number\":\"{n}\"")).count(), 1, "{n} sent once: {got}");
    }
}

/// Housekeeping removes what nothing reads any more — expired sessions, counters of ended
/// windows, jobs done over 30 days ago — and keeps the rest; a slot's run is scheduled once
/// however often (however many nodes) ask.
async fn housekeeping_sweeps_what_nothing_reads(app: TestApp) {
    let stale = app.login("admin").await;
    let fresh = app.login("admin").await;
    let now = linli::db::now_ms();
    let day = 86_400_000;
    let idle = app.st.cfg.idle_timeout_secs * 1000;
    let hash = linli::auth::token_hash(&stale);
    app.sql(&format!("UPDATE sessions SET last_seen = {} WHERE token_hash = '{hash}'", now - idle - 1000)).await;
    let sessions_before = scalar(&app, "SELECT COUNT(*) FROM sessions").await;
    app.sql(&format!(
        "INSERT INTO ip_throttle (ip, window_start, failures) VALUES ('old', {}, 3), ('new', {now}, 3); \
         INSERT INTO jobs (kind, dedup_key, payload, run_at, created_at, done_at) VALUES \
           ('sla', 't:old', '{{}}', 0, 0, {}), ('sla', 't:recent', '{{}}', 0, 0, {}), ('sla', 't:later', '{{}}', {}, 0, NULL)",
        now - 2 * day,
        now - 31 * day,
        now - day,
        now + 365 * day
    ))
    .await;
    for _ in 0..3 {
        linli::housekeeping::schedule(&app.st, now).await.unwrap();
    }
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'housekeeping'").await, 1);
    while jobs::run_due(&app.st, "w0", now + 1).await.unwrap() > 0 {}
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'housekeeping' AND done_at IS NOT NULL").await, 1);
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM sessions").await, sessions_before - 1);
    let left = |t: &str| format!("SELECT COUNT(*) FROM sessions WHERE token_hash = '{}'", linli::auth::token_hash(t));
    assert_eq!((scalar(&app, &left(&stale)).await, scalar(&app, &left(&fresh)).await), (0, 1));
    assert_eq!(app.get("/api/v1/overview").bearer(&fresh).send().await.status, StatusCode::OK);
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM ip_throttle WHERE ip IN ('old', 'new')").await, 1);
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM ip_throttle WHERE ip = 'new'").await, 1);
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM jobs WHERE dedup_key LIKE 't:%'").await, 2);
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM jobs WHERE dedup_key = 't:old'").await, 0);
}

/// A webhook's address is a unit contact's text: it may not reach the machine itself or a
/// link-local address (registered or at delivery, after resolving a name), nor carry a line
/// break into the request.
async fn webhooks_stay_off_the_machine(app: TestApp) {
    let app = TestApp::with(app.backend, |c| c.webhook_allow_loopback = false).await;
    let unit = app.login("danwei").await;
    for url in [
        "http://127.0.0.1:5432/",
        "http://localhost:8080/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0:6379/",
        "http://127.0.0.1:19999/hook HTTP/1.1\r\nHost: internal\r\n\r\nFLUSHALL\r\n",
        "http://gw.intranet/a b",
    ] {
        let r = app.post("/api/v1/webhooks").bearer(&unit).json(json!({"url": url})).send().await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {}", r.text());
        assert_eq!(r.json()["fields"][0]["field"], "url");
    }
    // A name that resolves to the machine is refused when delivering, after resolving it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // `127.1` is not an address as written, but a resolver makes it 127.0.0.1: refused when
    // registered (resolved then), as are the machine's other spellings.
    for host in ["127.1", "2130706433", "0x7f000001", "localhost."] {
        let r = app.post("/api/v1/webhooks").bearer(&unit).json(json!({"url": format!("http://{host}:{port}/x")})).send().await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{host}: {}", r.text());
    }
    // A name that resolved elsewhere when it was registered (DNS can change): delivery checks
    // the addresses again.
    app.sql(&format!("INSERT INTO webhooks (unit_id, url, secret, created_at) VALUES (NULL, 'http://127.1:{port}/x', 's', 0)"))
        .await;
    let staff = app.login("huahuaqiao").await;
    let n = new_case(&app, &staff, "ldd", "楼道灯不亮").await;
    act(&app, &staff, &n, json!({"action": "register"})).await;
    act(&app, &staff, &n, json!({"action": "dispatch", "assignee": "DW001"})).await;
    while jobs::run_due(&app.st, "w0", linli::db::now_ms()).await.unwrap() > 0 {}
    let accepted = tokio::time::timeout(std::time::Duration::from_millis(300), listener.accept()).await;
    assert!(accepted.is_err(), "the webhook reached the machine itself");
    let err: String = sqlx::query_scalar("SELECT last_error FROM jobs WHERE kind = 'webhook' ORDER BY id DESC LIMIT 1")
        .fetch_one(&app.st.db.pool)
        .await
        .unwrap();
    assert!(err.contains("不能推送到本机"), "{err}");
}

both!(
    webhooks_stay_off_the_machine,
    housekeeping_sweeps_what_nothing_reads,
    sla_timers_run_once,
    superseded_timers_do_nothing,
    webhook_signed_and_retried,
    slow_webhooks_stay_within_the_lease,
    live_notification_stream
);
