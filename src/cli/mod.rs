//! The `linli` command line: one binary, many subcommands, help in Chinese.

mod serve;

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::AppState;
use crate::audit::Actor;
use crate::auth::Role;
use crate::auth::store::{self, NewUser, UserAction};
use crate::config::Config;

const HELP: &str = "{about}\n\n用法：{usage}\n\n{all-args}";

/// 邻里 linli —— 城市基层党建综合体平台（组织、服务、发展、治理、保障五大体系）
#[derive(Parser)]
#[command(name = "linli", version, help_template = HELP, disable_help_subcommand = true, disable_help_flag = true, disable_version_flag = true,
          next_help_heading = "选项", subcommand_help_heading = "命令", subcommand_value_name = "命令")]
pub struct Cli {
    #[command(flatten)]
    cfg: Config,
    /// 显示帮助
    #[arg(short = 'h', long = "help", action = clap::ArgAction::Help, global = true)]
    help: Option<bool>,
    /// 显示版本
    #[arg(short = 'V', long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// 启动网页服务（默认命令）；数据目录为空时自动建库并载入演示县
    #[command(help_template = HELP)]
    Serve(serve::ServeArgs),
    /// 执行数据库迁移
    #[command(help_template = HELP)]
    Migrate,
    /// 载入或重置演示县（沿河土家族自治县）
    #[command(help_template = HELP)]
    Demo {
        /// 先清除已有演示数据再重新载入
        #[arg(long)]
        reset: bool,
        /// 生成规模数据：megacity（北京规模：343 个街道、约 7000 个社区、约 60000 个网格，根节点 110000）
        #[arg(long)]
        scale: Option<String>,
        /// 规模数据的事项数
        #[arg(long, default_value_t = 25_000_000)]
        cases: u64,
        /// 先清除上次没有完成的规模数据再生成（确认没有别的生成正在运行）
        #[arg(long)]
        restart: bool,
    },
    /// 账号管理
    #[command(help_template = HELP, subcommand_help_heading = "命令", subcommand_value_name = "命令")]
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// 区域节点（正式部署时先用它建立县级节点）
    #[command(help_template = HELP, subcommand_help_heading = "命令", subcommand_value_name = "命令")]
    Node {
        #[command(subcommand)]
        cmd: NodeCmd,
    },
    /// 从 Excel 导入台账（全部通过校验才写入）
    #[command(help_template = HELP)]
    Import {
        /// 台账名称，如 community_workers（见 /api/v1/registers）
        register: String,
        /// xlsx 文件
        file: std::path::PathBuf,
        /// 只检查，不写入
        #[arg(long)]
        dry_run: bool,
    },
    /// 导出台账为 Excel
    #[command(help_template = HELP)]
    Export {
        /// 台账名称
        register: String,
        /// 输出的 xlsx 文件
        file: std::path::PathBuf,
    },
    /// 办理情况统计（增量汇总）
    #[command(help_template = HELP, subcommand_help_heading = "命令", subcommand_value_name = "命令")]
    Rollups {
        #[command(subcommand)]
        cmd: RollupsCmd,
    },
    /// 在线备份 SQLite 数据库（服务运行中也可执行，得到一致的副本）
    #[command(help_template = HELP)]
    Backup {
        /// 备份文件路径（不可已存在）
        file: std::path::PathBuf,
    },
    /// 审计日志
    #[command(help_template = HELP, subcommand_help_heading = "命令", subcommand_value_name = "命令")]
    Audit {
        #[command(subcommand)]
        cmd: AuditCmd,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// 新建账号
    #[command(help_template = HELP)]
    Add {
        /// 用户名
        name: String,
        /// 角色：county_admin street_admin community_staff grid_worker unit_contact party_member resident
        #[arg(long)]
        role: String,
        /// 管辖范围（区域节点编码，如 520627）
        #[arg(long)]
        scope: String,
        /// 显示名称
        #[arg(long, default_value = "")]
        display_name: String,
        /// 从标准输入读取密码
        #[arg(long)]
        password_stdin: bool,
    },
    /// 列出账号
    #[command(help_template = HELP)]
    List,
    /// 重置密码（下次登录须修改）
    #[command(help_template = HELP)]
    ResetPassword {
        /// 用户名
        name: String,
        /// 从标准输入读取新密码
        #[arg(long)]
        password_stdin: bool,
    },
    /// 锁定账号
    #[command(help_template = HELP)]
    Lock {
        /// 用户名
        name: String,
    },
    /// 解锁账号
    #[command(help_template = HELP)]
    Unlock {
        /// 用户名
        name: String,
    },
    /// 签发个人访问令牌（以 Authorization: Bearer 发送）
    #[command(help_template = HELP)]
    Token {
        /// 用户名
        name: String,
        /// 令牌名称
        #[arg(long, default_value = "cli")]
        label: String,
        /// 有效天数（默认 180，最多 3650）
        #[arg(long)]
        days: Option<i64>,
    },
}

#[derive(Subcommand)]
enum NodeCmd {
    /// 新建节点，如：linli node add --kind county --code 520627 --name 沿河土家族自治县
    #[command(help_template = HELP)]
    Add {
        /// 类型：county street community grid compound building site
        #[arg(long)]
        kind: String,
        /// 编码
        #[arg(long)]
        code: String,
        /// 名称
        #[arg(long)]
        name: String,
        /// 上级节点编码（县级节点不填）
        #[arg(long, default_value = "")]
        parent: String,
    },
}

#[derive(Subcommand)]
enum RollupsCmd {
    /// 从事项重新统计并与增量汇总比对，列出不一致之处
    #[command(help_template = HELP)]
    Verify,
    /// 从事项重建增量汇总
    #[command(help_template = HELP)]
    Rebuild,
}

#[derive(Subcommand)]
enum AuditCmd {
    /// 校验整条哈希链，指出第一条被改动、删除或插入的记录
    #[command(help_template = HELP)]
    Verify,
}

fn read_password(stdin: bool) -> Result<String, String> {
    if !stdin {
        return Err("请用 --password-stdin 从标准输入提供密码".into());
    }
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).map_err(|e| format!("读取标准输入失败：{e}"))?;
    Ok(s.trim_end_matches(['\n', '\r']).to_string())
}

