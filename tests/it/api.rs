//! The API surface: OpenAPI coverage, error shapes, health and metrics, and the demo county's
//! figures computed from records.

use axum::http::{Method, StatusCode};
use linli::geo;

use crate::both;
use crate::harness::TestApp;

async fn openapi_covers_every_route(app: TestApp) {
    let t = app.login("admin").await;
    let doc = app.get("/api/openapi.json").send().await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for (method, path, _, _) in linli::openapi::OPS {
        assert!(paths[*path][*method].is_object(), "{method} {path} documented");
        let concrete = path
            .replace("{code}", "520627")
            .replace("{name}", "admin")
            .replace("{action}", "unlock")
            .replace("{id}", "999999")
            .replace("{act}", "restore")
            .replace("{number}", "YH-2026-000000")
            .replace("{file}", "services.json");
        let concrete = concrete.replace("/registers/admin", "/registers/units");
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let req = app.req(m, &concrete).bearer(&t);
        let r = if concrete.ends_with("/events") { req.send_head().await } else { req.send().await };
        assert_ne!(r.header("x-linli-no-route"), "1", "{method} {path} has a route");
        assert!(r.status.as_u16() < 500, "{method} {path}: {}", r.status);
    }
    // And an unknown path really is reported as such.
    assert_eq!(app.get("/api/v1/nothing").bearer(&t).send().await.header("x-linli-no-route"), "1");
}

async fn errors_health_metrics(app: TestApp) {
    let t = app.login("admin").await;
    let r = app.post("/api/v1/nodes").bearer(&t).raw("application/json", "[1,2").send().await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("JSON"));
    // A value of the wrong type names its field.
    let r = app.post("/api/v1/nodes").bearer(&t).raw("application/json", r#"{"name": 5}"#).send().await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(
        (r.json()["fields"][0]["field"].as_str(), r.json()["fields"][0]["message"].as_str()),
        (Some("name"), Some("类型不对，应为文本"))
    );
    let case = r#"{"category": "ldd", "description": "楼道灯坏了", "lng": "东经108度", "lat": 28.5}"#;
    let r = app.post("/api/v1/cases").bearer(&t).raw("application/json", case).send().await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(
        (r.json()["fields"][0]["field"].as_str(), r.json()["fields"][0]["message"].as_str()),
        (Some("lng"), Some("类型不对，应为数字"))
    );
    let r = app.post("/api/v1/nodes").bearer(&t).raw("application/json", r#"{"name": "x"} trailing"#).send().await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = app.get("/api/v1/nodes/nope").bearer(&t).send().await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"], "未找到该记录，或不在您的管辖范围内");
    let r = app.get("/tree?node=nope").cookie(&format!("linli_session={t}")).send().await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.header("content-type").starts_with("text/html"));
    assert!(r.text().contains("<html lang=\"zh-CN\">"));
    assert_eq!(app.get("/healthz").send().await.status, StatusCode::OK);
    assert_eq!(app.get("/readyz").send().await.text(), "ready");
    let m = app.get("/metrics").send().await.text();
    assert!(m.contains("linli_http_requests_total"));
    assert!(m.contains("linli_grid_index_size 156"), "{m}");
    // Security headers on every response.
    let r = app.get("/login").send().await;
    assert_eq!(r.header("x-frame-options"), "DENY");
    assert!(r.header("content-security-policy").contains("default-src 'self'"));
    // Assets are embedded.
    assert!(app.get("/assets/app.css").send().await.text().contains(".menu"));
}

