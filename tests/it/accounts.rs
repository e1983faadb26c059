//! Accounts keep someone in charge and hold the powers of their level only (found by two
//! probes: the only county admin could lock themselves out from the web, and a community
//! worker could be scoped to the whole county).

use axum::http::StatusCode;
use serde_json::json;

use crate::both;
use crate::harness::TestApp;

async fn accounts_keep_someone_in_charge(app: TestApp) {
    let admin = app.login("admin").await;
    let r = app.post("/api/v1/users/admin/lock").bearer(&admin).send().await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("自己"), "{}", r.text());
    assert_eq!(app.get("/api/v1/me").bearer(&admin).send().await.status, StatusCode::OK, "still signed in");
    // The last usable county admin is not locked, by anyone (the console included).
    let actor = linli::audit::Actor::system("test");
    let lock = linli::auth::store::UserAction::Lock;
    let r = linli::auth::store::set_lock(&app.st, None, &actor, "admin", lock).await;
    assert!(matches!(&r, Err(linli::error::AppError::Conflict(m)) if m.contains("最后一个")), "{r:?}");
    // With a second one, either may lock the other.
    let new = |name: &str, role: &str, scope: &str| json!({"username": name, "role": role, "scope": scope, "password": "Second-Admin-2026", "display_name": name});
    let r = app.post("/api/v1/users").bearer(&admin).json(new("admin2", "county_admin", "520627")).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(app.post("/api/v1/users/admin2/lock").bearer(&admin).send().await.status, StatusCode::NO_CONTENT);
    let r = linli::auth::store::set_lock(&app.st, None, &actor, "admin", lock).await;
    assert!(r.is_err(), "admin2 is locked: admin is the last one again");
    // No admin resets their own password (no current password is asked there).
    let r =
        app.post("/api/v1/users/admin/reset-password").bearer(&admin).json(json!({"password": "Hijack-2026!zz"})).send().await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    // A role's scope is not above its level (narrower is a duty: a worker for one grid).
    for (role, scope, says) in [
        ("street_admin", "520627", "县"),
        ("community_staff", "520627", "县"),
        ("grid_worker", "520627001", "街道"),
        ("party_member", "520627", "县"),
        ("resident", "520627002", "街道"),
    ] {
        let r = app.post("/api/v1/users").bearer(&admin).json(new("wrongscope", role, scope)).send().await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{role}: {}", r.text());
        let m = r.json()["fields"][0].clone();
        assert!(m["field"] == "scope" && m["message"].as_str().unwrap().contains(says), "{role}: {m}");
        assert!(m["message"].as_str().unwrap().contains("不能高于"), "{m}");
    }
    let r = app.post("/api/v1/users").bearer(&admin).json(new("rightscope", "grid_worker", "520627001001001")).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

both!(accounts_keep_someone_in_charge);

/// The demo's grid workers are told apart by name (网格员001003 stood for a grid in each of four
/// streets, so pickers and lists were ambiguous).
async fn demo_grid_workers_have_distinct_names(app: TestApp) {
    let admin = app.login("admin").await;
    let users = app.get("/api/v1/users?role=grid_worker&per_page=500").bearer(&admin).send().await.json();
    let names: Vec<&str> = users["items"].as_array().unwrap().iter().map(|u| u["display_name"].as_str().unwrap()).collect();
    assert!(names.len() > 20, "{users}");
    let distinct: std::collections::HashSet<&&str> = names.iter().collect();
    assert_eq!(distinct.len(), names.len(), "{names:?}");
}

both!(demo_grid_workers_have_distinct_names);
