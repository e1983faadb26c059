//! GeoJSON import errors, export, and point → grid lookup on both coordinate systems.

use axum::http::{Method, StatusCode};
use linli::geo::{Point, wgs84_to_gcj02};
use serde_json::{Value, json};

use crate::both;
use crate::harness::TestApp;

fn poly(coords: &[(f64, f64)]) -> Value {
    json!({"type": "Polygon", "coordinates": [coords.iter().map(|(x, y)| json!([x, y])).collect::<Vec<_>>()]})
}

fn feature(code: &str, g: Value) -> Value {
    json!({"type": "Feature", "properties": {"code": code, "name": "新网格"}, "geometry": g})
}

async fn grid_bbox(app: &TestApp, t: &str, code: &str) -> (f64, f64, f64, f64) {
    let g = app.get(&format!("/api/v1/grids/{code}")).bearer(t).send().await.json();
    let ring = g["geometry"]["coordinates"][0].as_array().unwrap().clone();
    let xs: Vec<f64> = ring.iter().map(|p| p[0].as_f64().unwrap()).collect();
    let ys: Vec<f64> = ring.iter().map(|p| p[1].as_f64().unwrap()).collect();
    let f = |v: &[f64], max: bool| {
        v.iter().cloned().fold(if max { f64::MIN } else { f64::MAX }, if max { f64::max } else { f64::min })
    };
    (f(&xs, false), f(&ys, false), f(&xs, true), f(&ys, true))
}

