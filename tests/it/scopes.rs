//! What a role may not reach: each test here is a hole found by probing a running server as
//! one role and reaching another's data or powers.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::harness::TestApp;

/// The `_csrf` value of an HTML page.
fn csrf_of(page: &str) -> String {
    page.split("name=\"_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string()
}

/// Household visits, mailbox messages and staff records are for staff: residents, Party
/// members and unit contacts (whose scope is the whole county) get 403, and see the figures only.
async fn registers_are_for_staff(app: TestApp) {
    for user in ["jumin", "dangyuan", "danwei"] {
        let t = app.login(user).await;
        for path in [
            "/api/v1/registers/visits",
            "/api/v1/registers/community_workers?per_page=5",
            "/api/v1/registers/visits?node=520627004006001",
            "/registers/visits",
            "/registers/visits/export.xlsx",
            "/registers/visits/template.xlsx",
            "/systems/governance",
        ] {
            let r = app.get(path).bearer(&t).send().await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{user} {path}: {}", r.text());
            assert!(r.text().contains("权限"), "{user} {path}: {}", r.text());
        }
        let one = app.get("/api/v1/registers/visits/1").bearer(&t).send().await;
        assert!(matches!(one.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{user}: {}", one.text());
        // The overview's figures (counts, no rows) stay, and the menu has no register pages.
        let o = app.get("/api/v1/overview").bearer(&t).send().await;
        assert_eq!(o.status, StatusCode::OK, "{user}: {}", o.text());
        assert!(o.json()["party_service_centers"].is_number());
        let home = app.get("/").cookie(&format!("linli_session={t}")).send().await.text();
        assert!(!home.contains("/systems/governance"), "{user} sees the register menu");
    }
    let staff = app.login("huahuaqiao").await;
    let r = app.get("/api/v1/registers/visits").bearer(&staff).send().await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["total"].as_i64().unwrap() > 0);
    let gw = app.login("wanggeyuan").await;
    assert_eq!(app.get("/systems/governance").bearer(&gw).send().await.status, StatusCode::OK);
    // A grid worker records the household visits and mailbox messages of their own grid, and
    // nothing else: not another grid's, not other registers.
    let visit = |grid: &str| json!({"visitor": "王网格员", "household": "3栋2单元101", "node": grid, "date": "2026-11-20", "notes": "老人独居"});
    let r = app.post("/api/v1/registers/visits").bearer(&gw).json(visit("520627001001003")).send().await;
    assert!(r.status.is_success(), "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    let r = app.post(&format!("/api/v1/registers/visits/{id}/retire")).bearer(&gw).send().await;
    assert!(r.status.is_success(), "{}", r.text());
    let r = app.post("/api/v1/registers/visits").bearer(&gw).json(visit("520627001001001")).send().await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "another grid: {}", r.text());
    let worker = json!({"name": "网格员填社工", "community": "520627001001"});
    let r = app.post("/api/v1/registers/community_workers").bearer(&gw).json(worker).send().await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let cookie = format!("linli_session={gw}");
    let page = app.get("/registers/visits").cookie(&cookie).send().await.text();
    assert!(page.contains("<h2>新增</h2>"), "the grid worker's form");
    let page = app.get("/registers/community_workers").cookie(&cookie).send().await.text();
    assert!(!page.contains("<h2>新增</h2>") && page.contains("由社区工作人员及以上办理"), "no form that would be refused");
}

/// The county admin's settings forms are the county admin's: a resident with a valid session
/// and CSRF token cannot switch anonymous Open311 posting on.
async fn admin_forms_are_county_admins(app: TestApp) {
    for user in ["jumin", "huahuaqiao", "heping"] {
        let t = app.login(user).await;
        let cookie = format!("linli_session={t}");
        let csrf = csrf_of(&app.get("/password").cookie(&cookie).send().await.text());
        let r = app.post("/admin/open311").cookie(&cookie).form(&[("_csrf", &csrf), ("anonymous", "1")]).send().await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{user}: {}", r.text());
        let r = app.post("/admin/calendar").cookie(&cookie).form(&[("_csrf", &csrf), ("calendar", "")]).send().await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{user}: {}", r.text());
    }
    let anon = app.post("/open311/v2/requests.json").form(&[("service_code", "ldd"), ("lat", "28.5415"), ("long", "108.4770")]);
    assert_eq!(anon.send().await.status, StatusCode::FORBIDDEN, "anonymous posting stays off");
    let admin = app.login("admin").await;
    let log = app.get("/api/v1/audit?action=settings").bearer(&admin).send().await.json();
    assert_eq!(log["total"], 0, "{log}");
}

/// A community worker manages the accounts below it: it may not give a new password to, lock
/// or unlock a street admin inside its community (and then log in as one).
async fn no_takeover_of_a_higher_account(app: TestApp) {
    let admin = app.login("admin").await;
    for (name, role) in [("sa_hhq", "street_admin"), ("cs_hhq", "community_staff"), ("gw_hhq", "grid_worker")] {
        let body = json!({"username": name, "role": role, "scope": "520627001001", "password": crate::harness::PW});
        let r = app.post("/api/v1/users").bearer(&admin).json(body).send().await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
    let cs = app.login("huahuaqiao").await;
    let pw = json!({"password": "Taken-0ver-Passw0rd"});
    for name in ["sa_hhq", "cs_hhq"] {
        let r = app.post(&format!("/api/v1/users/{name}/reset-password")).bearer(&cs).json(pw.clone()).send().await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{name}: {}", r.text());
        for act in ["lock", "unlock"] {
            let r = app.post(&format!("/api/v1/users/{name}/{act}")).bearer(&cs).send().await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{name} {act}: {}", r.text());
        }
    }
    let r = app.post("/api/v1/auth/login").json(json!({"username": "sa_hhq", "password": "Taken-0ver-Passw0rd"})).send().await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Below it: allowed.
    let r = app.post("/api/v1/users/gw_hhq/reset-password").bearer(&cs).json(pw.clone()).send().await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert_eq!(app.post("/api/v1/users/gw_hhq/lock").bearer(&cs).send().await.status, StatusCode::NO_CONTENT);
    // The street admin above both, and the county admin above all.
    let sa = app.login("heping").await;
    assert_eq!(app.post("/api/v1/users/cs_hhq/lock").bearer(&sa).send().await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.post("/api/v1/users/sa_hhq/lock").bearer(&sa).send().await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post("/api/v1/users/sa_hhq/lock").bearer(&admin).send().await.status, StatusCode::NO_CONTENT);
}

/// Revealing a resident's full ID number and phone needs a reason (it goes into the audit log);
/// outside the scope it stays a 404 with or without one.
async fn reveal_needs_a_reason(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let list = app.get("/api/v1/persons?per_page=1").bearer(&staff).send().await.json();
    let pid = list["items"][0]["id"].as_i64().unwrap();
    for body in [json!({}), json!({"reason": "  "})] {
        let r = app.post(&format!("/api/v1/persons/{pid}/reveal")).bearer(&staff).json(body).send().await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        let f = &r.json()["fields"][0];
        assert_eq!(f["field"], "reason", "{}", r.text());
        assert!(f["message"].as_str().unwrap_or_default().contains("事由"), "{}", r.text());
    }
    let cookie = format!("linli_session={staff}");
    let page = app.get(&format!("/people/{pid}")).cookie(&cookie).send().await.text();
    let r = app
        .post(&format!("/people/{pid}/reveal"))
        .cookie(&cookie)
        .form(&[("_csrf", &csrf_of(&page)), ("reason", "")])
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("请填写查看事由") && !r.text().contains("本次查看已记入审计日志"));
    let admin = app.login("admin").await;
    assert_eq!(app.get("/api/v1/audit?action=person.reveal").bearer(&admin).send().await.json()["total"], 0);
    let r = app.post(&format!("/api/v1/persons/{pid}/reveal")).bearer(&staff).json(json!({"reason": "入户核实"})).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let other = app.login("heping").await;
    let far = app.get("/api/v1/persons?per_page=1&node=520627004").bearer(&admin).send().await.json();
    let far = far["items"][0]["id"].as_i64().unwrap();
    let r = app.post(&format!("/api/v1/persons/{far}/reveal")).bearer(&other).send().await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
}

/// The public tracking page proves ownership by the reporter's phone, which staff see masked
/// (4 digits hidden): wrong guesses are limited per case and per address.
async fn track_guesses_are_limited(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let mut numbers = Vec::new();
    for i in 0..4 {
        let body = json!({"category": "ldd", "description": format!("楼道灯坏了 {i}"), "grid": "520627001001002", "reporter_phone": "13800001111"});
        let r = app.post("/api/v1/cases").bearer(&staff).json(body).send().await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        numbers.push(r.json()["number"].as_str().unwrap().to_string());
    }
    let track = |n: &str, phone: &str| app.get(&format!("/m/track?number={n}&phone={phone}")).send();
    for g in 0..10 {
        let r = track(&numbers[0], &format!("1380000{g:04}")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.text().contains("没有找到"));
    }
    // The case has had its ten wrong guesses: even the right phone waits.
    let r = track(&numbers[0], "13800001111").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text().contains("查询失败次数过多") && !r.text().contains("待受理"));
    // Another case still answers, until the address has had 30 wrong guesses in all.
    assert!(track(&numbers[1], "13800001111").await.text().contains("待受理"));
    for g in 0..20 {
        let n = &numbers[1 + g % 3];
        assert_eq!(track(n, &format!("1390000{g:04}")).await.status, StatusCode::OK);
    }
    assert_eq!(track(&numbers[3], "13800001111").await.status, StatusCode::TOO_MANY_REQUESTS);
    // Rating goes through the same check.
    let pre = track(&numbers[3], "13800001111").await.set_cookie("linli_pre").unwrap();
    let form = [("_csrf", pre.as_str()), ("number", &numbers[3]), ("phone", "13800001111"), ("satisfaction", "satisfied")];
    let r = app.post("/m/rate").cookie(&format!("linli_pre={pre}")).form(&form).send().await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
}

/// Open311 lists only vetted requests (not 待受理, 不予受理 or 作废, as the resident site);
/// one looked up by its id shows its status without its text; a private case's token is 404.
async fn open311_shows_vetted_requests(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let body = json!({"category": "ldd", "description": "张三 13800001111 家门口的灯坏了", "grid": "520627001001002",
        "address": "香树林小区3栋2单元501室"});
    let r = app.post("/api/v1/cases").bearer(&staff).json(body.clone()).send().await;
    let number = r.json()["number"].as_str().unwrap().to_string();
    let all = "/open311/v2/requests.json?start_date=2000-01-01T00:00:00Z&end_date=2100-01-01T00:00:00Z";
    let list = app.get(all).send().await.json();
    let items = list.as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|r| r["service_request_id"] != number.as_str()));
    assert!(items.iter().all(|r| !["待受理", "不予受理", "已作废"].contains(&r["status_notes"].as_str().unwrap())), "{list}");
    let one = app.get(&format!("/open311/v2/requests/{number}.json")).send().await.json();
    assert_eq!(one[0]["status"], "open");
    assert!(one[0]["description"].as_str().unwrap_or_default().is_empty(), "{one}");
    assert!(one[0]["lat"].is_null(), "{one}");
    crate::cases::act(&app, &staff, &number, json!({"action": "register"})).await;
    let one = app.get(&format!("/open311/v2/requests/{number}.json")).send().await.json();
    // The text with its numbers starred, no typed address, the place to about 100 m (found by
    // a probe: the phone, the room number and the exact point were published).
    assert_eq!(one[0]["description"], "张三 *********** 家门口的灯坏了");
    assert!(one[0]["address"].is_null(), "{one}");
    if let Some(lat) = one[0]["lat"].as_f64() {
        assert!(((lat * 1000.0).round() - lat * 1000.0).abs() < 1e-6, "{one}");
    }
    assert!(app.get(all).send().await.json().as_array().unwrap().iter().any(|r| r["service_request_id"] == number.as_str()));
    let mut private = body.clone();
    private["private"] = Value::Bool(true);
    let r = app.post("/api/v1/cases").bearer(&staff).json(private).send().await;
    let secret = r.json()["number"].as_str().unwrap().to_string();
    assert_eq!(app.get(&format!("/open311/v2/tokens/{secret}.json")).send().await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/open311/v2/tokens/{number}.json")).send().await.status, StatusCode::OK);
}

