//! Work deferred to the end of a batch (audit entries, rollup changes): written once for
//! every transaction released into the batch, never for one rolled back, in one unbroken
//! chain; a rollup rebuild inside a batch voids the changes released before it.

use std::time::Duration;

use futures_util::future::join_all;
use linli::audit::{self, Actor, Event};
use linli::cases::rates::Counts;
use linli::cases::rollups::{self, Key};

use crate::both;
use crate::harness::{TestApp, until_queued};

async fn audit_entries_of_a_batch(app: TestApp) {
    let db = app.st.db.clone();
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit_log WHERE action = 'test.deferred'")
            .fetch_one(&db.pool)
            .await
            .unwrap()
    };
    let (l0, p0) = db.write_stats();
    let writes = (0..48).map(|i| {
        let (db, key) = (db.clone(), app.st.chain.clone());
        tokio::spawn(async move {
            let mut tx = db.begin().await.unwrap();
            let id = i.to_string();
            let ev = Event { action: "test.deferred", entity: "test", entity_id: &id, node_path: "/", summary: "延后写入" };
            audit::append(&mut tx, &key, &Actor::system("test"), ev);
            if i % 4 == 0 {
                return false; // dropped: rolled back with its entry
            }
            tx.commit().await.unwrap();
            true
        })
    });
    let kept = join_all(writes).await.into_iter().filter(|k| *k.as_ref().unwrap()).count() as i64;
    assert_eq!(kept, 36);
    assert_eq!(count().await, kept);
    let (l1, p1) = db.write_stats();
    assert!(p1 - p0 < l1 - l0, "no batching: {} commits for {} transactions", p1 - p0, l1 - l0);
    // Each kept entry once, numbered without gaps, each chained to the one before.
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT entity_id FROM audit_log WHERE action = 'test.deferred'").fetch_all(&db.pool).await.unwrap();
    let mut want: Vec<String> = (0..48).filter(|i| i % 4 != 0).map(|i| i.to_string()).collect();
    let mut got = ids.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let v = audit::verify(&db, &app.st.chain).await.unwrap();
    assert!(v.ok, "{v:?}");
}

both!(audit_entries_of_a_batch);

async fn rollup_changes_of_a_batch(app: TestApp) {
    let db = app.st.db.clone();
    assert!(rollups::verify(&db).await.unwrap().is_empty());
    // A change no case backs: verify reports it once written.
    let ghost =
        (Key { day: 20_000, community: "520627001001".into(), unit: 0, category: 1 }, Counts { cases: 1, ..Counts::default() });

    // Rolled back: nothing written.
    let mut tx = db.begin().await.unwrap();
    rollups::track_new(&mut tx, ghost.clone());
    drop(tx);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(rollups::verify(&db).await.unwrap().is_empty(), "a rolled-back change was written");

    // Released: written at the end of its batch (the test could not fail otherwise).
    let mut tx = db.begin().await.unwrap();
    rollups::track_new(&mut tx, ghost.clone());
    tx.commit().await.unwrap();
    assert!(!rollups::verify(&db).await.unwrap().is_empty(), "a released change was not written");
    rollups::rebuild(&db).await.unwrap();

    // Released into a batch that a rebuild then joins: the recount holds it already (here:
    // holds nothing, as no case backs it), so it must not be added again.
    let mut first = db.begin().await.unwrap();
    rollups::track_new(&mut first, ghost.clone());
    let second = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut tx = db.begin().await.unwrap();
            rollups::rebuild_in(&mut tx).await.unwrap();
            tx.commit().await.unwrap();
        })
    };
    // The rebuild waits for the writer: the first release parks in the batch for it.
    until_queued(&db, 1).await;
    let (l0, p0) = db.write_stats();
    first.commit().await.unwrap();
    second.await.unwrap();
    let (l1, p1) = db.write_stats();
    assert_eq!((l1 - l0, p1 - p0), (2, 1), "the two were not one batch");
    let diffs = rollups::verify(&db).await.unwrap();
    assert!(diffs.is_empty(), "counted twice: {diffs:?}");
}

both!(rollup_changes_of_a_batch);

