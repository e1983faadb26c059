//! The case cache of PostgreSQL nodes (src/db/cache.rs): a page read twice is served from
//! memory, and yet every change shows at once on the node that made it, and on the others as
//! soon as its notification arrives, whoever made it.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::cases::{act, new_case};
use crate::harness::{Backend, TestApp};

async fn page(app: &TestApp, token: &str, n: &str) -> (StatusCode, Value) {
    let r = app.get(&format!("/api/v1/cases/{n}")).bearer(token).send().await;
    (r.status, r.json())
}

async fn list(app: &TestApp, token: &str) -> Value {
    app.get("/api/v1/cases?per_page=5").bearer(token).send().await.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_pages_from_memory_stay_true() {
    let app = TestApp::new(Backend::Postgres).await;
    let cache = app.st.db.case_cache.clone();
    assert!(cache.is_on(), "the harness starts the listener as serve does");
    let staff = app.login("huahuaqiao").await;
    let n = new_case(&app, &staff, "laji", "垃圾桶满了没人清运").await;
    let (s, first) = page(&app, &staff, &n).await;
    assert_eq!(s, StatusCode::OK);
    let hits = cache.stats().0;
    assert_eq!(page(&app, &staff, &n).await.1, first);
    assert!(cache.stats().0 > hits, "a second read of the page is served from memory");
    // Each step shows at once on this node: `act` reads the page back after every step and
    // compares it with the step's answer.
    act(&app, &staff, &n, json!({"action": "register"})).await;
    act(&app, &staff, &n, json!({"action": "dispatch", "assignee": "DW001"})).await;
    let unit = app.login("danwei").await;
    let (s, v) = act(&app, &unit, &n, json!({"action": "accept"})).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("accepted")), "{v}");
    assert_eq!(page(&app, &staff, &n).await.1["history"].as_array().unwrap().len(), 4);
    // Seeing a page kept in memory is still checked for each caller.
    let other = app.login("jumin").await;
    let (s, _) = page(&app, &other, &n).await;
    assert!(matches!(s, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "a resident who did not report it: {s}");
    // A change made outside this process (another node, the CLI, psql), even one that leaves
    // the version alone, is seen once its notification arrives.
    let mut outside = sqlx::PgConnection::connect(&app.st.cfg.database_url()).await.unwrap();
    sqlx::query("UPDATE cases SET title = '外面改的标题' WHERE number = $1").bind(&n).execute(&mut outside).await.unwrap();
    let t0 = Instant::now();
    while page(&app, &staff, &n).await.1["title"] != "外面改的标题" {
        assert!(t0.elapsed() < Duration::from_secs(3), "an outside change was never seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And a step's note changed from outside (only ever added by linli, with the case).
    let sql = "UPDATE case_history SET note = '外面改的备注' WHERE case_id = (SELECT id FROM cases WHERE number = $1) AND action = 'register'";
    sqlx::query(sql).bind(&n).execute(&mut outside).await.unwrap();
    let t0 = Instant::now();
    while !page(&app, &staff, &n).await.1["history"].to_string().contains("外面改的备注") {
        assert!(t0.elapsed() < Duration::from_secs(3), "an outside change to a step was never seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // So is a case added from outside, in the lists.
    let total = list(&app, &staff).await["total"].as_i64().unwrap();
    assert_eq!(list(&app, &staff).await["total"], total);
    let copy = "INSERT INTO cases (number, category_id, status, title, description, channel, node_path, grid_code, community_code, created_at, updated_at, attrs) \
         SELECT 'OUT-1', category_id, status, title, description, channel, node_path, grid_code, community_code, created_at, updated_at, attrs FROM cases WHERE number = $1";
    sqlx::query(copy).bind(&n).execute(&mut outside).await.unwrap();
    let t0 = Instant::now();
    while list(&app, &staff).await["total"] != total + 1 {
        assert!(t0.elapsed() < Duration::from_secs(3), "an outside insert never reached the lists");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sqlx::query("DELETE FROM cases WHERE number = 'OUT-1'").execute(&mut outside).await.unwrap();
    // A deletion forgets every page.
    for t in ["case_history", "case_terms", "case_photos"] {
        let sql = format!("DELETE FROM {t} WHERE case_id = (SELECT id FROM cases WHERE number = $1)");
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&n).execute(&mut outside).await.unwrap();
    }
    sqlx::query("DELETE FROM cases WHERE number = $1").bind(&n).execute(&mut outside).await.unwrap();
    let t0 = Instant::now();
    while page(&app, &staff, &n).await.0 != StatusCode::NOT_FOUND {
        assert!(t0.elapsed() < Duration::from_secs(3), "a deleted case was still shown");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// This node's own steps show at once even when notifications are slow: the writer drops the
/// old copy itself, before its commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_steps_show_without_waiting_for_notifications() {
    let mut app = TestApp::new(Backend::Postgres).await;
    // The cache on with no listener: notifications never come.
    let st = linli::app::AppState::open((*app.st.cfg).clone()).await.unwrap();
    st.db.for_requests().await.unwrap();
    st.db.case_cache.set_on(true);
    app.router = linli::app::router(st.clone());
    app.st = st;
    let staff = app.login("huahuaqiao").await;
    let before = list(&app, &staff).await;
    let hits = app.st.db.case_cache.stats().0;
    assert_eq!(list(&app, &staff).await, before);
    assert!(app.st.db.case_cache.stats().0 > hits, "the second list came from memory");
    let n = new_case(&app, &staff, "laji", "楼道堆放杂物").await;
    let after = list(&app, &staff).await;
    assert_eq!(after["items"][0]["number"], n.as_str(), "a new case shows at once in the lists");
    assert_eq!(after["total"].as_i64().unwrap(), before["total"].as_i64().unwrap() + 1);
    for step in [json!({"action": "register"}), json!({"action": "dispatch", "assignee": "DW001"})] {
        page(&app, &staff, &n).await;
        let hits = app.st.db.case_cache.stats().0;
        // `act` compares the step's answer with the page read right after it.
        let (s, v) = act(&app, &staff, &n, step).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(app.st.db.case_cache.stats().0 > hits, "the step read the case from memory");
        assert_eq!(list(&app, &staff).await["items"][0]["status"], v["status"], "a step shows at once in the lists");
    }
    // The page right after a step (a form's redirect, the next step) is the one the step kept,
    // and it is what the database holds.
    let unit = app.login("danwei").await;
    let r = app.post(&format!("/api/v1/cases/{n}/actions")).bearer(&unit).json(json!({"action": "accept"})).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let hits = app.st.db.case_cache.stats().0;
    let kept = page(&app, &unit, &n).await.1;
    assert!(app.st.db.case_cache.stats().0 > hits, "the page after the step came from memory");
    assert_eq!(kept, r.json());
    app.st.db.case_cache.forget_all();
    assert_eq!(page(&app, &unit, &n).await.1, kept, "the database holds the page the step kept");
    // A category's new name shows at once in the lists kept (and who may claim decides what a
    // Party member's list holds).
    let admin = app.login("admin").await;
    let cat = json!({"code": "laji", "name": "垃圾清运", "sign_hours": 2, "resolve_hours": 24});
    let r = app.post("/api/v1/categories").bearer(&admin).json(cat).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(list(&app, &staff).await["items"][0]["category_name"], "垃圾清运");
}

/// A listener whose connection goes silent (a firewall dropping it without a word) is found
/// out by its heartbeat: the cache turns off instead of serving what it kept for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_listener_turns_the_cache_off() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let app = TestApp::new(Backend::Postgres).await;
    // A relay to PostgreSQL that, once frozen, swallows what passes through and closes nothing.
    let relay = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = relay.local_addr().unwrap().port();
    let frozen = Arc::new(AtomicBool::new(false));
    let f = frozen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = relay.accept().await {
            let server = tokio::net::TcpStream::connect("127.0.0.1:5432").await.unwrap();
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pump(cr, sw, f.clone()));
            tokio::spawn(pump(sr, cw, f.clone()));
        }
    });
    let cache = Arc::new(linli::db::cache::RowCache::default());
    let url = app.st.cfg.database_url().replace("127.0.0.1:5432", &format!("127.0.0.1:{port}"));
    assert!(url.contains(&port.to_string()), "{url}");
    tokio::spawn(linli::db::cache::listen(cache.clone(), url, app.st.db.pool.clone()));
    let t0 = std::time::Instant::now();
    while !cache.is_on() {
        assert!(t0.elapsed() < Duration::from_secs(10), "never on");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // On while the heartbeats come back.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(cache.is_on(), "a healthy listener keeps the cache on");
    frozen.store(true, Ordering::SeqCst);
    let t0 = std::time::Instant::now();
    while cache.is_on() {
        assert!(t0.elapsed() < Duration::from_secs(8), "a silent connection kept the cache on");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Copies `from` to `to` until either ends; once `frozen`, swallows instead.
async fn pump(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 8192];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        if !frozen.load(std::sync::atomic::Ordering::SeqCst) && to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}
