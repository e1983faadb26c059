//! The hash-chained audit log: verify, and detection of altered, deleted and inserted rows.

use axum::http::StatusCode;

use crate::both;
use crate::harness::TestApp;

async fn chain_verify_and_tamper(app: TestApp) {
    let t = app.login("admin").await;
    for i in 0..3 {
        let r = app.post("/api/v1/nodes").bearer(&t).json(serde_json::json!({"kind": "compound", "code": format!("520627001001002-9{i}"), "parent": "520627001001002", "name": format!("审计{i}")})).send().await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let v = app.get("/api/v1/audit/verify").bearer(&t).send().await.json();
    assert_eq!(v["ok"], true, "{v}");
    let n = v["checked"].as_i64().unwrap();
    assert!(n >= 5, "demo load + login + 3 writes");
    // Every write is in the log with who and what.
    let log = app.get("/api/v1/audit?action=node.create").bearer(&t).send().await.json();
    assert_eq!(log["total"], 3);
    assert_eq!(log["items"][0]["actor"], "admin");
    assert!(log["items"][0]["summary"].as_str().unwrap().contains("审计2"));

    // Export is a real xlsx (zip) with Chinese headers.
    let x = app.get("/api/v1/audit/export.xlsx?action=node").bearer(&t).send().await;
    assert_eq!(x.status, StatusCode::OK);
    assert!(x.body.starts_with(b"PK"), "xlsx is a zip");
    let log = app.get("/api/v1/audit?action=audit.export").bearer(&t).send().await.json();
    assert_eq!(log["total"], 1, "taking the log away is in it: {log}");

    // Alter one entry's summary.
    let target = n - 1;
    app.sql(&format!("UPDATE audit_log SET summary = '无事发生' WHERE seq = {target}")).await;
    let v = linli::audit::verify(&app.st.db, &app.st.chain).await.unwrap();
    assert!(!v.ok);
    assert_eq!(v.first_bad, Some(target));
    assert!(v.reason.unwrap().contains("篡改"));

    // Put it back, then delete one in the middle.
    let fresh = TestApp::new(app.backend).await;
    let t2 = fresh.login("admin").await;
    for i in 0..3 {
        fresh.post("/api/v1/nodes").bearer(&t2).json(serde_json::json!({"kind": "compound", "code": format!("520627001001002-8{i}"), "parent": "520627001001002", "name": "x"})).send().await;
    }
    fresh.sql("DELETE FROM audit_log WHERE seq = 2").await;
    let v = linli::audit::verify(&fresh.st.db, &fresh.st.chain).await.unwrap();
    assert_eq!((v.ok, v.first_bad), (false, Some(2)), "{v:?}");
    assert!(v.reason.unwrap().contains("缺失"));

    // Insert a forged entry with a plausible hash at the end.
    let third = TestApp::new(app.backend).await;
    third.login("admin").await;
    let head: i64 = sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1").fetch_one(&third.st.db.pool).await.unwrap();
    let last: String =
        sqlx::query_scalar("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetch_one(&third.st.db.pool).await.unwrap();
    third
        .sql(&format!(
            "INSERT INTO audit_log (seq, at, actor, ip, action, entity, entity_id, node_path, summary, prev_hash, hash) VALUES ({}, 0, 'ghost', '-', 'node.delete', 'node', 'x', '/', 'forged', '{last}', 'deadbeef')",
            head + 1
        ))
        .await;
    let v = linli::audit::verify(&third.st.db, &third.st.chain).await.unwrap();
    assert_eq!((v.ok, v.first_bad), (false, Some(head + 1)), "{v:?}");
    // Removing the tail is caught through the head record.
    let fourth = TestApp::new(app.backend).await;
    fourth.login("admin").await;
    fourth.sql("DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)").await;
    let v = linli::audit::verify(&fourth.st.db, &fourth.st.chain).await.unwrap();
    assert!(!v.ok, "{v:?}");
    // And with the head's number lowered to match: caught by the head's seal.
    let fifth = TestApp::new(app.backend).await;
    for i in 0..3 {
        let ev =
            linli::audit::Event { action: "test", entity: "test", entity_id: &i.to_string(), node_path: "/", summary: "尾部" };
        linli::audit::record(&fifth.st.db, &fifth.st.chain, &linli::audit::Actor::system("test"), ev).await.unwrap();
    }
    let v = linli::audit::verify(&fifth.st.db, &fifth.st.chain).await.unwrap();
    assert!(v.ok, "{v:?}");
    let head: i64 = sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1").fetch_one(&fifth.st.db.pool).await.unwrap();
    fifth
        .sql(&format!("DELETE FROM audit_log WHERE seq > {}; UPDATE audit_head SET seq = {} WHERE id = 1", head - 3, head - 3))
        .await;
    let v = linli::audit::verify(&fifth.st.db, &fifth.st.chain).await.unwrap();
    assert!(!v.ok, "{v:?}");
    assert!(v.reason.as_deref().unwrap().contains("审计头的签名不符"), "{v:?}");
    // An older sealed head put back with the tail cut to match (from a backup), or the whole
    // log emptied: the chain left is whole, but the cases and accounts created since are
    // newer than every entry.
    let sixth = TestApp::new(app.backend).await;
    let staff = sixth.login("huahuaqiao").await;
    let old = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(&sixth.st.db.pool).await.unwrap();
    let (seq, hash): (i64, String) = (sqlx::Row::get(&old, "seq"), sqlx::Row::get(&old, "hash"));
    let n = crate::cases::new_case(&sixth, &staff, "laji", "备份之后的事项").await;
    assert!(linli::audit::verify(&sixth.st.db, &sixth.st.chain).await.unwrap().ok);
    // As if the case came a minute after the head that is put back (verify allows a few
    // seconds for a clock set back between a creation and its entry).
    sixth.sql(&format!("UPDATE cases SET created_at = created_at + 60000 WHERE number = '{n}'")).await;
    sixth
        .sql(&format!("DELETE FROM audit_log WHERE seq > {seq}; UPDATE audit_head SET seq = {seq}, hash = '{hash}' WHERE id = 1"))
        .await;
    let v = linli::audit::verify(&sixth.st.db, &sixth.st.chain).await.unwrap();
    assert!(!v.ok && v.reason.as_deref().unwrap().contains("创建于最后一条审计记录之后"), "{v:?}");
    sixth.sql("DELETE FROM audit_log; UPDATE audit_head SET seq = 0, hash = 'genesis' WHERE id = 1").await;
    let v = linli::audit::verify(&sixth.st.db, &sixth.st.chain).await.unwrap();
    assert!(!v.ok && v.reason.as_deref().unwrap().contains("账号创建于最后一条审计记录之后"), "{v:?}");
    sixth.sql("DELETE FROM audit_head").await;
    let v = linli::audit::verify(&sixth.st.db, &sixth.st.chain).await.unwrap();
    assert!(!v.ok && v.reason.as_deref().unwrap().contains("审计头缺失"), "{v:?}");

    // The page shows the verdict.
    let cookie = format!("linli_session={t}");
    let home = app.get("/audit").cookie(&cookie).send().await.text();
    assert!(home.contains("审计日志"));
}

/// A database that holds data is not opened with a new key: its personal data and audit chain
/// were written under the one that went missing.
async fn a_lost_key_is_not_replaced(app: TestApp) {
    let key = app.st.cfg.key_file();
    std::fs::remove_file(&key).unwrap();
    let err = match linli::app::AppState::open((*app.st.cfg).clone()).await {
        Ok(_) => panic!("opened a database full of data with a new key"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("找不到密钥文件"), "{err}");
    assert!(!key.exists(), "no new key was left behind");
}

both!(chain_verify_and_tamper, a_lost_key_is_not_replaced);

/// Two nodes' writers append to the one chain at once. On PostgreSQL a batch whose head
/// update waited for the other node's lock must still link to the entries that node wrote
/// (its statement's snapshot predates them); on SQLite the file lock serialises the two.
async fn two_writers_one_chain(app: TestApp) {
    let other = linli::app::AppState::open((*app.st.cfg).clone()).await.expect("a second node");
    let node = |st: linli::app::AppState, name: &'static str| {
        tokio::spawn(async move {
            let appends: Vec<_> = (0..120)
                .map(|i| {
                    let st = st.clone();
                    tokio::spawn(async move {
                        let actor = linli::audit::Actor { name: name.into(), ip: "127.0.0.1".into() };
                        let id = format!("{name}-{i}");
                        let ev = linli::audit::Event {
                            action: "test.append",
                            entity: "test",
                            entity_id: &id,
                            node_path: "/520627/",
                            summary: "两个节点同时追加",
                        };
                        linli::audit::record(&st.db, &st.chain, &actor, ev).await.unwrap();
                    })
                })
                .collect();
            for a in appends {
                a.await.unwrap();
            }
        })
    };
    let (a, b) = (node(app.st.clone(), "node-a"), node(other.clone(), "node-b"));
    a.await.unwrap();
    b.await.unwrap();
    let v = linli::audit::verify(&app.st.db, &app.st.chain).await.unwrap();
    assert!(v.ok, "{v:?}");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'test.append'")
        .fetch_one(&app.st.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 240);
    other.db.close().await;
}

both!(two_writers_one_chain);
