//! Application state and the router.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::audit::ChainKey;
use crate::auth::middleware::{BODY_LIMIT, authenticate};
use crate::config::Config;
use crate::db::Db;
use crate::privacy::Keyring;
use crate::tree::geometry::GridCache;

/// Error while starting up.
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// Everything a request handler, CLI command or job needs. One reference count to clone
/// (axum clones it for every request and every layer). Holds nothing that another node would
/// need to see: sessions, jobs and versions live in the database.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Shared {
    /// The database.
    pub db: Db,
    /// Settings.
    pub cfg: Arc<Config>,
    /// Personal-data keys.
    pub keyring: Arc<Keyring>,
    /// Audit chain key (derived from the key file).
    pub chain: ChainKey,
    /// Point → grid index.
    pub grids: GridCache,
    /// The categories, in memory.
    pub cats: crate::cases::categories::CategoryCache,
    /// Who tokens belong to, remembered for a few seconds.
    pub tokens: crate::auth::cache::TokenCache,
    /// Request counters for /metrics.
    pub metrics: Arc<Metrics>,
    /// The Content-Security-Policy header value (depends on the tile server setting).
    pub csp: HeaderValue,
    /// Migrations this process applied when it opened the database (for `linli migrate`).
    pub migrated: usize,
}

impl AppState {
    /// Connects, migrates, loads the keys and builds the grid index.
    pub async fn open(cfg: Config) -> Result<AppState, StartError> {
        let db = Db::connect(&cfg.database_url()).await.map_err(start_error)?;
        let migrated = crate::db::migrate(&db).await.map_err(start_error)?;
        crate::db::indexes::restore(&db).await?;
        if !cfg.key_file().exists() {
            // A database that already holds data was written under another key: a new one
            // would leave its personal data unreadable and its audit chain unverifiable, and
            // mix two keys in one database from then on. Asked before any key is made.
            let used: i64 = sqlx::query_scalar(
                "SELECT CASE WHEN EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM audit_log) THEN 1 ELSE 0 END",
            )
            .fetch_one(&db.pool)
            .await?;
            if used > 0 {
                return Err(format!(
                    "找不到密钥文件 {}，而数据库中已有数据：请放回与该数据库一起备份的密钥文件（或用 --key-file 指明）。新密钥无法解密已有的个人信息，审计链也无法校验",
                    cfg.key_file().display()
                )
                .into());
            }
        }
        let (keyring, created) = Keyring::load_or_create(&cfg.key_file())?;
        if created {
            tracing::warn!(path = %cfg.key_file().display(), "已生成新的个人信息加密密钥文件，请妥善备份（丢失后加密数据无法恢复）");
        }
        let chain = ChainKey(keyring.blind_index("audit.chain", "v1").into_bytes());
        check_key(&db, &keyring, &chain, &cfg.key_file()).await?;
        let csp = HeaderValue::from_str(&cfg.csp()).map_err(|_| "地图瓦片地址含有非法字符")?;
        let st = AppState(Arc::new(Shared {
            csp,
            db,
            cfg: Arc::new(cfg),
            keyring: Arc::new(keyring),
            chain,
            grids: GridCache::default(),
            cats: Default::default(),
            tokens: Default::default(),
            metrics: Arc::default(),
            migrated,
        }));
        st.grids.refresh(&st.db).await?;
        Ok(st)
    }
}

