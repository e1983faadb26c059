//! 保障体系's supervision: the county's scores of streets and units, the streets' reverse
//! assessment of the county departments, and the burden-reduction items, with their figures.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::harness::TestApp;

fn field_message(r: &Value, field: &str) -> String {
    r["fields"].as_array().unwrap().iter().find(|e| e["field"] == field).map(|e| e["message"].to_string()).unwrap_or_default()
}

async fn supervision_and_reverse_assessment(app: TestApp) {
    let admin = app.login("admin").await;
    let year = chrono::Datelike::year(&linli::cases::calendar::local_date(linli::db::now_ms()));
    let ov = app.get("/api/v1/overview").bearer(&admin).send().await.json();
    for (key, want) in
        [("assessed_this_year", 12), ("reverse_assessed_departments", 8), ("burden_items", 6), ("burden_items_met", 3)]
    {
        assert_eq!(ov[key], want, "{key}: {ov}");
    }
    // Scores are out of 100; each bad item is named, nothing is written.
    let before = app.get("/api/v1/registers/reverse_assessments?per_page=1").bearer(&admin).send().await.json()["total"].clone();
    let bad = json!({"street": "520627001", "department": "DW001", "department_name": "县委办公室", "year": year,
        "attitude": 101, "efficiency": "良", "support": 80});
    let r = app.post("/api/v1/registers/reverse_assessments").bearer(&admin).json(bad).send().await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let body = r.json();
    for f in ["attitude", "efficiency"] {
        assert!(field_message(&body, f).contains("0～100"), "{f}: {body}");
    }
    assert!(field_message(&body, "support").is_empty(), "{body}");
    let after = app.get("/api/v1/registers/reverse_assessments?per_page=1").bearer(&admin).send().await.json()["total"].clone();
    assert_eq!(before, after);

    // A street scores departments for itself only, and sees its own scores only.
    let heping = app.login("heping").await;
    let own = app.get("/api/v1/registers/reverse_assessments?per_page=100").bearer(&heping).send().await.json();
    assert_eq!(own["total"], 8, "{own}");
    assert!(own["items"].as_array().unwrap().iter().all(|r| r["street"] == "520627001"), "{own}");
    let score = |street: &str| {
        json!({"street": street, "department": "DW001", "department_name": "县委办公室", "year": year,
            "attitude": 95, "efficiency": "88.5", "support": "59分", "opinion": "会议通知太多"})
    };
    let r = app.post("/api/v1/registers/reverse_assessments").bearer(&heping).json(score("520627002")).send().await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(field_message(&r.json(), "street").contains("管辖范围"), "{}", r.text());
    let staff = app.login("huahuaqiao").await;
    let r = app.post("/api/v1/registers/reverse_assessments").bearer(&staff).json(score("520627001")).send().await;
    assert!(r.status.is_client_error(), "a community does not score for its street: {}", r.text());
    let r = app.post("/api/v1/registers/reverse_assessments").bearer(&heping).json(score("520627001")).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let row = r.json();
    assert_eq!((row["total"].as_f64(), row["grade"].as_str()), (Some(80.8), Some("良好")), "(95 + 88.5 + 59) / 3: {row}");
    let again = app.post("/api/v1/registers/reverse_assessments").bearer(&heping).json(score("520627001")).send().await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY, "one score per street, department and year");

    // The ranking: the street's own on its page, the whole county's on the county's.
    let page = |who: &str| app.get("/systems/assurance").cookie(&format!("linli_session={who}")).send();
    let street_page = page(&heping).await.text();
    assert!(street_page.contains("县委办公室</a></td><td>1</td><td>80.8</td><td>良好"), "{street_page}");
    let county = app.get("/api/v1/overview").bearer(&admin).send().await.json();
    assert_eq!(county["reverse_assessed_departments"], 9);
    let county_page = page(&admin).await.text();
    // The department scored low by every street comes last, marked.
    let last = county_page.rfind("县综合行政执法局").unwrap();
    for name in ["县教育局", "县公安局", "县委办公室"] {
        assert!(county_page.find(name).unwrap() < last, "{name}");
    }
    let (i, j) = (county_page.find("名次").unwrap(), county_page.find("</table>").unwrap());
    assert_eq!(county_page[i..j].matches("<tr>").count(), 9, "a row per department");

    // A county assessment and a burden-reduction item done.
    let r = app
        .post("/api/v1/registers/assessments")
        .bearer(&admin)
        .json(json!({"target": "思源社区", "target_kind": "社区", "year": year, "score": 59.5, "assessor": "和平街道党工委"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["grade"], "不合格");
    let items = app.get("/api/v1/registers/burden_reduction?state=推进中&per_page=50").bearer(&admin).send().await.json();
    let open = items["items"].as_array().unwrap().iter().find(|r| r["item"] == "精简社区政务APP与工作群").cloned().unwrap();
    let mut done = serde_json::Map::new();
    for k in ["item", "kind", "baseline", "target", "deadline", "lead"] {
        done.insert(k.into(), open[k].clone());
    }
    done.insert("current".into(), json!(9));
    let r = app
        .req(Method::PUT, &format!("/api/v1/registers/burden_reduction/{}", open["id"]))
        .bearer(&admin)
        .json(Value::Object(done))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["state"], "已达标");
    let ov = app.get("/api/v1/overview").bearer(&admin).send().await.json();
    assert_eq!((ov["assessed_this_year"].as_i64(), ov["burden_items_met"].as_i64()), (Some(13), Some(4)), "{ov}");
}