/// A transaction begun "after deferred" sees what the batch's earlier transactions deferred
/// (a demo reset must find a new case's notifications to delete them); one begun normally
/// does not, yet — and both end up written once.
async fn begin_after_deferred(app: TestApp) {
    use linli::cases::notify::{self, Target};
    let db = app.st.db.clone();
    let count = "SELECT COUNT(*) FROM notifications WHERE kind = 'test.deferred'";
    for barrier in [false, true] {
        let mut first = db.begin().await.unwrap();
        notify::push(&mut first, Target::User(1), 1, "test.deferred", "延后写入");
        let second = {
            let db = db.clone();
            tokio::spawn(async move {
                let mut tx = if barrier { db.begin_after_deferred().await } else { db.begin().await }.unwrap();
                let seen: i64 = sqlx::query_scalar(count).fetch_one(&mut tx).await.unwrap();
                tx.commit().await.unwrap();
                seen
            })
        };
        until_queued(&db, 1).await;
        first.commit().await.unwrap();
        let seen = second.await.unwrap();
        let before = if barrier { 1 } else { 0 };
        assert_eq!(seen, before + barrier as i64, "barrier {barrier}");
        let after: i64 = sqlx::query_scalar(count).fetch_one(&db.pool).await.unwrap();
        assert_eq!(after, before + 1, "barrier {barrier}");
    }
}

both!(begin_after_deferred);

/// Requests cancelled at any point (waiting for the writer, mid-transaction, while their
/// release or the batch's commit is in flight, parked): each one either committed with its
/// deferred work or left nothing.
async fn cancelled_requests_keep_their_deferred_work(app: TestApp) {
    use linli::cases::notify::{self, Target};
    let db = app.st.db.clone();
    let tasks: Vec<_> = (0..300i64)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                let work = async {
                    let mut tx = db.begin().await?;
                    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, 'x')")
                        .bind(format!("cancel-{i}"))
                        .execute(&mut tx)
                        .await?;
                    notify::push(&mut tx, Target::User(1), i, "test.cancel", "取消");
                    if i % 10 == 0 {
                        // Still inside its transaction when cut off, however fast the machine.
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                    tx.commit().await
                };
                if i % 10 == 5 {
                    // Never cut off: these must all be written.
                    let _ = work.await;
                    return;
                }
                // Cut off after 0–15 ms: anywhere along the way for the others.
                let _ = tokio::time::timeout(Duration::from_micros((i as u64 * 7919) % 15_000), work).await;
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT key FROM settings WHERE key LIKE 'cancel-%'").fetch_all(&db.pool).await.unwrap();
    let mut written: Vec<i64> = keys.iter().map(|k| k["cancel-".len()..].parse().unwrap()).collect();
    let mut noted: Vec<i64> =
        sqlx::query_scalar("SELECT case_id FROM notifications WHERE kind = 'test.cancel'").fetch_all(&db.pool).await.unwrap();
    written.sort();
    noted.sort();
    // The timing of the others depends on the machine; these two tenths do not.
    assert!(written.iter().all(|i| i % 10 != 0), "a request cut off mid-transaction was written: {written:?}");
    let uncut: Vec<i64> = written.iter().copied().filter(|i| i % 10 == 5).collect();
    assert_eq!(uncut, (0..300).filter(|i| i % 10 == 5).collect::<Vec<i64>>(), "a request never cut off is missing");
    assert_eq!(written, noted, "committed requests and their deferred rows differ");
}

both!(cancelled_requests_keep_their_deferred_work);

