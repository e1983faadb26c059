//! The scale generator at a small size on both databases: the tree tiles without overlap, the
//! counts come out, rollups are exact, and the rates work at the new root.

use axum::http::StatusCode;
use linli::cases::megacity::{Scale, Stage, generate};

use crate::both;
use crate::harness::{PW, TestApp};

async fn scale_generator(mut app: TestApp) {
    let index_sql = match app.st.db.backend {
        linli::db::Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('cases', 'case_history') ORDER BY name"
        }
        linli::db::Backend::Postgres => {
            "SELECT CAST(indexname AS TEXT) FROM pg_indexes WHERE tablename IN ('cases', 'case_history') ORDER BY indexname"
        }
    };
    let indexes = || sqlx::query_scalar::<_, String>(index_sql).fetch_all(&app.st.db.pool);
    let before = indexes().await.unwrap();
    assert!(before.len() > 8, "{before:?}");
    let s = Scale { streets: 4, communities: 30, grids: 257, units: 7, cases: 5_000 };
    if app.st.db.backend == linli::db::Backend::Sqlite {
        // Someone else has the database open (a running server): refused before anything is
        // written, so it can simply be run again once they are gone.
        let other = rusqlite::Connection::open(app.dir.join("linli.db")).unwrap();
        let _: i64 = other.query_row("SELECT COUNT(*) FROM nodes", [], |r| r.get(0)).unwrap();
        let e = generate(app.st.clone(), s, &|_, _, _| {}).await.unwrap_err();
        assert!(e.detail().contains("独占"), "{}", e.detail());
        drop(other);
        app.reopen().await;
        let roots: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM nodes WHERE code = '110000'").fetch_one(&app.st.db.pool).await.unwrap();
        assert_eq!(roots, 0);
    }
    // The postings there before are taken out for the load and merged back in its stream.
    let old_sql = "SELECT term, case_id FROM case_terms WHERE case_id IN (SELECT id FROM cases WHERE number NOT LIKE 'BJ-%') \
                   ORDER BY case_id, term";
    let old: Vec<(String, i64)> = sqlx::query_as(old_sql).fetch_all(&app.st.db.pool).await.unwrap();
    assert!(old.len() > 100, "the demo county's cases are searchable: {}", old.len());
    // Each stage reports up to its end, the cases before their postings.
    let reports = std::sync::Mutex::new(Vec::new());
    let rep = generate(app.st.clone(), s, &|stage, done, total| {
        assert!(done <= total);
        reports.lock().unwrap().push((stage, done, total));
    })
    .await
    .unwrap();
    let reports = reports.into_inner().unwrap();
    let split = reports.iter().position(|r| r.0 == Stage::Postings).expect("the postings are reported");
    assert!(split > 0 && reports[split..].iter().all(|r| r.0 == Stage::Postings), "{reports:?}");
    assert_eq!(reports[split - 1], (Stage::Cases, 5_000, 5_000), "{reports:?}");
    let (_, posted, postings) = *reports.last().unwrap();
    assert_eq!(posted, postings);
    // The load took the database for itself and closed the state's handle.
    assert!(app.st.db.pool.is_closed());
    app.reopen().await;
    let indexes = || sqlx::query_scalar::<_, String>(index_sql).fetch_all(&app.st.db.pool);
    if app.st.db.backend == linli::db::Backend::Sqlite {
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&app.st.db.pool).await.unwrap();
        assert_eq!(mode, "wal", "the database is back in WAL mode after the load");
        let broken: Vec<(String,)> = sqlx::query_as("PRAGMA foreign_key_check").fetch_all(&app.st.db.pool).await.unwrap();
        assert!(broken.is_empty(), "rows loaded without foreign-key lookups still match: {broken:?}");
    } else {
        // Planned on fresh statistics at once, not whenever autovacuum comes round.
        let unanalyzed: Vec<String> = sqlx::query_scalar(
            "SELECT CAST(relname AS TEXT) FROM pg_stat_user_tables WHERE relname IN ('cases', 'case_history', 'case_terms') \
             AND last_analyze IS NULL AND last_autoanalyze IS NULL",
        )
        .fetch_all(&app.st.db.pool)
        .await
        .unwrap();
        assert!(unanalyzed.is_empty(), "no statistics after the load: {unanalyzed:?}");
    }
    assert_eq!(indexes().await.unwrap(), before, "the indexes set aside for the load are back");
    // A load interrupted with its indexes set aside: the next start builds them again.
    assert!(linli::db::indexes::set_aside(&app.st.db, &["cases"]).await.unwrap() >= 6);
    assert!(indexes().await.unwrap().len() < before.len());
    assert!(linli::db::indexes::restore(&app.st.db).await.unwrap() >= 6);
    assert_eq!(indexes().await.unwrap(), before);
    assert_eq!(linli::db::indexes::restore(&app.st.db).await.unwrap(), 0, "nothing left pending");
    assert_eq!((rep.grids, rep.cases), (257, 5_000));
    assert!(rep.history >= 5_000 * 2 && rep.bytes_per_case > 0.0, "{rep:?}");
    let count = |kind: &str| {
        let sql = format!("SELECT COUNT(*) FROM nodes WHERE kind = '{kind}' AND path LIKE '/110000/%'");
        let pool = app.st.db.pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).fetch_one(&pool).await.unwrap() }
    };
    assert_eq!((count("street").await, count("community").await, count("grid").await), (4, 30, 257));
    // Each case's history ends in its status; the mix has every kind the issue names.
    let q = |sql: &'static str| {
        let pool = app.st.db.pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
    };
    let steps_loaded = q("SELECT COUNT(*) FROM case_history h JOIN cases c ON c.id = h.case_id WHERE c.number LIKE 'BJ-%'").await;
    assert_eq!(rep.history as i64, steps_loaded, "the report counts the steps written");
    let mismatched = q("SELECT COUNT(*) FROM cases c WHERE c.number LIKE 'BJ-%' AND c.status <> \
        (SELECT h.to_status FROM case_history h WHERE h.case_id = c.id ORDER BY h.id DESC LIMIT 1)")
    .await;
    assert_eq!(mismatched, 0);
    let steps = q("SELECT MIN(n) FROM (SELECT COUNT(*) AS n FROM case_history h JOIN cases c ON c.id = h.case_id \
        WHERE c.number LIKE 'BJ-%' AND c.status <> 'rejected' GROUP BY h.case_id) t")
    .await;
    assert!(steps >= 3, "{steps}");
    assert_eq!(q("SELECT COUNT(DISTINCT status) FROM cases WHERE number LIKE 'BJ-%'").await, 5);
    // Every generated case is found by its category's name.
    let unfound = q("SELECT COUNT(*) FROM cases c JOIN categories cat ON cat.id = c.category_id WHERE c.number LIKE 'BJ-%' \
        AND NOT EXISTS (SELECT 1 FROM case_terms t WHERE t.case_id = c.id)")
    .await;
    assert_eq!(unfound, 0);
    // Exactly its category's terms: every posting is one of them, and there are as many as
    // the cases' categories have terms (a posting's key is unique).
    let pairs: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT cat.name, t.term FROM case_terms t JOIN cases c ON c.id = t.case_id \
         JOIN categories cat ON cat.id = c.category_id WHERE c.number LIKE 'BJ-%'",
    )
    .fetch_all(&app.st.db.pool)
    .await
    .unwrap();
    for (name, term) in &pairs {
        assert!(linli::cases::search::doc_terms(name).contains(term), "{name}: {term}");
    }
    let per_cat: Vec<(String, i64)> = sqlx::query_as(
        "SELECT cat.name, COUNT(*) FROM cases c JOIN categories cat ON cat.id = c.category_id \
         WHERE c.number LIKE 'BJ-%' GROUP BY cat.name",
    )
    .fetch_all(&app.st.db.pool)
    .await
    .unwrap();
    let expected: u64 = per_cat.iter().map(|(name, n)| *n as u64 * linli::cases::search::doc_terms(name).len() as u64).sum();
    let loaded = q("SELECT COUNT(*) FROM case_terms t JOIN cases c ON c.id = t.case_id WHERE c.number LIKE 'BJ-%'").await;
    assert_eq!((loaded as u64, postings), (expected, expected + old.len() as u64));
    let back: Vec<(String, i64)> = sqlx::query_as(old_sql).fetch_all(&app.st.db.pool).await.unwrap();
    assert_eq!(back, old, "the postings there before are all back");
    for sql in [
        "SELECT COUNT(*) FROM cases WHERE number LIKE 'BJ-%' AND rework_count > 0",
        "SELECT COUNT(*) FROM cases WHERE number LIKE 'BJ-%' AND return_count > 0",
        "SELECT COUNT(*) FROM cases WHERE number LIKE 'BJ-%' AND finished_at > resolve_due",
        "SELECT COUNT(*) FROM cases WHERE number LIKE 'BJ-%' AND satisfaction = 'unsatisfied'",
    ] {
        assert!(q(sql).await > 10, "{sql}");
    }
    // Grids tile their communities: within, no overlaps (all pairs of one community).
    let fc = linli::tree::geometry::grid_polygons(&app.st.db, "/110000/").await.unwrap();
    for (i, a) in fc.iter().enumerate() {
        for b in fc.iter().skip(i + 1).filter(|b| b.community_code == a.community_code) {
            assert!(!linli::geo::overlaps(&a.polygon, &b.polygon), "{} / {}", a.code, b.code);
        }
    }
    // Points route to the new grids; rollups are exact; running it twice is refused.
    let c = fc[17].polygon.centroid();
    assert_eq!(app.st.grids.locate(c.lng, c.lat, linli::geo::Crs::Wgs84).unwrap().grid_code, fc[17].code);
    assert!(linli::cases::rollups::verify(&app.st.db).await.unwrap().is_empty());
    assert!(generate(app.st.clone(), s, &|_, _, _| {}).await.is_err());
    assert!(!app.st.db.pool.is_closed(), "refused before anything was closed");
    linli::auth::store::create_user(
        &app.st,
        None,
        &linli::audit::Actor::system("test"),
        linli::auth::store::NewUser {
            username: "beijing".into(),
            display_name: String::new(),
            role: linli::auth::Role::CountyAdmin,
            scope: "110000".into(),
            password: PW.into(),
            must_change: false,
        },
    )
    .await
    .unwrap();
    let t = app.login("beijing").await;
    let r = app.get("/api/v1/rates?level=street").bearer(&t).send().await;
    assert_eq!(r.status, StatusCode::OK);
    let rows = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 4);
    let total: i64 = rows.iter().map(|r| r["cases"].as_i64().unwrap()).sum();
    let counted: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cases WHERE number LIKE 'BJ-%' AND status <> 'rejected'")
        .fetch_one(&app.st.db.pool)
        .await
        .unwrap();
    assert_eq!(total, counted);
    // Big scopes count to the cap and say so; the page itself is exact.
    let l = app.get("/api/v1/cases?per_page=20").bearer(&t).send().await.json();
    assert_eq!(
        (l["total"].as_i64(), l["total_capped"].as_bool()),
        (Some(linli::db::list::COUNT_CAP), Some(true)),
        "{}",
        l["total"]
    );
    assert_eq!(l["items"].as_array().unwrap().len(), 20);
    // A big scope's pages walk the newest cases: exactly the ones an ORDER BY gives.
    let scope: String =
        sqlx::query_scalar("SELECT scope_path FROM users WHERE username = 'beijing'").fetch_one(&app.st.db.pool).await.unwrap();
    for page in [1, 3] {
        let l = app.get(&format!("/api/v1/cases?per_page=20&page={page}")).bearer(&t).send().await.json();
        let got: Vec<&str> = l["items"].as_array().unwrap().iter().map(|c| c["number"].as_str().unwrap()).collect();
        let want: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT number FROM cases WHERE node_path LIKE '{scope}%' ORDER BY id DESC LIMIT 20 OFFSET {}",
            (page - 1) * 20
        )))
        .fetch_all(&app.st.db.pool)
        .await
        .unwrap();
        assert_eq!(got, want, "page {page}");
    }
    let g = fc[3].code.clone();
    let q = app.get(&format!("/api/v1/cases?grid={g}")).bearer(&t).send().await.json();
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM cases WHERE grid_code = '{g}'")))
        .fetch_one(&app.st.db.pool)
        .await
        .unwrap();
    assert_eq!((q["total"].as_i64(), q["total_capped"].as_bool()), (Some(n), Some(false)));
    // Search at the new root: a category's name finds exactly its generated cases.
    let f =
        app.get(&format!("/api/v1/cases?q={}&per_page=20", linli::web::urlencode("下水道堵塞"))).bearer(&t).send().await.json();
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM cases c JOIN categories cat ON cat.id = c.category_id WHERE c.number LIKE 'BJ-%' AND cat.code = 'xsd'",
    )
    .fetch_one(&app.st.db.pool)
    .await
    .unwrap();
    assert!(n > 20 && f["total"].as_i64() == Some(n.min(linli::db::list::COUNT_CAP)), "{n} vs {}", f["total"]);
    assert!(f["items"].as_array().unwrap().iter().all(|c| c["category"] == "xsd"));
    // New cases after the generator get fresh ids (the PostgreSQL sequence was moved on).
    let staff = app.login("huahuaqiao").await;
    crate::cases::new_case(&app, &staff, "ldd", "生成之后").await;
    // A run that did not finish (killed, or stopped by a server opening the database) leaves
    // no record of its load and no rollups for it: the next run clears what it left and loads
    // the whole set again, instead of refusing for good.
    app.sql("DELETE FROM audit_log WHERE action = 'demo.scale'; DELETE FROM case_cube WHERE member LIKE '110000%'").await;
    let e = generate(app.st.clone(), s, &|_, _, _| {}).await.unwrap_err();
    assert!(e.detail().contains("没有完成") && e.detail().contains("--restart"), "{}", e.detail());
    linli::cases::megacity::clear_unfinished(&app.st.db).await.unwrap();
    generate(app.st.clone(), s, &|_, _, _| {}).await.unwrap();
    app.reopen().await;
    let n = |sql: &'static str| {
        let pool = app.st.db.pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
    };
    assert_eq!(n("SELECT COUNT(*) FROM cases WHERE number LIKE 'BJ-%'").await, 5_000);
    assert_eq!(n("SELECT COUNT(*) FROM nodes WHERE path LIKE '/110000/%' AND kind = 'grid'").await, 257);
    assert!(linli::cases::rollups::verify(&app.st.db).await.unwrap().is_empty());
}