/// Numbers within what they measure, names that match their codes, terms that end after they
/// start: one mistyped value no longer corrupts a figure (found by a probe: -500 service hours
/// took a street's 人均服务时长 below zero, 1e308 printed 9223372036854775807).
async fn register_values_stay_within_reason(app: TestApp) {
    let admin = app.login("admin").await;
    let before = app.get("/api/v1/overview").bearer(&admin).send().await.json();
    let post = |reg: &str, body: Value| app.post(&format!("/api/v1/registers/{reg}")).bearer(&admin).json(body).send();
    for (reg, body, field, says) in [
        (
            "service_records",
            json!({"member": "党员甲", "what": "政策宣讲", "community": "520627001001", "date": "2026-11-20", "hours": -500, "confirmed": true}),
            "hours",
            "0～24",
        ),
        (
            "service_records",
            json!({"member": "党员甲", "what": "政策宣讲", "community": "520627001001", "date": "2026-11-20", "hours": 1e308, "confirmed": true}),
            "hours",
            "0～24",
        ),
        ("funding", json!({"community": "520627001001", "year": -1, "allocated": 120000}), "year", "2000～2100"),
        ("funding", json!({"community": "520627001001", "year": 2031, "allocated": -500000}), "allocated", "负数"),
        (
            "burden_reduction",
            json!({"item": "测试", "kind": "报表填报", "baseline": 10, "target": 50}),
            "target",
            "不能多于清理前数量",
        ),
        ("recruitment", json!({"batch": "某批", "date": "2026-05-10", "posts": 3, "hired": 5}), "hired", "不能多于岗位数"),
        (
            "reverse_assessments",
            json!({"street": "520627001", "department": "DW051", "department_name": "x", "year": 2026, "attitude": 50, "efficiency": 50, "support": 50}),
            "department",
            "部门、机关",
        ),
        ("units", json!({"code": "ＤＷ００１", "name": "全角编码", "kind": "机关"}), "code", "已有"),
        ("problems", json!({"problem": "某问题", "community": "520627001001", "progress": -1}), "progress", "0～100"),
        (
            "units",
            json!({"code": "DW900", "name": "某单位", "kind": "机关", "contact_phone": "abc"}),
            "contact_phone",
            "联系电话",
        ),
        ("units", json!({"code": "dw001", "name": "小写编码", "kind": "机关"}), "code", "已有"),
        (
            "research_visits",
            json!({"topic": "调研", "date": "0000-01-01", "leader": "甲", "community": "520627001001"}),
            "date",
            "1900",
        ),
        (
            "agreements",
            json!({"title": "共建", "community": "520627001001", "unit": "DW001", "start_date": "2026-05-01", "end_date": "2026-04-30"}),
            "end_date",
            "不能早于开始日期",
        ),
    ] {
        let r = post(reg, body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{reg}: {}", r.text());
        let m = field_message(&r.json(), field);
        assert!(m.contains(says), "{reg}.{field}: {}", r.text());
    }
    assert_eq!(app.get("/api/v1/overview").bearer(&admin).send().await.json(), before, "nothing written");
    // A name beside a code is the code's, whatever was typed; a unit named by its id is kept by
    // its code, one typed in lower case in upper case.
    let r =
        post("funding", json!({"community": "520627001001", "community_name": "燎原社区", "year": 2031, "allocated": 120000}))
            .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["community_name"], "花花桥社区");
    let r = post("units", json!({"code": "dw900", "name": "小写单位", "kind": "机关"})).await;
    assert_eq!(r.json()["code"], "DW900", "{}", r.text());
    // A unit kept in lower case from before takes the upper-case spelling, not a twin; a code
    // that reads as a number is that code, not the unit with that id.
    app.sql("INSERT INTO units (code, name, kind, contact_name, contact_phone, communities, node_path, created_at, updated_at) VALUES ('dw777', '旧单位', '机关', '', '', '', '/520627/', 0, 0)").await;
    let r = post("units", json!({"code": "dw777", "name": "旧单位", "kind": "机关"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let units = app.get("/api/v1/units?q=旧单位").bearer(&admin).send().await.json();
    assert_eq!(units["total"], 1, "{units}");
    let r = post("units", json!({"code": "2", "name": "编码为2的单位", "kind": "机关"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = post("unit_reports", json!({"unit": "2", "community": "520627001001", "date": "2026-03-01"})).await;
    assert_eq!(r.json()["unit_name"], "编码为2的单位", "{}", r.text());
    let agreement = json!({"title": "共建", "community": "520627001001", "unit": "dw900", "start_date": "2026-01-01", "end_date": "2026-12-31"});
    let r = post("agreements", agreement).await;
    assert_eq!(r.status, StatusCode::CREATED, "a unit named in lower case is found: {}", r.text());
    let r = post("unit_reports", json!({"unit": "1", "community": "520627001001", "date": "2026-03-01"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!((r.json()["unit"].as_str(), r.json()["unit_name"].as_str()), (Some("DW001"), Some("县委办公室")));
    // A real Excel date cell reads as the date it shows, whatever the year (one before 1954
    // was refused as 日期格式应为 YYYY-MM-DD: its serial was taken for a number).
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["党员姓名*", "服务内容*", "社区*", "日期*", "服务时长（小时）*"].iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    for (c, v) in ["党员甲", "政策宣讲", "520627001001"].iter().enumerate() {
        ws.write_string(1, c as u16, *v).unwrap();
    }
    let day = rust_xlsxwriter::ExcelDateTime::from_ymd(1950, 3, 1).unwrap();
    ws.write_datetime_with_format(1, 3, &day, &rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd")).unwrap();
    ws.write_number(1, 4, 2.0).unwrap();
    let r = app
        .post("/api/v1/registers/service_records/import?dry_run=true")
        .bearer(&admin)
        .raw("application/octet-stream", wb.save_to_buffer().unwrap())
        .send()
        .await
        .json();
    assert_eq!(r["ok"], true, "{r}");
}

both!(supervision_and_reverse_assessment, register_values_stay_within_reason);