/// Entry point used by `main`.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    if !matches!(cli.cmd, None | Some(Cmd::Serve(_))) {
        quiet_broken_pipe();
    }
    crate::logging::init();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("无法启动运行时：{e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("错误：{e}");
            ExitCode::FAILURE
        }
    }
}

/// A command's output piped into `head` ends quietly when the reader goes: printing to the
/// closed pipe panicked in English. SIGPIPE itself stays ignored, so a database connection
/// over a Unix socket that the server closed is an error to recover from, not a silent death.
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// Tells what was wrong with the command line in Chinese (clap's own messages are English);
/// help and version print as they are.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ErrorKind};
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        _ => {}
    }
    let ctx = |k: ContextKind| e.get(k).map(|v| v.to_string()).unwrap_or_default();
    let (arg, value) = (ctx(ContextKind::InvalidArg), ctx(ContextKind::InvalidValue));
    let what = match e.kind() {
        ErrorKind::UnknownArgument => format!("未知的参数 {arg}"),
        ErrorKind::InvalidSubcommand => format!("未知的子命令 {}", ctx(ContextKind::InvalidSubcommand)),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => format!("参数 {arg} 的值「{value}」无效"),
        ErrorKind::MissingRequiredArgument => format!("缺少必需的参数 {arg}"),
        ErrorKind::MissingSubcommand => "缺少子命令".into(),
        ErrorKind::ArgumentConflict => format!("参数 {arg} 不能与其他参数同时使用"),
        ErrorKind::TooManyValues | ErrorKind::TooFewValues | ErrorKind::WrongNumberOfValues => format!("参数 {arg} 的值个数不对"),
        _ => "命令行参数有误".into(),
    };
    eprintln!("错误：{what}（用法见 linli --help，或 linli 子命令 --help）");
    ExitCode::from(2)
}

