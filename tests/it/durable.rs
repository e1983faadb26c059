//! Durability behind the SQLite writer (`src/db/durable.rs`): a commit is answered only after
//! a WAL sync that followed it, committed batches reach the database file by background
//! checkpoints, and a failed sync stops every write instead of acknowledging one that may be
//! lost. On PostgreSQL the commit syncs by itself and the same calls simply work.

use std::time::{Duration, Instant};

use crate::both;
use crate::harness::TestApp;

fn is_sqlite(app: &TestApp) -> bool {
    app.st.db.backend == linli::db::Backend::Sqlite
}

async fn answered_after_sync(app: TestApp) {
    let db = app.st.db.clone();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = db.begin().await.unwrap();
            sqlx::query("INSERT INTO settings (key, value) VALUES ($1, 'x')")
                .bind(format!("du{i}"))
                .execute(&mut tx)
                .await
                .unwrap();
            // Read while this transaction holds the writer, so before its commit.
            let before = db.wal_syncs();
            tx.commit().await.unwrap();
            (before, db.wal_syncs())
        }));
    }
    for t in tasks {
        let (before, after) = t.await.unwrap();
        if is_sqlite(&app) {
            assert!(after > before, "answered without a sync after the commit: {before} -> {after}");
        } else {
            assert_eq!(after, 0, "PostgreSQL's commits sync themselves");
        }
    }
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM settings WHERE key LIKE 'du%'").fetch_one(db.read()).await.unwrap();
    assert_eq!(n, 40);
    let (logical, physical) = db.write_stats();
    if is_sqlite(&app) {
        // Group commit still groups: no more syncs than physical commits.
        assert!(db.wal_syncs() <= physical && physical <= logical, "{} {physical} {logical}", db.wal_syncs());
    }
}

/// The writer no longer copies the WAL into the database file itself (below 2,000 pages): the
/// checkpoint thread does, soon after the commits, so the database file alone holds them.
async fn checkpointed_in_background(app: TestApp) {
    if !is_sqlite(&app) {
        return;
    }
    let db = app.st.db.clone();
    for i in 0..5 {
        let mut tx = db.begin().await.unwrap();
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, 'x')").bind(format!("ck{i}")).execute(&mut tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    let dir = app.st.cfg.data_dir.clone();
    let copy = dir.join("main-only.db");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // The main file without its WAL: what a checkpoint has copied, nothing else.
        std::fs::copy(dir.join("linli.db"), &copy).unwrap();
        let n = rusqlite::Connection::open(&copy)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM settings WHERE key LIKE 'ck%'", [], |r| r.get::<_, i64>(0)));
        let _ = std::fs::remove_file(&copy);
        if n.as_ref().is_ok_and(|n| *n == 5) {
            break;
        }
        assert!(Instant::now() < deadline, "not checkpointed within 10 s: {n:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A sync that fails (here: the WAL is gone from under SQLite) leaves the commit's durability
/// unknown: its request gets an error, and so does every write after it.
async fn failed_sync_stops_writes(app: TestApp) {
    if !is_sqlite(&app) {
        return;
    }
    let db = app.st.db.clone();
    let mut tx = db.begin().await.unwrap();
    sqlx::query("INSERT INTO settings (key, value) VALUES ('fs-1', 'x')").execute(&mut tx).await.unwrap();
    std::fs::remove_file(app.st.cfg.data_dir.join("linli.db-wal")).unwrap();
    let err = tx.commit().await.unwrap_err().to_string();
    assert!(err.contains("写入磁盘失败"), "{err}");
    let err = db.begin().await.unwrap_err().to_string();
    assert!(err.contains("写入已停止"), "{err}");
    // Reads go on.
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(db.read()).await.unwrap();
    assert!(n > 0);
}

both!(answered_after_sync, checkpointed_in_background, failed_sync_stops_writes);
