//! Group commit: concurrent write transactions share physical commits, a transaction that
//! fails is rolled back alone (also after a constraint violation, which on PostgreSQL aborts
//! the whole physical transaction unless its savepoint is rolled back), a request cancelled
//! while holding the writer does not keep the database locked, and every acknowledged write
//! is there.

use std::time::Duration;

use crate::both;
use crate::harness::TestApp;

async fn group_commit(app: TestApp) {
    let db = app.st.db.clone();
    let (l0, p0) = db.write_stats();
    let mut tasks = Vec::new();
    for i in 0..60 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = db.begin().await?;
            sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1").execute(&mut tx).await?;
            let key = format!("gc{i}");
            sqlx::query("INSERT INTO settings (key, value) VALUES ($1, 'x')").bind(&key).execute(&mut tx).await?;
            match i % 3 {
                // A constraint violation after a statement that worked.
                0 => {
                    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, 'dup')").bind(&key).execute(&mut tx).await?;
                }
                // An application error: the transaction is dropped.
                1 => return Err(sqlx::Error::RowNotFound),
                _ => {}
            }
            tx.commit().await
        }));
    }
    let mut ok = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        let r = t.await.unwrap();
        assert_eq!(r.is_ok(), i % 3 == 2, "transaction {i}: {r:?}");
        ok += r.is_ok() as u64;
    }
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT key FROM settings WHERE key LIKE 'gc%' ORDER BY key").fetch_all(&db.pool).await.unwrap();
    let mut want: Vec<String> = (0..60).filter(|i| i % 3 == 2).map(|i| format!("gc{i}")).collect();
    want.sort();
    assert_eq!(keys, want);
    let (l1, p1) = db.write_stats();
    assert!(l1 - l0 >= ok, "{l0}->{l1}");
    assert!(p1 - p0 < l1 - l0, "no batching: {} commits for {} transactions", p1 - p0, l1 - l0);

    // A request cancelled while it holds the writer: its work is rolled back, the lock freed.
    let held = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut tx = db.begin().await.unwrap();
            sqlx::query("INSERT INTO settings (key, value) VALUES ('gc-cancelled', 'x')").execute(&mut tx).await.unwrap();
            sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1").execute(&mut tx).await.unwrap();
            tokio::time::sleep(Duration::from_secs(3600)).await;
            tx.commit().await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    held.abort();
    let _ = held.await;
    // Another connection can write (SQLite's write lock and PostgreSQL's row lock are free).
    let other = tokio::time::timeout(
        Duration::from_secs(5),
        sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1").execute(&db.pool),
    )
    .await;
    assert!(matches!(other, Ok(Ok(_))), "writer still locked: {other:?}");
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM settings WHERE key = 'gc-cancelled'").fetch_one(&db.pool).await.unwrap();
    assert_eq!(n, 0);
    // And the writer carries on.
    let mut tx = db.begin().await.unwrap();
    sqlx::query("INSERT INTO settings (key, value) VALUES ('gc-after', 'x')").execute(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM settings WHERE key = 'gc-after'").fetch_one(&db.pool).await.unwrap();
    assert_eq!(n, 1);
}

both!(group_commit);

