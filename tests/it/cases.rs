//! The case loop through the JSON API: the contract path, every kind of refusal, concurrency,
//! scope isolation, search, rates and the overview figures.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::harness::{PW, TestApp};

/// A point inside grid 520627001001001 (the first grid of 花花桥社区).
pub const HHQ: (f64, f64) = (108.4770, 28.5415);

pub async fn new_case(app: &TestApp, token: &str, category: &str, desc: &str) -> String {
    let r = app
        .post("/api/v1/cases")
        .bearer(token)
        .json(json!({"category": category, "description": desc, "lng": HHQ.0, "lat": HHQ.1, "reporter_name": "田女士", "reporter_phone": "13800001111"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let b = r.json();
    assert_eq!(b["status"], "submitted");
    assert_eq!(b["grid_code"], "520627001001001");
    assert_eq!(b["community_code"], "520627001001");
    b["number"].as_str().unwrap().to_string()
}

/// Takes a step; a step's answer must be the case exactly as reading it back shows it (the
/// answer is put together from the update, not read back), wherever the actor still sees it.
pub async fn act(app: &TestApp, token: &str, number: &str, body: Value) -> (StatusCode, Value) {
    let r = app.post(&format!("/api/v1/cases/{number}/actions")).bearer(token).json(body).send().await;
    let (status, answer) = (r.status, r.json());
    if status == StatusCode::OK {
        let back = app.get(&format!("/api/v1/cases/{number}")).bearer(token).send().await;
        if back.status == StatusCode::OK {
            assert_eq!(answer, back.json(), "a step's answer differs from the case read back");
            // On PostgreSQL the page read back is the one the step kept in memory: the
            // database's own must be the same.
            if app.st.db.case_cache.is_on() {
                app.st.db.case_cache.forget_all();
                let fresh = app.get(&format!("/api/v1/cases/{number}")).bearer(token).send().await;
                assert_eq!(answer, fresh.json(), "a step's answer differs from the case read from the database");
            }
        }
    }
    (status, answer)
}

async fn contract_path_closes_the_loop(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let cats = app.get("/api/v1/categories").send().await.json();
    let ldd = cats["items"].as_array().unwrap().iter().find(|c| c["code"] == "ldd").unwrap().clone();
    assert_eq!(ldd["name"], "楼道灯");
    assert!(ldd["resolve_hours"].as_f64().unwrap() > 0.0);
    let n = new_case(&app, &staff, "ldd", "3 栋楼道的灯坏了，晚上很黑").await;
    assert!(n.starts_with("YH-20"), "{n}");
    let (s, v) = act(&app, &staff, &n, json!({"action": "register"})).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("registered")));
    assert!(v["resolve_due"].is_string(), "deadline set at registration");
    // Suggestions, then dispatch to the first unit suggested.
    let sugg = app.get(&format!("/api/v1/cases/{n}/assignees")).bearer(&staff).send().await.json();
    let list = sugg.as_array().unwrap();
    assert_eq!(list[0]["reason"], "类别默认承办单位", "{sugg}");
    assert!(list.iter().any(|a| a["kind"] == "grid_worker"));
    assert!(list.iter().all(|a| ["unit", "grid_worker", "party_member"].contains(&a["kind"].as_str().unwrap())));
    let unit = list[0]["id"].as_str().unwrap().to_string();
    let (s, v) = act(&app, &staff, &n, json!({"action": "dispatch", "assignee": unit})).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("dispatched")), "{v}");
    // The unit's contact (made with the CLI contract: --scope UNIT_ID) works the case.
    linli::auth::store::create_user(
        &app.st,
        None,
        &linli::audit::Actor::system("test"),
        linli::auth::store::NewUser {
            username: "contact1".into(),
            display_name: String::new(),
            role: linli::auth::Role::UnitContact,
            scope: unit.clone(),
            password: PW.into(),
            must_change: false,
        },
    )
    .await
    .unwrap();
    let u = app.login("contact1").await;
    let queue = app.get("/api/v1/cases?status=dispatched&mine=true").bearer(&u).send().await.json();
    assert!(queue["items"].as_array().unwrap().iter().any(|c| c["number"] == n.as_str()));
    let (s, _) = act(&app, &staff, &n, json!({"action": "accept"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "staff cannot accept for the unit");
    for (action, to) in [("accept", "accepted"), ("finish", "finished")] {
        let (s, v) = act(&app, &u, &n, json!({"action": action, "note": "已更换灯泡"})).await;
        assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some(to)), "{action}: {v}");
    }
    let (s, v) =
        act(&app, &staff, &n, json!({"action": "follow_up", "contacted": true, "solved": true, "satisfaction": "satisfied"}))
            .await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("followed_up")), "{v}");
    let (s, v) = act(&app, &staff, &n, json!({"action": "close"})).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("closed")));
    let got = app.get(&format!("/api/v1/cases/{n}")).bearer(&staff).send().await.json();
    let actions: Vec<&str> = got["history"].as_array().unwrap().iter().map(|h| h["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["submit", "register", "dispatch", "accept", "finish", "follow_up", "close"]);
    for h in got["history"].as_array().unwrap() {
        assert!(h["actor"].is_string() && h["at"].is_string() && h["note"].is_string());
    }
    assert_eq!(got["history"][3]["actor"], "contact1");
    assert_eq!(got["history"][3]["actor_label"], list[0]["name"], "a unit contact's steps carry the unit's name");
    assert_eq!(got["history"][1]["actor_label"], "社区工作人员");
    assert!(got["version"].as_i64().unwrap() >= 7);
    assert_eq!(got["reporter_phone"], "138****1111", "masked");
    // Closed is terminal.
    let (s, v) = act(&app, &staff, &n, json!({"action": "void", "note": "x"})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(v["error"].as_str().unwrap().contains("已结案"));
}

async fn refusals_and_conflicts(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let n = new_case(&app, &staff, "xsd", "下水道堵塞，污水外溢").await;
    // Illegal steps from 待受理 are 409 with the reason.
    for a in ["dispatch", "accept", "finish", "close", "follow_up", "approve_extension"] {
        let (s, v) = act(
            &app,
            &staff,
            &n,
            json!({"action": a, "assignee": "DW012", "contacted": true, "solved": true, "satisfaction": "satisfied"}),
        )
        .await;
        assert!(s == StatusCode::CONFLICT || s == StatusCode::FORBIDDEN, "{a}: {s} {v}");
    }
    let (s, v) = act(&app, &staff, &n, json!({"action": "fly"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // Reasons are required where the loop needs them.
    let (s, v) = act(&app, &staff, &n, json!({"action": "reject"})).await;
    assert_eq!((s, v["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("note")));
    act(&app, &staff, &n, json!({"action": "register"})).await;
    let (s, v) = act(&app, &staff, &n, json!({"action": "dispatch", "assignee": "nobody"})).await;
    assert_eq!((s, v["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("assignee")));
    // A stale version is refused, nothing changes.
    let v0 = app.get(&format!("/api/v1/cases/{n}")).bearer(&staff).send().await.json()["version"].as_i64().unwrap();
    let (s, _) = act(&app, &staff, &n, json!({"action": "dispatch", "assignee": "DW012", "version": v0 - 1})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    // Two dispatchers at once: exactly one wins, the other gets a clear 409.
    let (a, b) = tokio::join!(
        act(&app, &staff, &n, json!({"action": "dispatch", "assignee": "DW012", "version": v0})),
        act(&app, &staff, &n, json!({"action": "reject", "note": "重复", "version": v0}))
    );
    let codes = [a.0, b.0];
    assert!(codes.contains(&StatusCode::OK) && codes.contains(&StatusCode::CONFLICT), "{a:?} {b:?}");
    let loser = if a.0 == StatusCode::CONFLICT { a.1 } else { b.1 };
    assert!(loser["error"].as_str().unwrap().contains("刷新"));
    let hist = app.get(&format!("/api/v1/cases/{n}")).bearer(&staff).send().await.json()["history"].as_array().unwrap().len();
    assert_eq!(hist, 3, "submit, register, and only the winner");
    // Bad input on creation: each field named.
    let r = app
        .post("/api/v1/cases")
        .bearer(&staff)
        .json(json!({"category": "nope", "description": "x", "lng": 500, "lat": 1}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> =
        r.json()["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap().into()).collect();
    assert_eq!(fields, vec!["category", "description", "lng"]);
    let r = app
        .post("/api/v1/cases")
        .bearer(&staff)
        .json(json!({"category": "ldd", "description": "位置在县外", "lng": 100.0, "lat": 20.0}))
        .send()
        .await;
    assert!(r.json()["fields"][0]["message"].as_str().unwrap().contains("不在任何网格"));
    let r = app
        .post("/api/v1/cases")
        .bearer(&staff)
        .json(json!({"category": "ldd", "description": "坐标系", "lng": 108.47, "lat": 28.54, "crs": "bd09"}))
        .send()
        .await;
    assert_eq!(r.json()["fields"][0]["field"], "crs");
}

async fn extension_return_rework_escalate(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let n = new_case(&app, &staff, "wuye", "物业不维修电梯").await;
    act(&app, &staff, &n, json!({"action": "register"})).await;
    act(&app, &staff, &n, json!({"action": "dispatch", "assignee": "DW050"})).await;
    let u = app.login("dw050").await;
    let (s, v) = act(&app, &u, &n, json!({"action": "return", "note": "不属于本公司服务小区"})).await;
    assert_eq!((s, v["status"].as_str(), v["return_count"].as_i64()), (StatusCode::OK, Some("registered"), Some(1)));
    assert_eq!(
        app.get(&format!("/api/v1/cases/{n}")).bearer(&u).send().await.status,
        StatusCode::NOT_FOUND,
        "returned: no longer the unit's"
    );
    act(&app, &staff, &n, json!({"action": "dispatch", "assignee": "DW050"})).await;
    act(&app, &u, &n, json!({"action": "accept"})).await;
    let due0 = app.get(&format!("/api/v1/cases/{n}")).bearer(&staff).send().await.json()["resolve_due"].clone();
    let (s, v) = act(&app, &u, &n, json!({"action": "request_extension", "hours": 14, "note": "需协调维保公司"})).await;
    assert_eq!((s, v["extension_hours"].as_f64()), (StatusCode::OK, Some(14.0)));
    let (s, v) = act(&app, &staff, &n, json!({"action": "approve_extension"})).await;
    assert_eq!(s, StatusCode::OK);
    assert_ne!(v["resolve_due"], due0, "deadline moved");
    assert_eq!(v["extension_count"], 1);
    let (s, _) = act(&app, &staff, &n, json!({"action": "approve_extension"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "nothing pending");
    act(&app, &u, &n, json!({"action": "finish"})).await;
    let (s, v) = act(&app, &staff, &n, json!({"action": "rework", "note": "居民反映仍未修好"})).await;
    assert_eq!((s, v["status"].as_str(), v["rework_count"].as_i64()), (StatusCode::OK, Some("accepted"), Some(1)));
    // Escalation: community → street; the community can no longer dispatch it, the street can.
    let m = new_case(&app, &staff, "daolu", "小区门口道路破损坑洼").await;
    let (s, v) = act(&app, &staff, &m, json!({"action": "escalate", "note": "涉及市政道路"})).await;
    assert_eq!((s, v["level"].as_i64(), v["status"].as_str()), (StatusCode::OK, Some(1), Some("registered")));
    let (s, v) = act(&app, &staff, &m, json!({"action": "dispatch", "assignee": "DW019"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["error"].as_str().unwrap().contains("街道"));
    let street = app.login("heping").await;
    let q = app.get("/api/v1/cases?level=1&status=registered").bearer(&street).send().await.json();
    assert!(q["items"].as_array().unwrap().iter().any(|c| c["number"] == m.as_str()));
    let inbox = app.get("/api/v1/notifications").bearer(&street).send().await.json();
    assert!(inbox["items"].as_array().unwrap().iter().any(|x| x["kind"] == "case.escalate"), "{inbox}");
    let (s, _) = act(&app, &street, &m, json!({"action": "dispatch", "assignee": "DW019"})).await;
    assert_eq!(s, StatusCode::OK);
}

async fn scope_isolation_of_cases(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let n = new_case(&app, &staff, "zyrm", "楼上装修噪音扰民").await;
    // Another community's staff: 404 on read and act, absent from lists and search.
    linli::auth::store::create_user(
        &app.st,
        None,
        &linli::audit::Actor::system("test"),
        linli::auth::store::NewUser {
            username: "tuanjie".into(),
            display_name: String::new(),
            role: linli::auth::Role::CommunityStaff,
            scope: "520627002001".into(),
            password: PW.into(),
            must_change: false,
        },
    )
    .await
    .unwrap();
    let other = app.login("tuanjie").await;
    assert_eq!(app.get(&format!("/api/v1/cases/{n}")).bearer(&other).send().await.status, StatusCode::NOT_FOUND);
    assert_eq!(act(&app, &other, &n, json!({"action": "register"})).await.0, StatusCode::NOT_FOUND);
    let list = app.get("/api/v1/cases?q=噪音&per_page=500").bearer(&other).send().await.json();
    assert!(list["items"].as_array().unwrap().iter().all(|c| c["community_code"] == "520627002001"));
    // A unit contact sees only its unit's cases; a resident only their own; a street its communities.
    let u = app.login("danwei").await;
    let mine = app.get("/api/v1/cases?per_page=500").bearer(&u).send().await.json();
    for c in mine["items"].as_array().unwrap() {
        assert_eq!(c["assignee"], "DW001", "{c}");
    }
    assert_eq!(app.get(&format!("/api/v1/cases/{n}")).bearer(&u).send().await.status, StatusCode::NOT_FOUND);
    let jumin = app.login("jumin").await;
    assert_eq!(app.get("/api/v1/cases").bearer(&jumin).send().await.json()["total"], 0);
    let r = app
        .post("/api/v1/cases")
        .bearer(&jumin)
        .json(json!({"category": "laji", "description": "垃圾桶满了没人清运", "lng": HHQ.0, "lat": HHQ.1}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let own = app.get("/api/v1/cases").bearer(&jumin).send().await.json();
    assert_eq!(own["total"], 1);
    assert_eq!(own["items"][0]["channel"], "resident_h5");
    let street = app.login("heping").await;
    let all = app.get("/api/v1/cases?per_page=500").bearer(&street).send().await.json();
    assert!(all["items"].as_array().unwrap().iter().all(|c| c["community_code"].as_str().unwrap().starts_with("520627001")));
}

async fn search_rates_overview(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let n = new_case(&app, &staff, "ldd", "楼道的灯坏了").await;
    let found = app.get(&format!("/api/v1/cases?q={}", linli::web::urlencode("楼道灯"))).bearer(&staff).send().await.json();
    assert!(found["items"].as_array().unwrap().iter().any(|c| c["number"] == n.as_str()), "segmented search");
    let none = app.get(&format!("/api/v1/cases?q={}", linli::web::urlencode("下水道楼道灯"))).bearer(&staff).send().await.json();
    assert!(none["items"].as_array().unwrap().iter().all(|c| c["number"] != n.as_str()));
    // A piece of a word the documents were not cut into is found by its characters (found by
    // a probe: 场舞 did not find 广场舞音响声音太大).
    let dance = new_case(&app, &staff, "zyrm", "楼下广场舞音响声音太大").await;
    for q in ["场舞", "音太"] {
        let found = app.get(&format!("/api/v1/cases?q={}", linli::web::urlencode(q))).bearer(&staff).send().await.json();
        assert!(found["items"].as_array().unwrap().iter().any(|c| c["number"] == dance.as_str()), "{q}: {found}");
    }
    // The search plan (the rarest term's postings, newest first, the other terms per case)
    // finds exactly the cases holding every term; a party member's search (whose visibility
    // needs the category) works as well.
    let admin = app.login("admin").await;
    let terms = linli::cases::search::query_terms("楼道灯");
    let all = terms.iter().map(|t| format!("EXISTS (SELECT 1 FROM case_terms x WHERE x.case_id = c.id AND x.term = '{t}')"));
    let sql = format!("SELECT COUNT(*) FROM cases c WHERE {}", all.collect::<Vec<_>>().join(" AND "));
    let want: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&app.st.db.pool).await.unwrap();
    let got =
        app.get(&format!("/api/v1/cases?q={}&per_page=500", linli::web::urlencode("楼道灯"))).bearer(&admin).send().await.json();
    assert!(terms.len() >= 2 && want > 20, "{terms:?} {want}");
    assert_eq!((got["total"].as_i64(), got["items"].as_array().unwrap().len() as i64), (Some(want), want.min(500)));
    // A small scope with only common terms walks the scope and tests every term per case.
    use linli::cases::search::{Plan, add_terms_capped};
    let id: i64 = sqlx::query_scalar("SELECT id FROM cases WHERE number = $1").bind(&n).fetch_one(&app.st.db.pool).await.unwrap();
    for (q, hits) in [("楼道灯", 1), ("下水道", 0)] {
        let mut w = linli::db::list::Where::new();
        w.raw(&format!("c.id = {id}"));
        let plan = add_terms_capped(&app.st.db, &mut w, "FROM cases c", q, 2).await.unwrap();
        assert_eq!(plan, Plan::Scope, "{q}");
        assert_eq!(w.count_to(&app.st.db, "FROM cases c", 100).await.unwrap(), hits, "{q}");
    }
    let dy = app.login("dangyuan").await;
    let r = app.get(&format!("/api/v1/cases?q={}", linli::web::urlencode("楼道灯"))).bearer(&dy).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // Filters combine with search and paging.
    let f = app.get("/api/v1/cases?status=submitted&channel=staff&page=1&per_page=5").bearer(&staff).send().await.json();
    assert!(f["items"].as_array().unwrap().iter().all(|c| c["status"] == "submitted" && c["channel"] == "staff"));
    assert_eq!(app.get("/api/v1/cases?status=bogus").bearer(&staff).send().await.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A category filter: only that category, the count equal to the database's, pages disjoint.
    let ldd: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM cases c JOIN categories cat ON cat.id = c.category_id WHERE cat.code = 'ldd' AND c.node_path LIKE '/520627/520627001/520627001001/%'",
    )
    .fetch_one(&app.st.db.pool)
    .await
    .unwrap();
    let p1 = app.get("/api/v1/cases?category=ldd&per_page=3").bearer(&staff).send().await.json();
    let p2 = app.get("/api/v1/cases?category=ldd&per_page=3&page=2").bearer(&staff).send().await.json();
    assert!(ldd > 3 && p1["total"] == ldd && p2["total"] == ldd, "{ldd} vs {} and {}", p1["total"], p2["total"]);
    // A first page that holds every match takes its total from the page (nothing counted).
    let all = app.get(&format!("/api/v1/cases?category=ldd&per_page={}", ldd + 1)).bearer(&staff).send().await.json();
    assert_eq!((all["total"].as_i64(), all["items"].as_array().unwrap().len() as i64), (Some(ldd), ldd));
    let nums: Vec<&str> =
        [&p1, &p2].iter().flat_map(|p| p["items"].as_array().unwrap()).map(|c| c["number"].as_str().unwrap()).collect();
    let distinct: std::collections::BTreeSet<&str> = nums.iter().copied().collect();
    assert!(nums.len() > 3 && distinct.len() == nums.len(), "two pages, no case twice: {nums:?}");
    assert!([&p1, &p2].iter().flat_map(|p| p["items"].as_array().unwrap()).all(|c| c["category"] == "ldd"));
    assert_eq!(app.get("/api/v1/cases?category=nope").bearer(&staff).send().await.json()["total"], 0);
    // Rates contract.
    for level in ["county", "street", "community", "unit"] {
        let r = app.get(&format!("/api/v1/rates?level={level}&from=2025-01-01&to=2030-12-31")).bearer(&admin).send().await;
        assert_eq!(r.status, StatusCode::OK, "{level}");
        let rows = r.json()["items"].as_array().unwrap().clone();
        assert!(!rows.is_empty(), "{level}");
        for k in [
            "response_rate",
            "solve_rate",
            "satisfaction_rate",
            "composite",
            "close_rate",
            "on_time_rate",
            "rework_rate",
            "extension_rate",
        ] {
            assert!(rows[0].get(k).is_some(), "{level} {k}");
        }
        // Ranked rows first, best composite first and numbered 1…; rows with fewer than 10
        // answered follow-ups after them, unranked (two satisfied residents are not first).
        let ranked: Vec<&Value> = rows.iter().take_while(|r| r["ranked"] == true).collect();
        let comp: Vec<f64> = ranked.iter().filter_map(|r| r["composite"].as_f64()).collect();
        assert!(comp.windows(2).all(|w| w[0] >= w[1]), "ranked");
        assert!(ranked.iter().enumerate().all(|(i, r)| r["rank"] == i as i64 + 1), "{level}");
        for r in &rows[ranked.len()..] {
            assert_eq!(r["ranked"], false, "{level}: ranked rows come first");
            assert!(r["rank"] == 0 && r["follow_ups"].as_i64().unwrap() < linli::cases::rates::MIN_FOLLOW_UPS, "{level}: {r}");
        }
        if level == "unit" {
            assert!(ranked.len() < rows.len(), "the demo has units with few follow-ups: {}", rows.len());
        }
    }
    assert_eq!(app.get("/api/v1/rates?level=planet").bearer(&admin).send().await.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A street or community has one rank whoever looks: the county's (a street's admin saw
    // their street ranked 1 of 1, a community worker theirs 1; found by the web probe), and no
    // level above one's scope is offered.
    let rank_of =
        |rows: &Value, key: &str| rows["items"].as_array().unwrap().iter().find(|r| r["key"] == key).map(|r| r["rank"].clone());
    let period = "from=2025-01-01&to=2030-12-31";
    let heping = app.login("heping").await;
    for (who, level, key) in
        [(&heping, "street", "520627001"), (&staff, "community", "520627001001"), (&heping, "community", "520627001001")]
    {
        let county = app.get(&format!("/api/v1/rates?level={level}&{period}")).bearer(&admin).send().await.json();
        let mine = app.get(&format!("/api/v1/rates?level={level}&{period}")).bearer(who).send().await.json();
        assert_eq!(rank_of(&mine, key), rank_of(&county, key), "{level} {key}: {mine}");
        assert_eq!(mine["rank_among"], "全县排名");
        assert!(
            mine["items"].as_array().unwrap().iter().all(|r| r["key"].as_str().unwrap().starts_with("520627001")),
            "in scope only"
        );
    }
    let grid = app.account("gridstaff2", "community_staff", "520627001001003").await;
    let mine = app.get(&format!("/api/v1/rates?level=community&{period}")).bearer(&grid).send().await.json();
    assert_eq!(mine["items"][0]["name"], "花花桥社区", "a grid's staff see their community by name: {mine}");
    for (who, level) in [(&heping, "county"), (&staff, "street")] {
        let r = app.get(&format!("/api/v1/rates?level={level}")).bearer(who).send().await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{level}: {}", r.text());
    }
    let page = app.get("/rates").cookie(&format!("linli_session={heping}")).send().await.text();
    assert!(!page.contains("value=\"county\"") && page.contains("全县排名"), "{page}");
    let x = app.get("/api/v1/rates/export.xlsx?level=street").bearer(&admin).send().await;
    assert!(x.body.starts_with(b"PK"));
    // Overview figures come from the records: more than 1,000 closed.
    let ov = app.get("/api/v1/overview").bearer(&admin).send().await.json();
    let (total, closed, open) =
        (ov["cases_total"].as_i64().unwrap(), ov["cases_closed"].as_i64().unwrap(), ov["cases_open"].as_i64().unwrap());
    assert!(closed > 1000, "实事 1000 余件: {closed}");
    assert!(open > 0 && ov["cases_overdue"].as_i64().unwrap() > 0);
    assert!(total >= closed + open);
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM cases WHERE status = 'closed'").fetch_one(&app.st.db.pool).await.unwrap();
    assert_eq!(n, closed);
    // Every channel and a realistic mix are present in the demo year.
    let channels: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT channel FROM cases").fetch_all(&app.st.db.pool).await.unwrap();
    assert!(channels.len() >= 8, "{channels:?}");
    let reworked: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM cases WHERE rework_count > 0").fetch_one(&app.st.db.pool).await.unwrap();
    let returned: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM cases WHERE return_count > 0").fetch_one(&app.st.db.pool).await.unwrap();
    assert!(reworked > 10 && returned > 10);
}

/// 微心愿: a reported Party member sees open claimable cases of the community and claims one.
async fn party_member_claims_a_wish(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let wish = new_case(&app, &staff, "zhucan", "独居老人希望每天送午餐").await;
    let other = new_case(&app, &staff, "ldd", "楼道灯坏了").await;
    act(&app, &staff, &wish, json!({"action": "register"})).await;
    act(&app, &staff, &other, json!({"action": "register"})).await;
    let dy = app.login("dangyuan").await;
    let open = app.get("/api/v1/cases?status=registered&per_page=500").bearer(&dy).send().await.json();
    let numbers: Vec<&str> = open["items"].as_array().unwrap().iter().map(|c| c["number"].as_str().unwrap()).collect();
    assert!(numbers.contains(&wish.as_str()), "claimable wish visible");
    assert!(!numbers.contains(&other.as_str()), "ordinary case not visible to members");
    let (s, _) = act(&app, &dy, &other, json!({"action": "claim"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = act(&app, &dy, &wish, json!({"action": "claim"})).await;
    assert_eq!(
        (s, v["status"].as_str(), v["assignee_kind"].as_str()),
        (StatusCode::OK, Some("accepted"), Some("party_member")),
        "{v}"
    );
    let (s, v) = act(&app, &dy, &wish, json!({"action": "finish", "note": "已送餐"})).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("finished")));
    // A second member cannot take it any more.
    let dy2 = app.login("dy012").await;
    assert_eq!(act(&app, &dy2, &wish, json!({"action": "claim"})).await.0, StatusCode::NOT_FOUND);
}

both!(
    party_member_claims_a_wish,
    contract_path_closes_the_loop,
    refusals_and_conflicts,
    extension_return_rework_escalate,
    scope_isolation_of_cases,
    search_rates_overview
);

/// A calendar saved through the API moves the next registration's deadline at once: requests
/// read the calendar kept in memory with the categories, which the save reloads.
async fn calendar_edit_moves_deadlines(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let admin = app.login("admin").await;
    let due = |v: &Value| v["resolve_due"].as_str().unwrap().to_string();
    let a = new_case(&app, &staff, "ldd", "日历测试：楼道灯一").await;
    let (s, before) = act(&app, &staff, &a, json!({"action": "register"})).await;
    assert_eq!(s, StatusCode::OK, "{before}");
    // The next 90 days become holidays: no working hour until then.
    let today = linli::cases::calendar::local_date(linli::db::now_ms());
    let text: String = (0..90).map(|d| format!("{} 休 测试假期\n", today + chrono::Days::new(d))).collect();
    let r = app.req(axum::http::Method::PUT, "/api/v1/calendar").bearer(&admin).json(json!({"text": text})).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let b = new_case(&app, &staff, "ldd", "日历测试：楼道灯二").await;
    let (s, after) = act(&app, &staff, &b, json!({"action": "register"})).await;
    assert_eq!(s, StatusCode::OK, "{after}");
    let first_workday = (today + chrono::Days::new(90)).format("%Y-%m-%d").to_string();
    assert!(due(&before) < first_workday, "{}", due(&before));
    assert!(due(&after) >= first_workday, "deadline after the holidays: {} (before the edit: {})", due(&after), due(&before));
    // Emptying it takes a confirmation: a body without the text, or an emptied box, is refused
    // and the calendar kept.
    let put = |body: Value| app.req(axum::http::Method::PUT, "/api/v1/calendar").bearer(&admin).json(body).send();
    assert_eq!(put(json!({})).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = put(json!({"text": " "})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.json()["fields"][0]["field"], "calendar");
    let kept = app.get("/api/v1/calendar").bearer(&admin).send().await.json();
    assert!(kept["text"].as_str().unwrap().contains("测试假期"), "{kept}");
    let r = put(json!({"text": "", "clear": true})).await;
    assert_eq!((r.status, r.json()["days"].clone()), (StatusCode::OK, json!(0)));
}

both!(calendar_edit_moves_deadlines);

/// A change to a category names what it changes: its questions, description, 微心愿 and switch
/// stay as they were (a new time limit alone reset them), and its texts are bounded.
async fn a_category_change_keeps_what_it_leaves_out(app: TestApp) {
    let admin = app.login("admin").await;
    let save = |body: Value| app.post("/api/v1/categories").bearer(&admin).json(body).send();
    let full = json!({"code": "fzcat", "name": "模糊类别", "group": "测试", "description": "说明文字", "sign_hours": 4,
        "resolve_hours": 24, "claimable": true, "active": false, "default_unit": "DW001",
        "attrs": [{"code": "q1", "name": "问题一", "datatype": "string", "required": false}]});
    assert_eq!(save(full).await.status, StatusCode::OK);
    let r = save(json!({"code": "fzcat", "resolve_hours": 48})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let c = r.json();
    assert_eq!(c["resolve_hours"], 48.0);
    assert_eq!(
        (c["name"].as_str(), c["description"].as_str(), c["claimable"].as_bool(), c["active"].as_bool()),
        (Some("模糊类别"), Some("说明文字"), Some(true), Some(false)),
        "{c}"
    );
    assert_eq!(c["attrs"].as_array().map(Vec::len), Some(1), "{c}");
    for (body, field) in [
        (json!({"code": "fzcat", "description": "长".repeat(501)}), "description"),
        (json!({"code": "fzcat", "group": "组".repeat(33)}), "group"),
        (json!({"code": "fzcat", "unit_kind": "外星"}), "unit_kind"),
        (json!({"code": "fzcat", "name": "坏\u{1b}名"}), "name"),
    ] {
        let r = save(body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert_eq!(r.json()["fields"][0]["field"], field);
    }
    assert_eq!(
        save(json!({"code": "xin", "name": "新类别"})).await.json()["fields"][0]["field"],
        "sign_hours",
        "a new one needs its limits"
    );
}

both!(a_category_change_keeps_what_it_leaves_out);

/// A fresh server's first burst of case pages, its category cache still empty, is answered:
/// each page gives its connection back before the category is looked up. Sixteen pages
/// holding PostgreSQL's sixteen pool connections while each waited for another one for the
/// cache stalled the server for the pool's 10 s and answered 500.
async fn first_burst_of_case_pages(mut app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let number = new_case(&app, &staff, "ldd", "新起的服务").await;
    app.reopen().await;
    let path = format!("/api/v1/cases/{number}");
    let pages = futures_util::future::join_all((0..48).map(|_| app.get(&path).bearer(&staff).send())).await;
    let failed: Vec<String> = pages.iter().filter(|r| r.status != StatusCode::OK).map(|r| r.text()).collect();
    assert!(failed.is_empty(), "{} of 48 failed: {:?}", failed.len(), failed.first());
    assert!(pages.iter().all(|r| r.json()["number"] == number.as_str()));
}

both!(first_burst_of_case_pages);

/// New cases are written at the end of their batch with ids taken in it: concurrent creations
/// get distinct ids in the order of their numbers, each case reads back whole at once, and ids
/// count on past rows written with ids of their own (as bulk loads write them).
async fn new_cases_take_ids_in_order(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let made = futures_util::future::join_all((0..40).map(|i| {
        let (app, staff) = (&app, &staff);
        async move { new_case(app, staff, "ldd", &format!("并发受理第 {i} 件")).await }
    }))
    .await;
    for n in &made {
        let got = app.get(&format!("/api/v1/cases/{n}")).bearer(&staff).send().await;
        assert_eq!(got.status, StatusCode::OK, "{n}");
        assert_eq!(got.json()["history"][0]["action"], "submit");
    }
    let rows: Vec<(i64, String)> = sqlx::query_as("SELECT id, number FROM cases WHERE description LIKE '并发受理%' ORDER BY id")
        .fetch_all(&app.st.db.pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 40);
    let numbers: Vec<&String> = rows.iter().map(|(_, n)| n).collect();
    let mut sorted = numbers.clone();
    sorted.sort();
    assert_eq!(numbers, sorted, "ids follow the numbers");
    // A row written with an id of its own, far ahead (as the scale generator writes them).
    let mut tx = app.st.db.begin().await.unwrap();
    let ahead = rows.last().unwrap().0 + 1000;
    sqlx::query(
        "INSERT INTO cases (id, number, category_id, title, description, channel, status, node_path, created_at, updated_at) \
         SELECT $1, 'YH-TEST-000001', category_id, title, description, channel, status, node_path, created_at, updated_at FROM cases WHERE id = $2",
    )
    .bind(ahead)
    .bind(rows[0].0)
    .execute(&mut tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    app.st.db.fix_sequence("cases").await.unwrap(); // as the generator does after its load
    let next = new_case(&app, &staff, "ldd", "在批量写入之后受理").await;
    let id: i64 =
        sqlx::query_scalar("SELECT id FROM cases WHERE number = $1").bind(&next).fetch_one(&app.st.db.pool).await.unwrap();
    assert_eq!(id, ahead + 1);
    // A lone creation reserves only its own id: the next one follows without a gap.
    let after = new_case(&app, &staff, "ldd", "无人排队时受理").await;
    let id2: i64 =
        sqlx::query_scalar("SELECT id FROM cases WHERE number = $1").bind(&after).fetch_one(&app.st.db.pool).await.unwrap();
    assert_eq!(id2, ahead + 2);
}

both!(new_cases_take_ids_in_order);

/// A case without coordinates (by grid, a QR code's) and then one with them, each alone in
/// its batch: the second was refused by PostgreSQL (the first had prepared the insert with a
/// float4 NULL, sqlx's Double/Real mix-up) with a 500, its batch lost.
async fn cases_with_and_without_coordinates(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    for body in [
        json!({"category": "ldd", "description": "按网格报的", "grid": "520627001001002"}),
        json!({"category": "ldd", "description": "按坐标报的", "lng": 108.4770, "lat": 28.5415}),
        json!({"category": "ldd", "description": "又按网格报的", "grid": "520627001001002"}),
    ] {
        let r = app.post("/api/v1/cases").bearer(&staff).json(body).send().await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let n = r.json()["number"].as_str().unwrap().to_string();
        assert_eq!(app.get(&format!("/api/v1/cases/{n}")).bearer(&staff).send().await.status, StatusCode::OK);
    }
}

both!(cases_with_and_without_coordinates);

/// A bulk action on the list page: each case steps on its own, and the notice names the first
/// failures and counts the rest (it travels in the redirect's URL); too many at once is a
/// field error.
async fn bulk_action_notice_stays_short(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let cookie = format!("linli_session={staff}");
    let page = app.get("/cases").cookie(&cookie).send().await.text();
    let csrf = page.split("name=\"_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let numbers: Vec<String> = (0..15).map(|i| format!("NOPE-{i}")).collect();
    let mut form: Vec<(&str, &str)> = vec![("_csrf", &csrf), ("action", "register"), ("back", "/cases\n")];
    form.extend(numbers.iter().map(|n| ("n", n.as_str())));
    let r = app.post("/cases/bulk").cookie(&cookie).form(&form).send().await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let to = r.header("location");
    assert!(to.starts_with("/cases%0A?notice="), "{to}");
    let notice = to.split("notice=").nth(1).unwrap();
    assert!(notice.len() < 4_000, "{} bytes", notice.len());
    let text = linli::auth::middleware::percent_decode(notice);
    assert!(text.contains("失败 15 件") && text.contains("另有 5 件"), "{text}");
    // Text posted as a number is not echoed into the signed notice.
    let form = [("_csrf", csrf.as_str()), ("action", "register"), ("n", "系统升级，请拨打0856-1234567核验账号")];
    let r = app.post("/cases/bulk").cookie(&cookie).form(&form).send().await;
    let text = linli::auth::middleware::percent_decode(&r.header("location"));
    assert!(text.contains("（无效编号）") && !text.contains("请拨打"), "{text}");
    // A page shows the notices this server wrote, not any text a link carries.
    let signed = linli::web::notice_query(&app.st.keyring, "成功 3 件");
    assert!(app.get(&format!("/cases?{signed}")).cookie(&cookie).send().await.text().contains("成功 3 件"));
    for forged in [
        "/cases?notice=%E8%AF%B7%E6%8B%A8%E6%89%93",
        "/tree?node=520627001001&notice=%E8%AF%B7%E6%8B%A8%E6%89%93&ns=0",
        "/registers/visits?notice=%E8%AF%B7%E6%8B%A8%E6%89%93",
    ] {
        let page = app.get(forged).cookie(&cookie).send().await.text();
        assert!(!page.contains("请拨打"), "{forged}");
    }
    let many: Vec<String> = (0..501).map(|i| format!("NOPE-{i}")).collect();
    let mut form: Vec<(&str, &str)> = vec![("_csrf", &csrf), ("action", "register")];
    form.extend(many.iter().map(|n| ("n", n.as_str())));
    let r = app.post("/cases/bulk").cookie(&cookie).form(&form).send().await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("一次最多批量处理 500 件"), "{}", r.text());
}

both!(bulk_action_notice_stays_short);