/// Refuses a key file that is not the database's. Each database keeps a fingerprint of its key
/// (recorded by the first process to open it with one): a node or a command started with
/// another install's key would write personal data the others cannot read and audit entries
/// that break the chain for good.
async fn check_key(db: &Db, keyring: &Keyring, chain: &ChainKey, path: &std::path::Path) -> Result<(), StartError> {
    let fp = keyring.blind_index("key.fingerprint", "v1");
    let kept: Option<String> =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'key_fingerprint'").fetch_optional(&db.pool).await?;
    // No fingerprint yet (a database from before they were kept): the key is recorded only if
    // the audit log was written with it, so a stray process with another install's key cannot
    // be the one to set it.
    let kept = match kept {
        Some(kept) => kept,
        None => {
            if !crate::audit::key_fits(db, chain).await.map_err(|e| e.detail())? {
                return Err(format!(
                    "密钥文件 {} 与数据库不匹配：数据库中的审计记录不是用它签名的。请使用与该数据库一起部署或备份的密钥文件（或用 --key-file 指明）",
                    path.display()
                )
                .into());
            }
            // Two processes starting at once with different keys: the first to record wins,
            // the other reads its fingerprint back and stops.
            sqlx::query("INSERT INTO settings (key, value) VALUES ('key_fingerprint', $1) ON CONFLICT (key) DO NOTHING")
                .bind(&fp)
                .execute(&db.pool)
                .await?;
            sqlx::query_scalar("SELECT value FROM settings WHERE key = 'key_fingerprint'").fetch_one(&db.pool).await?
        }
    };
    if kept != fp {
        return Err(format!(
            "密钥文件 {} 与数据库不匹配：该数据库由另一个密钥文件写入。请使用与该数据库一起部署或备份的密钥文件（或用 --key-file 指明）。用错的密钥写入的个人信息无法解密，审计链也会被破坏",
            path.display()
        )
        .into());
    }
    Ok(())
}

/// A storage error at start-up, for the operator: our own explanations without sqlx's
/// English "error with configuration:" before them.
fn start_error(e: sqlx::Error) -> StartError {
    match e {
        sqlx::Error::Configuration(m) => m.to_string().into(),
        e => Box::new(e),
    }
}

/// Counters exported at /metrics in the Prometheus text format.
#[derive(Default, Debug)]
pub struct Metrics {
    requests: AtomicU64,
    client_errors: AtomicU64,
    server_errors: AtomicU64,
    micros: AtomicU64,
}

impl Metrics {
    /// Renders the counters.
    pub fn render(&self, grids: usize, db: &crate::db::Db) -> String {
        let (logical, physical) = db.write_stats();
        let overflows = db.read_overflows();
        let syncs = db.wal_syncs();
        let waiting = db.writer_waiting();
        let (hits, misses) = db.case_cache.stats();
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "# HELP linli_http_requests_total HTTP requests served.\n# TYPE linli_http_requests_total counter\nlinli_http_requests_total {}\n\
             # HELP linli_http_client_errors_total 4xx responses.\n# TYPE linli_http_client_errors_total counter\nlinli_http_client_errors_total {}\n\
             # HELP linli_http_server_errors_total 5xx responses.\n# TYPE linli_http_server_errors_total counter\nlinli_http_server_errors_total {}\n\
             # HELP linli_http_request_seconds_total Time spent serving requests.\n# TYPE linli_http_request_seconds_total counter\nlinli_http_request_seconds_total {:.6}\n\
             # HELP linli_grid_index_size Grids in the point lookup index.\n# TYPE linli_grid_index_size gauge\nlinli_grid_index_size {grids}\n\
             # HELP linli_db_write_transactions_total Write transactions committed.\n# TYPE linli_db_write_transactions_total counter\nlinli_db_write_transactions_total {logical}\n\
             # HELP linli_db_commits_total Physical commits (group commit carries several transactions each).\n# TYPE linli_db_commits_total counter\nlinli_db_commits_total {physical}\n\
             # HELP linli_db_wal_syncs_total SQLite WAL fsyncs (each makes every commit before it durable).\n# TYPE linli_db_wal_syncs_total counter\nlinli_db_wal_syncs_total {syncs}\n\
             # HELP linli_db_read_overflows_total In-place SQLite reads over budget, run again on the pool.\n# TYPE linli_db_read_overflows_total counter\nlinli_db_read_overflows_total {overflows}\n\
             # HELP linli_db_writer_waiting Write transactions waiting for the writer.\n# TYPE linli_db_writer_waiting gauge\nlinli_db_writer_waiting {waiting}\n\
             # HELP linli_case_cache_hits_total Case pages and lists served from memory (PostgreSQL).\n# TYPE linli_case_cache_hits_total counter\nlinli_case_cache_hits_total {hits}\n\
             # HELP linli_case_cache_misses_total Case pages and lists read from the database while the cache was on.\n# TYPE linli_case_cache_misses_total counter\nlinli_case_cache_misses_total {misses}\n",
            g(&self.requests),
            g(&self.client_errors),
            g(&self.server_errors),
            g(&self.micros) as f64 / 1e6,
        )
    }
}