async fn dispatch(cli: Cli) -> Result<ExitCode, String> {
    let cfg = cli.cfg;
    let cmd = cli.cmd.unwrap_or(Cmd::Serve(serve::ServeArgs::default()));
    if let Cmd::Serve(args) = cmd {
        return serve::serve(cfg, args).await.map(|_| ExitCode::SUCCESS).map_err(|e| e.to_string());
    }
    // Commands that read or check what is there would, on a SQLite file that is not there,
    // create an empty database and a key, and report on that: a mistyped --data-dir passing
    // `audit verify`. An import too: it made a database and a key file, then failed for want
    // of a county.
    if matches!(
        cmd,
        Cmd::User { .. } | Cmd::Import { .. } | Cmd::Export { .. } | Cmd::Rollups { .. } | Cmd::Backup { .. } | Cmd::Audit { .. }
    ) && let Some(file) = crate::db::sqlite_file(&cfg.database_url()).filter(|f| !f.exists())
    {
        return Err(format!("数据库文件 {} 不存在：请检查 --data-dir 或 --database-url", file.display()));
    }
    let st = AppState::open(cfg).await.map_err(|e| e.to_string())?;
    // Operators at the console see the internal detail that web users are spared.
    let err = |e: crate::error::AppError| e.detail();
    let code = match cmd {
        Cmd::Serve(_) => unreachable!("handled above"),
        Cmd::Migrate => {
            // Opening the state already migrated; say what that did.
            match st.migrated {
                0 => println!("数据库已是最新（版本 {}）", crate::db::migrate::latest_version()),
                n => println!("已执行 {n} 个迁移，数据库现为版本 {}", crate::db::migrate::latest_version()),
            }
            ExitCode::SUCCESS
        }
        Cmd::Demo { scale: Some(scale), cases, restart, .. } => {
            if scale != "megacity" {
                return Err(format!("未知的规模 {scale}（可选：megacity）"));
            }
            if restart {
                crate::cases::megacity::clear_unfinished(&st.db).await.map_err(err)?;
            }
            if !crate::demo::is_loaded(&st).await.map_err(err)? {
                let pw = serve::demo_password();
                crate::demo::load(&st, &pw).await.map_err(err)?;
                serve::print_demo_logins(&pw);
            }
            use crate::cases::megacity::Stage;
            // Each stage on a line of its own, its rate counted from the previous stage's end.
            let now = std::time::Instant::now();
            let started = std::sync::Mutex::new((Stage::Cases, now, now));
            let progress = move |stage: Stage, done: u64, total: u64| {
                use std::io::Write;
                let mut at = started.lock().unwrap_or_else(|e| e.into_inner());
                if at.0 != stage {
                    *at = (stage, at.2, at.2);
                    eprintln!();
                }
                at.2 = std::time::Instant::now();
                let (what, unit) = match stage {
                    Stage::Cases => ("事项", "件"),
                    Stage::Postings => ("检索词", "条"),
                };
                let rate = done as f64 / at.1.elapsed().as_secs_f64().max(1e-9);
                let eta = (total - done) as f64 / rate.max(1e-9);
                let width = 30;
                let filled = ((done * width) / total.max(1)) as usize;
                eprint!(
                    "\r{what} [{}{}] {done}/{total}  {rate:.0} {unit}/秒  预计剩余 {eta:.0} 秒",
                    "#".repeat(filled),
                    "-".repeat(width as usize - filled)
                );
                let _ = std::io::stderr().flush();
            };
            st.db.expect_long_statements();
            let rep = crate::cases::megacity::generate(st.clone(), crate::cases::megacity::Scale::megacity(cases), &progress)
                .await
                .map_err(err)?;
            eprintln!();
            println!(
                "规模数据已生成：{} 个网格，{} 件事项（{} 条办理记录），写入 {:.0} 件/秒，另用 {:.0} 秒统计汇总和建索引，每件约占 {:.0} 字节",
                rep.grids, rep.cases, rep.history, rep.cases_per_second, rep.finish_seconds, rep.bytes_per_case
            );
            ExitCode::SUCCESS
        }
        Cmd::Demo { reset, .. } => {
            if reset && crate::demo::is_loaded(&st).await.map_err(err)? {
                crate::demo::reset(&st).await.map_err(err)?;
            }
            let pw = serve::demo_password();
            crate::demo::load(&st, &pw).await.map_err(err)?;
            serve::print_demo_logins(&pw);
            ExitCode::SUCCESS
        }
        Cmd::User { cmd } => user(&st, cmd).await.map_err(err)?,
        Cmd::Node { cmd: NodeCmd::Add { kind, code, name, parent } } => {
            let input = crate::tree::store::NodeInput { kind, code, name, parent, ..Default::default() };
            let n = crate::tree::store::create(&st, &crate::auth::Principal::system("cli"), &input, false).await.map_err(err)?;
            println!("已新建{}「{}」（{}）", n.kind.label(), n.name, n.code);
            ExitCode::SUCCESS
        }
        Cmd::Import { register, file, dry_run } => {
            let reg = crate::registers::catalog::find(&register).ok_or_else(|| format!("没有名为 {register} 的台账"))?;
            let bytes = std::fs::read(&file).map_err(|e| format!("无法读取 {}：{}", file.display(), read_zh(&e)))?;
            let county = county_principal(&st).await?;
            let progress = |done: usize, total: usize| {
                use std::io::Write;
                let width = 30;
                let filled = (done * width).checked_div(total).unwrap_or(width);
                eprint!("\r校验 [{}{}] {done}/{total}", "#".repeat(filled), "-".repeat(width - filled));
                let _ = std::io::stderr().flush();
            };
            let rep = crate::registers::xlsx::import(&st, &county, reg, &bytes, dry_run, &progress).await.map_err(err)?;
            eprintln!();
            for e in &rep.errors {
                println!("第 {} 行「{}」：{}", e.row, e.column, e.message);
            }
            match (rep.ok, dry_run) {
                (true, true) => println!("试导入通过：{} 行全部有效，未写入", rep.valid_rows),
                (true, false) => println!("已导入 {} 行到「{}」", rep.created, reg.title),
                (false, _) => println!("发现 {} 处问题，未写入任何数据", rep.errors.len()),
            }
            if rep.ok { ExitCode::SUCCESS } else { ExitCode::from(3) }
        }
        Cmd::Export { register, file } => {
            let reg = crate::registers::catalog::find(&register).ok_or_else(|| format!("没有名为 {register} 的台账"))?;
            let county = county_principal(&st).await?;
            // The file is opened first: an export is audited as made, and one that could not
            // be written was not.
            let mut out = std::fs::File::create(&file).map_err(|e| format!("无法写入 {}：{}", file.display(), io_zh(&e)))?;
            let bytes = crate::registers::xlsx::export(&st, &county, reg, &Default::default()).await.map_err(err)?;
            std::io::Write::write_all(&mut out, &bytes).map_err(|e| format!("无法写入 {}：{}", file.display(), io_zh(&e)))?;
            println!("已导出「{}」到 {}", reg.title, file.display());
            ExitCode::SUCCESS
        }
        Cmd::Rollups { cmd: RollupsCmd::Verify } => {
            let diff = crate::cases::rollups::verify(&st.db).await.map_err(err)?;
            for d in diff.iter().take(20) {
                println!("不一致：{}：{}", d.what, d.changes());
            }
            if diff.is_empty() {
                println!("增量汇总与逐件重新统计一致");
                ExitCode::SUCCESS
            } else {
                println!("共 {} 处不一致，可执行 linli rollups rebuild 重建", diff.len());
                ExitCode::from(2)
            }
        }
        Cmd::Rollups { cmd: RollupsCmd::Rebuild } => {
            st.db.expect_long_statements();
            let n = crate::cases::rollups::rebuild(&st.db).await.map_err(err)?;
            println!("已重建增量汇总：{n} 行");
            ExitCode::SUCCESS
        }
        Cmd::Backup { file } => {
            if file.exists() {
                return Err(format!("{} 已存在，不会覆盖", file.display()));
            }
            st.db.backup_to(&file).await.map_err(|e| match e {
                sqlx::Error::Configuration(m) => m.to_string(),
                e => format!("备份失败：{e}"),
            })?;
            println!("已备份到 {}", file.display());
            let summary = format!("在线备份数据库到 {}", file.display());
            // Shown to the county's admins (a database without a county yet: to nobody's scope).
            let path = county_principal(&st).await.map(|p| p.scope_path).unwrap_or_else(|_| "/".into());
            let ev = crate::audit::Event {
                action: "database.backup",
                entity: "database",
                entity_id: "-",
                node_path: &path,
                summary: &summary,
            };
            crate::audit::record(&st.db, &st.chain, &Actor::system("cli"), ev).await.map_err(err)?;
            // Photos live as files beside the database; copied after it, they include every
            // photo its snapshot names (a photo is written before the step that names it).
            let photos = st.cfg.data_dir.join("photos");
            if photos.is_dir() {
                let to = std::path::PathBuf::from(format!("{}.photos", file.display()));
                let n = tokio::task::spawn_blocking({
                    let to = to.clone();
                    move || copy_tree(&photos, &to)
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("照片复制失败：{e}"))?;
                println!("照片 {n} 张已复制到 {}（恢复时放回数据目录下的 photos/）", to.display());
            }
            ExitCode::SUCCESS
        }
        Cmd::Audit { cmd: AuditCmd::Verify } => {
            let v = crate::audit::verify(&st.db, &st.chain).await.map_err(err)?;
            if v.ok {
                println!("审计日志完整：共 {} 条，哈希链校验通过", v.checked);
                ExitCode::SUCCESS
            } else {
                println!("审计日志校验失败：第 {} 条 —— {}", v.first_bad.unwrap_or(0), v.reason.unwrap_or_default());
                ExitCode::from(2)
            }
        }
    };
    st.db.close().await;
    Ok(code)
}

/// Copies the files under `from` to `to` (made), keeping the layout; returns how many.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<usize> {
    use crate::cases::photos::{private_create, private_dirs};
    private_dirs(to)?;
    let mut n = 0;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            n += copy_tree(&entry.path(), &target)?;
        } else {
            // The service account's alone, like the backup itself.
            std::io::copy(&mut std::fs::File::open(entry.path())?, &mut private_create(&target)?)?;
            n += 1;
        }
    }
    Ok(n)
}

