//! 双报到: a Party member's hours on a need they claimed become their 志愿服务记录, and the
//! community's closing confirms it (found by the web probe: the hours given on finishing were
//! silently dropped, and hours per member grew only by typing register rows).

use axum::http::StatusCode;
use serde_json::json;

use crate::both;
use crate::cases::{act, new_case};
use crate::harness::TestApp;

async fn a_members_claimed_need_counts_their_hours(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let member = app.login("dangyuan").await;
    let hours = || async {
        let ov = app.get("/api/v1/overview").bearer(&staff).send().await.json();
        ov["service_hours_per_member"].as_f64().unwrap()
    };
    let before = hours().await;
    let wish = new_case(&app, &staff, "zhucan", "独居老人希望每天送午餐").await;
    act(&app, &staff, &wish, json!({"action": "register"})).await;
    let (s, v) = act(&app, &member, &wish, json!({"action": "claim"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = act(&app, &member, &wish, json!({"action": "finish", "note": "已送餐", "hours": 30})).await;
    assert_eq!((s, v["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("hours")), "{v}");
    let (s, v) = act(&app, &member, &wish, json!({"action": "finish", "note": "已送餐", "hours": 2.5})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let rec = app.get(&format!("/api/v1/registers/service_records?case={wish}")).bearer(&staff).send().await.json();
    assert_eq!(rec["total"], 1, "{rec}");
    let row = &rec["items"][0];
    assert_eq!((row["hours"].as_f64(), row["confirmed"].as_bool()), (Some(2.5), Some(false)), "{row}");
    assert_eq!(row["member"], "在职党员");
    assert_eq!(hours().await, before, "not counted before the community confirms");
    let answer = json!({"action": "follow_up", "contacted": true, "solved": true, "satisfaction": "satisfied"});
    assert_eq!(act(&app, &staff, &wish, answer).await.0, StatusCode::OK);
    let (s, v) = act(&app, &staff, &wish, json!({"action": "close"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let rec = app.get(&format!("/api/v1/registers/service_records?case={wish}")).bearer(&staff).send().await.json();
    assert_eq!(rec["items"][0]["confirmed"], true, "the close confirms it: {rec}");
    assert!(hours().await > before, "counted once confirmed");
    // Staff finishing a unit's case record no hours, whatever they send.
    let other = new_case(&app, &staff, "zhucan", "希望有人帮忙买药").await;
    act(&app, &staff, &other, json!({"action": "register"})).await;
    act(&app, &staff, &other, json!({"action": "dispatch", "assignee": "DW034"})).await;
    let total = app.get("/api/v1/registers/service_records?per_page=1").bearer(&staff).send().await.json()["total"].clone();
    let unit = app.login("danwei").await;
    let _ = act(&app, &unit, &other, json!({"action": "finish", "hours": 3})).await;
    let after = app.get("/api/v1/registers/service_records?per_page=1").bearer(&staff).send().await.json()["total"].clone();
    assert_eq!(total, after);
}

both!(a_members_claimed_need_counts_their_hours);