async fn count_and_harden(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let t = std::time::Instant::now();
    let mut resp = next.run(req).await;
    let m = &st.metrics;
    m.requests.fetch_add(1, Ordering::Relaxed);
    m.micros.fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
    let s = resp.status();
    if s.is_client_error() {
        m.client_errors.fetch_add(1, Ordering::Relaxed);
    } else if s.is_server_error() {
        m.server_errors.fetch_add(1, Ordering::Relaxed);
    }
    let h = resp.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::CONTENT_SECURITY_POLICY, st.csp.clone());
    // Pages and answers hold personal data: a shared office PC's browser must not keep them
    // after logout. What may be kept (assets) says so itself.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if st.cfg.secure_cookies() {
        let cookies: Vec<HeaderValue> = h.get_all(header::SET_COOKIE).iter().cloned().collect();
        if !cookies.is_empty() {
            h.remove(header::SET_COOKIE);
            for c in cookies {
                let s = c.to_str().unwrap_or_default();
                let secure =
                    if s.contains("; Secure") { c.clone() } else { HeaderValue::from_str(&format!("{s}; Secure")).unwrap_or(c) };
                h.append(header::SET_COOKIE, secure);
            }
        }
    }
    resp
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(st): State<AppState>) -> Response {
    if st.db.ping().await {
        "ready".into_response()
    } else {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "数据库不可用").into_response()
    }
}

async fn metrics(State(st): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(want) = st.cfg.metrics_token.as_deref().filter(|t| !t.is_empty()) {
        let sent = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        if !sent.is_some_and(|s| crate::auth::middleware::constant_eq(s.trim(), want)) {
            return crate::error::AppError::Unauthorized.into_response();
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], st.metrics.render(st.grids.index().len(), &st.db)).into_response()
}

/// Builds the whole router: pages, `/api/v1`, OpenAPI, health and metrics.
pub fn router(st: AppState) -> Router {
    let pages = crate::web::pages::routes()
        .merge(crate::auth::routes::pages())
        .merge(crate::tree::routes::pages())
        .merge(crate::people::routes::pages())
        .merge(crate::audit::routes::pages())
        .merge(crate::cases::pages::routes())
        .merge(crate::cases::admin::routes())
        .merge(crate::cases::h5::routes())
        .merge(crate::cases::h5::qr_routes())
        .merge(crate::registers::routes::pages())
        .layer(from_fn(crate::web::framework_errors))
        .layer(from_fn(crate::web::html_errors));
    let api = crate::auth::routes::api()
        .merge(crate::tree::routes::api())
        .merge(crate::people::routes::api())
        .merge(crate::audit::routes::api())
        .merge(crate::cases::routes::api())
        .merge(crate::registers::routes::api())
        .merge(crate::web::pages::api())
        .layer(from_fn(crate::web::framework_errors));
    Router::new()
        .merge(pages)
        .nest("/api/v1", api)
        .merge(crate::open311::routes())
        .route("/api/openapi.json", get(crate::openapi::document))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/assets/{name}", get(crate::web::asset))
        .fallback(|uri: axum::http::Uri| async move {
            // A person's browser gets the page, a program the JSON.
            let path = uri.path();
            let mut r = if path.starts_with("/api/") || path.starts_with("/open311/") {
                crate::error::AppError::NotFound.into_response()
            } else {
                crate::web::not_found_page(path)
            };
            // Marked so tests can tell "no such route" from "no such record".
            r.headers_mut().insert("x-linli-no-route", HeaderValue::from_static("1"));
            r
        })
        .layer(from_fn(crate::web::control::refuse_controls))
        .layer(from_fn_with_state(st.clone(), authenticate))
        .layer(from_fn_with_state(st.clone(), count_and_harden))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(st)
}
