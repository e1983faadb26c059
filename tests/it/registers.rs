//! The register mechanism, tested once thoroughly, plus each register's own rules and every
//! figure of the article from the demo records.

use std::io::Cursor;

use axum::http::{Method, StatusCode};
use calamine::{Reader, Xlsx, open_workbook_from_rs};
use serde_json::{Value, json};

use crate::both;
use crate::harness::TestApp;

fn sheet(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.to_vec())).unwrap();
    let range = wb.worksheet_range_at(0).unwrap().unwrap();
    range.rows().map(|r| r.iter().map(|c| c.to_string()).collect()).collect()
}

fn xlsx(rows: &[&[&str]]) -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            ws.write_string(r as u32, c as u16, *v).unwrap();
        }
    }
    wb.save_to_buffer().unwrap()
}

async fn mechanism(app: TestApp) {
    let admin = app.login("admin").await;
    let idx = app.get("/api/v1/registers").bearer(&admin).send().await.json();
    let names: Vec<&str> = idx.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    for n in [
        "units",
        "agreements",
        "research_visits",
        "problems",
        "meetings",
        "facilities",
        "unit_reports",
        "member_reports",
        "service_records",
        "property_companies",
        "owners_committees",
        "collective_companies",
        "revenue",
        "supermarkets",
        "sales",
        "community_workers",
        "grid_roles",
        "visits",
        "talents",
        "funding",
        "offices",
        "assessments",
        "reverse_assessments",
        "burden_reduction",
    ] {
        assert!(names.contains(&n), "{n}");
    }
    assert!(idx[0]["title"].is_string() && idx[0]["system"].is_string());
    // Paging, sorting, field filters, pinyin.
    let p1 = app.get("/api/v1/registers/community_workers?per_page=10&page=2&sort=-name").bearer(&admin).send().await.json();
    assert_eq!(p1["total"], 117);
    assert_eq!(p1["items"].as_array().unwrap().len(), 10);
    assert_eq!(p1["items"][0]["name"], "社区工作者107");
    let f = app.get("/api/v1/registers/facilities?kind=日间照料中心").bearer(&admin).send().await.json();
    assert_eq!(f["total"], 6);
    // The "三小长" of the demo: 党小组长, 街区长 and 楼栋长 beside the grid workers.
    for (role, n) in [("网格员", 156), ("党小组长", 103), ("街区长", 78), ("楼栋长", 104)] {
        let r = app
            .get(&format!("/api/v1/registers/grid_roles?role={}", linli::web::urlencode(role)))
            .bearer(&admin)
            .send()
            .await
            .json();
        assert_eq!(r["total"], n, "{role}");
    }
    for q in ["hhq", "huahuaqiao", "花花"] {
        let r = app.get(&format!("/api/v1/registers/funding?q={}", linli::web::urlencode(q))).bearer(&admin).send().await.json();
        assert_eq!(r["total"], 1, "{q}");
        assert_eq!(r["items"][0]["community_name"], "花花桥社区");
        assert!(r["items"][0]["id"].is_i64());
    }
    assert_eq!(app.get("/api/v1/registers/units?page=x").bearer(&admin).send().await.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.get("/api/v1/registers/units?sort=nope").bearer(&admin).send().await.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.get("/api/v1/registers/nope").bearer(&admin).send().await.status, StatusCode::NOT_FOUND);
    // Field-level errors, nothing written.
    let r = app
        .post("/api/v1/registers/units")
        .bearer(&admin)
        .json(json!({"code": "DW900", "kind": "外星", "credit_code": "91350100M000100Y44"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> =
        r.json()["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap().into()).collect();
    assert_eq!(fields, vec!["name", "kind", "credit_code"]);
    assert!(r.text().contains("校验位"));
    // A member unit saved in the register is a unit dispatch can use.
    // Create, read with history, edit (audited), retire.
    let r = app
        .post("/api/v1/registers/units")
        .bearer(&admin)
        .json(json!({"code": "DW900", "name": "县数据局", "kind": "部门", "credit_code": "91350100M000100Y43"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    let r = app
        .req(Method::PUT, &format!("/api/v1/registers/units/{id}"))
        .bearer(&admin)
        .json(json!({"code": "DW900", "name": "县大数据局", "kind": "部门", "version": 1}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = app
        .req(Method::PUT, &format!("/api/v1/registers/units/{id}"))
        .bearer(&admin)
        .json(json!({"code": "DW900", "name": "旧", "kind": "部门", "version": 1}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let one = app.get(&format!("/api/v1/registers/units/{id}")).bearer(&admin).send().await.json();
    assert_eq!(one["name"], "县大数据局");
    let unit = app.get("/api/v1/units?q=DW900").bearer(&admin).send().await.json();
    assert_eq!(unit["items"][0]["name"], "县大数据局", "the dispatch registry follows the register");
    let hist: Vec<&str> = one["history"].as_array().unwrap().iter().map(|h| h["action"].as_str().unwrap()).collect();
    assert_eq!(hist, vec!["register.update", "register.create"]);
    assert!(one["history"][0]["summary"].as_str().unwrap().contains("单位名称"));
    assert_eq!(
        app.post(&format!("/api/v1/registers/units/{id}/retire")).bearer(&admin).send().await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get("/api/v1/registers/units?q=大数据").bearer(&admin).send().await.json()["total"], 0);
    // Scope: a community sees its own rows and the county's, and writes only its own.
    let staff = app.login("huahuaqiao").await;
    let own = app.get("/api/v1/registers/community_workers?per_page=500").bearer(&staff).send().await.json();
    assert!(own["items"].as_array().unwrap().iter().all(|w| w["community"] == "520627001001"));
    assert!(own["total"].as_i64().unwrap() > 0);
    let other = app.get("/api/v1/registers/community_workers?community=520627002001").bearer(&admin).send().await.json()["items"]
        [0]["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/registers/community_workers/{other}")).bearer(&staff).send().await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("/api/v1/registers/units").bearer(&staff).send().await.json()["total"], 52);
    let r = app
        .post("/api/v1/registers/community_workers")
        .bearer(&staff)
        .json(json!({"name": "越权", "community": "520627002001"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("管辖范围"));
    let r = app
        .post("/api/v1/registers/community_workers")
        .bearer(&staff)
        .json(json!({"name": "新社工", "community": "520627001001", "id_number": "520627198001010018"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["id_number"], "520627********0018", "masked");
    let raw: String =
        sqlx::query_scalar("SELECT data FROM register_rows WHERE name = '新社工'").fetch_one(&app.st.db.pool).await.unwrap();
    assert!(!raw.contains("520627198001010018"), "encrypted at rest");
}

async fn excel_round_trip(app: TestApp) {
    let admin = app.login("admin").await;
    // Export follows the filter; Chinese headers; computed columns; masked personal data.
    let x = app
        .get(&format!("/api/v1/registers/community_workers/export.xlsx?q={}", linli::web::urlencode("社区工作者00")))
        .bearer(&admin)
        .send()
        .await;
    assert_eq!(x.status, StatusCode::OK);
    let rows = sheet(&x.body);
    assert_eq!(rows[0][0], "姓名");
    assert!(rows[0].contains(&"劳动合同".to_string()));
    assert_eq!(rows.len(), 10, "9 matches + header");
    let log = app.get("/api/v1/audit?action=register.export").bearer(&admin).send().await.json();
    assert_eq!(log["total"], 1, "an export of a register is on the record: {log}");
    assert!(log["items"][0]["summary"].as_str().unwrap().contains("「社区工作者」9 条"), "{log}");
    // Template: headers (required marked), a comment row.
    let t = sheet(&app.get("/api/v1/registers/sales/template.xlsx").bearer(&admin).send().await.body);
    assert_eq!(t[0][0], "超市*");
    assert!(t[1][2].starts_with("说明") && t[1][2].contains("机关、校园"), "{:?}", t[1]);
    // A field's own help is not said twice (走访记录: 加密保存…；加密保存).
    let t = sheet(&app.get("/api/v1/registers/visits/template.xlsx").bearer(&admin).send().await.body);
    let notes = &t[1][t[0].iter().position(|h| h == "走访记录").unwrap()];
    assert_eq!(notes.matches("加密").count(), 1, "{notes}");
    // Dry run with many bad cells: every one reported by row and column, nothing written.
    let head: &[&str] = &["超市*", "日期*", "“六进”渠道*", "销售额（元）*", "成本（元）*"];
    let bad = xlsx(&[
        head,
        &["和平联动超市", "2026-13-01", "社区", "100", "80"],
        &["", "2026-03-01", "火星", "abc", "80"],
        &["团结联动超市", "2026-03-02", "校园", "200", "150"],
    ]);
    let r =
        app.post("/api/v1/registers/sales/import?dry_run=false").bearer(&admin).raw("application/octet-stream", bad).send().await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "a refused import says so, as the grid import does");
    let r = r.json();
    assert_eq!(r["ok"], false);
    assert_eq!(r["created"], 0);
    let errs: Vec<(i64, String)> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_i64().unwrap(), e["column"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(errs, vec![(2, "日期".into()), (3, "超市".into()), (3, "“六进”渠道".into()), (3, "销售额（元）".into())]);
    assert!(r["errors"][0]["message"].as_str().unwrap().contains("YYYY-MM-DD"));
    let before = app.get("/api/v1/registers/sales").bearer(&admin).send().await.json()["total"].as_i64().unwrap();
    assert_eq!(before, 30, "all or nothing: the good row was not written");
    // A good file: dry run writes nothing, the real run writes all.
    let good = xlsx(&[
        head,
        &["说明：示例", "", "", "", ""],
        &["和平联动超市", "2026/3/1", "社区", "1,000", "800"],
        &["团结联动超市", "2026年3月2日", "校园", "2000", "1500"],
    ]);
    let r = app
        .post("/api/v1/registers/sales/import?dry_run=true")
        .bearer(&admin)
        .raw("application/octet-stream", good.clone())
        .send()
        .await
        .json();
    assert_eq!((r["ok"].as_bool(), r["created"].as_i64()), (Some(true), Some(0)));
    let r = app
        .post("/api/v1/registers/sales/import?dry_run=false")
        .bearer(&admin)
        .raw("application/octet-stream", good)
        .send()
        .await
        .json();
    assert_eq!((r["ok"].as_bool(), r["created"].as_i64()), (Some(true), Some(2)), "{r}");
    let s = app.get("/api/v1/registers/sales?sort=-amount&per_page=1&channel=校园").bearer(&admin).send().await.json();
    assert_eq!(s["items"][0]["amount"], 32000.0);
    let all = app.get("/api/v1/registers/sales?per_page=500").bearer(&admin).send().await.json();
    let added = all["items"].as_array().unwrap().iter().find(|i| i["date"] == "2026-03-02").unwrap().clone();
    assert_eq!(added["profit"], 500.0, "computed profit");
    // Not an xlsx: a clear field error.
    let r = app.post("/api/v1/registers/sales/import").bearer(&admin).raw("application/octet-stream", "hello").send().await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("xlsx"));
    // Missing required column: refused on a dry run too.
    let r = app
        .post("/api/v1/registers/sales/import")
        .bearer(&admin)
        .raw("application/octet-stream", xlsx(&[&["超市*"]]))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = r.json();
    assert_eq!((r["ok"].as_bool(), r["errors"][0]["row"].as_i64()), (Some(false), Some(1)), "{r}");
    // A small file with one cell in the sheet's last row and column: refused at once, instead
    // of reading a grid of 17 billion cells (it took the server's memory).
    let far = {
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        ws.write_string(0, 0, "超市").unwrap();
        ws.write_string(1_048_575, 16_383, "远处").unwrap();
        wb.save_to_buffer().unwrap()
    };
    assert!(far.len() < 10_000);
    let r =
        app.post("/api/v1/registers/sales/import?dry_run=true").bearer(&admin).raw("application/octet-stream", far).send().await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("表格过大"), "{}", r.text());
}

async fn register_rules(app: TestApp) {
    let admin = app.login("admin").await;
    let today = linli::cases::calendar::local_date(linli::db::now_ms());
    let soon = (today + chrono::Days::new(30)).format("%Y-%m-%d").to_string();
    let past = (today - chrono::Days::new(1)).format("%Y-%m-%d").to_string();
    let later = (today + chrono::Days::new(400)).format("%Y-%m-%d").to_string();
    for (end, state) in [(soon.as_str(), "60天内到期"), (past.as_str(), "已到期"), (later.as_str(), "有效")] {
        let r = app
            .post("/api/v1/registers/community_workers")
            .bearer(&admin)
            .json(json!({"name": format!("合同{state}"), "community": "520627001002", "contract_start": "2024-01-01", "contract_end": end}))
            .send()
            .await;
        assert_eq!(r.json()["contract_state"], state, "{}", r.text());
    }
    let r = app
        .post("/api/v1/registers/community_workers")
        .bearer(&admin)
        .json(json!({"name": "未签", "community": "520627001002"}))
        .send()
        .await;
    assert_eq!(r.json()["contract_state"], "未签订");
    // A node field takes its kind of node only: a street's or a grid's code where a community
    // is meant is refused by name, a building where a grid or building is meant is taken.
    for (reg, body, field) in [
        ("community_workers", json!({"name": "错填街道", "community": "520627001"}), "community"),
        ("community_workers", json!({"name": "错填网格", "community": "520627001001001"}), "community"),
        ("grid_roles", json!({"name": "错填社区", "node": "520627001001", "role": "网格员"}), "node"),
    ] {
        let r = app.post(&format!("/api/v1/registers/{reg}")).bearer(&admin).json(body).send().await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        let e = r.json()["fields"].as_array().unwrap().iter().find(|e| e["field"] == field).cloned().unwrap_or_default();
        assert!(e["message"].as_str().unwrap_or_default().contains("此处应填"), "{reg}: {}", r.text());
    }
    // The funding rule: ≥ 10万元 a year, flagged per row and counted on the overview.
    let year = chrono::Datelike::year(&today);
    let f = app.get(&format!("/api/v1/registers/funding?community=520627001003&year={year}")).bearer(&admin).send().await.json();
    let id = f["items"][0]["id"].as_i64().unwrap();
    assert_eq!(f["items"][0]["compliance"], "达标");
    // A number filters by value, as typed.
    let amount = f["items"][0]["allocated"].as_f64().unwrap();
    let same =
        app.get(&format!("/api/v1/registers/funding?allocated={amount:.0}&year={year}")).bearer(&admin).send().await.json();
    assert!(same["items"].as_array().unwrap().iter().any(|r| r["id"] == id), "{amount:.0}: {same}");
    let r = app
        .req(Method::PUT, &format!("/api/v1/registers/funding/{id}"))
        .bearer(&admin)
        .json(json!({"community": "520627001003", "community_name": "思源社区", "year": year, "allocated": 80000}))
        .send()
        .await;
    assert_eq!(r.json()["compliance"], "不足10万元");
    assert_eq!(app.get("/api/v1/overview").bearer(&admin).send().await.json()["communities_underfunded"], 1);
    let page = app.get("/systems/assurance").cookie(&format!("linli_session={admin}")).send().await.text();
    assert!(page.contains("思源社区（520627001003）"), "the compliance page names it");
    // Coverage of relocation sites follows the facilities registered at them.
    let fac = app.get("/api/v1/registers/facilities?kind=服务点&per_page=1").bearer(&admin).send().await.json();
    let fid = fac["items"][0]["id"].as_i64().unwrap();
    app.post(&format!("/api/v1/registers/facilities/{fid}/retire")).bearer(&admin).send().await;
    assert_eq!(app.get("/api/v1/overview").bearer(&admin).send().await.json()["relocation_sites_covered"], 12);
    // Credit codes are checked by GB 32100 wherever they appear.
    let r = app
        .post("/api/v1/registers/property_companies")
        .bearer(&admin)
        .json(json!({"name": "某物业", "credit_code": "91520627MA0000000X"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn article_figures(app: TestApp) {
    let admin = app.login("admin").await;
    let ov = app.get("/api/v1/overview").bearer(&admin).send().await.json();
    let want: &[(&str, Value)] = &[
        ("research_visits", json!(33)),
        ("problems_solved", json!(35)),
        ("seconded_staff", json!(6)),
        ("alliance_meetings", json!(12)),
        ("party_service_centers", json!(27)),
        ("service_stations", json!(27)),
        ("day_care_centers", json!(6)),
        ("fitness_centers", json!(10)),
        ("after_school_classes", json!(15)),
        ("relocation_sites", json!(13)),
        ("relocation_sites_covered", json!(13)),
        ("reporting_units", json!(52)),
        ("unit_report_rate", json!(1.0)),
        ("property_party_committees", json!(1)),
        ("service_hours_per_member", json!(12.0)),
        ("property_companies", json!(23)),
        ("owners_committees", json!(10)),
        ("red_property_demo_sites", json!(5)),
        ("collective_income_yuan", json!(7_880_000.0)),
        ("township_companies", json!(19)),
        ("linked_supermarkets", json!(3)),
        ("supermarket_turnover_yuan", json!(960_000.0)),
        ("supermarket_profit_yuan", json!(230_000.0)),
        ("community_workers", json!(117)),
        ("worker_contracts", json!(106)),
        ("grid_workers", json!(156)),
        ("grid_party_groups", json!(103)),
        ("talents", json!(71)),
        ("talent_zones", json!(12)),
        ("talent_home_area_m2", json!(1024.0)),
        ("communities_underfunded", json!(0)),
        ("offices_up_to_standard", json!(6)),
    ];
    for (k, v) in want {
        assert_eq!(&ov[*k], v, "{k}");
    }
    // System pages show them, computed.
    let cookie = format!("linli_session={admin}");
    let page = app.get("/systems/development").cookie(&cookie).send().await.text();
    assert!(page.contains("7880000") && page.contains("联动超市"));
    let list = app.get("/registers/units?q=xwb").cookie(&cookie).send().await.text();
    assert!(list.contains("县委办公室"));
    // 单位报到率 of a street counts the units due to report in its communities, not the county's.
    let street = app.login("heping").await;
    let rate = |t: String| {
        let r = app.get("/api/v1/overview").bearer(&t);
        async move { r.send().await.json()["unit_report_rate"].as_f64().unwrap() }
    };
    assert_eq!(rate(street.clone()).await, 1.0, "every unit due in 和平街道 reported");
    // No unit is due in a grid's scope: no rate rather than 0.0 % beside its reporting units,
    // and no -0.0 (found by the web probe).
    let grid = app.login("wanggeyuan").await;
    let ov = app.get("/api/v1/overview").bearer(&grid).send().await.json();
    assert!(ov["unit_report_rate"].is_null(), "{ov}");
    let other = app.get("/api/v1/overview").bearer(&app.login("huahuaqiao").await).send().await.text();
    assert!(!other.contains("-0.0") && !ov.to_string().contains("-0.0"), "{other}");
    let page = app.get("/systems/service").cookie(&format!("linli_session={grid}")).send().await.text();
    assert!(page.contains("<span class=\"n\">—</span><span class=\"l\">单位报到率"), "{page}");
    for (code, community) in [("DW901", "520627002001"), ("DW902", "")] {
        let unit = json!({"code": code, "name": format!("未报到单位{code}"), "kind": "机关", "community": community});
        let r = app.post("/api/v1/registers/units").bearer(&admin).json(unit).send().await;
        assert!(r.status.is_success(), "{}", r.text());
    }
    assert_eq!(rate(street.clone()).await, 1.0, "units due elsewhere do not lower the street's rate");
    assert_eq!(rate(admin.clone()).await, (52.0f64 / 54.0 * 10000.0).round() / 10000.0);
    let unit = json!({"code": "DW903", "name": "和平街道未报到单位", "kind": "机关", "community": "520627001001"});
    assert!(app.post("/api/v1/registers/units").bearer(&admin).json(unit).send().await.status.is_success());
    assert!(rate(street).await < 1.0);
}

/// A new problem of the 四张清单 in 花花桥社区; its id.
async fn new_problem(app: &TestApp, staff: &str, problem: &str) -> i64 {
    let r = app
        .post("/api/v1/registers/problems")
        .bearer(staff)
        .json(json!({"problem": problem, "community": "520627001001", "responsible": "县住房和城乡建设局", "status": "推进中"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["id"].as_i64().unwrap()
}

/// A problem of the 四张清单 becomes a case and the problem follows it.
async fn problem_becomes_a_case(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let id = new_problem(&app, &staff, "老旧小区楼道照明不足").await;
    let r = app
        .post(&format!("/api/v1/registers/problems/{id}/to-case"))
        .bearer(&staff)
        .json(json!({"category": "ldd"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let number = r.json()["number"].as_str().unwrap().to_string();
    assert_eq!(r.json()["community_code"], "520627001001");
    let c = app.get(&format!("/api/v1/cases/{number}")).bearer(&staff).send().await.json();
    assert_eq!((c["channel"].as_str(), c["category"].as_str()), (Some("research_visit"), Some("ldd")));
    let (s, _) = crate::cases::act(&app, &staff, &number, json!({"action": "register"})).await;
    assert_eq!(s, StatusCode::OK);
    let p = app.get(&format!("/api/v1/registers/problems/{id}")).bearer(&staff).send().await.json();
    assert_eq!(p["case_number"], number.as_str());
    assert_eq!(p["case"]["status"], "registered", "the problem follows its case");
    assert_eq!(
        app.post(&format!("/api/v1/registers/problems/{id}/to-case")).bearer(&staff).send().await.status,
        StatusCode::CONFLICT
    );
    // Grid mailbox messages and visit findings go the same way, into the grid.
    let m = app.get("/api/v1/registers/mailbox?per_page=1").bearer(&staff).send().await.json();
    let mid = m["items"][0]["id"].as_i64().unwrap();
    let r = app.post(&format!("/api/v1/registers/mailbox/{mid}/to-case")).bearer(&staff).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["grid_code"].as_str().unwrap().len(), 15);
    // Registers without the action refuse it.
    assert_eq!(app.post("/api/v1/registers/units/1/to-case").bearer(&staff).send().await.status, StatusCode::NOT_FOUND);
    // A double click: two requests for one row at once make one case, and the other is told.
    let pid = new_problem(&app, &staff, "小区门口路灯不亮").await;
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cases").fetch_one(&app.st.db.pool).await.unwrap();
    let path = format!("/api/v1/registers/problems/{pid}/to-case");
    let (a, b) = tokio::join!(app.post(&path).bearer(&staff).send(), app.post(&path).bearer(&staff).send());
    let mut codes = [a.status, b.status];
    codes.sort();
    assert_eq!(codes, [StatusCode::CREATED, StatusCode::CONFLICT], "{} / {}", a.text(), b.text());
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cases").fetch_one(&app.st.db.pool).await.unwrap();
    assert_eq!(after, before + 1, "one case for the row");
    let made = if a.status == StatusCode::CREATED { &a } else { &b };
    let row = app.get(&format!("/api/v1/registers/problems/{pid}")).bearer(&staff).send().await.json();
    assert_eq!(row["case_number"], made.json()["number"]);
}

/// Personal fields of a register (an ID number, a phone) export as shown (masked) and survive
/// an edit that leaves them out or sends them back masked; an import keeps a data row whose
/// text begins with 说明 (only the template's help row is skipped).
async fn personal_fields_survive_export_and_edit(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let row = json!({"name": "田强", "community": "520627001001", "date": "2026-11-01", "mobile": "13812341234"});
    let r = app.post("/api/v1/registers/member_reports").bearer(&staff).json(row).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    let x = app.get("/api/v1/registers/member_reports/export.xlsx").bearer(&staff).send().await;
    let rows = sheet(&x.body);
    let col = rows[0].iter().position(|h| h == "手机号").unwrap();
    assert!(rows.iter().any(|r| r[0] == "田强" && r[col] == "138****1234"), "the export shows the phone masked");
    let put =
        |body: Value| app.req(Method::PUT, &format!("/api/v1/registers/member_reports/{id}")).bearer(&staff).json(body).send();
    for mobile in [Value::Null, json!(""), json!("138****1234")] {
        let mut body = json!({"name": "田强", "community": "520627001001", "date": "2026-11-02"});
        if !mobile.is_null() {
            body["mobile"] = mobile.clone();
        }
        let r = put(body).await;
        assert_eq!(r.status, StatusCode::OK, "{mobile}: {}", r.text());
        let got = app.get(&format!("/api/v1/registers/member_reports/{id}")).bearer(&staff).send().await.json();
        assert_eq!(got["mobile"], "138****1234", "{mobile}: {got}");
    }
    let admin = app.login("admin").await;
    let file = xlsx(&[
        &["超市*", "日期*", "“六进”渠道*", "销售额（元）*", "成本（元）*"],
        &["说明书超市", "2026-03-01", "社区", "100", "80"],
        &["和平联动超市", "2026-03-02", "校园", "200", "150"],
    ]);
    let r = app
        .post("/api/v1/registers/sales/import?dry_run=true")
        .bearer(&admin)
        .raw("application/octet-stream", file)
        .send()
        .await
        .json();
    assert_eq!((r["ok"].as_bool(), r["valid_rows"].as_i64()), (Some(true), Some(2)), "{r}");
}

/// A register's natural key (a unit's code; a community's funding year) names one active row:
/// a second is refused in a form, and an export imported again, or a file repeating a row, is
/// refused with the rows named — the figures counted from the register stay right.
async fn one_row_per_natural_key(app: TestApp) {
    let admin = app.login("admin").await;
    let before = app.get("/api/v1/overview").bearer(&admin).send().await.json();
    let x = app.get("/api/v1/registers/units/export.xlsx").bearer(&admin).send().await;
    let r = app
        .post("/api/v1/registers/units/import?dry_run=false")
        .bearer(&admin)
        .raw("application/octet-stream", x.body.clone())
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = r.json();
    assert_eq!((r["ok"].as_bool(), r["created"].as_i64()), (Some(false), Some(0)), "{r}");
    assert_eq!(r["errors"][0]["row"], 2, "{r}");
    assert!(r["errors"][0]["message"].as_str().unwrap().contains("单位编码"), "{r}");
    let after = app.get("/api/v1/overview").bearer(&admin).send().await.json();
    assert_eq!(before["unit_report_rate"], after["unit_report_rate"]);
    let r = app
        .post("/api/v1/registers/units")
        .bearer(&admin)
        .json(json!({"code": "DW001", "name": "重复", "kind": "机关"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.json()["fields"][0]["field"], "code");
    // Two forms at once with one new code: one is written.
    for round in 0..4 {
        let unit = json!({"code": format!("DWX{round}"), "name": "新单位", "kind": "机关"});
        let post = || app.post("/api/v1/registers/units").bearer(&admin).json(unit.clone()).send();
        let (a, b) = tokio::join!(post(), post());
        let mut got = [a.status, b.status];
        got.sort();
        assert_eq!(got, [StatusCode::CREATED, StatusCode::UNPROCESSABLE_ENTITY], "round {round}");
    }
    let twice = xlsx(&[
        &["社区*", "社区名称*", "年度*", "拨付（元）*", "支出（元）"],
        &["520627001001", "花花桥社区", "2031", "120000", "1000"],
        &["520627001001", "花花桥社区", "2031", "130000", "1000"],
    ]);
    let r = app
        .post("/api/v1/registers/funding/import?dry_run=true")
        .bearer(&admin)
        .raw("application/octet-stream", twice)
        .send()
        .await
        .json();
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["errors"][0]["row"], 3, "{r}");
}

/// The name kept beside a code follows a rename of the community or unit it names: shown,
/// searched and exported by the new name, without each row being edited again.
async fn names_follow_a_rename(app: TestApp) {
    let admin = app.login("admin").await;
    let funding =
        |q: &'static str| app.get(&format!("/api/v1/registers/funding?community=520627001001&q={q}")).bearer(&admin).send();
    let before = funding("").await.json();
    assert!(before["total"].as_i64().unwrap() > 0, "{before}");
    let r = app
        .req(axum::http::Method::PATCH, "/api/v1/nodes/520627001001")
        .bearer(&admin)
        .json(json!({"name": "花桥新区社区"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let after = funding("").await.json();
    assert_eq!(after["total"], before["total"]);
    for row in after["items"].as_array().unwrap() {
        assert_eq!(row["community_name"], "花桥新区社区", "{row}");
        // A form opened before the rename cannot write the old name back unseen.
        let old = before["items"].as_array().unwrap().iter().find(|o| o["id"] == row["id"]).unwrap();
        assert!(row["version"].as_i64().unwrap() > old["version"].as_i64().unwrap(), "{row}");
    }
    assert_eq!(funding("%E6%96%B0%E5%8C%BA").await.json()["total"], before["total"], "found by the new name (新区)");
    let x = app.get("/api/v1/registers/funding/export.xlsx?community=520627001001").bearer(&admin).send().await;
    assert_eq!(x.status, StatusCode::OK);
    // A unit renamed through its register row: the rows naming it follow.
    let reports = || app.get("/api/v1/registers/unit_reports?unit=DW001").bearer(&admin).send();
    let n = reports().await.json()["total"].as_i64().unwrap();
    assert!(n > 0);
    let units = app.get("/api/v1/registers/units?code=DW001").bearer(&admin).send().await.json();
    let mut row = units["items"][0].clone();
    let id = row["id"].as_i64().unwrap();
    row["name"] = json!("县住建局（更名）");
    let r = app.req(axum::http::Method::PUT, &format!("/api/v1/registers/units/{id}")).bearer(&admin).json(row).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let got = reports().await.json();
    assert_eq!(got["total"].as_i64(), Some(n));
    assert!(got["items"].as_array().unwrap().iter().all(|r| r["unit_name"] == "县住建局（更名）"), "{got}");
}

/// A work phone (a unit's 联系电话, Ty::Phone) is personal data as a mobile is: masked in the
/// API, the page, the edit form and the export; sent back masked it keeps the number; a masked
/// number is not imported in its place.
async fn work_phones_are_masked(app: TestApp) {
    let admin = app.login("admin").await;
    let cookie = format!("linli_session={admin}");
    let mut ids = Vec::new();
    for (code, phone, shown) in [("DW950", "13912345678", "139****5678"), ("DW951", "0856-1234567", "0856-***4567")] {
        let unit = json!({"code": code, "name": format!("电话单位{code}"), "kind": "机关", "contact_phone": phone});
        let r = app.post("/api/v1/registers/units").bearer(&admin).json(unit).send().await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        assert_eq!(r.json()["contact_phone"], shown, "{}", r.text());
        let id = r.json()["id"].as_i64().unwrap();
        ids.push(id);
        let one = app.get(&format!("/api/v1/registers/units/{id}")).bearer(&admin).send().await;
        assert_eq!(one.json()["contact_phone"], shown);
        assert!(!one.text().contains(phone), "{}", one.text());
        let list = app.get(&format!("/api/v1/registers/units?code={code}")).bearer(&admin).send().await;
        assert_eq!(list.json()["items"][0]["contact_phone"], shown);
        assert!(!list.text().contains(phone));
        let page = app.get(&format!("/registers/units/{id}")).cookie(&cookie).send().await.text();
        assert!(!page.contains(phone) && page.contains(shown), "{page}");
        let x = app.get(&format!("/api/v1/registers/units/export.xlsx?code={code}")).bearer(&admin).send().await;
        let rows = sheet(&x.body);
        let col = rows[0].iter().position(|h| h == "联系电话").unwrap();
        assert_eq!(rows[1][col], shown, "the export masks it");
        // The edit form sends it back as shown: the number stays.
        let csrf = page.split("name=\"_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        let version = page.split("name=\"version\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        let name = format!("电话单位{code}改");
        let form = [
            ("_csrf", csrf.as_str()),
            ("version", version.as_str()),
            ("code", code),
            ("name", name.as_str()),
            ("kind", "机关"),
            ("contact_phone", shown),
        ];
        let r = app.post(&format!("/registers/units/{id}/edit")).cookie(&cookie).form(&form).send().await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let raw: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT data FROM register_rows WHERE id = {id}")))
            .fetch_one(&app.st.db.pool)
            .await
            .unwrap();
        assert!(raw.contains(phone) && raw.contains("改"), "kept: {raw}");
        // So does the API, and leaving it out.
        for sent in [json!(shown), Value::Null] {
            let mut body = json!({"code": code, "name": name, "kind": "机关"});
            if !sent.is_null() {
                body["contact_phone"] = sent.clone();
            }
            let r = app.req(Method::PUT, &format!("/api/v1/registers/units/{id}")).bearer(&admin).json(body).send().await;
            assert_eq!((r.status, r.json()["contact_phone"].clone()), (StatusCode::OK, json!(shown)), "{sent}: {}", r.text());
        }
    }
    // A masked number in a file is refused, by the column and why.
    let file = xlsx(&[&["单位编码*", "单位名称*", "单位类型*", "联系电话"], &["DW952", "新单位", "机关", "139****5678"]]);
    let r = app
        .post("/api/v1/registers/units/import?dry_run=false")
        .bearer(&admin)
        .raw("application/octet-stream", file)
        .send()
        .await;
    let rep = r.json();
    assert_eq!((rep["ok"].as_bool(), rep["created"].as_i64()), (Some(false), Some(0)), "{rep}");
    assert_eq!(rep["errors"][0]["column"], "联系电话", "{rep}");
    assert!(rep["errors"][0]["message"].as_str().unwrap().contains("脱敏"), "{rep}");
}

/// Forms are offered only to those whose save would be taken (the server's own rule): a
/// county-level register's 新增 and import not to a street or community, a row's edit, retire
/// and 转为事项办理 not to a grid worker nor outside one's scope; a refusal on a field with no
/// input (the scope) is shown, and an import names it in Chinese.
async fn forms_only_where_they_work(app: TestApp) {
    let admin = app.login("admin").await;
    let page = |who: String, path: String| {
        let r = app.get(&path).cookie(&format!("linli_session={who}"));
        async move { r.send().await.text() }
    };
    let first = |reg: &'static str, q: &'static str| {
        let r = app.get(&format!("/api/v1/registers/{reg}?per_page=1&{q}")).bearer(&admin);
        async move { r.send().await.json()["items"][0]["id"].as_i64().unwrap() }
    };
    let doc = first("documents", "").await;
    let funding = first("funding", "community=520627001001").await;
    let problem = first("problems", "community=520627001001").await;
    let talent_zone = first("talent_zones", "").await;
    for user in ["heping", "huahuaqiao"] {
        let t = app.login(user).await;
        for reg in ["talent_zones", "documents", "seconded_staff", "secretaries", "supermarkets"] {
            let p = page(t.clone(), format!("/registers/{reg}")).await;
            assert!(!p.contains("<h2>新增</h2>") && !p.contains(&format!("action=\"/registers/{reg}/import\"")), "{user} {reg}");
            assert!(p.contains("县级"), "{user} {reg}: says who keeps it");
        }
        for (reg, id) in [("documents", doc), ("talent_zones", talent_zone)] {
            let p = page(t.clone(), format!("/registers/{reg}/{id}")).await;
            assert!(!p.contains("/edit\"") && !p.contains("/retire\""), "{user} {reg}");
        }
        // A save made anyway is refused on a field the form has no input for: said on the page.
        let csrf = page(t.clone(), format!("/registers/{}/{}", "funding", funding)).await;
        let csrf = csrf.split("name=\"_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        let r = app
            .post("/registers/talent_zones")
            .cookie(&format!("linli_session={t}"))
            .form(&[("_csrf", &csrf), ("name", "越级新增")])
            .send()
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().contains("不在您的管辖范围内"), "{}", r.text());
        let file = xlsx(&[&["名称*"], &["越级导入"]]);
        let r = app
            .post("/api/v1/registers/talent_zones/import?dry_run=true")
            .bearer(&t)
            .raw("application/octet-stream", file)
            .send()
            .await;
        assert_eq!(r.json()["errors"][0]["column"], "管辖范围", "{}", r.text());
    }
    // The county keeps them.
    let p = page(admin.clone(), "/registers/talent_zones".into()).await;
    assert!(p.contains("<h2>新增</h2>") && p.contains("action=\"/registers/talent_zones/import\""));
    let p = page(admin.clone(), format!("/registers/problems/{problem}")).await;
    assert!(p.contains("/edit\"") && p.contains("/retire\"") && p.contains("/to-case\""), "{p}");
    // The community edits its own rows.
    let staff = app.login("huahuaqiao").await;
    let p = page(staff.clone(), format!("/registers/funding/{funding}")).await;
    assert!(p.contains("/edit\"") && p.contains("/retire\""), "{p}");
    let p = page(staff.clone(), format!("/registers/problems/{problem}")).await;
    assert!(p.contains("/to-case\""), "{p}");
    // A grid worker reads the community's rows above it, and is offered nothing to change.
    let gw = app.login("wanggeyuan").await;
    for (reg, id) in [("documents", doc), ("funding", funding), ("problems", problem)] {
        let p = page(gw.clone(), format!("/registers/{reg}/{id}")).await;
        assert!(p.contains("<dl class=\"facts\">"), "{reg}: readable");
        assert!(!p.contains("/edit\"") && !p.contains("/retire\"") && !p.contains("/to-case\""), "{reg}: {p}");
    }
    // Their own grid's visit: theirs to edit.
    let visit = json!({"visitor": "王网格员", "household": "3栋", "node": "520627001001003", "date": "2026-11-20"});
    let id = app.post("/api/v1/registers/visits").bearer(&gw).json(visit).send().await.json()["id"].as_i64().unwrap();
    let p = page(gw.clone(), format!("/registers/visits/{id}")).await;
    assert!(p.contains("/edit\"") && p.contains("/retire\""), "{p}");
}

/// 办公用房达标社区 counts communities: a community has one office row, and the figure counts
/// each community once whatever the rows.
async fn offices_count_communities(app: TestApp) {
    let admin = app.login("admin").await;
    let figure = || {
        let r = app.get("/api/v1/overview").bearer(&admin);
        async move { r.send().await.json()["offices_up_to_standard"].clone() }
    };
    assert_eq!(figure().await, json!(6));
    let row = json!({"community": "520627001001", "area": 300, "compliant_since": "2024-01-01"});
    let r = app.post("/api/v1/registers/offices").bearer(&admin).json(row).send().await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.json()["fields"][0]["field"], "community", "{}", r.text());
    assert_eq!(figure().await, json!(6));
    // A second row however it came (from before the rule): still one community.
    app.sql(
        "INSERT INTO register_rows (register, node_path, name, search, data, is_demo, created_at, updated_at) \
         SELECT register, node_path, name, search, data, 0, created_at, updated_at FROM register_rows \
         WHERE register = 'offices' AND data LIKE '%520627001001%'",
    )
    .await;
    assert_eq!(figure().await, json!(6));
}

/// A row's history is when, what and a summary: no addresses, hash chain or names of who; a
/// reveal's stated reason only for those who read the audit log.
async fn row_history_is_not_the_audit_log(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let visit =
        json!({"visitor": "网格员", "household": "5栋", "node": "520627001001003", "date": "2026-11-20", "notes": "独居"});
    let id = app.post("/api/v1/registers/visits").bearer(&staff).json(visit).send().await.json()["id"].as_i64().unwrap();
    let r = app
        .post(&format!("/api/v1/registers/visits/{id}/reveal"))
        .bearer(&staff)
        .json(json!({"reason": "家属来电询问近况"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let one = app.get(&format!("/api/v1/registers/visits/{id}")).bearer(&staff).send().await;
    let hist = one.json()["history"].as_array().unwrap().clone();
    assert_eq!(hist.len(), 2, "{hist:?}");
    for h in &hist {
        for k in ["ip", "hash", "prev_hash", "actor", "seq", "node_path"] {
            assert!(h.get(k).is_none(), "{k} in {h}");
        }
        assert!(h["at"].is_i64() && h["label"].is_string() && h["summary"].is_string(), "{h}");
    }
    assert_eq!(hist[0]["label"], "查看台账加密内容");
    assert!(!one.text().contains("家属来电询问近况"), "{}", one.text());
    let page = app.get(&format!("/registers/visits/{id}")).cookie(&format!("linli_session={staff}")).send().await.text();
    assert!(!page.contains("家属来电询问近况") && page.contains("查看台账加密内容"), "{page}");
    // Those who read the audit log read it here too.
    let admin = app.login("admin").await;
    let one = app.get(&format!("/api/v1/registers/visits/{id}")).bearer(&admin).send().await.json();
    assert!(one["history"][0]["summary"].as_str().unwrap().contains("家属来电询问近况"), "{one}");
}

/// Staff's employment records (社区工作者: grade, contract, insurance) are read within one's
/// scope or from above it, not by a grid worker below the community.
async fn staff_records_stay_in_scope(app: TestApp) {
    let gw = app.login("wanggeyuan").await;
    let r = app.get("/api/v1/registers/community_workers").bearer(&gw).send().await;
    assert_eq!((r.status, r.json()["total"].as_i64()), (StatusCode::OK, Some(0)), "{}", r.text());
    let admin = app.login("admin").await;
    let w = app.get("/api/v1/registers/community_workers?community=520627001001&per_page=1").bearer(&admin).send().await.json()
        ["items"][0]["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/registers/community_workers/{w}")).bearer(&gw).send().await.status,
        StatusCode::NOT_FOUND
    );
    let x = app.get("/api/v1/registers/community_workers/export.xlsx").bearer(&gw).send().await;
    assert_eq!(sheet(&x.body).len(), 1, "the header only");
    // The community and the street above it read theirs; county documents stay readable below.
    for (user, community) in [("huahuaqiao", "520627001001"), ("heping", "520627001002")] {
        let t = app.login(user).await;
        let r = app.get(&format!("/api/v1/registers/community_workers?community={community}")).bearer(&t).send().await.json();
        assert!(r["total"].as_i64().unwrap() > 0, "{user}: {r}");
    }
    assert!(app.get("/api/v1/registers/documents").bearer(&gw).send().await.json()["total"].as_i64().unwrap() > 0);
}

fn import_to(app: &TestApp, token: &str, reg: &str, dry_run: bool, file: Vec<u8>) -> impl Future<Output = crate::harness::Resp> {
    app.post(&format!("/api/v1/registers/{reg}/import?dry_run={dry_run}"))
        .bearer(token)
        .raw("application/octet-stream", file)
        .send()
}

/// An import's errors as (row, column, message).
fn cell_errors(report: &Value) -> Vec<(i64, String, String)> {
    let errs = report["errors"].as_array().unwrap_or_else(|| panic!("no report: {report}"));
    errs.iter()
        .map(|e| (e["row"].as_i64().unwrap(), e["column"].as_str().unwrap().into(), e["message"].as_str().unwrap().into()))
        .collect()
}

/// A cell that is no text to take is refused by row and column, on a dry run and on the real
/// one alike: a control character (the xlsx escape _x0000_ is a NUL, which PostgreSQL refuses:
/// the dry run passed and the write answered 500), an error value (#N/A from a lookup was
/// taken as the text "#NA"), and an ID number typed into a number cell (its last digits lost,
/// it was blamed on a wrong check digit). The register's own check refuses a control
/// character sent to the API too.
async fn import_refuses_unreadable_cells(app: TestApp) {
    let admin = app.login("admin").await;
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    let rows: [[&str; 5]; 4] = [
        ["超市*", "日期*", "“六进”渠道*", "销售额（元）*", "成本（元）*"],
        ["和平\u{0}超市", "2026-03-01", "社区", "100", "80"],
        ["团结联动超市", "2026-03-02", "校园", "", "80"],
        ["团结联动超市", "2026-03-03", "校园", "200", "150"],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate().filter(|(_, v)| !v.is_empty()) {
            ws.write_string(r as u32, c as u16, *v).unwrap();
        }
    }
    ws.write_formula(2, 3, rust_xlsxwriter::Formula::new("=NA()").set_result("#N/A")).unwrap();
    let file = wb.save_to_buffer().unwrap();
    for dry_run in [true, false] {
        let r = import_to(&app, &admin, "sales", dry_run, file.clone()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{dry_run}: {}", r.text());
        let errs = cell_errors(&r.json());
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0], (2, "超市".into(), linli::ident::STRAY_CONTROL.into()));
        assert_eq!((errs[1].0, errs[1].1.as_str()), (3, "销售额（元）"), "{errs:?}");
        assert!(errs[1].2.contains("#N/A") && errs[1].2.contains("错误值"), "{errs:?}");
    }
    let total = app.get("/api/v1/registers/sales").bearer(&admin).send().await.json()["total"].clone();
    assert_eq!(total, 30, "nothing written");
    // An 18-digit number cell: said to be a number cell, not a wrong check digit.
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["姓名*", "社区*", "身份证号"].iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    ws.write_string(1, 0, "数字格式").unwrap();
    ws.write_string(1, 1, "520627001001").unwrap();
    ws.write_number(1, 2, 520627198001010018.0).unwrap();
    let r = import_to(&app, &admin, "community_workers", true, wb.save_to_buffer().unwrap()).await.json();
    let errs = cell_errors(&r);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!((errs[0].0, errs[0].1.as_str()), (2, "身份证号"));
    assert!(errs[0].2.contains("文本格式") && !errs[0].2.contains("校验位"), "{errs:?}");
    // The API: refused as the field's error, not a 500 (PostgreSQL) nor a row kept (SQLite).
    let row = json!({"title": "nul\u{0}x", "community": "520627001001", "unit": "DW001", "start_date": "2026-01-01", "end_date": "2026-12-31"});
    let r = app.post("/api/v1/registers/agreements").bearer(&admin).json(row.clone()).send().await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains(linli::ident::STRAY_CONTROL), "{}", r.text());
    // The register's own check, which the CLI's import reaches without the HTTP layer.
    let county = linli::auth::Principal {
        scope: "520627".into(),
        scope_path: "/520627/".into(),
        ..linli::auth::Principal::system("test")
    };
    let reg = linli::registers::catalog::find("agreements").unwrap();
    let errs = linli::registers::store::validate(&app.st, &county, reg, row.as_object().unwrap()).await.unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].field, "title");
    assert!(errs[0].message.contains(linli::ident::STRAY_CONTROL), "{errs:?}");
}

/// A table need not start in A1: its rows are reported by the numbers Excel shows. A column
/// given twice is refused by name (the first one was taken), and a file whose first sheet is
/// empty says so (it said the file was empty, its data on the second sheet).
async fn import_reads_the_sheet_as_excel_shows_it(app: TestApp) {
    let admin = app.login("admin").await;
    // Header in C3, data from C4: the bad date is in Excel's row 5.
    let at_c3 = |rows: &[&[&str]]| {
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        for (r, row) in rows.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                ws.write_string(2 + r as u32, 2 + c as u16, *v).unwrap();
            }
        }
        wb.save_to_buffer().unwrap()
    };
    let head: &[&str] = &["超市*", "日期*", "“六进”渠道*", "销售额（元）*", "成本（元）*"];
    let file = at_c3(&[
        head,
        &["和平联动超市", "2026-03-01", "社区", "100", "80"],
        &["和平联动超市", "2026-13-01", "社区", "100", "80"],
    ]);
    let errs = cell_errors(&import_to(&app, &admin, "sales", true, file).await.json());
    assert_eq!(errs.iter().map(|e| (e.0, e.1.as_str())).collect::<Vec<_>>(), vec![(5, "日期")], "{errs:?}");
    let errs = cell_errors(&import_to(&app, &admin, "sales", true, at_c3(&[&["超市*"]])).await.json());
    assert_eq!((errs[0].0, errs[0].1.as_str()), (3, "日期"), "the header's row: {errs:?}");
    // Two 社区 columns (C and G): refused, naming the column and where it is.
    let file = at_c3(&[
        &["社区*", "社区名称*", "年度*", "拨付（元）*", "社区"],
        &["520627001001", "花花桥社区", "2035", "120000", "520627002001"],
    ]);
    let r = import_to(&app, &admin, "funding", false, file).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let r = r.json();
    assert_eq!(r["created"], 0, "{r}");
    let errs = cell_errors(&r);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!((errs[0].0, errs[0].1.as_str()), (3, "社区"), "{errs:?}");
    assert!(errs[0].2.contains("C、G") && errs[0].2.contains("2 次"), "{errs:?}");
    // Data on the second sheet only.
    let mut wb = rust_xlsxwriter::Workbook::new();
    wb.add_worksheet();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "超市*").unwrap();
    let r = import_to(&app, &admin, "sales", true, wb.save_to_buffer().unwrap()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("第一个工作表") && !r.text().contains("文件为空"), "{}", r.text());
}

/// Two imports of one new row at once: one writes it, the other is told by row and column, in
/// Chinese, as a repeat found before writing is (the loser got a bare field error keyed
/// `community`, with no row).
async fn import_race_is_said_by_row(app: TestApp) {
    let admin = app.login("admin").await;
    // Rounds: the loser is found by the import's own check unless both pass it before either
    // writes, which a round makes likely, not certain.
    for round in 0..8 {
        let year = (2040 + round).to_string();
        let file = xlsx(&[&["社区*", "社区名称*", "年度*", "拨付（元）*"], &["520627001001", "花花桥社区", &year, "120000"]]);
        let (a, b) = tokio::join!(
            import_to(&app, &admin, "funding", false, file.clone()),
            import_to(&app, &admin, "funding", false, file.clone())
        );
        let (won, lost) = if a.status == StatusCode::OK { (a, b) } else { (b, a) };
        assert_eq!((won.status, won.json()["created"].as_i64()), (StatusCode::OK, Some(1)), "{}", won.text());
        assert_eq!(lost.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", lost.text());
        let lost = lost.json();
        assert_eq!(lost["created"], 0, "{lost}");
        assert_eq!(cell_errors(&lost), vec![(2, "社区".into(), "已有社区、年度相同的记录".into())], "round {round}");
    }
    // The write's own check, taken after the import's: it names the rows it refuses.
    let county = linli::auth::Principal {
        scope: "520627".into(),
        scope_path: "/520627/".into(),
        ..linli::auth::Principal::system("test")
    };
    let reg = linli::registers::catalog::find("funding").unwrap();
    let row = |year: i64| json!({"community": "520627001002", "year": year, "allocated": 120000});
    let mut rows = Vec::new();
    for year in [2050, 2051] {
        rows.push(linli::registers::store::validate(&app.st, &county, reg, row(year).as_object().unwrap()).await.unwrap());
    }
    let r = app.post("/api/v1/registers/funding").bearer(&admin).json(row(2051)).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let got = linli::registers::store::insert_all(&app.st, &county, reg, &rows).await.unwrap();
    assert_eq!(got, Err(vec![1]));
    let n = app.get("/api/v1/registers/funding?community=520627001002&year=2050").bearer(&admin).send().await.json();
    assert_eq!(n["total"], 0, "nothing written: {n}");
}

/// Identifiers a register keeps are checked beyond their check character: a credit code's
/// registration authority, kind of entity and region; a mobile's second digit; a landline's
/// area code and number.
async fn register_identifiers_are_real(app: TestApp) {
    let admin = app.login("admin").await;
    for code in ["000000000000000000", "YYYYYYYYYYYYYYYYYT", "Q1520627MA6DXXXX0F", "1Q5206270001000004"] {
        let r = app
            .post("/api/v1/registers/property_companies")
            .bearer(&admin)
            .json(json!({"name": "某物业", "credit_code": code}))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{code}: {}", r.text());
        assert_eq!(r.json()["fields"][0]["field"], "credit_code", "{code}: {}", r.text());
    }
    let good = linli::ident::CreditCode::compose("52520627MA0000001").unwrap();
    let r = app
        .post("/api/v1/registers/property_companies")
        .bearer(&admin)
        .json(json!({"name": "某民办物业", "credit_code": good.as_str()}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    for phone in ["00000000000", "0000-0000000", "10000000000", "12345678901"] {
        let unit = json!({"code": "DW960", "name": "电话单位", "kind": "机关", "contact_phone": phone});
        let r = app.post("/api/v1/registers/units").bearer(&admin).json(unit).send().await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{phone}: {}", r.text());
        assert_eq!(r.json()["fields"][0]["field"], "contact_phone", "{phone}: {}", r.text());
    }
    let staff = app.login("huahuaqiao").await;
    for mobile in ["10000000000", "12345678901"] {
        let row = json!({"name": "田强", "community": "520627001001", "date": "2026-11-01", "mobile": mobile});
        let r = app.post("/api/v1/registers/member_reports").bearer(&staff).json(row).send().await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{mobile}: {}", r.text());
    }
}

const BIN: &str = env!("CARGO_BIN_EXE_linli");

/// Runs the `linli` binary on a data directory: its exit code and what it printed.
fn linli_cli(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .env("LINLI_DATA_DIR", dir)
        .env("RUST_LOG", "warn")
        .env_remove("LINLI_DATABASE_URL")
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// `linli import` on a data directory without a database refuses before creating one (and a
/// key file), as `linli export` does; a file that is not there is said to be missing (it was
/// said to be a missing directory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_import_needs_its_database_and_file() {
    let dir = std::env::temp_dir().join(crate::harness::unique("linli-test-noimport"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("funding.xlsx");
    std::fs::write(&file, xlsx(&[&["社区*"]])).unwrap();
    let (code, out) = linli_cli(&dir, &["import", "funding", file.to_str().unwrap()]);
    assert!(code != 0 && out.contains("数据库文件") && out.contains("不存在"), "{code}: {out}");
    assert!(!dir.join("linli.db").exists() && !dir.join("linli.key").exists(), "nothing created: {out}");
    let _ = std::fs::remove_dir_all(&dir);
    let app = TestApp::new(crate::harness::Backend::Sqlite).await;
    let missing = app.dir.join("没有这个文件.xlsx");
    let (code, out) = linli_cli(&app.dir, &["import", "funding", missing.to_str().unwrap(), "--dry-run"]);
    assert!(code != 0 && out.contains("文件不存在") && !out.contains("目录不存在"), "{code}: {out}");
}

both!(
    work_phones_are_masked,
    forms_only_where_they_work,
    offices_count_communities,
    row_history_is_not_the_audit_log,
    staff_records_stay_in_scope,
    names_follow_a_rename,
    mechanism,
    excel_round_trip,
    register_rules,
    article_figures,
    problem_becomes_a_case,
    personal_fields_survive_export_and_edit,
    one_row_per_natural_key,
    import_refuses_unreadable_cells,
    import_reads_the_sheet_as_excel_shows_it,
    import_race_is_said_by_row,
    register_identifiers_are_real
);
