//! The demo county's registers, so that every figure of the article comes out of records:
//! 33 research visits and 35 problems solved, 6 seconded staff, 12 alliance meetings, the
//! service network (27 + 27 + 6 + 10 + 15, all 13 relocation sites covered), 52 reporting
//! units, red property (1 + 23 + 10 + 5), 788万元 collective income, 19 township companies,
//! 3 linked supermarkets (96万元 turnover, 23万元 profit), 117 community workers (106 contracts),
//! 156 grid workers, 103 grid Party groups, 71 talents, 12 zones, a 1024 ㎡ talent home,
//! every community funded ≥ 10万元, 6 offices brought up to standard.

use serde_json::{Map, Value, json};

use super::{catalog, store};
use crate::app::AppState;
use crate::auth::{Principal, Role, Via};
use crate::demo::{COUNTY, Rng, community_code};
use crate::error::{AppError, AppResult};

fn county_admin() -> Principal {
    Principal {
        user_id: 0,
        username: "system:demo".into(),
        display_name: "演示数据".into(),
        role: Role::CountyAdmin,
        scope: COUNTY.into(),
        scope_path: format!("/{COUNTY}/"),
        unit_id: None,
        unit_name: None,
        must_change_password: false,
        via: Via::Token,
        ip: "local".into(),
    }
}

const NAMED: [&str; 7] = ["花花桥", "燎原", "思源", "红旗", "坝坨", "香树林", "黑獭"];