async fn import_errors_and_export(app: TestApp) {
    let t = app.login("admin").await;
    // A fresh community with a boundary, then import its grids.
    let r = app
        .post("/api/v1/nodes")
        .bearer(&t)
        .json(json!({"kind": "community", "code": "520627001050", "parent": "520627001", "name": "测试社区"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let (x0, y0, x1, y1) = (108.60, 28.60, 108.61, 28.61);
    let r = app
        .req(Method::PUT, "/api/v1/nodes/520627001050/geometry")
        .bearer(&t)
        .json(poly(&[(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());

    let ok_a = poly(&[(x0, y0), (108.605, y0), (108.605, y1), (x0, y1), (x0, y0)]);
    let ok_b = poly(&[(108.605, y0), (x1, y0), (x1, y1), (108.605, y1), (108.605, y0)]);
    let cases = [
        (poly(&[(x0, y0), (108.605, y0), (108.605, y1), (x0, y1)]), "未闭合"),
        (poly(&[(x0, y0), (108.605, y1), (108.605, y0), (x0, y1), (x0, y0)]), "自相交"),
        (poly(&[(108.70, 28.70), (108.71, 28.70), (108.71, 28.71), (108.70, 28.70)]), "超出所属社区"),
    ];
    for (g, msg) in cases {
        let fc = json!({"type": "FeatureCollection", "features": [feature("520627001050001", ok_a.clone()), feature("520627001050002", g)]});
        let r = app.post("/api/v1/grids/import?community=520627001050").bearer(&t).json(fc).send().await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{msg}: {}", r.text());
        let body = r.json();
        assert_eq!(body["ok"], false);
        assert_eq!(body["errors"][0]["feature"], 1);
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(msg), "{msg}: {body}");
        // All or nothing: the good feature was not written either.
        assert_eq!(app.get("/api/v1/grids/520627001050001").bearer(&t).send().await.status, StatusCode::NOT_FOUND);
    }
    // Overlap with a sibling in the same file.
    let overlapping = poly(&[(108.603, y0), (x1, y0), (x1, y1), (108.603, y1), (108.603, y0)]);
    let fc = json!({"type": "FeatureCollection", "features": [feature("520627001050001", ok_a.clone()), feature("520627001050002", overlapping)]});
    let r = app.post("/api/v1/grids/import?community=520627001050").bearer(&t).json(fc).send().await;
    assert!(r.json()["errors"][0]["message"].as_str().unwrap().contains("重叠"), "{}", r.text());
    // Malformed GeoJSON is a field error, not a 500.
    let r = app
        .post("/api/v1/grids/import?community=520627001050")
        .bearer(&t)
        .json(json!({"type": "LineString", "coordinates": [[1, 2], [3, 4]]}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.post("/api/v1/grids/import?community=520627001050").bearer(&t).raw("application/json", "{not json").send().await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Valid tiling imports; then an overlap with an existing grid is refused.
    let fc = json!({"type": "FeatureCollection", "features": [feature("520627001050001", ok_a.clone()), feature("520627001050002", ok_b)]});
    let r = app.post("/api/v1/grids/import?community=520627001050").bearer(&t).json(fc).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["created"], 2);
    let fc = json!({"type": "FeatureCollection", "features": [feature("520627001050003", poly(&[(x0, y0), (108.602, y0), (108.602, 28.602), (x0, 28.602), (x0, y0)]))]});
    let r = app.post("/api/v1/grids/import?community=520627001050").bearer(&t).json(fc).send().await;
    assert!(r.json()["errors"][0]["message"].as_str().unwrap().contains("520627001050001"), "{}", r.text());
    // The community's boundary keeps its grids inside and no neighbour's area (found by a
    // probe: one leaving its grids out, or covering a neighbour, was accepted).
    let shrunk = poly(&[(x0, y0), (108.605, y0), (108.605, y1), (x0, y1), (x0, y0)]);
    let r = app.req(Method::PUT, "/api/v1/nodes/520627001050/geometry").bearer(&t).json(shrunk).send().await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("520627001050002"), "{}", r.text());
    let c = json!({"kind": "community", "code": "520627001051", "parent": "520627001", "name": "邻近社区"});
    assert_eq!(app.post("/api/v1/nodes").bearer(&t).json(c).send().await.status, StatusCode::CREATED);
    let over = poly(&[(108.608, y0), (108.62, y0), (108.62, y1), (108.608, y1), (108.608, y0)]);
    let r = app.req(Method::PUT, "/api/v1/nodes/520627001051/geometry").bearer(&t).json(over).send().await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("测试社区"), "{}", r.text());
    let beside = poly(&[(x1, y0), (108.62, y0), (108.62, y1), (x1, y1), (x1, y0)]);
    let r = app.req(Method::PUT, "/api/v1/nodes/520627001051/geometry").bearer(&t).json(beside).send().await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "sharing an edge is not overlapping: {}", r.text());

    // Export the community as a FeatureCollection and re-import it unchanged (updates).
    let r = app.get("/api/v1/nodes/520627001050/geojson").bearer(&t).send().await;
    assert_eq!(r.header("content-type"), "application/geo+json");
    let fc = r.json();
    assert_eq!(fc["type"], "FeatureCollection");
    assert_eq!(fc["features"].as_array().unwrap().len(), 2);
    let r = app.post("/api/v1/grids/import?community=520627001050").bearer(&t).json(fc).send().await;
    assert_eq!(r.json()["updated"], 2, "{}", r.text());
    // The whole county exports every grid.
    let all = app.get("/api/v1/nodes/520627/geojson").bearer(&t).send().await.json();
    assert_eq!(all["features"].as_array().unwrap().len(), 158);
}

async fn locate_wgs84_and_gcj02(app: TestApp) {
    let t = app.login("admin").await;
    let (x0, y0, x1, y1) = grid_bbox(&app, &t, "520627002003003").await;
    let c = Point { lng: (x0 + x1) / 2.0, lat: (y0 + y1) / 2.0 };
    let r = app.get(&format!("/api/v1/grids/locate?lng={}&lat={}&crs=wgs84", c.lng, c.lat)).bearer(&t).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), json!({"grid_code": "520627002003003", "community_code": "520627002003"}));
    let g = wgs84_to_gcj02(c);
    assert!((g.lng - c.lng).abs() > 0.001, "GCJ-02 differs from WGS-84 here");
    let r = app.get(&format!("/api/v1/grids/locate?lng={}&lat={}&crs=gcj02", g.lng, g.lat)).bearer(&t).send().await;
    assert_eq!(r.json()["grid_code"], "520627002003003");
    // The GCJ-02 numbers read as WGS-84 land elsewhere: proves conversion happened.
    let r = app.get(&format!("/api/v1/grids/locate?lng={}&lat={}", g.lng, g.lat)).bearer(&t).send().await;
    assert_ne!(r.json()["grid_code"], "520627002003003");
    // Outside every grid → 404; bad input → 422 with fields.
    assert_eq!(app.get("/api/v1/grids/locate?lng=100&lat=20").bearer(&t).send().await.status, StatusCode::NOT_FOUND);
    let r = app.get("/api/v1/grids/locate?lng=500&lat=28&crs=mars").bearer(&t).send().await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> =
        r.json()["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap().into()).collect();
    assert_eq!(fields, vec!["lng", "crs"]);
    assert_eq!(r.json()["fields"][1]["message"], "坐标系应为 wgs84 或 gcj02", "the field's own message");
    // Retiring a grid removes it from the index (its demo cases settled first: a grid with open
    // cases is not retired, and its residents move elsewhere).
    app.sql("UPDATE cases SET status = 'closed' WHERE grid_code = '520627002003003'").await;
    let r = app.post("/api/v1/nodes/520627002003003/retire").bearer(&t).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = app.get(&format!("/api/v1/grids/locate?lng={}&lat={}", c.lng, c.lat)).bearer(&t).send().await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A community account cannot locate into another community (404, no leak).
    let s = app.login("huahuaqiao").await;
    let (a, b, cc, d) = grid_bbox(&app, &t, "520627003001001").await;
    let r = app.get(&format!("/api/v1/grids/locate?lng={}&lat={}", (a + cc) / 2.0, (b + d) / 2.0)).bearer(&s).send().await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
}

async fn grid_contract(app: TestApp) {
    let t = app.login("admin").await;
    let r = app.get("/api/v1/grids?community=520627001001&page=1&per_page=4").bearer(&t).send().await.json();
    assert_eq!(r["total"], 6);
    let items = r["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    for it in items {
        assert_eq!(it["community_code"], "520627001001");
        assert!(it["code"].as_str().unwrap().starts_with("520627001001"));
        assert!(it["name"].is_string());
    }
    let g = app.get("/api/v1/grids/520627001001001").bearer(&t).send().await.json();
    assert_eq!(g["community_code"], "520627001001");
    assert_eq!(g["geometry"]["type"], "Polygon");
}

/// A second node on the same database sees grid changes made by the first.
async fn other_node_sees_grid_changes(app: TestApp) {
    let node_b = linli::app::AppState::open((*app.st.cfg).clone()).await.unwrap();
    let t = app.login("admin").await;
    let (x0, y0, x1, y1) = grid_bbox(&app, &t, "520627001002003").await;
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    assert_eq!(node_b.grids.locate(cx, cy, linli::geo::Crs::Wgs84).unwrap().grid_code, "520627001002003");
    // Node A moves grid 003's area to a far-away polygon.
    let far = poly(&[(109.0, 29.0), (109.001, 29.0), (109.001, 29.001), (109.0, 29.0)]);
    let r = app.req(Method::PUT, "/api/v1/nodes/520627001002003/geometry").bearer(&t).json(far).send().await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "outside its community: {}", r.text());
    let shrunk = poly(&[(x0, y0), ((x0 + x1) / 2.0 - 0.0001, y0), ((x0 + x1) / 2.0 - 0.0001, y1), (x0, y1), (x0, y0)]);
    let r = app.req(Method::PUT, "/api/v1/nodes/520627001002003/geometry").bearer(&t).json(shrunk).send().await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert!(app.st.grids.locate(cx, cy, linli::geo::Crs::Wgs84).is_none(), "node A rebuilt at once");
    assert!(node_b.grids.refresh(&node_b.db).await.unwrap(), "node B notices the version change");
    assert!(node_b.grids.locate(cx, cy, linli::geo::Crs::Wgs84).is_none());
    assert!(!node_b.grids.refresh(&node_b.db).await.unwrap(), "no rebuild without a change");
    node_b.db.close().await;
}

/// Two grids of one community given the same free area at once: one gets it, the other is
/// told it overlaps (both used to pass the check and overlap, each checked before the other
/// committed).
async fn grid_edits_at_once_do_not_overlap(app: TestApp) {
    let t = app.login("admin").await;
    let (x0, y0, x1, y1) = grid_bbox(&app, &t, "520627001001001").await;
    let mid = (x0 + x1) / 2.0;
    let left = poly(&[(x0, y0), (mid - 0.0001, y0), (mid - 0.0001, y1), (x0, y1), (x0, y0)]);
    let r = app.req(Method::PUT, "/api/v1/nodes/520627001001001/geometry").bearer(&t).json(left).send().await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let (e, dx, dy) = (0.0001, x1 - 0.0001, y1 - 0.0001);
    let freed = poly(&[(mid + e, y0 + e), (dx, y0 + e), (dx, dy), (mid + e, dy), (mid + e, y0 + e)]);
    let put = |code: &str| app.req(Method::PUT, &format!("/api/v1/nodes/{code}/geometry")).bearer(&t).json(freed.clone()).send();
    let (a, b) = tokio::join!(put("520627001001002"), put("520627001001003"));
    let mut codes = [a.status, b.status];
    codes.sort();
    assert_eq!(codes, [StatusCode::NO_CONTENT, StatusCode::UNPROCESSABLE_ENTITY], "{} / {}", a.text(), b.text());
    let refused = if a.status == StatusCode::NO_CONTENT { &b } else { &a };
    assert!(refused.text().contains("重叠"), "{}", refused.text());
}

both!(
    import_errors_and_export,
    locate_wgs84_and_gcj02,
    grid_contract,
    other_node_sees_grid_changes,
    grid_edits_at_once_do_not_overlap
);
