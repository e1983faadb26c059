//! Property test: after random histories of actions, the incremental rollups equal a
//! brute-force recount; tampering is detected and `rebuild` repairs it.

use serde_json::json;

use crate::both;
use crate::cases::{act, new_case};
use crate::harness::TestApp;

async fn rollups_equal_a_recount(app: TestApp) {
    use linli::cases::rollups;
    assert!(rollups::verify(&app.st.db).await.unwrap().is_empty(), "demo load leaves them exact");
    let staff = app.login("huahuaqiao").await;
    let unit = app.login("dw036").await;
    let member = app.login("dangyuan").await;
    let mut numbers = Vec::new();
    for (i, cat) in ["ldd", "zhucan", "xsd", "wuye", "peihu", "laji"].iter().cycle().take(12).enumerate() {
        numbers.push(new_case(&app, &staff, cat, &format!("随机历史 {i}")).await);
    }
    // A deterministic random walk over the whole action set, by the right and wrong people.
    let mut seed: u64 = 0x5eed;
    let mut next = |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let actions = [
        "register",
        "dispatch",
        "accept",
        "return",
        "reassign",
        "request_extension",
        "approve_extension",
        "finish",
        "follow_up",
        "rework",
        "escalate",
        "close",
        "reject",
        "void",
        "claim",
    ];
    let sats = ["satisfied", "basically_satisfied", "unsatisfied"];
    for _ in 0..400 {
        let n = &numbers[next(numbers.len() as u64) as usize];
        // Mostly the next step of the loop, sometimes anything (legal or not).
        let status = app.get(&format!("/api/v1/cases/{n}")).bearer(&staff).send().await.json()["status"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let forward = match status.as_str() {
            "submitted" => "register",
            "registered" => "dispatch",
            "dispatched" => "accept",
            "accepted" => ["finish", "request_extension", "approve_extension", "return"][next(4) as usize],
            "finished" => ["follow_up", "rework"][next(2) as usize],
            "followed_up" => ["close", "rework"][next(2) as usize],
            _ => "void",
        };
        let a = if next(10) < 7 { forward } else { actions[next(actions.len() as u64) as usize] };
        let who = match a {
            "accept" | "return" | "request_extension" | "finish" => &unit,
            "claim" => &member,
            _ => &staff,
        };
        let body = json!({"action": a, "assignee": "DW036", "note": "随机", "hours": 7, "contacted": next(5) > 0, "solved": next(3) > 0, "satisfaction": sats[next(3) as usize]});
        let (s, _) = act(&app, who, n, body).await;
        assert!(s.as_u16() < 500, "{a} on {n}: {s}");
        if next(40) == 0 {
            // The SLA job, a month ahead: red cards (and escalations) on every running case.
            let later = linli::db::now_ms() + 30 * 86_400_000;
            while linli::cases::jobs::run_due(&app.st, "walk", later).await.unwrap() > 0 {}
        }
        if next(10) == 0 {
            let _ = linli::cases::rating::rate_public(&app.st, n, "13800001111", sats[next(3) as usize], "", "127.0.0.1").await;
        }
    }
    let list = numbers.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(",");
    let steps: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(DISTINCT h.action) FROM case_history h JOIN cases c ON c.id = h.case_id WHERE c.number IN ({list})"
    )))
    .fetch_one(&app.st.db.pool)
    .await
    .unwrap();
    assert!(steps >= 10, "the walk exercised many kinds of step: {steps}");
    let red: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM case_history h JOIN cases c ON c.id = h.case_id WHERE h.action = 'red_card' AND c.number IN ({list})"
    )))
    .fetch_one(&app.st.db.pool)
    .await
    .unwrap();
    assert!(red > 0, "the SLA job showed red cards during the walk");
    let diff = rollups::verify(&app.st.db).await.unwrap();
    assert!(diff.is_empty(), "rollups drifted: {diff:?}");
    // The overview's overdue figure (read from the cube) is the number of red running cases.
    let admin = app.login("admin").await;
    let red_now: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM cases WHERE status IN ('registered', 'dispatched', 'accepted') AND warn_level >= 2",
    )
    .fetch_one(&app.st.db.pool)
    .await
    .unwrap();
    let ov = app.get("/api/v1/overview").bearer(&admin).send().await.json();
    assert_eq!(ov["cases_overdue"].as_i64(), Some(red_now));
    let heping = app.login("heping").await;
    let street_red: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM cases WHERE status IN ('registered', 'dispatched', 'accepted') AND warn_level >= 2 AND community_code LIKE '520627001%'",
    )
    .fetch_one(&app.st.db.pool)
    .await
    .unwrap();
    let ov = app.get("/api/v1/overview").bearer(&heping).send().await.json();
    assert_eq!(ov["cases_overdue"].as_i64(), Some(street_red));
    // The rates read from them agree with the totals of the cases.
    let county = app.get("/api/v1/rates?level=county").bearer(&admin).send().await.json();
    let counted: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cases WHERE status NOT IN ('rejected','voided')")
        .fetch_one(&app.st.db.pool)
        .await
        .unwrap();
    assert_eq!(county["items"][0]["cases"], counted);
    // Tampering is found; rebuild repairs.
    app.sql("UPDATE case_rollups SET closed = closed + 1 WHERE day = (SELECT MAX(day) FROM case_rollups)").await;
    let diffs = rollups::verify(&app.st.db).await.unwrap();
    // Told in words an operator reads: the day as a date, the counter by name.
    let today = linli::cases::calendar::local_date(linli::db::now_ms()).format("%Y").to_string();
    assert!(diffs.iter().any(|d| d.what.starts_with(&today) && d.changes().contains("已办结")), "{diffs:?}");
    assert!(diffs.iter().all(|d| !d.changes().is_empty() && !d.what.contains("Counts")), "{diffs:?}");
    rollups::rebuild(&app.st.db).await.unwrap();
    assert!(rollups::verify(&app.st.db).await.unwrap().is_empty());
    // The coarse cube is checked against the fine rollups, and rebuilt with them.
    app.sql("UPDATE case_cube SET solved = solved + 1 WHERE dim = 'street' AND grain = 32").await;
    assert!(!rollups::verify(&app.st.db).await.unwrap().is_empty());
    rollups::rebuild(&app.st.db).await.unwrap();
    assert!(rollups::verify(&app.st.db).await.unwrap().is_empty());

    // Periods read as edge days plus whole blocks give exactly the cases created in them.
    let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
    for (from, to) in [(300, 20), (45, 44), (33, 0), (400, 200), (1, 1)] {
        let (a, b) = (today - chrono::Duration::days(from), today - chrono::Duration::days(to));
        let start = a.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis() - 8 * 3_600_000;
        let end = b.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis() - 8 * 3_600_000 + 86_400_000;
        let count = |extra: &str| {
            let sql = format!(
                "SELECT COUNT(*) FROM cases WHERE status NOT IN ('rejected','voided') AND created_at >= {start} AND created_at < {end} {extra}"
            );
            let pool = app.st.db.pool.clone();
            async move { sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).fetch_one(&pool).await.unwrap() }
        };
        let total = |token: String, level: &'static str| {
            let path = format!("/api/v1/rates?level={level}&from={a}&to={b}");
            let app = &app;
            async move {
                let v = app.get(&path).bearer(&token).send().await.json();
                v["items"].as_array().unwrap().iter().map(|r| r["cases"].as_i64().unwrap()).sum::<i64>()
            }
        };
        let all = count("").await;
        assert_eq!(total(admin.clone(), "street").await, all, "{a}..{b}");
        assert_eq!(total(admin.clone(), "community").await, all, "{a}..{b}");
        assert_eq!(total(admin.clone(), "unit").await, count("AND unit_id IS NOT NULL").await, "{a}..{b}");
        let street = "AND node_path LIKE '/520627/520627001/%'";
        assert_eq!(total(heping.clone(), "community").await, count(street).await, "{a}..{b}");
        assert_eq!(total(heping.clone(), "unit").await, count(&format!("{street} AND unit_id IS NOT NULL")).await, "{a}..{b}");
    }
}

both!(rollups_equal_a_recount);
