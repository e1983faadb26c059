//! The demo county's case loop: 52 reporting units, the category catalogue, a working-day
//! calendar, accounts for grid workers, Party members and unit contacts, and a year of cases
//! from every channel with a realistic status mix — more than 1,000 of them closed.

use super::calendar::Calendar;
use crate::db::{Tx, get};
use crate::demo::Rng;
use crate::error::AppResult;
use crate::privacy::Keyring;

/// The 52 units that report to communities (双报到): (name, type).
pub const UNITS: [(&str, &str); 52] = [
    ("县委办公室", "机关"),
    ("县人大常委会办公室", "机关"),
    ("县政府办公室", "机关"),
    ("县政协办公室", "机关"),
    ("县纪委监委", "机关"),
    ("县委组织部", "机关"),
    ("县委宣传部", "机关"),
    ("县委统战部", "机关"),
    ("县委政法委", "机关"),
    ("县发展和改革局", "部门"),
    ("县教育局", "部门"),
    ("县公安局", "部门"),
    ("县民政局", "部门"),
    ("县司法局", "部门"),
    ("县财政局", "部门"),
    ("县人力资源和社会保障局", "部门"),
    ("县自然资源局", "部门"),
    ("县住房和城乡建设局", "部门"),
    ("县交通运输局", "部门"),
    ("县水务局", "部门"),
    ("县农业农村局", "部门"),
    ("县商务局", "部门"),
    ("县文体广电旅游局", "部门"),
    ("县卫生健康局", "部门"),
    ("县应急管理局", "部门"),
    ("县市场监督管理局", "部门"),
    ("县医疗保障局", "部门"),
    ("县综合行政执法局", "部门"),
    ("县生态环境局", "部门"),
    ("县退役军人事务局", "部门"),
    ("县融媒体中心", "事业"),
    ("县疾病预防控制中心", "事业"),
    ("县图书馆", "事业"),
    ("县社会福利院", "事业"),
    ("县就业服务中心", "事业"),
    ("国网沿河供电局", "国企"),
    ("县自来水公司", "国企"),
    ("中国移动沿河分公司", "国企"),
    ("中国电信沿河分公司", "国企"),
    ("县城市建设投资公司", "国企"),
    ("县交通旅游投资公司", "国企"),
    ("沿河中学", "教育"),
    ("沿河民族中学", "教育"),
    ("县第一小学", "教育"),
    ("县第二小学", "教育"),
    ("县第一幼儿园", "教育"),
    ("县人民医院", "医院"),
    ("县中医院", "医院"),
    ("县妇幼保健院", "医院"),
    ("沿河乌江物业服务公司", "非公"),
    ("沿河联动超市有限公司", "非公"),
    ("沿河家政服务有限公司", "非公"),
];

/// (code, name, group, sign hours, resolve hours, unit type, default unit index, claimable)
type CategorySeed = (&'static str, &'static str, &'static str, f64, f64, &'static str, usize, bool);

const CATEGORIES: [CategorySeed; 12] = [
    ("ldd", "楼道灯", "公共设施", 4.0, 14.0, "国企", 35, false),
    ("xsd", "下水道堵塞", "公共设施", 2.0, 14.0, "部门", 27, false),
    ("zyrm", "噪音扰民", "矛盾纠纷", 2.0, 14.0, "部门", 11, false),
    ("zhucan", "助餐", "为民服务", 7.0, 35.0, "事业", 33, true),
    ("daiban", "代购代办", "为民服务", 7.0, 21.0, "非公", 50, true),
    ("falv", "法律咨询", "为民服务", 7.0, 35.0, "部门", 13, false),
    ("peihu", "老人陪护", "为民服务", 7.0, 35.0, "事业", 33, true),
    ("wuye", "物业纠纷", "红色物业", 4.0, 49.0, "非公", 49, false),
    ("laji", "垃圾清理", "环境卫生", 4.0, 14.0, "部门", 27, false),
    ("daolu", "道路破损", "公共设施", 7.0, 70.0, "部门", 18, false),
    ("gongshui", "供水供电", "公共设施", 2.0, 14.0, "国企", 36, false),
    ("qita", "其他诉求", "其他", 7.0, 35.0, "", 0, false),
];