/// A file error in reading it, in words: the file is what was not found (a missing file was
/// said to be a missing directory).
fn read_zh(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::NotFound => "文件不存在",
        _ => io_zh(e),
    }
}

/// A file error in writing one, in words (the standard library's are English): what is not
/// found when a file is created is its directory.
fn io_zh(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => "目录不存在",
        PermissionDenied => "没有权限",
        IsADirectory => "这是一个目录",
        AlreadyExists => "文件已存在",
        StorageFull => "磁盘已满",
        ReadOnlyFilesystem => "文件系统只读",
        _ => "读写失败",
    }
}

/// The CLI acts as the county (the one root node) for register commands.
async fn county_principal(st: &AppState) -> Result<crate::auth::Principal, String> {
    let county: Option<String> = sqlx::query_scalar("SELECT code FROM nodes WHERE kind = 'county' ORDER BY id LIMIT 1")
        .fetch_optional(&st.db.pool)
        .await
        .map_err(|e| e.to_string())?;
    let code = county.ok_or("还没有县级节点：请先执行 linli node add --kind county …")?;
    Ok(crate::auth::Principal { scope: code.clone(), scope_path: format!("/{code}/"), ..crate::auth::Principal::system("cli") })
}

async fn user(st: &AppState, cmd: UserCmd) -> Result<ExitCode, crate::error::AppError> {
    use crate::error::AppError;
    let actor = Actor::system("cli");
    match cmd {
        UserCmd::Add { name, role, scope, display_name, password_stdin } => {
            let role = Role::parse(&role).map_err(|m| AppError::field("role", m))?;
            let password = read_password(password_stdin).map_err(|m| AppError::field("password", m))?;
            let u = store::create_user(
                st,
                None,
                &actor,
                NewUser { username: name, display_name, role, scope, password, must_change: false },
            )
            .await?;
            println!("已创建账号 {}（{}，范围 {}）", u.username, u.role_label, u.scope);
        }
        UserCmd::List => {
            println!("{:<16} {:<14} {:<18} 状态", "用户名", "角色", "范围");
            for u in store::list_all(st).await? {
                println!("{:<16} {:<14} {:<18} {}", u.username, u.role_label, u.scope, if u.locked { "已锁定" } else { "正常" });
            }
        }
        UserCmd::ResetPassword { name, password_stdin } => {
            let pw = read_password(password_stdin).map_err(|m| AppError::field("password", m))?;
            store::set_password(st, None, &actor, &name, &pw, false).await?;
            println!("已重置 {name} 的密码，下次登录须修改；原有会话和访问令牌已失效（管理员锁定仍保留，解锁请用 user unlock）");
        }
        UserCmd::Lock { name } => {
            store::set_lock(st, None, &actor, &name, UserAction::Lock).await?;
            println!("已锁定 {name}");
        }
        UserCmd::Unlock { name } => {
            store::set_lock(st, None, &actor, &name, UserAction::Unlock).await?;
            println!("已解锁 {name}");
        }
        UserCmd::Token { name, label, days } => {
            println!("{}", store::issue_token(st, None, &actor, &name, &label, days).await?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
