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
        if next(10) == 0 {
            let _ = linli::cases::flow::rate_public(&app.st, n, "13800001111", sats[next(3) as usize], "", "127.0.0.1").await;
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
    let diff = rollups::verify(&app.st.db).await.unwrap();
    assert!(diff.is_empty(), "rollups drifted: {diff:?}");
    // The rates read from them agree with the totals of the cases.
    let admin = app.login("admin").await;
    let county = app.get("/api/v1/rates?level=county").bearer(&admin).send().await.json();
    let counted: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cases WHERE status NOT IN ('rejected','voided')")
        .fetch_one(&app.st.db.pool)
        .await
        .unwrap();
    assert_eq!(county["items"][0]["cases"], counted);
    // Tampering is found; rebuild repairs.
    app.sql("UPDATE case_rollups SET closed = closed + 1 WHERE day = (SELECT MAX(day) FROM case_rollups)").await;
    assert!(!rollups::verify(&app.st.db).await.unwrap().is_empty());
    rollups::rebuild(&app.st.db).await.unwrap();
    assert!(rollups::verify(&app.st.db).await.unwrap().is_empty());
}

both!(rollups_equal_a_recount);