const TEXTS: [&[&str]; 12] = [
    &["楼道的灯坏了，晚上很黑", "单元楼梯间声控灯不亮", "楼道灯一直闪烁"],
    &["小区下水道堵塞，污水外溢", "厨房下水道堵了，物业处理不了", "路边雨水井堵塞积水"],
    &["楼上装修噪音扰民，中午也在施工", "夜间烧烤店噪音很大", "广场舞音响声音太大"],
    &["独居老人希望每天送午餐", "申请社区老年食堂助餐服务", "行动不便老人需要助餐"],
    &["帮老人代购常用药品", "代办居住证续签", "帮忙代缴水电费"],
    &["咨询房屋租赁合同纠纷", "咨询工资拖欠怎么维权", "咨询赡养纠纷"],
    &["周末需要陪老人去医院复诊", "空巢老人需要定期探访", "老人需要临时照护"],
    &["物业费收取不透明", "物业不维修电梯", "小区停车位物业纠纷"],
    &["垃圾桶满了没人清运", "楼下建筑垃圾堆放多日", "河边有生活垃圾"],
    &["小区门口道路破损坑洼", "人行道地砖松动", "井盖缺失有安全隐患"],
    &["小区停水没有通知", "楼栋经常停电", "水压太低用不了热水器"],
    &["希望增设健身器材", "建议增加公交班次", "反映流浪狗问题"],
];

