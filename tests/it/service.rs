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
    // Sent back and finished again: the hours of the work accepted, once (found in review: both
    // finishes were confirmed, 7 h for one need).
    let redo = new_case(&app, &staff, "zhucan", "需要有人帮忙取药").await;
    act(&app, &staff, &redo, json!({"action": "register"})).await;
    act(&app, &member, &redo, json!({"action": "claim"})).await;
    assert_eq!(act(&app, &member, &redo, json!({"action": "finish", "hours": 3})).await.0, StatusCode::OK);
    assert_eq!(act(&app, &staff, &redo, json!({"action": "rework", "note": "药没取对"})).await.0, StatusCode::OK);
    assert_eq!(act(&app, &member, &redo, json!({"action": "finish", "hours": 4})).await.0, StatusCode::OK);
    let answer = json!({"action": "follow_up", "contacted": true, "solved": true, "satisfaction": "satisfied"});
    assert_eq!(act(&app, &staff, &redo, answer).await.0, StatusCode::OK);
    assert_eq!(act(&app, &staff, &redo, json!({"action": "close"})).await.0, StatusCode::OK);
    let rec = app.get(&format!("/api/v1/registers/service_records?case={redo}")).bearer(&staff).send().await.json();
    assert_eq!(rec["total"], 1, "{rec}");
    assert_eq!((rec["items"][0]["hours"].as_f64(), rec["items"][0]["confirmed"].as_bool()), (Some(4.0), Some(true)));
    // A member scoped to one grid records their work in it (the record is the community's).
    let grid =
        app.get(&format!("/api/v1/cases/{redo}")).bearer(&staff).send().await.json()["grid_code"].as_str().unwrap().to_string();
    let gm = app.account("gridmember", "party_member", &grid).await;
    let one = new_case(&app, &staff, "zhucan", "帮忙送一次午餐").await;
    act(&app, &staff, &one, json!({"action": "register"})).await;
    let (s, v) = act(&app, &gm, &one, json!({"action": "claim"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = act(&app, &gm, &one, json!({"action": "finish", "hours": 1.5})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
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

/// The composite's weights are the county's choice (domain.md: make weights configurable),
/// set on the admin page or the API, audited, and every ranking follows them.
async fn the_county_weighs_the_composite(app: TestApp) {
    let admin = app.login("admin").await;
    let w = app.get("/api/v1/rates/weights").bearer(&admin).send().await.json();
    assert_eq!(w, json!({"response": 0.1, "solve": 0.5, "satisfaction": 0.4}));
    let put = |who: &str, body: serde_json::Value| {
        app.req(axum::http::Method::PUT, "/api/v1/rates/weights").bearer(who).json(body).send()
    };
    let heping = app.login("heping").await;
    assert_eq!(put(&heping, json!({"response": 0.2, "solve": 0.4, "satisfaction": 0.4})).await.status, StatusCode::FORBIDDEN);
    let r = put(&admin, json!({"response": 0.2, "solve": 0.5, "satisfaction": 0.4})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("之和应为 1"), "{}", r.text());
    let r = put(&admin, json!({"response": -0.1, "solve": 0.7, "satisfaction": 0.4})).await;
    assert_eq!(r.json()["fields"][0]["field"], "response");
    let r = put(&admin, json!({"response": 0.2, "solve": 0.4, "satisfaction": 0.4})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let rows = app.get("/api/v1/rates?level=street").bearer(&admin).send().await.json();
    for row in rows["items"].as_array().unwrap().iter().filter(|r| r["composite"].is_number()) {
        let f = |k: &str| row[k].as_f64().unwrap();
        let want = 0.2 * f("response_rate") + 0.4 * f("solve_rate") + 0.4 * f("satisfaction_rate");
        assert!((f("composite") - want).abs() < 0.001, "{row}");
    }
    let page = app.get("/rates").cookie(&format!("linli_session={admin}")).send().await.text();
    assert!(page.contains("0.2 × 响应 + 0.4 × 解决 + 0.4 × 满意"), "{page}");
    let log = app.get("/api/v1/audit?action=settings.rate_weights").bearer(&admin).send().await.text();
    assert!(log.contains("综合得分权重"), "{log}");
    // A refused form on the settings page comes back as it was typed, the others as stored.
    let cookie = format!("linli_session={admin}");
    let home = app.get("/admin").cookie(&cookie).send().await.text();
    let csrf = home.split("name=\"_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let typed = [("_csrf", csrf.as_str()), ("response", "0.3"), ("solve", "0.3"), ("satisfaction", "0.3")];
    let r = app.post("/admin/weights").cookie(&cookie).form(&typed).send().await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text();
    assert!(page.contains("之和应为 1"), "{page}");
    assert_eq!(page.matches(r#"step="0.01" value="0.3""#).count(), 3, "the weights as typed: {page}");
    let unit = [("_csrf", csrf.as_str()), ("code", "XQ-9"), ("name", ""), ("kind", "国企"), ("contact_phone", "12345")];
    let page = app.post("/admin/unit").cookie(&cookie).form(&unit).send().await.text();
    assert!(
        page.contains(r#"value="XQ-9""#) && page.contains(r#"value="12345""#) && page.contains("<option selected>国企</option>"),
        "{page}"
    );
    assert!(page.contains(r#"step="0.01" value="0.2""#), "the weights form shows the stored weights: {page}");
    assert!(!page.contains(&format!(r#"value="{csrf}" required"#)), "no form token in a field");
}

both!(a_members_claimed_need_counts_their_hours, the_county_weighs_the_composite);