both!(scale_generator, lookups_use_partial_indexes);

/// Columns that are mostly empty are indexed only where set (migration 7); a lookup by value
/// must still be served by those indexes on both engines, or a unit's queue would scan every
/// case. PostgreSQL is told to avoid sequential scans, as it would on a table this small.
async fn lookups_use_partial_indexes(app: TestApp) {
    use sqlx::Row;
    let db = &app.st.db;
    let mut conn = db.pool.acquire().await.unwrap();
    let sqlite = db.backend == linli::db::Backend::Sqlite;
    if !sqlite {
        sqlx::Executor::execute(&mut *conn, "SET enable_seqscan = off").await.unwrap();
    }
    for (sql, index) in [
        ("SELECT id FROM cases WHERE unit_id = 5", "cases_unit"),
        ("SELECT id FROM cases WHERE unit_id IN (5, 6) AND status = 'dispatched'", "cases_unit"),
        ("SELECT id FROM cases WHERE assignee_user_id = 7", "cases_assignee_user"),
        ("SELECT id FROM cases WHERE reporter_phone_bidx = 'x'", "cases_phone"),
        ("SELECT id FROM notifications WHERE user_id = 3 ORDER BY id DESC", "notifications_user"),
        ("SELECT id FROM notifications WHERE unit_id = 3 ORDER BY id DESC", "notifications_unit"),
    ] {
        let (explain, col) = if sqlite { ("EXPLAIN QUERY PLAN", "detail") } else { ("EXPLAIN", "QUERY PLAN") };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{explain} {sql}"))).fetch_all(&mut *conn).await.unwrap();
        let plan: Vec<String> = rows.iter().map(|r| r.try_get::<String, _>(col).unwrap()).collect();
        assert!(plan.iter().any(|l| l.contains(index)), "{sql}: {plan:?}");
    }
    if sqlite {
        // Postings are their key's B-tree alone.
        let ddl: String =
            sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = 'case_terms'").fetch_one(&mut *conn).await.unwrap();
        assert!(ddl.contains("WITHOUT ROWID"), "{ddl}");
    }
}
