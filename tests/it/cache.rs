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
}
