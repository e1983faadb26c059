//! Roles and data scopes, lockout, throttling, idle timeout, CSRF, forced password change,
//! personal access tokens.

use axum::http::StatusCode;
use serde_json::json;

use crate::both;
use crate::harness::{Backend, PW, TestApp};

/// Every demo role: what it may see of its own scope and that another community is a 404.
async fn scope_isolation_every_role(app: TestApp) {
    let other_comm = "520627002001"; // 团结街道's first community
    let other_grid = "520627002001001";
    let cases = [
        ("admin", 27, true, true),
        ("heping", 8, true, true),
        ("huahuaqiao", 1, true, false),
        ("wanggeyuan", 0, true, false),
        ("danwei", 27, false, false),
        ("dangyuan", 1, false, false),
        ("jumin", 1, false, false),
    ];
    for (user, communities, persons, audit) in cases {
        let t = app.login(user).await;
        let ov = app.get("/api/v1/overview").bearer(&t).send().await;
        assert_eq!(ov.status, StatusCode::OK, "{user}");
        assert_eq!(ov.json()["communities"], communities, "{user}: {}", ov.text());
        // Units serve the whole county: their contacts see its tree (but only their own cases).
        let sees_other = user == "admin" || user == "danwei";
        for path in [
            format!("/api/v1/nodes/{other_comm}"),
            format!("/api/v1/grids/{other_grid}"),
            format!("/api/v1/nodes/{other_comm}/geojson"),
        ] {
            let r = app.get(&path).bearer(&t).send().await;
            let want = if sees_other { StatusCode::OK } else { StatusCode::NOT_FOUND };
            assert_eq!(r.status, want, "{user} {path}");
        }
        // Writes outside the scope are 404 too.
        let r = app
            .req(axum::http::Method::PATCH, &format!("/api/v1/nodes/{other_comm}"))
            .bearer(&t)
            .json(json!({"name": "改名"}))
            .send()
            .await;
        if !sees_other {
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{user} patch");
        }
        // Lists are limited to the scope.
        let grids = app.get("/api/v1/grids?per_page=500").bearer(&t).send().await.json();
        for g in grids["items"].as_array().unwrap() {
            assert!(sees_other || !g["code"].as_str().unwrap().starts_with("520627002"), "{user} sees {}", g["code"]);
        }
        let r = app.get("/api/v1/persons").bearer(&t).send().await;
        assert_eq!(r.status == StatusCode::OK, persons, "{user} persons: {}", r.status);
        if persons {
            let total = r.json()["total"].as_i64().unwrap();
            assert!(total > 0, "{user} sees residents of its scope");
        }
        assert_eq!(app.get("/api/v1/audit").bearer(&t).send().await.status == StatusCode::OK, audit, "{user} audit");
        // Pages follow the same check.
        let cookie = format!("linli_session={t}");
        let r = app.get(&format!("/tree?node={other_comm}")).cookie(&cookie).send().await;
        assert_eq!(r.status == StatusCode::NOT_FOUND, !sees_other, "{user} page");
        if !sees_other {
            assert!(r.text().contains("未找到"), "zh-CN 404 page");
        }
    }
    // Residents and party members cannot write the tree; grid workers cannot manage users.
    let t = app.login("jumin").await;
    let r = app
        .post("/api/v1/nodes")
        .bearer(&t)
        .json(json!({"kind": "compound", "code": "520627001001001-88", "parent": "520627001001001", "name": "x"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let t = app.login("wanggeyuan").await;
    assert_eq!(app.get("/api/v1/users").bearer(&t).send().await.status, StatusCode::FORBIDDEN);
}

async fn account_list_pages_and_filters(app: TestApp) {
    let admin = app.login("admin").await;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE scope_path LIKE '/520627/%'")
        .fetch_one(&app.st.db.pool)
        .await
        .unwrap();
    let p1 = app.get("/api/v1/users?per_page=50").bearer(&admin).send().await.json();
    let p2 = app.get("/api/v1/users?per_page=50&page=2").bearer(&admin).send().await.json();
    assert!(total > 100 && p1["total"] == total.min(2000), "{total} vs {}", p1["total"]);
    assert_eq!(p1["items"].as_array().unwrap().len(), 50);
    assert_ne!(p1["items"][0]["username"], p2["items"][0]["username"], "page 2 is another page");
    // Filters: by role, by part of the name; a street admin sees only the street's accounts.
    let wg = app.get("/api/v1/users?role=grid_worker&per_page=500").bearer(&admin).send().await.json();
    assert!(wg["items"].as_array().unwrap().iter().all(|u| u["role"] == "grid_worker") && wg["total"].as_i64().unwrap() > 10);
    let q = app.get(&format!("/api/v1/users?q={}", linli::web::urlencode("和平"))).bearer(&admin).send().await.json();
    assert!(q["items"].as_array().unwrap().iter().any(|u| u["username"] == "heping"));
    let heping = app.login("heping").await;
    let street = app.get("/api/v1/users?per_page=500").bearer(&heping).send().await.json();
    assert!(street["items"].as_array().unwrap().iter().all(|u| u["scope"].as_str().unwrap().starts_with("520627001")));
    let r = app.get("/api/v1/users?role=root").bearer(&admin).send().await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        (r.json()["fields"][0]["field"].as_str(), r.json()["fields"][0]["message"].as_str()),
        (Some("role"), Some("角色不存在"))
    );
    // The page: filter form, total, pager.
    let html = app.get("/users?role=grid_worker").cookie(&format!("linli_session={admin}")).send().await.text();
    assert!(html.contains("全部角色") && html.contains("个账号") && html.contains("下一页"), "{html}");
}

async fn lockout_and_throttle(app: TestApp) {
    let login = |pw: &str| app.post("/api/v1/auth/login").json(json!({"username": "heping", "password": pw}));
    // A session in use (so remembered by the token cache) outlives the lockout: the lockout
    // refuses new logins only, or anyone could log anyone out with five wrong passwords.
    let live = app.login("heping").await;
    assert_eq!(app.get("/api/v1/me").bearer(&live).send().await.status, StatusCode::OK);
    for i in 1..=5 {
        let r = login("wrong-Password1").send().await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
        assert_eq!(r.json()["error"], "用户名或密码错误");
    }
    let r = login(PW).send().await;
    assert_eq!(r.status, StatusCode::LOCKED, "locked even with the right password");
    assert!(r.json()["error"].as_str().unwrap().contains("锁定"));
    assert_eq!(app.get("/api/v1/me").bearer(&live).send().await.status, StatusCode::OK);
    // An admin unlocks; the right password works again.
    let admin = app.login("admin").await;
    let r = app.post("/api/v1/users/heping/unlock").bearer(&admin).send().await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(login(PW).send().await.status, StatusCode::OK);
    // Failures are in the login log.
    let log = app.get("/api/v1/audit?action=login.failed&actor=heping").bearer(&admin).send().await.json();
    assert_eq!(log["total"], 6);
    // Unknown users count against the client address, at a higher threshold.
    let mut last = StatusCode::OK;
    for i in 0..60 {
        last =
            app.post("/api/v1/auth/login").json(json!({"username": format!("nobody{i}"), "password": "x"})).send().await.status;
        if last == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

async fn guesses_at_once_still_lock(app: TestApp) {
    // Twenty wrong passwords sent together: each is counted, so the account locks as it does
    // after five sent one by one (counted by reading the count first, they all wrote 1).
    let guesses =
        (0..20).map(|_| app.post("/api/v1/auth/login").json(json!({"username": "heping", "password": "wrong-Password1"})).send());
    for r in futures_util::future::join_all(guesses).await {
        assert!([StatusCode::UNAUTHORIZED, StatusCode::LOCKED].contains(&r.status), "{}", r.status);
    }
    let r = app.post("/api/v1/auth/login").json(json!({"username": "heping", "password": PW})).send().await;
    assert_eq!(r.status, StatusCode::LOCKED, "{}", r.text());
    let admin = app.login("admin").await;
    let log = app.get("/api/v1/audit?action=login.failed&actor=heping").bearer(&admin).send().await.json();
    assert!(log["items"].as_array().unwrap().iter().any(|e| e["summary"].as_str().unwrap().contains("已锁定")), "{log}");
}

async fn lock_during_a_login_holds(app: TestApp) {
    // An administrator locks the account while a login with the right password is having its
    // password verified: whichever commits first, the account ends up locked (the login used
    // to clear the lock as it succeeded).
    let admin = app.login("admin").await;
    let login = app.post("/api/v1/auth/login").json(json!({"username": "heping", "password": PW})).send();
    let lock = async {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        app.post("/api/v1/users/heping/lock").bearer(&admin).send().await
    };
    let (first, locked) = tokio::join!(login, lock);
    assert_eq!(locked.status, StatusCode::NO_CONTENT);
    assert!([StatusCode::OK, StatusCode::LOCKED].contains(&first.status), "{}", first.status);
    let r = app.post("/api/v1/auth/login").json(json!({"username": "heping", "password": PW})).send().await;
    assert_eq!(r.status, StatusCode::LOCKED, "the lock was lifted by the login: {}", r.text());
    if first.status == StatusCode::OK {
        let t = first.json()["token"].as_str().unwrap().to_string();
        assert_eq!(app.get("/api/v1/me").bearer(&t).send().await.status, StatusCode::UNAUTHORIZED);
    }
}

async fn csrf_and_forms(app: TestApp) {
    // The login form needs the double-submit token from the login page.
    let page = app.get("/login").send().await;
    let pre = page.set_cookie("linli_pre").unwrap();
    assert!(page.text().contains(&pre));
    let r = app
        .post("/login")
        .form(&[("username", "admin"), ("password", PW), ("_csrf", "forged")])
        .cookie(&format!("linli_pre={pre}"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("表单已过期"), "zh-CN page: {}", r.text());
    let r = app
        .post("/login")
        .form(&[("username", "admin"), ("password", PW), ("_csrf", &pre)])
        .cookie(&format!("linli_pre={pre}"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let session = r.set_cookie("linli_session").unwrap();
    let cookie = format!("linli_session={session}");
    // Wrong password on the form shows the message on the page.
    let r = app
        .post("/login")
        .form(&[("username", "admin"), ("password", "nope"), ("_csrf", &pre)])
        .cookie(&format!("linli_pre={pre}"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text().contains("用户名或密码错误"));
    // A cookie-authenticated POST without the session's token is refused (a page, not JSON:
    // found by a probe); with it, accepted.
    let r = app.post("/tokens").cookie(&cookie).form(&[("name", "x")]).send().await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.header("content-type").starts_with("text/html") && r.text().contains("表单已过期"), "{}", r.text());
    let r = app.post("/api/v1/tokens").cookie(&cookie).json(json!({"name": "x"})).send().await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "JSON with a cookie needs x-csrf-token");
    let home = app.get("/").cookie(&cookie).send().await.text();
    let csrf = home.split("name=\"_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let r = app.post("/tokens").cookie(&cookie).form(&[("name", "x"), ("_csrf", &csrf)]).send().await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("lpat_"));
    let r = app.post("/api/v1/tokens").cookie(&cookie).header("x-csrf-token", &csrf).json(json!({"name": "y"})).send().await;
    assert_eq!(r.status, StatusCode::CREATED);
    // A "next" holding a line break still redirects (the login is already made; the redirect
    // used to fail with a 500), the break percent-encoded.
    let r = app
        .post("/login")
        .form(&[("username", "admin"), ("password", PW), ("_csrf", &pre), ("next", "/cases\n")])
        .cookie(&format!("linli_pre={pre}"))
        .send()
        .await;
    assert_eq!((r.status, r.header("location")), (StatusCode::SEE_OTHER, "/cases%0A".to_string()), "{}", r.text());
    // What the framework refuses is answered in zh-CN too: a path, a body, a content type.
    let bearer = app.login("admin").await;
    let r = app.get("/api/v1/persons/abc").bearer(&bearer).send().await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "请求格式错误，请检查链接或提交的内容");
    let r = app.get("/people/abc").cookie(&cookie).send().await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("请求格式错误") && !r.text().contains("Cannot parse"), "{}", r.text());
    let r = app.post("/m/rate").json(json!({"number": "x"})).send().await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(r.text().contains("内容类型") && !r.text().contains("Content-Type"), "{}", r.text());
    // Unauthenticated pages redirect to login; the API answers 401 JSON.
    let r = app.get("/people").send().await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.header("location").starts_with("/login"));
    let r = app.get("/api/v1/overview").send().await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], "请先登录");
    // Logout ends the session.
    let r = app.post("/logout").cookie(&cookie).form(&[("_csrf", &csrf)]).send().await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(app.get("/api/v1/me").cookie(&cookie).send().await.status, StatusCode::UNAUTHORIZED);
    // A form sent after its session ended leads to the login page, and back to the form.
    let r = app.post("/registers/mailbox").cookie(&cookie).form(&[("_csrf", &csrf), ("message", "x")]).send().await;
    assert_eq!((r.status, r.header("location")), (StatusCode::SEE_OTHER, "/login?next=/registers/mailbox".to_string()));
}

async fn forced_password_change_and_tokens(app: TestApp) {
    let admin = app.login("admin").await;
    let r = app
        .post("/api/v1/users")
        .bearer(&admin)
        .json(json!({"username": "newstaff", "role": "community_staff", "scope": "520627001003", "password": "Init-Pass123"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    // Bad fields: weak password, unknown scope, bad username — each reported.
    let r = app
        .post("/api/v1/users")
        .bearer(&admin)
        .json(json!({"username": "x", "role": "community_staff", "scope": "1", "password": "weak"}))
        .send()
        .await;
    let fields: Vec<String> =
        r.json()["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap().into()).collect();
    assert_eq!(fields, vec!["username", "password", "scope"]);
    // A name that differs only in case from another is refused.
    let r = app
        .post("/api/v1/users")
        .bearer(&admin)
        .json(json!({"username": "NewStaff", "role": "community_staff", "scope": "520627001003", "password": "Init-Pass123"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("仅大小写不同"), "{}", r.text());
    // A street admin cannot create a county admin.
    let heping = app.login("heping").await;
    let r = app
        .post("/api/v1/users")
        .bearer(&heping)
        .json(json!({"username": "boss", "role": "county_admin", "scope": "520627001", "password": "Init-Pass123"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    let r = app.post("/api/v1/auth/login").json(json!({"username": "newstaff", "password": "Init-Pass123"})).send().await;
    assert_eq!(r.json()["must_change_password"], true);
    let t = r.json()["token"].as_str().unwrap().to_string();
    let r = app.get("/api/v1/overview").bearer(&t).send().await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"], "请先修改初始密码");
    let r = app
        .post("/api/v1/auth/password")
        .bearer(&t)
        .json(json!({"current": "Init-Pass123", "password": "Init-Pass123", "confirm": "Init-Pass123"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "must differ");
    let r = app
        .post("/api/v1/auth/password")
        .bearer(&t)
        .json(json!({"current": "Init-Pass123", "password": "New-Pass-456", "confirm": "New-Pass-456"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let r = app.post("/api/v1/auth/login").json(json!({"username": "newstaff", "password": "New-Pass-456"})).send().await;
    let t = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(app.get("/api/v1/overview").bearer(&t).send().await.json()["communities"], 1);

    // Personal access tokens: scoped like the account, revocable, hashed at rest.
    let r = app.post("/api/v1/tokens").bearer(&t).json(json!({"name": "对接"})).send().await;
    let pat = r.json()["token"].as_str().unwrap().to_string();
    assert!(pat.starts_with("lpat_"));
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens WHERE token_hash = $1")
        .bind(&pat)
        .fetch_one(&app.st.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "tokens are stored hashed");
    assert_eq!(app.get("/api/v1/overview").bearer(&pat).send().await.json()["communities"], 1);
    assert_eq!(app.get("/api/v1/nodes/520627002001").bearer(&pat).send().await.status, StatusCode::NOT_FOUND);
    let id = app.get("/api/v1/tokens").bearer(&t).send().await.json()["items"][0]["id"].as_i64().unwrap();
    let r = app.req(axum::http::Method::DELETE, &format!("/api/v1/tokens/{id}")).bearer(&t).send().await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/overview").bearer(&pat).send().await.status, StatusCode::UNAUTHORIZED);
    // Tokens expire: 180 days unless asked, 1–3650, and not a moment after.
    let r = app.post("/api/v1/tokens").bearer(&t).json(json!({"name": "短期", "expires_in_days": 0})).send().await;
    assert_eq!((r.status, r.json()["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("expires_in_days")));
    let r = app.post("/api/v1/tokens").bearer(&t).json(json!({"name": "短期", "expires_in_days": 7})).send().await;
    assert_eq!((r.status, r.json()["expires_in_days"].as_i64()), (StatusCode::CREATED, Some(7)), "{}", r.text());
    let short = r.json()["token"].as_str().unwrap().to_string();
    let item = app.get("/api/v1/tokens").bearer(&t).send().await.json()["items"][0].clone();
    let week = item["expires_at"].as_i64().unwrap() - item["created_at"].as_i64().unwrap();
    assert_eq!((week, item["expired"].as_bool()), (7 * 86_400_000, Some(false)), "{item}");
    app.sql(&format!("UPDATE api_tokens SET expires_at = {} WHERE id = {}", linli::db::now_ms() - 1, item["id"])).await;
    assert_eq!(app.get("/api/v1/overview").bearer(&short).send().await.status, StatusCode::UNAUTHORIZED, "an expired token");
    assert_eq!(app.get("/api/v1/tokens").bearer(&t).send().await.json()["items"][0]["expired"], true);
}

/// Tokens and sessions follow the password: no personal access token while the initial
/// password is unchanged (it would skip the change); an admin reset ends the account's
/// sessions and tokens; one's own change ends one's tokens and other sessions (a probe found
/// a token minted by whoever took the account outliving the owner's change).
async fn tokens_and_sessions_follow_the_password(app: TestApp) {
    let admin = app.login("admin").await;
    let body = json!({"username": "newstaff", "role": "grid_worker", "scope": "520627001003", "password": "Init-Pass123"});
    assert_eq!(app.post("/api/v1/users").bearer(&admin).json(body).send().await.status, StatusCode::CREATED);
    let r = app.post("/api/v1/auth/login").json(json!({"username": "newstaff", "password": "Init-Pass123"})).send().await;
    let fresh = r.json()["token"].as_str().unwrap().to_string();
    let r = app.post("/api/v1/tokens").bearer(&fresh).json(json!({"name": "x"})).send().await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(r.json()["error"], "请先修改初始密码");
    for path in ["/api/v1/notifications", "/api/v1/events"] {
        assert_eq!(app.get(path).bearer(&fresh).send_head().await.status, StatusCode::FORBIDDEN, "{path}");
    }
    let cookie = format!("linli_session={fresh}");
    let page = app.get("/tokens").cookie(&cookie).send().await;
    if page.status == StatusCode::OK {
        let csrf = page.text().split("name=\"_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        let r = app.post("/tokens").cookie(&cookie).form(&[("name", "x"), ("_csrf", &csrf)]).send().await;
        assert!(!r.text().contains("lpat_"), "a token was issued on the page");
    }
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE u.username = 'newstaff'")
            .fetch_one(&app.st.db.pool)
            .await
            .unwrap();
    assert_eq!(n, 0);
    // Own change: the other session ends, this one goes on.
    let (a, b) = (app.login("heping").await, app.login("heping").await);
    let pat = app.post("/api/v1/tokens").bearer(&a).json(json!({"name": "对接"})).send().await.json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let change = json!({"current": PW, "password": "New-Pass-456", "confirm": "New-Pass-456"});
    assert_eq!(app.post("/api/v1/auth/password").bearer(&a).json(change).send().await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/me").bearer(&a).send().await.status, StatusCode::OK);
    assert_eq!(app.get("/api/v1/me").bearer(&b).send().await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/me").bearer(&pat).send().await.status, StatusCode::UNAUTHORIZED, "one's tokens end too");
    let items = app.get("/api/v1/tokens").bearer(&a).send().await.json()["items"].clone();
    assert!(items.as_array().unwrap().iter().all(|t| t["revoked"] == true), "{items}");
    let admin_log = app.get("/api/v1/audit?action=user.password_change&actor=heping").bearer(&admin).send().await.json();
    let summary = admin_log["items"][0]["summary"].as_str().unwrap_or_default().to_string();
    assert!(summary.contains("吊销 1 个访问令牌") && summary.contains("1 个其他会话"), "{admin_log}");
    // Admin reset: sessions and tokens end.
    let r =
        app.post("/api/v1/users/heping/reset-password").bearer(&admin).json(json!({"password": "Reset-Pass-789"})).send().await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert_eq!(app.get("/api/v1/me").bearer(&a).send().await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/me").bearer(&pat).send().await.status, StatusCode::UNAUTHORIZED);
}

/// Logging in needs no account, so what is typed must not swell or forge the audit log: names
/// go in as at most 64 visible characters, and a throttled address is logged once per window.
async fn failed_logins_keep_the_log_small(app: TestApp) {
    let forged = format!("=HYPERLINK(1)\r\n[2026-11-29] admin 登录成功\u{202e}{}", "B".repeat(100_000));
    let r = app.post("/api/v1/auth/login").json(json!({"username": forged, "password": "x"})).send().await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let mut last = StatusCode::OK;
    for i in 0..80 {
        last =
            app.post("/api/v1/auth/login").json(json!({"username": format!("nobody{i}"), "password": "x"})).send().await.status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT actor, entity_id, summary FROM audit_log WHERE action = 'login.failed' ORDER BY seq")
            .fetch_all(&app.st.db.pool)
            .await
            .unwrap();
    let first = &rows[0];
    assert_eq!(first.1.chars().count(), 64, "{}", first.1);
    assert!(!first.0.contains(['\r', '\n', '\u{202e}']) && !first.1.contains(['\r', '\n', '\u{202e}']), "{first:?}");
    assert!(first.1.starts_with("=HYPERLINK(1)??[2026-11-29]"), "{}", first.1);
    let throttled = rows.iter().filter(|r| r.2.contains("限流")).count();
    assert_eq!(throttled, 1, "a throttled address is logged once per window");
    assert!(rows.len() < 60, "{} entries for 81 attempts", rows.len());
}

/// A name no account has is answered as an account would be: 401 five times, then 423 with the
/// same message, so the answers do not tell which names exist.
async fn unknown_names_answer_like_accounts(app: TestApp) {
    let answers = |user: &'static str| {
        let app = &app;
        async move {
            let mut out = Vec::new();
            for _ in 0..7 {
                let r =
                    app.post("/api/v1/auth/login").json(json!({"username": user, "password": "wrong-Password1"})).send().await;
                out.push((r.status, r.json()["error"].as_str().unwrap_or_default().to_string()));
            }
            out
        }
    };
    let real = answers("heping").await;
    let ghost = answers("no_such_user").await;
    assert_eq!(real, ghost);
    assert_eq!(ghost[5].0, StatusCode::LOCKED, "{ghost:?}");
    assert!(ghost[5].1.contains("账号已锁定"), "{ghost:?}");
}

/// A lockout after failed logins refuses new logins only: five wrong passwords typed by anyone
/// used to end the victim's sessions and stop its tokens. An administrator's lock still ends
/// both.
async fn lockout_keeps_sessions_and_tokens(app: TestApp) {
    let live = app.login("heping").await;
    let pat = app.post("/api/v1/tokens").bearer(&live).json(json!({"name": "对接"})).send().await.json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.get("/api/v1/me").bearer(&pat).send().await.status, StatusCode::OK);
    for _ in 0..5 {
        let r = app.post("/api/v1/auth/login").json(json!({"username": "heping", "password": "wrong-Password1"})).send().await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = app.post("/api/v1/auth/login").json(json!({"username": "heping", "password": PW})).send().await;
    assert_eq!(r.status, StatusCode::LOCKED, "new logins are refused");
    assert_eq!(app.get("/api/v1/me").bearer(&live).send().await.status, StatusCode::OK, "the session goes on");
    assert_eq!(app.get("/api/v1/me").bearer(&pat).send().await.status, StatusCode::OK, "the token goes on");
    let sessions: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username = 'heping'")
            .fetch_one(&app.st.db.pool)
            .await
            .unwrap();
    assert_eq!(sessions, 1, "the session row was kept");
    // An administrator's lock ends the sessions and stops the tokens while it lasts.
    let admin = app.login("admin").await;
    assert_eq!(app.post("/api/v1/users/heping/lock").bearer(&admin).send().await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/me").bearer(&live).send().await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/me").bearer(&pat).send().await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.post("/api/v1/users/heping/unlock").bearer(&admin).send().await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/me").bearer(&pat).send().await.status, StatusCode::OK, "unlocked, the token works again");
    assert_eq!(app.get("/api/v1/me").bearer(&live).send().await.status, StatusCode::UNAUTHORIZED, "the session stays ended");
}

/// Only a signed-in person issues personal access tokens: a token minting tokens outlived the
/// revocation of its parent. Bodies that are not a JSON object are refused, not read as `{}`.
async fn tokens_are_issued_from_a_session(app: TestApp) {
    let session = app.login("heping").await;
    let r = app.post("/api/v1/tokens").bearer(&session).json(json!({"name": "对接"})).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let pat = r.json()["token"].as_str().unwrap().to_string();
    let count = || async {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens").fetch_one(&app.st.db.pool).await.unwrap();
        n
    };
    let before = count().await;
    let r = app.post("/api/v1/tokens").bearer(&pat).json(json!({"name": "child", "expires_in_days": 3650})).send().await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let msg = r.json()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("访问令牌不能签发") && msg.contains("登录"), "{msg}");
    // The page too (a program may post the form with its token).
    let r = app.post("/tokens").bearer(&pat).form(&[("name", "child")]).send().await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("访问令牌不能签发") && !r.text().contains("lpat_"), "{}", r.text());
    assert_eq!(count().await, before, "no token was issued");
    // The documented limits: 180 days unless asked, at most 3650.
    let r = app.post("/api/v1/tokens").bearer(&session).json(json!({"expires_in_days": 3651})).send().await;
    assert_eq!((r.status, r.json()["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("expires_in_days")));
    let r = app.post("/api/v1/tokens").bearer(&session).json(json!({})).send().await;
    assert_eq!((r.status, r.json()["expires_in_days"].as_i64()), (StatusCode::CREATED, Some(180)), "{}", r.text());
    let before = count().await;
    for (body, what) in [("[]", "an array"), ("", "nothing"), ("  ", "blanks"), ("\"x\"", "a string"), ("null", "null")] {
        let r = app.post("/api/v1/tokens").bearer(&session).raw("application/json", body).send().await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text());
        assert!(r.json()["error"].as_str().unwrap().contains("JSON 对象"), "{what}: {}", r.text());
    }
    assert_eq!(count().await, before, "no token was issued");
}

/// A wrong current password on the change-password form counts toward the same lockout as a
/// wrong login, each one audited: it could be guessed without limit, unlogged.
async fn wrong_current_passwords_lock(app: TestApp) {
    let t = app.login("heping").await;
    let change = |current: &str| {
        app.post("/api/v1/auth/password")
            .bearer(&t)
            .json(json!({"current": current, "password": "New-Pass-456", "confirm": "New-Pass-456"}))
    };
    for i in 1..=5 {
        let r = change("wrong-Password1").send().await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "attempt {i}: {}", r.text());
        assert_eq!(r.json()["fields"][0]["field"], "current");
        assert!(r.json()["fields"][0]["message"].as_str().unwrap().starts_with("当前密码不正确"));
    }
    for pw in ["wrong-Password1", PW] {
        let r = change(pw).send().await;
        assert_eq!(r.status, StatusCode::LOCKED, "{}", r.text());
        assert!(r.json()["error"].as_str().unwrap().contains("账号已锁定"), "{}", r.text());
    }
    // The page's form is refused alike.
    let cookie = format!("linli_session={t}");
    let page = app.get("/password").cookie(&cookie).send().await.text();
    let csrf = page.split("name=\"_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let form = [("_csrf", csrf.as_str()), ("current", PW), ("password", "New-Pass-456"), ("confirm", "New-Pass-456")];
    let r = app.post("/password").cookie(&cookie).form(&form).send().await;
    assert_eq!(r.status, StatusCode::LOCKED);
    assert!(r.text().contains("账号已锁定"), "{}", r.text());
    let r = app.post("/api/v1/auth/login").json(json!({"username": "heping", "password": PW})).send().await;
    assert_eq!(r.status, StatusCode::LOCKED, "new logins are refused");
    assert_eq!(app.get("/api/v1/me").bearer(&t).send().await.status, StatusCode::OK, "the session goes on");
    let admin = app.login("admin").await;
    let log = app.get("/api/v1/audit?action=login.failed&actor=heping").bearer(&admin).send().await.json();
    let summaries: Vec<&str> = log["items"].as_array().unwrap().iter().map(|e| e["summary"].as_str().unwrap()).collect();
    assert_eq!(summaries.iter().filter(|s| s.contains("修改密码时当前密码错误")).count(), 5, "{summaries:?}");
    assert!(summaries.iter().any(|s| s.contains("已锁定")), "{summaries:?}");
    // Unlocked, the right password changes it (and the count starts over).
    assert_eq!(app.post("/api/v1/users/heping/unlock").bearer(&admin).send().await.status, StatusCode::NO_CONTENT);
    assert_eq!(change(PW).send().await.status, StatusCode::NO_CONTENT);
}

/// Logging out with a personal access token ended nothing but answered 204: refused, saying
/// where tokens are revoked.
async fn logout_with_a_token_says_how_to_revoke(app: TestApp) {
    let session = app.login("heping").await;
    let pat = app.post("/api/v1/tokens").bearer(&session).json(json!({"name": "对接"})).send().await.json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app.post("/api/v1/auth/logout").bearer(&pat).send().await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let msg = r.json()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("访问令牌") && msg.contains("DELETE /api/v1/tokens/"), "{msg}");
    assert_eq!(app.get("/api/v1/me").bearer(&pat).send().await.status, StatusCode::OK, "as the answer says");
    assert_eq!(app.post("/api/v1/auth/logout").bearer(&session).send().await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/me").bearer(&session).send().await.status, StatusCode::UNAUTHORIZED);
}

async fn idle_timeout(backend: Backend) {
    let app = TestApp::with(backend, |c| c.idle_timeout_secs = 1).await;
    let t = app.login("admin").await;
    assert_eq!(app.get("/api/v1/me").bearer(&t).send().await.status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(app.get("/api/v1/me").bearer(&t).send().await.status, StatusCode::UNAUTHORIZED);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(&app.st.db.pool).await.unwrap();
    assert_eq!(left, 0, "the expired session was deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_sqlite() {
    idle_timeout(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_postgres() {
    idle_timeout(Backend::Postgres).await
}

both!(
    scope_isolation_every_role,
    account_list_pages_and_filters,
    lockout_and_throttle,
    guesses_at_once_still_lock,
    lock_during_a_login_holds,
    csrf_and_forms,
    forced_password_change_and_tokens,
    tokens_and_sessions_follow_the_password,
    failed_logins_keep_the_log_small,
    unknown_names_answer_like_accounts,
    lockout_keeps_sessions_and_tokens,
    tokens_are_issued_from_a_session,
    wrong_current_passwords_lock,
    logout_with_a_token_says_how_to_revoke
);