/// Steps go to the history at the end of their batch: in the order their requests were
/// released (one case's page lists them by id), a step with photos in its place, its photos
/// pointing at it, and all of them in one physical commit.
async fn steps_of_a_batch_keep_their_order(app: TestApp) {
    use linli::cases::history::{Entry, record};
    use linli::cases::photos::Saved;
    let db = app.st.db.clone();
    let case_id: i64 = sqlx::query_scalar("SELECT MIN(id) FROM cases").fetch_one(&db.pool).await.unwrap();
    let step =
        move |action| Entry { case_id, action, from: "", to: "", actor: "test", label: "测试", note: "", public: false, at: 1 };
    let photo = || vec![Saved { path: "photos/test.png".into(), mime: "image/png", size: 3 }];
    let (_, p0) = db.write_stats();
    let mut first = db.begin().await.unwrap();
    // The second and third wait for the writer while the first holds it: one batch.
    let second = tokio::spawn({
        let db = db.clone();
        async move {
            let mut tx = db.begin().await.unwrap();
            record(&mut tx, step("test_b"), photo());
            let third = tokio::spawn({
                let db = db.clone();
                async move {
                    let mut tx = db.begin().await.unwrap();
                    record(&mut tx, step("test_c"), Vec::new());
                    tx.commit().await.unwrap();
                }
            });
            until_queued(&db, 1).await;
            tx.commit().await.unwrap();
            third.await.unwrap();
        }
    });
    until_queued(&db, 1).await;
    record(&mut first, step("test_a"), Vec::new());
    first.commit().await.unwrap();
    second.await.unwrap();
    assert_eq!(db.write_stats().1 - p0, 1, "the three steps were not one batch");
    let rows = sqlx::query("SELECT id, action FROM case_history WHERE case_id = $1 AND action LIKE 'test_%' ORDER BY id")
        .bind(case_id)
        .fetch_all(&db.pool)
        .await
        .unwrap();
    let got: Vec<(i64, String)> =
        rows.iter().map(|r| (linli::db::get(r, "id").unwrap(), linli::db::get(r, "action").unwrap())).collect();
    let actions: Vec<&str> = got.iter().map(|(_, a)| a.as_str()).collect();
    assert_eq!(actions, ["test_a", "test_b", "test_c"]);
    let of_photo: i64 = sqlx::query_scalar("SELECT history_id FROM case_photos WHERE path = 'photos/test.png'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(of_photo, got[1].0, "the photo does not point at its step");
}

both!(steps_of_a_batch_keep_their_order);

/// Requests that leave all their work for the end of the batch share one savepoint, which no
/// statement touched, with the requests around them; a neighbour whose statement fails is
/// still rolled back alone, with its deferred work.
async fn requests_without_statements_in_a_batch(app: TestApp) {
    use linli::cases::notify::{self, Target};
    let db = app.st.db.clone();
    let mut tx = db.begin().await.unwrap();
    sqlx::query("INSERT INTO settings (key, value) VALUES ('mixed-taken', 'x')").execute(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    let (l0, p0) = db.write_stats();
    let tasks = (0..90i64).map(|i| {
        let db = db.clone();
        tokio::spawn(async move {
            let mut tx = db.begin().await.unwrap();
            notify::push(&mut tx, Target::User(1), i, "test.mixed", "混合");
            let key = match i % 3 {
                0 => None,
                1 => Some(format!("mixed-{i}")),
                _ => Some("mixed-taken".to_string()), // fails: the key is taken
            };
            if let Some(k) = key
                && sqlx::query("INSERT INTO settings (key, value) VALUES ($1, 'x')").bind(k).execute(&mut tx).await.is_err()
            {
                return false;
            }
            tx.commit().await.unwrap();
            true
        })
    });
    let ok: Vec<bool> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(ok, (0..90).map(|i| i % 3 != 2).collect::<Vec<_>>(), "only the taken keys fail");
    let mut noted: Vec<i64> =
        sqlx::query_scalar("SELECT case_id FROM notifications WHERE kind = 'test.mixed'").fetch_all(&db.pool).await.unwrap();
    noted.sort();
    assert_eq!(noted, (0..90).filter(|i| i % 3 != 2).collect::<Vec<i64>>());
    let keys: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM settings WHERE key LIKE 'mixed-%'").fetch_one(&db.pool).await.unwrap();
    assert_eq!(keys, 31, "thirty new keys and the taken one");
    let (l1, p1) = db.write_stats();
    assert_eq!(l1 - l0, 60);
    assert!(p1 - p0 < 60, "no batching: {} commits", p1 - p0);
}

both!(requests_without_statements_in_a_batch);
