//! Typed settings from command-line flags and `LINLI_*` environment variables.

use std::path::PathBuf;

/// Settings shared by every subcommand.
#[derive(clap::Args, Clone)]
pub struct Config {
    /// 数据库地址：sqlite://文件路径 或 postgres://用户@主机/库名（默认：数据目录下的 linli.db）
    #[arg(long, env = "LINLI_DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// 数据目录（SQLite 文件、密钥文件、上传文件）
    #[arg(long, env = "LINLI_DATA_DIR", default_value = "./linli-data", global = true)]
    pub data_dir: PathBuf,

    /// 个人信息加密密钥文件（默认：数据目录下的 linli.key；首次启动自动生成）
    #[arg(long, env = "LINLI_KEY_FILE", global = true)]
    pub key_file: Option<PathBuf>,

    /// 会话空闲超时（秒，60～86400）
    #[arg(long, env = "LINLI_IDLE_TIMEOUT", default_value_t = 1800, global = true, value_parser = clap::value_parser!(i64).range(60..=86_400))]
    pub idle_timeout_secs: i64,

    /// 会话绝对超时（秒，300～604800）
    #[arg(long, env = "LINLI_ABSOLUTE_TIMEOUT", default_value_t = 43200, global = true, value_parser = clap::value_parser!(i64).range(300..=604_800))]
    pub absolute_timeout_secs: i64,

    /// 连续登录失败多少次后锁定账号（1～100）
    #[arg(long, env = "LINLI_LOCKOUT_THRESHOLD", default_value_t = 5, global = true, value_parser = clap::value_parser!(i64).range(1..=100))]
    pub lockout_threshold: i64,

    /// 账号锁定时长（秒，1～604800）
    #[arg(long, env = "LINLI_LOCKOUT_SECS", default_value_t = 900, global = true, value_parser = clap::value_parser!(i64).range(1..=604_800))]
    pub lockout_secs: i64,

    /// 同一来源地址在 15 分钟内允许的登录失败次数（一个办公室可能共用一个地址）
    #[arg(long, env = "LINLI_IP_THROTTLE", default_value_t = 50, global = true, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub ip_throttle: i64,

    /// 内网瓦片地图服务地址（XYZ，如天地图内网服务：http://主机/{z}/{x}/{y}.png），默认不启用
    #[arg(long, env = "LINLI_MAP_TILE_URL", global = true)]
    pub map_tile_url: Option<String>,

    /// 对外访问地址（如 https://linli.example.gov.cn）：网格二维码与海报用它；以 https:// 开头时
    /// Cookie 带 Secure（TLS 在前置代理终止时）。不设置时用请求的 Host
    #[arg(long, env = "LINLI_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// 访问 /metrics 需携带的令牌（Authorization: Bearer …）；不设置时 /metrics 公开（仅限内网时）
    #[arg(long, env = "LINLI_METRICS_TOKEN", global = true)]
    pub metrics_token: Option<String>,

    /// 允许推送地址指向本机（网关与 linli 装在同一台机器时）；默认不允许
    #[arg(long, env = "LINLI_WEBHOOK_ALLOW_LOOPBACK", default_value_t = false, global = true)]
    pub webhook_allow_loopback: bool,

    /// 可信的前置代理或负载均衡地址（逗号分隔，如 10.0.0.5,10.0.0.6）：来自它们的请求按
    /// X-Forwarded-For 认定访问者地址（用于登录限流、查询限流和审计日志）；默认不信任任何代理
    #[arg(long, env = "LINLI_TRUSTED_PROXIES", value_delimiter = ',', global = true)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Config {
    /// The configured public address, without a trailing slash, if it is an http(s) URL.
    pub fn public_url(&self) -> Option<&str> {
        let u = self.public_url.as_deref()?.trim().trim_end_matches('/');
        let ok = (u.starts_with("http://") || u.starts_with("https://")) && u.chars().all(|c| c.is_ascii_graphic());
        ok.then_some(u)
    }

    /// Whether cookies carry `Secure`: the public address is https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url().is_some_and(|u| u.starts_with("https://"))
    }

    /// The database URL, defaulting to an SQLite file in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) if !u.trim().is_empty() => u.clone(),
            _ => format!("sqlite://{}", self.data_dir.join("linli.db").display()),
        }
    }
    /// The configured tile URL template, if any.
    pub fn tile_url(&self) -> Option<&str> {
        self.map_tile_url.as_deref().map(str::trim).filter(|u| u.starts_with("http://") || u.starts_with("https://"))
    }

    /// The Content-Security-Policy: our own origin only, plus the tile server's when configured.
    pub fn csp(&self) -> String {
        let tiles = self.tile_url().map(|u| u.splitn(4, '/').take(3).collect::<Vec<_>>().join("/")).unwrap_or_default();
        format!(
            "default-src 'self'; img-src 'self' data: {tiles}; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'"
        )
    }

    /// The key file path.
    pub fn key_file(&self) -> PathBuf {
        self.key_file.clone().unwrap_or_else(|| self.data_dir.join("linli.key"))
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &crate::db::redact_url(&self.database_url()))
            .field("data_dir", &self.data_dir)
            .field("key_file", &self.key_file())
            .field("idle_timeout_secs", &self.idle_timeout_secs)
            .field("absolute_timeout_secs", &self.absolute_timeout_secs)
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: None,
            data_dir: "./linli-data".into(),
            key_file: None,
            idle_timeout_secs: 1800,
            absolute_timeout_secs: 43200,
            lockout_threshold: 5,
            lockout_secs: 900,
            ip_throttle: 50,
            map_tile_url: None,
            public_url: None,
            metrics_token: None,
            webhook_allow_loopback: false,
            trusted_proxies: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_allows_only_the_configured_tile_origin() {
        let mut c = Config::default();
        assert!(c.csp().contains("img-src 'self' data: ;"));
        c.map_tile_url = Some("http://tiles.gov.intranet:8081/{z}/{x}/{y}.png".into());
        assert!(c.csp().contains("img-src 'self' data: http://tiles.gov.intranet:8081;"));
        c.map_tile_url = Some("javascript:alert(1)".into());
        assert_eq!(c.tile_url(), None);
    }

    #[test]
    fn debug_hides_the_database_password() {
        let c = Config { database_url: Some("postgres://linli:s3cret@db/linli".into()), ..Config::default() };
        let d = format!("{c:?}");
        assert!(!d.contains("s3cret") && d.contains("***"));
    }
}