/// Statements on the writer behave as sqlx's own drivers do, whichever engine is behind it:
/// numbered arguments bind by number (used out of order and twice), rows come back with their
/// names and types, `rows_affected` counts, constraint violations keep their kind (they become
/// field errors), a script of several statements runs whole, and quick reads see commits.
async fn writer_statements(app: TestApp) {
    let db = app.st.db.clone();
    let mut tx = db.begin().await.unwrap();
    let r = sqlx::query("SELECT $2 AS b, $1 AS a, $2 || $1 AS ba, CAST($3 AS BIGINT) AS n, $4 AS none")
        .bind("x")
        .bind("y")
        .bind(41_i64 + 1)
        .bind(None::<String>)
        .fetch_one(&mut tx)
        .await
        .unwrap();
    use sqlx::Row;
    assert_eq!(r.get::<String, _>("b"), "y");
    assert_eq!(r.get::<String, _>("a"), "x");
    assert_eq!(r.get::<String, _>("ba"), "yx");
    assert_eq!(r.get::<i64, _>("n"), 42);
    assert_eq!(r.get::<Option<String>, _>("none"), None);
    let n = sqlx::query("INSERT INTO settings (key, value) VALUES ('ws-1', 'a'), ('ws-2', 'b')").execute(&mut tx).await.unwrap();
    assert_eq!(n.rows_affected(), 2);
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT key, value FROM settings WHERE key LIKE 'ws-%' ORDER BY key").fetch_all(&mut tx).await.unwrap();
    assert_eq!(rows, vec![("ws-1".into(), "a".into()), ("ws-2".into(), "b".into())]);
    let none = sqlx::query("SELECT key FROM settings WHERE key = 'ws-none'").fetch_optional(&mut tx).await.unwrap();
    assert!(none.is_none());
    tx.commit().await.unwrap();
    // A read (in place on SQLite) sees the commit, and so does the next one.
    for _ in 0..2 {
        let seen: Vec<(String, String)> = sqlx::query_as("SELECT key, value FROM settings WHERE key LIKE $1 ORDER BY key")
            .bind("ws-%")
            .fetch_all(db.read())
            .await
            .unwrap();
        assert_eq!(seen, rows);
    }

    let mut tx = db.begin().await.unwrap();
    let dup = sqlx::query("INSERT INTO settings (key, value) VALUES ('ws-1', 'again')").execute(&mut tx).await.unwrap_err();
    assert!(dup.as_database_error().is_some_and(|e| e.is_unique_violation()), "{dup:?}");
    drop(tx);
    let mut tx = db.begin().await.unwrap();
    let fk = sqlx::query(
        "INSERT INTO case_history (case_id, action, from_status, to_status, actor, at) VALUES (-5, 'ws', '', '', 'ws', 0)",
    )
    .execute(&mut tx)
    .await
    .unwrap_err();
    assert!(fk.as_database_error().is_some_and(|e| e.is_foreign_key_violation()), "{fk:?}");
    drop(tx);

    let mut tx = db.begin().await.unwrap();
    sqlx::Executor::execute(
        &mut tx,
        "CREATE TABLE ws_a (x BIGINT PRIMARY KEY); CREATE TABLE ws_b (y BIGINT REFERENCES ws_a(x));",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ws_b").fetch_one(&db.pool).await.unwrap();
    assert_eq!(n, 0);
}

both!(writer_statements);

/// The serving writer keeps each request's savepoint journal in memory (`Db::for_requests`,
/// called by `linli serve` and by the test harness alike); PostgreSQL connections plan no
/// parallel workers.
async fn serving_settings(app: TestApp) {
    let db = app.st.db.clone();
    if db.backend == linli::db::Backend::Sqlite {
        let mut tx = db.begin().await.unwrap();
        let store: i64 = sqlx::query_scalar("PRAGMA temp_store").fetch_one(&mut tx).await.unwrap();
        assert_eq!(store, 2, "temp_store=MEMORY on the writer");
        drop(tx);
    } else {
        // No parallel plans: every read is index-bounded, and starting workers only costs.
        for _ in 0..3 {
            let workers: String = sqlx::query_scalar("SHOW max_parallel_workers_per_gather").fetch_one(db.read()).await.unwrap();
            assert_eq!(workers, "0");
        }
    }
    // Settings wait for the open batch to commit and keep the writer working.
    let mut tx = db.begin().await.unwrap();
    sqlx::query("INSERT INTO settings (key, value) VALUES ('ss-1', 'a')").execute(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    db.for_requests().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM settings WHERE key = 'ss-1'").fetch_one(db.read()).await.unwrap();
    assert_eq!(n, 1);
}

both!(serving_settings);

/// A logical transaction that changes more pages than SQLite keeps of a savepoint's journal in
/// memory (bulk loads, rollup rebuilds) spills the journal to disk and commits; it once failed
/// with "database or disk is full" when that limit was raised.
async fn big_transaction(app: TestApp) {
    let db = app.st.db.clone();
    let mut tx = db.begin().await.unwrap();
    sqlx::Executor::execute(&mut tx, "CREATE TABLE gc_big (x BIGINT PRIMARY KEY, pad TEXT NOT NULL)").await.unwrap();
    sqlx::query(
        "INSERT INTO gc_big (x, pad) WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 40000) \
         SELECT i, CAST(i AS TEXT) || $1 FROM s",
    )
    .bind("x".repeat(300))
    .execute(&mut tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // Every page of a ~14 MB table changes inside one savepoint.
    let mut tx = db.begin().await.unwrap();
    let n = sqlx::query("UPDATE gc_big SET pad = pad || 'y'").execute(&mut tx).await.unwrap();
    assert_eq!(n.rows_affected(), 40000);
    tx.commit().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM gc_big WHERE pad LIKE '%y'").fetch_one(&db.pool).await.unwrap();
    assert_eq!(n, 40000);
}

both!(big_transaction);

/// Reads give the same rows whether they run in place or outgrow the read budget and run
/// again on the pool (SQLite counts those in `/metrics`); arguments survive the second run.
async fn reads_over_budget(app: TestApp) {
    let db = &app.st.db;
    let sqlite = db.backend == linli::db::Backend::Sqlite;
    let count = "WITH RECURSIVE s(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM s WHERE i < $1) \
                 SELECT COUNT(*) AS n, MAX(i) AS m FROM s";
    let before = db.read_overflows();
    let small: (i64, i64) = sqlx::query_as(count).bind(10_i64).fetch_one(db.read()).await.unwrap();
    assert_eq!(small, (10, 10));
    assert_eq!(db.read_overflows(), before, "a small read stays in place");
    let large: (i64, i64) = sqlx::query_as(count).bind(500_000_i64).fetch_one(db.read()).await.unwrap();
    assert_eq!(large, (500_000, 500_000));
    let rows: Vec<(i64,)> = sqlx::query_as(
        "WITH RECURSIVE s(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM s WHERE i < $1) \
         SELECT i FROM s WHERE i % $2 = 0 ORDER BY i",
    )
    .bind(300_000_i64)
    .bind(100_000_i64)
    .fetch_all(db.read())
    .await
    .unwrap();
    assert_eq!(rows, vec![(100_000,), (200_000,), (300_000,)]);
    let none = sqlx::query(count).bind(400_000_i64).fetch_optional(db.read()).await.unwrap();
    assert!(none.is_some());
    assert_eq!(db.read_overflows(), if sqlite { before + 3 } else { 0 });
    let metrics = app.get("/metrics").send().await.text();
    let line = format!("linli_db_read_overflows_total {}", db.read_overflows());
    assert!(metrics.contains(&line), "{metrics}");
}

both!(reads_over_budget);

/// Counters (case numbers) taken inside batches stay gapless and unique: numbers count on
/// within a batch, and a transaction rolled back after taking one gives it back.
async fn counters_stay_gapless(app: TestApp) {
    let db = app.st.db.clone();
    let tasks: Vec<_> = (0..90)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut tx = db.begin().await.unwrap();
                let n = tx.next_in("test:gapless").await.unwrap();
                let again = tx.next_in("test:gapless").await.unwrap();
                assert_eq!(again, n + 1, "two numbers in one transaction");
                if i % 4 == 1 {
                    return None; // dropped: its numbers are given back
                }
                sqlx::query("INSERT INTO settings (key, value) VALUES ($1, 'x')")
                    .bind(format!("gapless-{n}"))
                    .execute(&mut tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                Some(n)
            })
        })
        .collect();
    let mut got = Vec::new();
    for t in tasks {
        got.extend(t.await.unwrap());
    }
    got.sort();
    let want: Vec<i64> = (0..got.len() as i64).map(|k| 1 + 2 * k).collect();
    assert_eq!(got, want, "numbers with gaps or twice");
    let (_, p) = db.write_stats();
    assert!(p > 0);
    let stored: i64 =
        sqlx::query_scalar("SELECT value FROM counters WHERE name = 'test:gapless'").fetch_one(&db.pool).await.unwrap();
    assert_eq!(stored, 2 * got.len() as i64);
    // A transaction after the batches counts on from the stored value.
    let mut tx = db.begin().await.unwrap();
    assert_eq!(tx.next_in("test:gapless").await.unwrap(), stored + 1);
}