/// A register row's case number is ordinary text: the row shows that case's status only to
/// whoever may see the case.
async fn linked_case_only_when_visible(app: TestApp) {
    let admin = app.login("admin").await;
    let all = app.get("/api/v1/cases?per_page=100").bearer(&admin).send().await.json();
    let far = all["items"].as_array().unwrap().iter().find(|c| !c["community_code"].as_str().unwrap().starts_with("520627001"));
    let far = far.expect("a case in another street")["number"].as_str().unwrap().to_string();
    let staff = app.login("huahuaqiao").await;
    let body = json!({"title": "新建", "description": "楼道灯", "grid": "520627001001002", "category": "ldd"});
    let near = app.post("/api/v1/cases").bearer(&staff).json(body).send().await.json()["number"].as_str().unwrap().to_string();
    for (number, shown) in [(&far, false), (&near, true)] {
        let row = json!({"problem": "探查", "community": "520627001001", "responsible": "x", "status": "推进中", "case_number": number});
        let r = app.post("/api/v1/registers/problems").bearer(&staff).json(row).send().await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let id = r.json()["id"].as_i64().unwrap();
        let got = app.get(&format!("/api/v1/registers/problems/{id}")).bearer(&staff).send().await.json();
        assert_eq!(got.get("case").is_some(), shown, "{number}: {got}");
        let page = app.get(&format!("/registers/problems/{id}")).cookie(&format!("linli_session={staff}")).send().await.text();
        assert_eq!(page.contains(&format!("href=\"/cases/{number}\"")), shown, "{number}");
    }
}

both!(
    registers_are_for_staff,
    admin_forms_are_county_admins,
    no_takeover_of_a_higher_account,
    reveal_needs_a_reason,
    track_guesses_are_limited,
    open311_shows_vetted_requests,
    linked_case_only_when_visible
);