/// Loads every register's demo rows in one transaction.
pub async fn load(st: &AppState) -> AppResult<()> {
    let p = county_admin();
    let mut rng = Rng::new(2023);
    let mut batch: Vec<(&'static str, Value)> = Vec::new();
    let mut add = |reg: &'static str, v: Value| batch.push((reg, v));
    let grid = |i: usize| format!("{}{:03}", community_code(i % 27), 1 + (i / 27) % 5);
    let day = |y: i32, m: u32, d: u32| format!("{y}-{m:02}-{d:02}");

    // 组织体系
    for (i, (name, kind)) in crate::cases::demo::UNITS.iter().enumerate() {
        let credit = crate::ident::CreditCode::compose(&format!(
            "{}1520627{:09}",
            if *kind == "国企" || *kind == "非公" { 9 } else { 1 },
            100_000 + i * 7919
        ))
        .map(|c| c.as_str().to_string())
        .unwrap_or_default();
        add(
            "units",
            json!({"code": format!("DW{:03}", i + 1), "name": name, "kind": kind, "credit_code": credit, "party_org": format!("{name}党支部"), "community": community_code(i % 27)}),
        );
        add(
            "unit_reports",
            json!({"unit": format!("DW{:03}", i + 1), "unit_name": name, "community": community_code(i % 27), "date": day(2022, 3 + (i % 9) as u32, 1 + (i % 27) as u32), "review": (["优秀", "良好"][i % 2])}),
        );
    }
    let topics = [
        "老旧小区改造",
        "物业服务",
        "就业帮扶",
        "养老服务",
        "停车难",
        "背街小巷",
        "易地搬迁后续扶持",
        "社区治理",
        "红色物业",
        "便民服务",
        "校园周边",
    ];
    for i in 0..33 {
        let c = community_code(i % 27);
        add(
            "research_visits",
            json!({"topic": format!("{}专题调研", topics[i % topics.len()]), "date": day(2022, 4 + (i % 8) as u32, 1 + i as u32 % 28), "leader": format!("县领导{}", 1 + i % 9), "community": c}),
        );
    }
    for i in 0..35 {
        add(
            "problems",
            json!({"problem": format!("{}问题{}", topics[i % topics.len()], i + 1), "visit": format!("{}专题调研", topics[i % topics.len()]), "community": community_code(i % 27),
            "task": "制定整改方案", "responsible": crate::cases::demo::UNITS[(9 + i) % 30].0, "result": "已整改销号", "status": "已解决", "progress": 100, "deadline": day(2022, 12, 31)}),
        );
    }
    for (i, unit) in
        ["县委组织部", "县住房和城乡建设局", "县民政局", "县人力资源和社会保障局", "和平街道", "团结街道"].iter().enumerate()
    {
        add(
            "seconded_staff",
            json!({"name": format!("抽调干部{}", i + 1), "home_unit": unit, "post": (["综合协调", "阵地建设", "红色物业", "人才服务", "网格治理", "督查考核"][i]), "start_date": "2022-05-01"}),
        );
    }
    for i in 0..12 {
        add(
            "meetings",
            json!({"title": format!("城市党建联盟第{}次联席会议", i + 1), "date": day(2022 + i / 10, 1 + (i % 10) as u32 + 1, 15), "attendees": "县委组织部、各街道党工委、成员单位", "decisions": "议定事项已分解落实", "follow_up_done": true}),
        );
    }
    for i in 0..27 {
        add(
            "agreements",
            json!({"title": format!("{}共建协议", crate::cases::demo::UNITS[i].0), "community": community_code(i), "unit": format!("DW{:03}", i + 1), "start_date": "2025-01-01", "end_date": day(2026 + (i % 3) as i32, 12, 31)}),
        );
    }
    // 服务体系
    let sites: Vec<String> =
        sqlx::query_scalar("SELECT code FROM nodes WHERE kind = 'site' ORDER BY code").fetch_all(&st.db.pool).await?;
    for i in 0..27 {
        let c = community_code(i);
        add(
            "facilities",
            json!({"name": format!("第{}党群服务中心", i + 1), "kind": "党群服务中心", "community": c, "area": 300 + 10 * i, "hours": "8:30-17:30"}),
        );
        if i >= 13 {
            add("facilities", json!({"name": format!("第{}服务驿站", i + 1), "kind": "服务驿站", "community": c, "area": 60}));
        }
    }
    for (i, s) in sites.iter().enumerate() {
        add("facilities", json!({"name": format!("安置点服务点{}", i + 1), "kind": "服务点", "community": s, "area": 80}));
    }
    for (kind, n) in [("日间照料中心", 6), ("文娱健身中心", 10), ("4点半课堂", 15)] {
        for i in 0..n {
            add(
                "facilities",
                json!({"name": format!("{kind}{}", i + 1), "kind": kind, "community": community_code(i * 2 % 27), "area": 120}),
            );
        }
    }
    add(
        "facilities",
        json!({"name": "城市党建人才之家", "kind": "城市党建人才之家", "community": community_code(0), "area": 1024}),
    );
    for i in 0..104 {
        let c = community_code(i % 27);
        add(
            "member_reports",
            json!({"name": format!("在职党员{:03}", i + 1), "unit": format!("DW{:03}", 1 + i % 52), "community": c, "date": day(2022, 6, 1 + (i % 28) as u32)}),
        );
        for k in 0..3 {
            add(
                "service_records",
                json!({"member": format!("在职党员{:03}", i + 1), "what": (["政策宣讲", "环境整治", "关爱老人", "文明劝导"][(i + k) % 4]), "community": c,
                "date": day(2026, 1 + ((i + k) % 10) as u32, 10), "hours": 2 + (i + k) % 5, "points": 10, "confirmed": true}),
            );
        }
    }
    add(
        "property_committees",
        json!({"name": "沿河土家族自治县物业行业党委", "secretary": "物业行业党委书记", "founded": "2022-05-20"}),
    );
    let compounds: Vec<String> =
        sqlx::query_scalar("SELECT code FROM nodes WHERE kind = 'compound' ORDER BY code").fetch_all(&st.db.pool).await?;
    for i in 0..23 {
        let credit = crate::ident::CreditCode::compose(&format!("91520627MA{:07}", 6_100_000 + i * 37))
            .map(|c| c.as_str().to_string())
            .unwrap_or_default();
        let serve: Vec<&str> = compounds.iter().skip(i * 2).take(3).map(String::as_str).collect();
        // The five demonstration sites are the named communities' companies.
        let name = match NAMED.get(i).filter(|_| i < 5) {
            Some(n) => format!("{n}红色物业服务有限公司"),
            None => format!("沿河第{}物业服务有限公司", i + 1),
        };
        add(
            "property_companies",
            json!({"name": name, "credit_code": credit, "party_org": "物业企业党支部", "compounds": serve.join(","), "demo_site": i < 5}),
        );
    }
    for (i, c) in compounds.iter().take(10).enumerate() {
        add(
            "owners_committees",
            json!({"name": format!("第{}业主委员会", i + 1), "compound": c, "members": "主任、副主任、委员 3 人", "term_start": "2024-01-01", "term_end": "2028-12-31"}),
        );
    }
    // 发展体系
    add(
        "collective_companies",
        json!({"name": "沿河城市社区集体经济联合公司", "level": "县级联合公司", "business_lines": "农副产品销售、家政服务、养老托幼、物业管理、仓储运输"}),
    );
    for i in 0..19 {
        add(
            "collective_companies",
            json!({"name": format!("第{}乡镇集体经济公司", i + 1), "level": "乡镇公司", "linked_to": "沿河城市社区集体经济联合公司"}),
        );
    }
    let lines = ["农副产品销售", "家政服务", "养老托幼", "物业管理", "仓储运输"];
    // 7,880,000 元 as 40 entries that add up exactly.
    for i in 0..40 {
        let amount = if i < 39 {
            190_000 + (i % 5) * 1_000
        } else {
            7_880_000 - (0..39).map(|k| 190_000 + (k % 5) * 1_000).sum::<usize>()
        };
        add(
            "revenue",
            json!({"date": day(2022 + (i / 20) as i32, 1 + (i % 12) as u32, 20), "company": "沿河城市社区集体经济联合公司", "line": lines[i % 5], "amount": amount, "source": format!("{}收入", lines[i % 5])}),
        );
    }
    let markets = ["和平联动超市", "团结联动超市", "祐溪联动超市"];
    for m in markets {
        add("supermarkets", json!({"name": m, "opened": "2022-07-15", "suppliers": "19 个乡镇集体经济公司农副产品"}));
    }
    let channels = ["机关", "校园", "企业", "农村", "社区", "安置点"];
    // 960,000 元 turnover and 230,000 元 profit as 30 entries.
    for i in 0..30 {
        let (amount, cost) = if i < 29 { (32_000, 24_300) } else { (960_000 - 29 * 32_000, 730_000 - 29 * 24_300) };
        add(
            "sales",
            json!({"supermarket": markets[i % 3], "date": day(2022, 7 + (i / 6) as u32 % 6, 1 + i as u32), "channel": channels[i % 6], "amount": amount, "cost": cost}),
        );
    }
    // 治理体系
    for i in 0..117 {
        let mut w = json!({"name": format!("社区工作者{:03}", i + 1), "community": community_code(i % 27), "post": (["社区书记", "社区主任", "网格专干", "综合干事"][i % 4]),
            "grade": (["一级", "二级", "三级", "四级", "五级", "六级"][i % 6]), "certified": i % 3 != 0, "insurance": true});
        if i < 106 {
            w["contract_start"] = Value::from("2023-01-01");
            w["contract_end"] = Value::from(day(2026 + (i % 4) as i32, 12, 31));
        }
        add("community_workers", w);
    }
    let grids: Vec<String> =
        sqlx::query_scalar("SELECT code FROM nodes WHERE kind = 'grid' ORDER BY code").fetch_all(&st.db.pool).await?;
    for (i, g) in grids.iter().enumerate() {
        add(
            "grid_roles",
            json!({"name": format!("网格员{:03}", i + 1), "role": "网格员", "node": g, "mobile": format!("139{:08}", 52_060_000 + i)}),
        );
        if i < 103 {
            add(
                "grid_party_groups",
                json!({"name": format!("第{}网格党小组", i + 1), "grid": g, "leader": format!("党小组长{:03}", i + 1), "members": 5 + i % 7}),
            );
            add(
                "grid_roles",
                json!({"name": format!("党小组长{:03}", i + 1), "role": "党小组长", "node": g, "wulao": i % 2 == 0}),
            );
        }
    }
    // The other two of the "三小长": trusted residents ("五老" among them) as 街区长 of a grid
    // and 楼栋长 of a building.
    for (i, g) in grids.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        add("grid_roles", json!({"name": format!("街区长{:03}", i / 2 + 1), "role": "街区长", "node": g, "wulao": i % 4 == 0}));
    }
    let buildings: Vec<String> =
        sqlx::query_scalar("SELECT code FROM nodes WHERE kind = 'building' ORDER BY code").fetch_all(&st.db.pool).await?;
    for (i, b) in buildings.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        add("grid_roles", json!({"name": format!("楼栋长{:03}", i / 3 + 1), "role": "楼栋长", "node": b, "wulao": i % 2 == 0}));
    }
    for i in 0..40 {
        add(
            "visits",
            json!({"visitor": format!("网格员{:03}", i + 1), "household": format!("{}户", (["田", "杨", "张", "冉"][i % 4])), "node": grid(i), "date": day(2026, 1 + (i % 10) as u32, 8),
            "notes": "家中老人行动不便，需定期探访", "issue": if i % 5 == 0 { "楼道灯不亮" } else { "" }}),
        );
    }
    for i in 0..71 {
        add(
            "talents",
            json!({"name": format!("东莞人才{:02}", i + 1), "field": (["科技", "教育", "卫生", "农业", "文化", "管理"][i % 6]), "origin": "东莞", "paired_with": community_code(i % 27), "zone": format!("人才示范区{}", 1 + i % 12)}),
        );
    }
    for i in 0..12 {
        add("talent_zones", json!({"name": format!("人才示范区{}", i + 1), "field": (["科技", "教育", "卫生"][i % 3])}));
    }
    // 保障体系
    let year = chrono::Datelike::year(&crate::cases::calendar::local_date(crate::db::now_ms()));
    let names: Vec<(String, String)> =
        sqlx::query_as::<_, (String, String)>("SELECT code, name FROM nodes WHERE kind = 'community' ORDER BY code")
            .fetch_all(&st.db.pool)
            .await?;
    for (i, (code, name)) in names.iter().enumerate() {
        add(
            "funding",
            json!({"community": code, "community_name": name, "year": year, "allocated": 100_000 + 5_000 * (i % 4), "spent": 80_000 + rng.below(20_000)}),
        );
    }
    for (code, name) in names
        .iter()
        .filter(|(_, n)| ["香树林社区", "黑獭社区", "花花桥社区", "燎原社区", "思源社区", "红旗社区"].contains(&n.as_str()))
    {
        add(
            "offices",
            json!({"community": code, "community_name": name, "area": 400, "checklist": "办公、服务、活动场所达标", "compliant_since": "2023-06-30"}),
        );
    }
    for (name, level) in [("县委书记", "县"), ("和平街道党工委书记", "街道"), ("花花桥社区党委书记", "社区")]
    {
        add("secretaries", json!({"name": name, "level": level, "duties": "抓城市基层党建第一责任人", "done": 12}));
    }
    // Supervision: the county scores the streets and member units, the streets score the
    // county departments (反向考评), and the burden-reduction items are followed to the end.
    let streets: Vec<(String, String)> =
        sqlx::query_as::<_, (String, String)>("SELECT code, name FROM nodes WHERE kind = 'street' ORDER BY code")
            .fetch_all(&st.db.pool)
            .await?;
    // A generator of their own, so that the rows after these keep their values.
    let mut rng2 = Rng::new(2026);
    for (_, name) in &streets {
        let score = 82 + rng2.below(16);
        add(
            "assessments",
            json!({"target": name, "target_kind": "街道", "year": year, "score": score, "assessor": "县城市基层党建工作领导小组"}),
        );
    }
    for (name, _) in crate::cases::demo::UNITS.iter().take(8) {
        let score = 78 + rng2.below(20);
        let deductions = if score < 85 { "双报到服务时长未达要求" } else { "" };
        add(
            "assessments",
            json!({"target": name, "target_kind": "成员单位", "year": year, "score": score, "assessor": "县委组织部", "deductions": deductions}),
        );
    }
    // Eight county departments (their unit codes); the last is scored low on purpose.
    for (k, i) in [10usize, 11, 12, 17, 19, 23, 25, 27].into_iter().enumerate() {
        for (code, _) in &streets {
            let base = if k == 7 { 62 } else { 80 };
            let (a, e, s) = (base + rng2.below(18), base + rng2.below(18), base + rng2.below(18));
            add(
                "reverse_assessments",
                json!({"street": code, "department": format!("DW{:03}", i + 1), "department_name": crate::cases::demo::UNITS[i].0, "year": year,
                    "attitude": a, "efficiency": e, "support": s, "opinion": if k == 7 { "派单后响应慢，多次推诿" } else { "" }}),
            );
        }
    }
    for (item, kind, baseline, target, current, deadline) in [
        ("清理规范社区填报报表", "报表填报", 46, 15, Some(12), "06-30"),
        ("清理社区外部挂牌", "挂牌", 28, 6, Some(5), "03-31"),
        ("精简社区政务APP与工作群", "政务APP与工作群", 35, 10, Some(14), "12-31"),
        ("归并对社区的检查考核", "检查考核", 24, 8, Some(8), "06-30"),
        ("压减要求社区参加的会议", "会议活动", 30, 12, None, "12-31"),
        ("统一社区台账资料", "台账资料", 40, 10, Some(18), "09-30"),
    ] {
        add(
            "burden_reduction",
            json!({"item": item, "kind": kind, "baseline": baseline, "target": target, "current": current, "deadline": format!("{year}-{deadline}"), "lead": "县委组织部"}),
        );
    }
    for (i, (title, kind)) in [
        ("沿河县城市党建联盟工作原则", "工作原则"),
        ("2026年城市党建联盟工作要点", "工作要点"),
        ("城市党建联盟议事协调制度", "工作制度"),
    ]
    .iter()
    .enumerate()
    {
        add("documents", json!({"title": title, "kind": kind, "version": format!("v{}", i + 1), "issued": "2026-02-01"}));
    }
    for i in 0..6 {
        add(
            "cross_appointments",
            json!({"person": format!("交叉任职干部{}", i + 1), "home_unit": format!("DW{:03}", 10 + i), "community": community_code(i * 4), "post": "社区党委兼职委员", "start_date": "2025-03-01", "end_date": "2027-02-28"}),
        );
    }
    for i in 0..10 {
        add(
            "talent_pairings",
            json!({"mentor": format!("东莞人才{:02}", i + 1), "trainee": format!("社区工作者{:03}", i + 1), "community": community_code(i), "start_date": "2025-09-01"}),
        );
    }
    for i in 0..27 {
        add(
            "leader_contacts",
            json!({"leader": format!("县级领导{}", 1 + i % 9), "node": community_code(i), "start_date": "2025-01-01"}),
        );
    }
    for i in 0..10 {
        add(
            "evaluations",
            json!({"subject": crate::cases::demo::UNITS[i].0, "direction": (["联盟评成员单位", "成员单位评联盟"][i % 2]), "period": "2025年度", "score": 90 + i % 8}),
        );
    }
    add("wuyi_members", json!({"name": "沿河土家族自治县", "role": "牵头方", "corridor": "一区"}));
    for i in 0..14 {
        add(
            "wuyi_members",
            json!({"name": format!("乌江流域联建成员{}", i + 1), "role": "成员", "corridor": format!("第{}走廊", 1 + i % 5)}),
        );
    }
    for i in 0..4 {
        add(
            "wuyi_meetings",
            json!({"title": format!("乌江流域党建联建联席会议第{}次", i + 1), "date": day(2025, 3 + 3 * i as u32, 18), "host": "沿河土家族自治县"}),
        );
    }
    add("recruitment", json!({"batch": "2023年社区工作者招聘", "date": "2023-05-10", "posts": 40, "hired": 38}));
    add("recruitment", json!({"batch": "2025年社区工作者招聘", "date": "2025-06-12", "posts": 30, "hired": 29}));
    for i in 0..8 {
        add(
            "contact_points",
            json!({"name": format!("两代表一委员联系点{}", i + 1), "community": community_code(i * 3), "representatives": "人大代表、党代表、政协委员", "schedule": "每月第一个周五上午"}),
        );
    }
    for i in 0..20 {
        add(
            "mailbox",
            json!({"message": (["小区路灯不亮", "建议增设停车位", "楼道堆放杂物", "希望开展老年人防诈骗宣传"][i % 4]), "grid": grid(i), "date": day(2026, 1 + (i % 10) as u32, 5)}),
        );
    }
    let mut tx = st.db.begin().await?;
    for (name, raw) in batch {
        let reg = catalog::find(name).ok_or_else(|| AppError::Internal(format!("no register {name}")))?;
        let raw: Map<String, Value> = raw.as_object().cloned().unwrap_or_default();
        let v = store::validate(st, &p, reg, &raw).await.map_err(|e| AppError::Internal(format!("demo {name}: {e:?}")))?;
        store::insert(&mut tx, st, &p, reg, &v, true).await?;
    }
    tx.commit().await?;
    Ok(())
}