both!(counters_stay_gapless);

/// Ids taken in one transaction (nobody queued behind it: one reserved at a time) are
/// distinct and rising, though none of its rows is in the table yet.
async fn ids_of_one_transaction(app: TestApp) {
    let mut tx = app.st.db.begin().await.unwrap();
    let ids: Vec<i64> = {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(tx.next_id("cases").await.unwrap());
        }
        v
    };
    drop(tx);
    assert!(ids.windows(2).all(|w| w[1] > w[0]), "{ids:?}");
}

both!(ids_of_one_transaction);

/// On PostgreSQL a released request's savepoint stays open and its release goes with the next
/// request's first statement, whose arguments are then written into the statement: they come
/// back exactly as bound (quotes, backslashes, `$1` inside text, Chinese, NULLs, extremes),
/// and a next request whose first statement fails is still rolled back alone.
async fn release_carried_by_the_next_statement(app: TestApp) {
    let db = app.st.db.clone();
    let carried0 = db.releases_carried();
    let (l0, _) = db.write_stats();
    let mut first = db.begin().await.unwrap();
    sqlx::query("INSERT INTO settings (key, value) VALUES ('carry-1', 'x')").execute(&mut first).await.unwrap();
    let text = "it's \\ '$1' \"引号\" 中文\n\tend";
    let second = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut tx = db.begin().await.unwrap();
            let row = sqlx::query(
                "INSERT INTO settings (key, value) VALUES ($1, $2) \
                 RETURNING key, value, $3 AS big, $4 AS absent, $5 AS ratio, $6 AS bytes, \
                 CAST(CASE WHEN $7 THEN 1 ELSE 0 END AS BIGINT) AS flag",
            )
            .bind("carry-2")
            .bind(text)
            .bind(i64::MIN)
            .bind(None::<String>)
            .bind(0.1f64)
            .bind(vec![0u8, 39, 92, 255])
            .bind(true)
            .fetch_one(&mut tx)
            .await
            .unwrap();
            let got: (String, String, i64, Option<String>, f64, Vec<u8>, i64) = (
                linli::db::get(&row, "key").unwrap(),
                linli::db::get(&row, "value").unwrap(),
                linli::db::get(&row, "big").unwrap(),
                linli::db::get(&row, "absent").unwrap(),
                linli::db::get(&row, "ratio").unwrap(),
                linli::db::get(&row, "bytes").unwrap(),
                linli::db::get(&row, "flag").unwrap(),
            );
            tx.commit().await.unwrap();
            got
        })
    };
    while db.writer_waiting() < 1 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let third = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut tx = db.begin().await.unwrap();
            // Taken by the first request: fails, as its own.
            sqlx::query("INSERT INTO settings (key, value) VALUES ($1, 'y')").bind("carry-1").execute(&mut tx).await.is_err()
        })
    };
    while db.writer_waiting() < 2 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    first.commit().await.unwrap();
    let got = second.await.unwrap();
    assert_eq!(got, ("carry-2".into(), text.into(), i64::MIN, None, 0.1, vec![0, 39, 92, 255], 1));
    assert!(third.await.unwrap(), "a taken key must fail");
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT value FROM settings WHERE key LIKE 'carry-%' ORDER BY key").fetch_all(&db.pool).await.unwrap();
    assert_eq!(keys, ["x", text], "both released requests are there, the failed one is not");
    let (l1, _) = db.write_stats();
    assert_eq!(l1 - l0, 2);
    let carried = db.releases_carried() - carried0;
    match app.backend {
        crate::harness::Backend::Postgres => assert_eq!(carried, 2, "both later requests carry the release before them"),
        crate::harness::Backend::Sqlite => assert_eq!(carried, 0),
    }
    // The writer goes on as usual.
    let mut tx = db.begin().await.unwrap();
    sqlx::query("DELETE FROM settings WHERE key LIKE 'carry-%'").execute(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
}

both!(release_carried_by_the_next_statement);
