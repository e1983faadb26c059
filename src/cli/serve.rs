//! `linli serve`: migrate, load the demo county on an empty database, serve HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use crate::app::{AppState, StartError, router};
use crate::config::Config;

/// Options of `serve`.
#[derive(clap::Args, Default)]
pub struct ServeArgs {
    /// 监听地址（默认 127.0.0.1:8080）
    #[arg(long, env = "LINLI_BIND")]
    pub bind: Option<String>,
    /// 不自动载入演示县
    #[arg(long)]
    pub no_demo: bool,
}

/// The demo password: `LINLI_DEMO_PASSWORD` if set, else a fresh random one.
pub fn demo_password() -> String {
    match std::env::var("LINLI_DEMO_PASSWORD") {
        Ok(p) if crate::auth::password::check_policy(&p).is_ok() => p,
        Ok(_) => {
            tracing::warn!("LINLI_DEMO_PASSWORD 不符合密码规则，演示账号改用随机密码（见下方）");
            crate::demo::random_password()
        }
        Err(_) => crate::demo::random_password(),
    }
}

/// Prints the demo accounts once, after loading.
pub fn print_demo_logins(pw: &str) {
    println!("\n已载入演示县「沿河土家族自治县」（520627）。演示账号（密码均为 {pw}，仅显示这一次）：");
    for (user, display, role, scope) in crate::demo::accounts() {
        println!("  {user:<12} {:<8} {display}（范围 {scope}）", role.label());
    }
    println!("忘记密码可执行：linli user reset-password 用户名 --password-stdin\n");
}

/// Runs the server until SIGINT/SIGTERM.
pub async fn serve(cfg: Config, args: ServeArgs) -> Result<(), StartError> {
    let bind = args
        .bind
        .clone()
        .or_else(|| std::env::var("LINLI_BIND").ok())
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let t0 = std::time::Instant::now();
    tracing::info!(config = ?cfg, "启动 linli");
    let st = AppState::open(cfg).await?;
    st.db.for_requests().await?;
    let t_open = t0.elapsed();
    if !args.no_demo && !crate::demo::is_loaded(&st).await? {
        let users = sqlx::query("SELECT COUNT(*) AS c FROM users").fetch_one(&st.db.pool).await?;
        if crate::db::get::<i64>(&users, "c")? == 0 {
            let pw = demo_password();
            crate::demo::load(&st, &pw).await.map_err(|e| e.detail())?;
            print_demo_logins(&pw);
        }
    }
    // Every case page, creation and step reads the categories: loaded before the first request.
    st.cats.get(&st.db).await.map_err(|e| e.detail())?;
    let listener = tokio::net::TcpListener::bind(&bind).await.map_err(|e| format!("无法监听 {bind}：{e}"))?;
    let addr = listener.local_addr()?;
    println!(
        "linli 已启动：http://{addr}  （启动耗时 {} ms，其中建库/迁移 {} ms）",
        t0.elapsed().as_millis(),
        t_open.as_millis()
    );
    tokio::spawn(crate::cases::jobs::worker(st.clone()));
    if st.db.backend == crate::db::Backend::Postgres {
        // Case pages are kept in memory while this listener hears every change (see db::cache).
        tokio::spawn(crate::db::cache::listen(st.db.case_cache.clone(), st.cfg.database_url(), st.db.pool.clone()));
    }
    let poll = st.clone();
    tokio::spawn(async move {
        // Other nodes may change grids, categories and tokens: poll the versions, reload when they move.
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if let Err(e) = poll.grids.refresh(&poll.db).await {
                tracing::warn!(error = %e, "刷新网格索引失败");
            }
            if let Err(e) = poll.cats.refresh(&poll.db).await {
                tracing::warn!(error = %e, "刷新事项类别失败");
            }
            if let Err(e) = poll.tokens.refresh(&poll.db).await {
                tracing::warn!(error = %e, "刷新令牌缓存失败");
            }
        }
    });
    let app = router(st.clone()).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown()).await?;
    st.db.close().await;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