/// Units, categories and the calendar.
pub async fn setup(tx: &mut Tx, county_path: &str, now: i64) -> AppResult<()> {
    let mut rng = Rng::new(52);
    for (i, (name, kind)) in UNITS.iter().enumerate() {
        // Departments, utilities, public institutions and companies serve the whole county;
        // party and government offices, schools and hospitals report to one community each (双报到).
        let communities =
            if matches!(*kind, "机关" | "教育" | "医院") { crate::demo::community_code(i % 27) } else { String::new() };
        let contact = format!("{}{}", ["田", "杨", "张", "冉", "崔"][i % 5], ["主任", "书记", "科长", "经理"][i % 4]);
        sqlx::query(
            "INSERT INTO units (code, name, kind, contact_name, contact_phone, communities, node_path, is_demo, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,1,$8,$8)",
        )
        .bind(format!("DW{:03}", i + 1))
        .bind(*name)
        .bind(*kind)
        .bind(contact)
        .bind(format!("0856-82{:05}", rng.below(100_000)))
        .bind(communities)
        .bind(county_path)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    let urgency = r#"[{"code":"urgency","name":"紧急程度","datatype":"singlevaluelist","required":false,"values":[["normal","一般"],["urgent","紧急"]]}]"#;
    for (i, (code, name, group, sign, resolve, kind, unit, claimable)) in CATEGORIES.iter().enumerate() {
        let unit_id = if kind.is_empty() {
            None
        } else {
            Some(get::<i64>(
                &sqlx::query("SELECT id FROM units WHERE code = $1")
                    .bind(format!("DW{:03}", unit + 1))
                    .fetch_one(&mut *tx)
                    .await?,
                "id",
            )?)
        };
        sqlx::query(
            "INSERT INTO categories (code, name, grp, description, sign_hours, resolve_hours, unit_kind, default_unit_id, claimable, attrs, sort, created_at, updated_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$12)",
        )
        .bind(*code)
        .bind(*name)
        .bind(*group)
        .bind(format!("{group}类事项：{name}"))
        .bind(*sign)
        .bind(*resolve)
        .bind(*kind)
        .bind(unit_id)
        .bind(*claimable as i64)
        .bind(urgency)
        .bind(i as i64)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    super::categories::bump_version(tx).await?;
    let days = "2026-01-01 休 元旦\n2026-01-02 休 元旦\n2026-01-04 班 元旦调休\n2026-02-16 休 春节\n2026-02-17 休 春节\n2026-02-18 休 春节\n\
                2026-02-19 休 春节\n2026-02-20 休 春节\n2026-02-23 休 春节\n2026-02-14 班 春节调休\n2026-02-28 班 春节调休\n2026-04-06 休 清明节\n\
                2026-05-01 休 劳动节\n2026-05-04 休 劳动节\n2026-05-05 休 劳动节\n2026-05-09 班 劳动节调休\n2026-06-19 休 端午节\n2026-09-25 休 中秋节\n\
                2026-10-01 休 国庆节\n2026-10-02 休 国庆节\n2026-10-05 休 国庆节\n2026-10-06 休 国庆节\n2026-10-07 休 国庆节\n2026-09-27 班 国庆调休\n2026-10-10 班 国庆调休\n";
    for (d, kind, name) in super::calendar::parse_exceptions(days).map_err(crate::error::AppError::Internal)? {
        let k = if kind == super::calendar::DayKind::Workday { "workday" } else { "holiday" };
        sqlx::query("INSERT INTO calendar_days (day, kind, name) VALUES ($1,$2,$3)")
            .bind(d.format("%Y-%m-%d").to_string())
            .bind(k)
            .bind(name)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Accounts that take cases: one grid worker per grid, a unit contact per unit, two
/// reported Party members per community. They share the demo password's hash.
pub async fn people(tx: &mut Tx, hash: &str, now: i64) -> AppResult<()> {
    let grids = sqlx::query("SELECT code, path, name FROM nodes WHERE kind = 'grid' ORDER BY code").fetch_all(&mut *tx).await?;
    // (username, display name, role, scope, scope path, unit)
    type Account = (String, String, &'static str, String, String, Option<i64>);
    let mut rows: Vec<Account> = Vec::new();
    for g in &grids {
        let code: String = get(g, "code")?;
        if code == "520627001001003" {
            continue; // the named demo grid worker already holds it
        }
        // Named by the grid (网格员001003 stood for a grid in each of four streets).
        let name = format!("{}网格员", get::<String>(g, "name")?);
        rows.push((format!("wg{}", &code[6..]), name, "grid_worker", code, get(g, "path")?, None));
    }
    let units = sqlx::query("SELECT id, code, name, node_path FROM units ORDER BY id").fetch_all(&mut *tx).await?;
    for u in units.iter().skip(1) {
        let code: String = get(u, "code")?;
        rows.push((
            code.to_lowercase(),
            format!("{}联络员", get::<String>(u, "name")?),
            "unit_contact",
            code,
            get(u, "node_path")?,
            Some(get(u, "id")?),
        ));
    }
    let comms = sqlx::query("SELECT code, path FROM nodes WHERE kind = 'community' ORDER BY code").fetch_all(&mut *tx).await?;
    for (i, c) in comms.iter().enumerate() {
        for k in 1..=2 {
            let code: String = get(c, "code")?;
            rows.push((
                format!("dy{:02}{k}", i + 1),
                format!("在职党员{:02}-{k}", i + 1),
                "party_member",
                code,
                get(c, "path")?,
                None,
            ));
        }
    }
    for (user, display, role, scope, path, unit) in rows {
        sqlx::query(
            "INSERT INTO users (username, display_name, password_hash, role, scope, scope_path, must_change_password, unit_id, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,0,$7,$8,$8)",
        )
        .bind(user)
        .bind(display)
        .bind(hash)
        .bind(role)
        .bind(scope)
        .bind(path)
        .bind(unit)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

struct Ctx<'a> {
    cal: Calendar,
    keys: &'a Keyring,
}

/// A year of cases (`n` of them) ending now.
pub async fn cases(tx: &mut Tx, keys: &Keyring, n: usize, now: i64) -> AppResult<()> {
    let mut rng = Rng::new(12345);
    // The calendar `setup` wrote: deadlines skip its holidays and count its make-up workdays.
    let cal = super::categories::calendar_of(&sqlx::query(super::categories::CALENDAR_SQL).fetch_all(&mut *tx).await?)?;
    let ctx = Ctx { cal, keys };
    let cats = sqlx::query("SELECT id, code, sign_hours, resolve_hours, default_unit_id FROM categories ORDER BY sort")
        .fetch_all(&mut *tx)
        .await?;
    let grids = sqlx::query("SELECT n.code, n.path, n.geometry, p.code AS community FROM nodes n JOIN nodes p ON p.id = n.parent_id WHERE n.kind = 'grid' ORDER BY n.code")
        .fetch_all(&mut *tx)
        .await?;
    let units = sqlx::query("SELECT id, code, name, communities FROM units ORDER BY id").fetch_all(&mut *tx).await?;
    let workers = sqlx::query("SELECT id, display_name, scope FROM users WHERE role = 'grid_worker'").fetch_all(&mut *tx).await?;
    let channels = [
        "resident_h5",
        "resident_h5",
        "resident_h5",
        "grid_visit",
        "grid_visit",
        "grid_mailbox",
        "research_visit",
        "hotline_12345",
        "hotline_12345",
        "alliance_meeting",
        "open311",
        "staff",
    ];
    // Oldest first, as live cases come: ids (the lists' order, newest first) then follow time.
    for i in (0..n).rev() {
        let ci = rng.below(cats.len() as u64) as usize;
        let cat = &cats[ci];
        let g = &grids[rng.below(grids.len() as u64) as usize];
        let (gcode, gpath, comm): (String, String, String) = (get(g, "code")?, get(g, "path")?, get(g, "community")?);
        let geom: String = get(g, "geometry")?;
        let poly = crate::geo::polygon_from_geojson(&serde_json::from_str(&geom).unwrap_or_default()).ok();
        let (lng, lat) = poly
            .map(|p| {
                let (a, b) = p.bbox();
                (
                    a.lng + (b.lng - a.lng) * (0.1 + 0.8 * rng.below(1000) as f64 / 1000.0),
                    a.lat + (b.lat - a.lat) * (0.1 + 0.8 * rng.below(1000) as f64 / 1000.0),
                )
            })
            .unzip();
        // Spread over the past year; older cases are mostly closed, the last weeks still running.
        let age_days = (i as f64 / n as f64 * 365.0) as i64;
        let created = now - age_days * 86_400_000 - rng.below(8 * 3_600_000) as i64;
        let desc = TEXTS[ci][rng.below(3) as usize];
        let resolve_hours: f64 = get(cat, "resolve_hours")?;
        let sign_hours: f64 = get(cat, "sign_hours")?;
        let default_unit: Option<i64> = get(cat, "default_unit_id")?;
        let roll = rng.below(100);
        let status = if age_days > 30 {
            match roll {
                0..=2 => "rejected",
                3..=4 => "voided",
                _ => "closed",
            }
        } else {
            match roll {
                0..=9 => "submitted",
                10..=19 => "registered",
                20..=34 => "dispatched",
                35..=54 => "accepted",
                55..=64 => "finished",
                65..=72 => "followed_up",
                73..=75 => "rejected",
                _ => "closed",
            }
        };
        let returned = status != "submitted" && rng.below(100) < 6;
        let reworked = matches!(status, "closed" | "followed_up" | "finished" | "accepted") && rng.below(100) < 7;
        let extended = matches!(status, "closed" | "finished" | "followed_up" | "accepted") && rng.below(100) < 8;
        let mut t = created;
        // Each step with its time: the history shows when each was taken, as the columns do.
        let mut steps: Vec<(&str, &str, &str, String, i64)> = vec![("submit", "", "submitted", String::new(), created)];
        let step = |t: &mut i64, rng: &mut Rng, hours: u64| *t += (1 + rng.below(hours * 3_600)) as i64 * 1000;
        let mut reg = None;
        let (mut disp, mut acc, mut fin, mut clo) = (None, None, None, None);
        let (mut unit_id, mut unit_ref, mut unit_name, mut kind, mut user_id) =
            (None::<i64>, String::new(), String::new(), "", None::<i64>);
        if status == "rejected" {
            step(&mut t, &mut rng, 4);
            steps.push(("reject", "submitted", "rejected", "不属于受理范围，已告知居民".into(), t));
            clo = Some(t);
        } else if status != "submitted" {
            step(&mut t, &mut rng, 3);
            reg = Some(t);
            steps.push(("register", "submitted", "registered", String::new(), t));
        }
        // (unit id, assignee ref, name, kind, user id)
        type Assigned = (Option<i64>, String, String, &'static str, Option<i64>);
        let target = |rng: &mut Rng| -> AppResult<Assigned> {
            if rng.below(100) < 25 && !workers.is_empty() {
                let w = workers
                    .iter()
                    .find(|w| get::<String>(w, "scope").ok().as_deref() == Some(gcode.as_str()))
                    .unwrap_or(&workers[0]);
                return Ok((
                    None,
                    format!("u{}", get::<i64>(w, "id")?),
                    get(w, "display_name")?,
                    "grid_worker",
                    Some(get(w, "id")?),
                ));
            }
            let u = default_unit
                .and_then(|d| units.iter().find(|u| get::<i64>(u, "id").ok() == Some(d)))
                .filter(|u| get::<String>(u, "communities").map(|c| c.is_empty() || c == comm).unwrap_or(false))
                .unwrap_or_else(|| &units[(9 + rng.below(21)) as usize]);
            Ok((Some(get(u, "id")?), get(u, "code")?, get(u, "name")?, "unit", None))
        };
        let past = |s: &str, order: &[&str]| order.iter().position(|x| *x == status) >= order.iter().position(|x| *x == s);
        let order = ["submitted", "registered", "dispatched", "accepted", "finished", "followed_up", "closed"];
        if status != "rejected" && status != "voided" && past("dispatched", &order) {
            if returned {
                step(&mut t, &mut rng, 4);
                steps.push(("dispatch", "registered", "dispatched", "派给 县城市建设投资公司".into(), t));
                step(&mut t, &mut rng, 6);
                steps.push(("return", "dispatched", "registered", "不属于本单位职责".into(), t));
            }
            step(&mut t, &mut rng, 4);
            (unit_id, unit_ref, unit_name, kind, user_id) = target(&mut rng)?;
            disp = Some(t);
            steps.push(("dispatch", "registered", "dispatched", format!("派给 {unit_name}"), t));
        }
        if status == "voided" {
            step(&mut t, &mut rng, 8);
            steps.push(("void", "registered", "voided", "重复提交，作废".into(), t));
            clo = Some(t);
        }
        let late = rng.below(100) < 12;
        if !matches!(status, "rejected" | "voided") && past("accepted", &order) {
            step(&mut t, &mut rng, if late { 12 } else { 3 });
            acc = Some(t);
            steps.push(("accept", "dispatched", "accepted", String::new(), t));
            if extended {
                step(&mut t, &mut rng, 4);
                steps.push(("request_extension", "accepted", "accepted", "申请延期 14 个工作小时：需协调多个部门".into(), t));
                steps.push(("approve_extension", "accepted", "accepted", String::new(), t));
            }
        }
        if !matches!(status, "rejected" | "voided") && past("finished", &order) {
            if reworked {
                step(&mut t, &mut rng, 20);
                steps.push(("finish", "accepted", "finished", "已处理".into(), t));
                step(&mut t, &mut rng, 8);
                steps.push(("follow_up", "finished", "followed_up", "居民反映未解决".into(), t));
                steps.push(("rework", "followed_up", "accepted", "回访不满意，返工".into(), t));
            }
            step(&mut t, &mut rng, if late { 60 } else { 16 });
            fin = Some(t);
            steps.push(("finish", "accepted", "finished", "已办结".into(), t));
        }
        let mut follow = None;
        if !matches!(status, "rejected" | "voided") && past("followed_up", &order) {
            step(&mut t, &mut rng, 8);
            let r = rng.below(100);
            let (contacted, solved, sat) = if r < 5 {
                (0, None, None)
            } else if r < 70 {
                (1, Some(1), Some("satisfied"))
            } else if r < 92 {
                (1, Some(1), Some("basically_satisfied"))
            } else {
                (1, Some(0), Some("unsatisfied"))
            };
            follow = Some((contacted, solved, sat));
            steps.push((
                "follow_up",
                "finished",
                "followed_up",
                sat.map(super::machine::satisfaction_label).unwrap_or("未联系上").to_string(),
                t,
            ));
        }
        if status == "closed" {
            step(&mut t, &mut rng, 4);
            clo = Some(t);
            steps.push(("close", "followed_up", "closed", String::new(), t));
        }
        let last_change = t.min(now);
        // A recent case's later steps may come out past now: they happened just now.
        let (reg, disp, acc, fin, clo) = (
            reg.map(|x| x.min(now)),
            disp.map(|x| x.min(now)),
            acc.map(|x| x.min(now)),
            fin.map(|x| x.min(now)),
            clo.map(|x| x.min(now)),
        );
        let clock = reg.map(|r| if reworked { fin.unwrap_or(r) - 86_400_000 } else { r });
        let due = clock.map(|c| ctx.cal.add_working_hours(c, resolve_hours + if extended { 14.0 } else { 0.0 }));
        let yellow = clock.zip(due).map(|(c, d)| ctx.cal.yellow_at(c, d));
        let sign_due = disp.map(|d| ctx.cal.add_working_hours(d, sign_hours));
        let running = matches!(status, "registered" | "dispatched" | "accepted");
        let warn = match (running, due, yellow) {
            (true, Some(d), _) if d < now => 2,
            (true, _, Some(y)) if y < now => 1,
            _ => 0,
        };
        // Demo numbers start at 900000 so they never meet the live counter.
        let number = format!("YH-{}-{:06}", chrono::Datelike::year(&super::calendar::local_date(created)), 900_000 + (n - 1 - i));
        let phone = format!("1{}{:09}", [3, 5, 8][rng.below(3) as usize], rng.below(1_000_000_000));
        let name = format!(
            "{}{}",
            ["田", "杨", "张", "冉", "崔", "何"][rng.below(6) as usize],
            ["女士", "先生", "阿姨", "师傅"][rng.below(4) as usize]
        );
        let channel = channels[rng.below(channels.len() as u64) as usize];
        let title = desc.to_string();
        // Ids as live creations take them (they no longer move PostgreSQL's sequence).
        let id = tx.next_id("cases").await?;
        sqlx::query(
            "INSERT INTO cases (id, number, category_id, title, description, channel, status, lng, lat, grid_code, community_code, node_path, \
             reporter_name_enc, reporter_phone_enc, reporter_phone_bidx, private, assignee_kind, assignee_ref, assignee_name, unit_id, assignee_user_id, \
             created_at, registered_at, dispatched_at, accepted_at, finished_at, closed_at, sign_due, resolve_due, clock_start, yellow_at, warn_level, \
             extension_count, rework_count, return_count, contacted, solved, satisfaction, version, updated_at) \
             VALUES ($40,$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$28,$29,$30,$31,$32,$33,$34,$35,$36,$37,$38,$39)",
        )
        .bind(&number)
        .bind(get::<i64>(cat, "id")?)
        .bind(&title)
        .bind(desc)
        .bind(channel)
        .bind(status)
        .bind(lng)
        .bind(lat)
        .bind(&gcode)
        .bind(&comm)
        .bind(&gpath)
        .bind(ctx.keys.encrypt(&name, super::store::AAD_NAME))
        .bind(ctx.keys.encrypt(&phone, super::store::AAD_PHONE))
        .bind(ctx.keys.blind_index("case_phone", &phone))
        .bind((rng.below(100) < 15) as i64)
        .bind(kind)
        .bind(&unit_ref)
        .bind(&unit_name)
        .bind(unit_id)
        .bind(user_id)
        .bind(created)
        .bind(reg)
        .bind(disp)
        .bind(acc)
        .bind(fin)
        .bind(clo)
        .bind(sign_due)
        .bind(due)
        .bind(clock)
        .bind(yellow)
        .bind(warn)
        .bind(extended as i64)
        .bind(reworked as i64)
        .bind(returned as i64)
        .bind(follow.map(|f| f.0))
        .bind(follow.and_then(|f| f.1))
        .bind(follow.and_then(|f| f.2))
        .bind(steps.len() as i64)
        .bind(last_change)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if running && let (Some(y), Some(d)) = (yellow, due) {
            // The yellow and red cards and the escalation come due as for any running case.
            super::jobs::schedule_sla(tx, &ctx.cal, id, y, d);
        }
        // One statement per case for its history and its search terms keeps PostgreSQL loading fast.
        let mut sql = String::from(
            "INSERT INTO case_history (case_id, action, from_status, to_status, actor, actor_label, at, note, public) VALUES ",
        );
        let mut vals = Vec::new();
        for (k, (action, from, to, note, at)) in steps.iter().enumerate() {
            let actor = match *action {
                "submit" => "public".to_string(),
                "accept" | "finish" | "return" | "request_extension" => unit_ref.to_lowercase(),
                _ => "huahuaqiao".to_string(),
            };
            sql.push_str(&format!(
                "{}(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, 1)",
                if k == 0 { "" } else { ", " },
                k * 8 + 1,
                k * 8 + 2,
                k * 8 + 3,
                k * 8 + 4,
                k * 8 + 5,
                k * 8 + 6,
                k * 8 + 7,
                k * 8 + 8
            ));
            vals.push((*action, *from, *to, actor, note.clone(), (*at).min(now)));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (action, from, to, actor, note, at) in vals {
            let label = if action == "submit" { super::machine::channel_label(channel).to_string() } else { String::new() };
            q = q.bind(id).bind(action).bind(from).bind(to).bind(actor).bind(label).bind(at).bind(note);
        }
        q.execute(&mut *tx).await?;
        let terms: Vec<String> = super::search::doc_terms(&format!("{title} {desc}")).into_iter().collect();
        let mut sql = String::from("INSERT INTO case_terms (term, case_id) VALUES ");
        sql.push_str(&(0..terms.len()).map(|k| format!("(${}, ${})", k * 2 + 1, k * 2 + 2)).collect::<Vec<_>>().join(", "));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for t in terms {
            q = q.bind(t).bind(id);
        }
        q.execute(&mut *tx).await?;
    }
    super::rollups::rebuild_in(tx).await?;
    Ok(())
}