async fn demo_county_figures(app: TestApp) {
    let t = app.login("admin").await;
    let ov = app.get("/api/v1/overview").bearer(&t).send().await.json();
    assert_eq!(ov["streets"], 4);
    assert_eq!(ov["communities"], 27);
    assert_eq!(ov["grids"], 156);
    assert_eq!(ov["compounds"], 59);
    assert_eq!(ov["relocation_sites"], 13);
    assert!(ov["buildings"].as_i64().unwrap() >= 59 * 3);
    let residents = ov["residents"].as_i64().unwrap();
    assert!((2000..10000).contains(&residents), "a few thousand residents: {residents}");
    // The article's named streets and communities are there, not marked demo.
    for (code, name) in
        [("520627001", "和平街道"), ("520627002", "团结街道"), ("520627003", "祐溪街道"), ("520627001001", "花花桥社区")]
    {
        let n = app.get(&format!("/api/v1/nodes/{code}")).bearer(&t).send().await.json();
        assert_eq!(n["name"], name);
        assert_eq!(n["is_demo"], false);
    }
    // Every grid lies in its community and no two grids of a community overlap.
    let fc = app.get("/api/v1/nodes/520627/geojson").bearer(&t).send().await.json();
    let feats = fc["features"].as_array().unwrap();
    assert_eq!(feats.len(), 156);
    let polys: Vec<(String, geo::Polygon)> = feats
        .iter()
        .map(|f| (f["properties"]["community_code"].as_str().unwrap().to_string(), geo::polygon_from_geojson(f).unwrap()))
        .collect();
    for (i, (ci, pi)) in polys.iter().enumerate() {
        geo::validate(pi).unwrap();
        let comm = linli::tree::geometry::polygon_of(&app.st.db, ci).await.unwrap().unwrap();
        assert!(geo::within(pi, &comm));
        for (cj, pj) in polys.iter().skip(i + 1) {
            if ci == cj {
                assert!(!geo::overlaps(pi, pj));
            }
        }
    }
    // Around 108.50°E 28.56°N.
    let c = polys[0].1.centroid();
    assert!((c.lng - 108.50).abs() < 0.1 && (c.lat - 28.56).abs() < 0.1, "{c:?}");
}

/// Free-text inputs that once had no length limit (and so could break every Excel export of
/// the audit log or the tree) are field errors past their limit.
async fn overlong_text_is_a_field_error(app: TestApp) {
    let admin = app.login("admin").await;
    let long = "长".repeat(5_001);
    let field = |r: &crate::harness::Resp| r.json()["fields"][0]["field"].as_str().unwrap_or_default().to_string();
    let r = app.post("/api/v1/tokens").bearer(&admin).json(serde_json::json!({"name": long})).send().await;
    assert_eq!((r.status, field(&r)), (StatusCode::UNPROCESSABLE_ENTITY, "name".into()), "{}", r.text());
    let staff = app.login("huahuaqiao").await;
    let case = serde_json::json!({"category": "ldd", "description": "楼道灯坏了", "grid": "520627001001002", "address": long});
    let r = app.post("/api/v1/cases").bearer(&staff).json(case).send().await;
    assert_eq!((r.status, field(&r)), (StatusCode::UNPROCESSABLE_ENTITY, "address".into()), "{}", r.text());
    // Control characters (NUL, ESC, a direction override) are not taken into names and titles.
    for (extra, want) in [("title", "标\u{0}题"), ("reporter_name", "张\u{1b}三"), ("description", "楼道灯\u{202E}坏了")]
    {
        let mut case = serde_json::json!({"category": "ldd", "description": "楼道灯坏了", "grid": "520627001001002"});
        case[extra] = serde_json::json!(want);
        let r = app.post("/api/v1/cases").bearer(&staff).json(case).send().await;
        assert_eq!((r.status, field(&r)), (StatusCode::UNPROCESSABLE_ENTITY, extra.to_string()), "{}", r.text());
    }
    let pid = app.get("/api/v1/persons?per_page=1").bearer(&staff).send().await.json()["items"][0]["id"].as_i64().unwrap();
    let r =
        app.post(&format!("/api/v1/persons/{pid}/reveal")).bearer(&staff).json(serde_json::json!({"reason": long})).send().await;
    assert_eq!((r.status, field(&r)), (StatusCode::UNPROCESSABLE_ENTITY, "reason".into()), "{}", r.text());
    let export = app.get("/api/v1/audit/export.xlsx").bearer(&admin).send().await;
    assert_eq!(export.status, StatusCode::OK);
    // A body over the limit is a 413 that says so (it was a 400 saying 过大或读取失败).
    let huge = vec![b' '; 33 * 1024 * 1024];
    let r = app.post("/api/v1/cases").bearer(&staff).raw("application/json", huge).send().await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert_eq!(r.json()["error"], "请求内容过大（不能超过 32 MB）");
}

/// With LINLI_METRICS_TOKEN set, /metrics answers only a scraper that sends it.
async fn metrics_behind_a_token(app: TestApp) {
    let app = TestApp::with(app.backend, |c| c.metrics_token = Some("scrape-Secret-1".into())).await;
    assert_eq!(app.get("/metrics").send().await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/metrics").bearer("wrong").send().await.status, StatusCode::UNAUTHORIZED);
    let r = app.get("/metrics").bearer("scrape-Secret-1").send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("linli_db_commits_total"));
}

both!(
    openapi_covers_every_route,
    errors_health_metrics,
    demo_county_figures,
    overlong_text_is_a_field_error,
    metrics_behind_a_token
);
