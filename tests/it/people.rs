//! Encrypted personal data: masked everywhere, exact lookup through the blind index,
//! reveal as a separate, audited permission.

use axum::http::StatusCode;
use serde_json::json;

use crate::both;
use crate::harness::TestApp;

const ID: &str = "520627198001010018";

async fn masking_and_audited_reveal(app: TestApp) {
    let id = linli::ident::IdNumber::compose("520627", "19800101", 1).unwrap();
    assert_eq!(id.as_str(), ID, "fixture is checksum-valid");
    let staff = app.login("huahuaqiao").await;
    let r = app
        .post("/api/v1/persons")
        .bearer(&staff)
        .json(json!({"name": "欧阳晓测", "id_number": ID.to_lowercase(), "mobile": "+86 138-0013-1234", "node": "520627001001003", "room": "3-201"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let p = r.json();
    assert_eq!(p["id_number"], "520627********0018");
    assert_eq!(p["mobile"], "138****1234");
    assert_eq!(p["gender"], "男");
    let pid = p["id"].as_i64().unwrap();

    // At rest: no plaintext ID or phone in the row.
    let row = sqlx::query("SELECT id_enc, phone_enc, id_bidx FROM persons WHERE id = $1")
        .bind(pid)
        .fetch_one(&app.st.db.pool)
        .await
        .unwrap();
    let enc: Vec<u8> = sqlx::Row::try_get(&row, "id_enc").unwrap();
    let ph: Vec<u8> = sqlx::Row::try_get(&row, "phone_enc").unwrap();
    let hay = [enc, ph].concat();
    assert!(
        !hay.windows(6).any(|w| w == b"520627".as_slice() || w == b"138001".as_slice()),
        "ciphertext must not contain plaintext"
    );
    let bidx: String = sqlx::Row::try_get(&row, "id_bidx").unwrap();
    assert_ne!(bidx, ID);

    // Exact lookup by ID number or phone (blind index), substring by name.
    for q in [ID, "13800131234", "晓测"] {
        let r = app.get(&format!("/api/v1/persons?q={}", linli::web::urlencode(q))).bearer(&staff).send().await.json();
        assert_eq!(r["total"], 1, "{q}: {r}");
        assert_eq!(r["items"][0]["id"], pid);
    }
    // An exact lookup confirms a guess: it takes the reveal permission and is audited (found by
    // a probe: a grid worker recovered a full ID number from the masked one, the birth year and
    // the check digit in 14 lookups, none logged).
    let grid = app.login("wanggeyuan").await;
    for q in [ID, "13800131234"] {
        let r = app.get(&format!("/api/v1/persons?q={q}")).bearer(&grid).send().await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{q}: {}", r.text());
        assert_eq!(r.json()["fields"][0]["field"], "q");
    }
    let log = app.get("/api/v1/audit?action=person.lookup").bearer(&app.login("admin").await).send().await.json();
    assert!(log.to_string().contains("按完整身份证号查找居民"), "{log}");
    // Masked in lists and on the page.
    let cookie = format!("linli_session={staff}");
    let page = app.get(&format!("/people/{pid}")).cookie(&cookie).send().await.text();
    assert!(page.contains("520627********0018") && !page.contains(ID));

    // Duplicate ID → field error; invalid fields → one message each, nothing written.
    let r = app
        .post("/api/v1/persons")
        .bearer(&staff)
        .json(json!({"name": "重复", "id_number": ID, "node": "520627001001001"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let before = app.get("/api/v1/persons?per_page=1").bearer(&staff).send().await.json()["total"].as_i64().unwrap();
    let r = app
        .post("/api/v1/persons")
        .bearer(&staff)
        .json(json!({"name": "", "id_number": "520627198001010010", "mobile": "12345", "node": "nowhere"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> =
        r.json()["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap().into()).collect();
    assert_eq!(fields, vec!["name", "id_number", "mobile", "node"]);
    assert!(r.text().contains("校验位"), "{}", r.text());
    let after = app.get("/api/v1/persons?per_page=1").bearer(&staff).send().await.json()["total"].as_i64().unwrap();
    assert_eq!(before, after);

    // A grid worker sees masked data but may not reveal.
    let gw = app.login("wanggeyuan").await;
    let r = app.get(&format!("/api/v1/persons/{pid}")).bearer(&gw).send().await;
    assert_eq!(r.json()["mobile"], "138****1234");
    let r = app.post(&format!("/api/v1/persons/{pid}/reveal")).bearer(&gw).send().await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Staff may reveal; it is audited with the reason.
    let r = app.post(&format!("/api/v1/persons/{pid}/reveal")).bearer(&staff).json(json!({"reason": "入户核实"})).send().await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"id_number": ID, "mobile": "13800131234"}));
    let admin = app.login("admin").await;
    let log = app.get("/api/v1/audit?action=person.reveal").bearer(&admin).send().await.json();
    assert_eq!(log["total"], 1);
    assert_eq!(log["items"][0]["actor"], "huahuaqiao");
    assert!(log["items"][0]["summary"].as_str().unwrap().contains("入户核实"));
    assert!(!log["items"][0]["summary"].as_str().unwrap().contains(ID), "the log itself must not leak the number");

    // Another community's staff cannot see the person at all.
    let other = app.login("heping").await; // street 001 includes 花花桥: sees it
    assert_eq!(app.get(&format!("/api/v1/persons/{pid}")).bearer(&other).send().await.status, StatusCode::OK);
    linli::auth::store::create_user(
        &app.st,
        None,
        &linli::audit::Actor::system("test"),
        linli::auth::store::NewUser {
            username: "liaoyuan".into(),
            display_name: String::new(),
            role: linli::auth::Role::CommunityStaff,
            scope: "520627001002".into(),
            password: crate::harness::PW.into(),
            must_change: false,
        },
    )
    .await
    .unwrap();
    let ly = app.login("liaoyuan").await;
    assert_eq!(app.get(&format!("/api/v1/persons/{pid}")).bearer(&ly).send().await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.post(&format!("/api/v1/persons/{pid}/reveal")).bearer(&ly).send().await.status, StatusCode::NOT_FOUND);
    let r = app.get(&format!("/api/v1/persons?q={ID}")).bearer(&ly).send().await.json();
    assert_eq!(r["total"], 0);
    // A number registered in another street is refused as such, and the attempt is audited.
    let far = app.get("/api/v1/persons?node=520627002&per_page=1").bearer(&admin).send().await.json();
    let far_id = far["items"][0]["id"].as_i64().unwrap();
    let shown =
        app.post(&format!("/api/v1/persons/{far_id}/reveal")).bearer(&admin).json(json!({"reason": "测试"})).send().await.json();
    let body = json!({"name": "探测", "id_number": shown["id_number"], "node": "520627001001003"});
    let r = app.post("/api/v1/persons").bearer(&app.login("wanggeyuan").await).json(body).send().await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("其他辖区"), "{}", r.text());
    let log = app.get("/api/v1/audit?action=person.duplicate").bearer(&admin).send().await.text();
    assert!(log.contains("已在其他辖区登记"), "{log}");
}

async fn edit_move_out_and_export(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    let list = app.get("/api/v1/persons?node=520627001001003&per_page=1").bearer(&staff).send().await.json();
    let pid = list["items"][0]["id"].as_i64().unwrap();
    let total = list["total"].as_i64().unwrap();
    // Edit: new phone, new room; bad node is a field error and changes nothing.
    let r = app
        .req(axum::http::Method::PUT, &format!("/api/v1/persons/{pid}"))
        .bearer(&staff)
        .json(json!({"name": "改名后", "mobile": "13912345678", "node": "520627002001001"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "another street is out of scope: {}", r.text());
    let r = app
        .req(axum::http::Method::PUT, &format!("/api/v1/persons/{pid}"))
        .bearer(&staff)
        .json(json!({"name": "改名后", "mobile": "13912345678", "node": "520627001001003", "room": "9-901"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["mobile"], "139****5678");
    assert_eq!(r.json()["room"], "9-901");
    assert_eq!(app.get("/api/v1/persons?q=13912345678").bearer(&staff).send().await.json()["total"], 1);
    // Two edits made from one version: the second is refused instead of undoing the first.
    let v = r.json()["version"].as_i64().unwrap();
    let edit =
        |room: &str| json!({"name": "改名后", "mobile": "13912345678", "node": "520627001001003", "room": room, "version": v});
    let put = |body| app.req(axum::http::Method::PUT, &format!("/api/v1/persons/{pid}")).bearer(&staff).json(body).send();
    let first = put(edit("9-902")).await;
    assert_eq!((first.status, first.json()["version"].as_i64()), (StatusCode::OK, Some(v + 1)), "{}", first.text());
    let second = put(edit("9-903")).await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.text());
    let now = app.get(&format!("/api/v1/persons/{pid}")).bearer(&staff).send().await.json();
    assert_eq!(now["room"], "9-902");
    // The edit form carries the version it was made from.
    let cookie = format!("linli_session={staff}");
    let page = app.get(&format!("/people/{pid}")).cookie(&cookie).send().await.text();
    assert!(page.contains(&format!(r#"name="version" value="{}""#, v + 1)), "{page}");
    // Export: masked, audited, a real xlsx.
    let x = app.get("/api/v1/persons/export.xlsx?node=520627001001003").bearer(&staff).send().await;
    assert_eq!(x.status, StatusCode::OK);
    assert!(x.body.starts_with(b"PK"));
    assert!(x.header("content-disposition").contains("filename*=UTF-8''"));
    let admin = app.login("admin").await;
    let log = app.get("/api/v1/audit?action=person.export").bearer(&admin).send().await.json();
    assert_eq!(log["total"], 1);
    assert!(log["items"][0]["summary"].as_str().unwrap().contains(&format!("{total} 人")));
    // Move out: gone from the list, kept in the table.
    let r = app.post(&format!("/api/v1/persons/{pid}/retire")).bearer(&staff).json(json!({"reason": "搬离本市"})).send().await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&format!("/api/v1/persons/{pid}")).bearer(&staff).send().await.status, StatusCode::NOT_FOUND);
    let after =
        app.get("/api/v1/persons?node=520627001001003&per_page=1").bearer(&staff).send().await.json()["total"].as_i64().unwrap();
    assert_eq!(after, total - 1);
    let kept: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM persons WHERE id = $1").bind(pid).fetch_one(&app.st.db.pool).await.unwrap();
    assert_eq!(kept, 1);
    // Node export follows the filters.
    let x = app.get("/api/v1/nodes/export.xlsx?kind=grid&under=520627001001").bearer(&admin).send().await;
    assert_eq!(x.status, StatusCode::OK);
    assert!(x.body.starts_with(b"PK"));
}

/// The same ID number registered on two nodes at once: one person, the other told it is
/// registered (each node checked before the other committed).
async fn one_id_number_on_two_nodes(app: TestApp) {
    let other = linli::app::AppState::open((*app.st.cfg).clone()).await.expect("a second node");
    let who = linli::auth::Principal::system("test");
    for (i, seq) in (21..26).enumerate() {
        let id = linli::ident::IdNumber::compose("520627", "19900101", seq).unwrap();
        let input = |name: &str| linli::people::PersonInput {
            name: name.into(),
            id_number: id.as_str().into(),
            node: "520627001001003".into(),
            ..Default::default()
        };
        let (a, b) = (input("甲"), input("乙"));
        let (a, b) = tokio::join!(linli::people::create(&app.st, &who, &a), linli::people::create(&other, &who, &b));
        assert!(
            a.is_ok() != b.is_ok(),
            "round {i}: exactly one registers it: {:?} / {:?}",
            a.as_ref().map(|p| p.id),
            b.as_ref().map(|p| p.id)
        );
        let refused = a.err().or(b.err()).unwrap();
        assert!(format!("{refused:?}").contains("该身份证号已登记"), "{refused:?}");
    }
    other.db.close().await;
}

/// An edit keeps the ID number and phone it does not send, or sends back masked as shown: a
/// grid worker, who may edit but not reveal, must not wipe them.
async fn an_edit_keeps_what_it_does_not_send(app: TestApp) {
    let gw = app.login("wanggeyuan").await;
    let list = app.get("/api/v1/persons?per_page=1").bearer(&gw).send().await.json();
    let before = list["items"][0].clone();
    let pid = before["id"].as_i64().unwrap();
    assert!(before["id_number"].as_str().unwrap().contains('*'), "{before}");
    let put = |body: serde_json::Value| {
        app.req(axum::http::Method::PUT, &format!("/api/v1/persons/{pid}")).bearer(&gw).json(body).send()
    };
    let moved = json!({"name": before["name"], "node": before["node_code"], "room": "2-1504", "version": before["version"]});
    let r = put(moved).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let after = r.json();
    assert_eq!(
        (&after["id_number"], &after["mobile"], &after["gender"]),
        (&before["id_number"], &before["mobile"], &before["gender"]),
        "{after}"
    );
    let shown = json!({"name": before["name"], "node": before["node_code"], "room": "2-1505", "id_number": before["id_number"], "mobile": before["mobile"], "version": after["version"]});
    let r = put(shown).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["id_number"], before["id_number"]);
    // A wrong or withdrawn number is removed when asked, masked value resent or not (found by
    // a probe: an empty field keeps it, and nothing removed it).
    let version = r.json()["version"].clone();
    assert!(before["mobile"].as_str().is_some_and(|m| m.contains('*')), "{before}");
    let clear = |how: serde_json::Value, version: &serde_json::Value| json!({"name": before["name"], "node": before["node_code"], "room": "2-1505", "mobile": before["mobile"], "clear_mobile": how, "version": version});
    // Not by a grid worker, who may not see it; "0" is no.
    let r = put(clear(json!("1"), &version)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let staff = app.login("huahuaqiao").await;
    let by_staff = |body: serde_json::Value| {
        app.req(axum::http::Method::PUT, &format!("/api/v1/persons/{pid}")).bearer(&staff).json(body).send()
    };
    let r = by_staff(clear(json!("0"), &version)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["mobile"], before["mobile"], "0 keeps it");
    let version = r.json()["version"].clone();
    let r = by_staff(clear(json!(true), &version)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.json()["mobile"].as_str().unwrap_or_default().is_empty(), "{}", r.text());
    assert_eq!(r.json()["id_number"], before["id_number"], "the ID number stays");
    // Moved out: not found, and not revealed either.
    let staff = app.login("huahuaqiao").await;
    assert_eq!(app.post(&format!("/api/v1/persons/{pid}/retire")).bearer(&staff).send().await.status, StatusCode::NO_CONTENT);
    let r = app.post(&format!("/api/v1/persons/{pid}/reveal")).bearer(&staff).json(json!({"reason": "核实"})).send().await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
}

/// Someone who may not see ID numbers cannot recover one by trying candidates on a record
/// against the duplicate check (the security probe did in 14 tries): every hit is audited, every
/// change of a number is audited, and a record's number changes at most three times a day.
async fn a_masked_id_number_is_not_guessed(app: TestApp) {
    let admin = app.login("admin").await;
    let gw = app.login("wanggeyuan").await;
    let id = |seq: u16| linli::ident::IdNumber::compose("520627", "19750307", seq).unwrap().as_str().to_string();
    let node = "520627001001003";
    let r =
        app.post("/api/v1/persons").bearer(&admin).json(json!({"name": "真人", "id_number": id(84), "node": node})).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = app.post("/api/v1/persons").bearer(&gw).json(json!({"name": "探针", "node": node})).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let pid = r.json()["id"].as_i64().unwrap();
    let put = |n: String| {
        app.req(axum::http::Method::PUT, &format!("/api/v1/persons/{pid}"))
            .bearer(&gw)
            .json(json!({"name": "探针", "id_number": n, "node": node}))
            .send()
    };
    let r = put(id(84)).await;
    assert_eq!(r.json()["fields"][0]["message"], "该身份证号已登记");
    let log = app.get("/api/v1/audit?action=person.duplicate").bearer(&admin).send().await.json();
    assert_eq!(log["total"], 1, "a hit in one's own area is audited: {log}");
    for seq in 1..=3 {
        let r = put(id(seq)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let r = put(id(4)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.json()["fields"][0]["message"].as_str().unwrap().contains("一天内已修改 3 次"), "{}", r.text());
    let log = app.get("/api/v1/audit?action=person.id_set").bearer(&admin).send().await.json();
    assert_eq!(log["total"], 3, "{log}");
    // Names and tags are bounded and free of control characters (a 3,000,000-character tag was
    // stored and sent with every read).
    for (body, field) in [
        (json!({"name": "探针", "node": node, "tags": "标".repeat(201)}), "tags"),
        (json!({"name": "探\u{0}针", "node": node}), "name"),
    ] {
        let r = app.post("/api/v1/persons").bearer(&gw).json(body).send().await;
        assert_eq!(r.json()["fields"][0]["field"], field, "{}", r.text());
    }
    let user = json!({"username": "longname", "display_name": "长".repeat(33), "role": "grid_worker", "scope": node, "password": "Init-Pass123"});
    let r = app.post("/api/v1/users").bearer(&admin).json(user).send().await;
    assert_eq!(r.json()["fields"][0]["field"], "display_name", "{}", r.text());
    // Someone who may see the number is not held to it; sending it back unchanged is no change.
    for _ in 0..2 {
        let r = app
            .req(axum::http::Method::PUT, &format!("/api/v1/persons/{pid}"))
            .bearer(&admin)
            .json(json!({"name": "探针", "id_number": id(5), "node": node}))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let log = app.get("/api/v1/audit?action=person.id_set").bearer(&admin).send().await.json();
    assert_eq!(log["total"], 4, "{log}");
    // New records do not make a way round it: five hits a day, then the check answers no more.
    for i in 0..5 {
        let r =
            app.post("/api/v1/persons").bearer(&gw).json(json!({"name": "探针", "id_number": id(84), "node": node})).send().await;
        let msg = r.json()["fields"][0]["message"].as_str().unwrap_or_default().to_string();
        let want = if i < 4 { "该身份证号已登记" } else { "今天已有 5 次" };
        assert!(msg.contains(want), "try {i}: {msg}");
    }
}

/// A mobile number is a mainland one (13x to 19x): 11 digits starting with 1 were taken
/// (10000000000, 12345678901).
async fn mobiles_are_real(app: TestApp) {
    let staff = app.login("huahuaqiao").await;
    for (mobile, ok) in [("10000000000", false), ("12345678901", false), ("+86 11800138000", false), ("19912345678", true)] {
        let r = app
            .post("/api/v1/persons")
            .bearer(&staff)
            .json(json!({"name": "号码测试", "mobile": mobile, "node": "520627001001003"}))
            .send()
            .await;
        if ok {
            assert_eq!(r.status, StatusCode::CREATED, "{mobile}: {}", r.text());
        } else {
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{mobile}: {}", r.text());
            assert_eq!(r.json()["fields"][0]["field"], "mobile", "{mobile}: {}", r.text());
        }
    }
}

both!(
    masking_and_audited_reveal,
    edit_move_out_and_export,
    one_id_number_on_two_nodes,
    an_edit_keeps_what_it_does_not_send,
    a_masked_id_number_is_not_guessed,
    mobiles_are_real
);
