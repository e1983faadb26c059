//! The article's figures, computed from the register rows inside the caller's scope (never
//! typed in): the overview API's keys and each system's overview page.

use serde_json::{Map, Value};

use super::store::{Rec, scoped_rows};
use super::{System, catalog};
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::AppResult;

async fn reg_rows(st: &AppState, p: &Principal, name: &str) -> AppResult<Vec<Rec>> {
    match catalog::find(name) {
        Some(r) => scoped_rows(st, p, r, false).await,
        None => Ok(Vec::new()),
    }
}

fn s<'a>(r: &'a Rec, k: &str) -> &'a str {
    r.data.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn n(r: &Rec, k: &str) -> f64 {
    r.data.get(k).and_then(Value::as_f64).unwrap_or(0.0)
}

fn b(r: &Rec, k: &str) -> bool {
    r.data.get(k).and_then(Value::as_bool).unwrap_or(false)
}

/// (key, zh-CN label, system) of every figure.
pub const FIGURES: &[(&str, &str, System)] = &[
    ("research_visits", "主题调研（次）", System::Organization),
    ("problems_solved", "解决重点问题（个）", System::Organization),
    ("seconded_staff", "组团式抽调人员", System::Organization),
    ("alliance_meetings", "联盟会议（次）", System::Organization),
    ("party_service_centers", "党群服务中心", System::Service),
    ("service_stations", "服务驿站/服务点", System::Service),
    ("day_care_centers", "日间照料中心", System::Service),
    ("fitness_centers", "文娱健身中心", System::Service),
    ("after_school_classes", "“4点半课堂”", System::Service),
    ("relocation_sites", "易地扶贫搬迁安置点", System::Service),
    ("relocation_sites_covered", "已覆盖服务的安置点", System::Service),
    ("reporting_units", "报到单位", System::Service),
    ("unit_report_rate", "单位报到率", System::Service),
    ("service_hours_per_member", "在职党员人均服务时长（小时）", System::Service),
    ("property_party_committees", "物业行业党委", System::Service),
    ("property_companies", "物业企业", System::Service),
    ("owners_committees", "业主委员会", System::Service),
    ("red_property_demo_sites", "红色物业示范点", System::Service),
    ("collective_income_yuan", "集体经济收入（元）", System::Development),
    ("township_companies", "联结乡镇集体经济公司", System::Development),
    ("linked_supermarkets", "联动超市", System::Development),
    ("supermarket_turnover_yuan", "超市营业额（元）", System::Development),
    ("supermarket_profit_yuan", "超市利润（元）", System::Development),
    ("community_workers", "社区工作者", System::Governance),
    ("worker_contracts", "签订劳动合同", System::Governance),
    ("grid_workers", "网格员", System::Governance),
    ("grid_party_groups", "网格党小组", System::Governance),
    ("talents", "结对人才", System::Governance),
    ("talent_zones", "人才示范区", System::Governance),
    ("talent_home_area_m2", "城市党建人才之家（㎡）", System::Governance),
    ("communities_underfunded", "工作经费不足10万元的社区", System::Assurance),
    ("offices_up_to_standard", "办公用房达标社区", System::Assurance),
    ("assessed_this_year", "本年度考核评分对象", System::Assurance),
    ("reverse_assessed_departments", "本年度反向考评部门", System::Assurance),
    ("reverse_assessment_average", "反向考评平均分", System::Assurance),
    ("burden_items", "基层减负事项", System::Assurance),
    ("burden_items_met", "减负事项已达标", System::Assurance),
];

/// Every figure for the caller's scope.
pub async fn all(st: &AppState, p: &Principal) -> AppResult<Map<String, Value>> {
    let mut m = Map::new();
    let count = |xs: &[Rec], f: &dyn Fn(&Rec) -> bool| xs.iter().filter(|r| f(r)).count() as i64;
    let visits = reg_rows(st, p, "research_visits").await?;
    m.insert("research_visits".into(), Value::from(visits.len()));
    let problems = reg_rows(st, p, "problems").await?;
    m.insert("problems_solved".into(), Value::from(count(&problems, &|r| s(r, "status") == "已解决")));
    m.insert("seconded_staff".into(), Value::from(reg_rows(st, p, "seconded_staff").await?.len()));
    m.insert("alliance_meetings".into(), Value::from(reg_rows(st, p, "meetings").await?.len()));
    let fac = reg_rows(st, p, "facilities").await?;
    for (key, kinds) in [
        ("party_service_centers", &["党群服务中心"][..]),
        ("service_stations", &["服务驿站", "服务点"][..]),
        ("day_care_centers", &["日间照料中心"][..]),
        ("fitness_centers", &["文娱健身中心"][..]),
        ("after_school_classes", &["4点半课堂"][..]),
    ] {
        m.insert(key.into(), Value::from(count(&fac, &|r| kinds.contains(&s(r, "kind")))));
    }
    // Plus zero: an empty sum of floats is -0.0, which the API printed.
    let home: f64 = fac.iter().filter(|r| s(r, "kind") == "城市党建人才之家").map(|r| n(r, "area")).sum::<f64>() + 0.0;
    m.insert("talent_home_area_m2".into(), Value::from(home));
    // A relocation site is covered when a centre or service point is registered at it.
    let sites: Vec<String> =
        sqlx::query_scalar("SELECT code FROM nodes WHERE kind = 'site' AND retired_at IS NULL AND path LIKE $1 ESCAPE '\\'")
            .bind(format!("{}%", crate::db::like_escape(&p.scope_path)))
            .fetch_all(st.db.read())
            .await?;
    let covered = sites.iter().filter(|c| fac.iter().any(|f| s(f, "community") == c.as_str())).count();
    m.insert("relocation_sites".into(), Value::from(sites.len()));
    m.insert("relocation_sites_covered".into(), Value::from(covered));
    let reports = reg_rows(st, p, "unit_reports").await?;
    let mut reporting: Vec<&str> = reports.iter().map(|r| s(r, "unit")).collect();
    reporting.sort();
    reporting.dedup();
    m.insert("reporting_units".into(), Value::from(reporting.len()));
    // The units due to report here: those whose 报到社区 is in the scope (the whole county
    // also expects those without one), of which the share that reported in the scope.
    let communities = scope_communities(st, p).await?;
    let county = p.scope_path.trim_matches('/').split('/').count() == 1;
    let units = reg_rows(st, p, "units").await?;
    let due: Vec<&str> = units
        .iter()
        .filter(|u| communities.iter().any(|(c, _)| c == s(u, "community")) || (county && s(u, "community").is_empty()))
        .map(|u| s(u, "code"))
        .collect();
    let reported = due.iter().filter(|u| reporting.binary_search(u).is_ok()).count();
    // No unit is due to report in a grid's scope: no rate (0.0 % beside 3 reporting units).
    m.insert(
        "unit_report_rate".into(),
        if due.is_empty() { Value::Null } else { Value::from((reported as f64 / due.len() as f64 * 10000.0).round() / 10000.0) },
    );
    let records = reg_rows(st, p, "service_records").await?;
    let members = reg_rows(st, p, "member_reports").await?.len();
    let hours: f64 = records.iter().filter(|r| b(r, "confirmed")).map(|r| n(r, "hours")).sum();
    m.insert(
        "service_hours_per_member".into(),
        Value::from(if members == 0 { 0.0 } else { (hours / members as f64 * 10.0).round() / 10.0 }),
    );
    m.insert("property_party_committees".into(), Value::from(reg_rows(st, p, "property_committees").await?.len()));
    let companies = reg_rows(st, p, "property_companies").await?;
    m.insert("property_companies".into(), Value::from(companies.len()));
    m.insert("red_property_demo_sites".into(), Value::from(count(&companies, &|r| b(r, "demo_site"))));
    m.insert("owners_committees".into(), Value::from(reg_rows(st, p, "owners_committees").await?.len()));
    let income: f64 = reg_rows(st, p, "revenue").await?.iter().map(|r| n(r, "amount")).sum();
    m.insert("collective_income_yuan".into(), Value::from(income.round()));
    m.insert(
        "township_companies".into(),
        Value::from(count(&reg_rows(st, p, "collective_companies").await?, &|r| s(r, "level") == "乡镇公司")),
    );
    m.insert("linked_supermarkets".into(), Value::from(reg_rows(st, p, "supermarkets").await?.len()));
    let sales = reg_rows(st, p, "sales").await?;
    let turnover: f64 = sales.iter().map(|r| n(r, "amount")).sum();
    let cost: f64 = sales.iter().map(|r| n(r, "cost")).sum();
    m.insert("supermarket_turnover_yuan".into(), Value::from(turnover.round()));
    m.insert("supermarket_profit_yuan".into(), Value::from((turnover - cost).round()));
    let workers = reg_rows(st, p, "community_workers").await?;
    m.insert("community_workers".into(), Value::from(workers.len()));
    m.insert("worker_contracts".into(), Value::from(count(&workers, &|r| !s(r, "contract_start").is_empty())));
    m.insert("grid_workers".into(), Value::from(count(&reg_rows(st, p, "grid_roles").await?, &|r| s(r, "role") == "网格员")));
    m.insert("grid_party_groups".into(), Value::from(reg_rows(st, p, "grid_party_groups").await?.len()));
    m.insert("talents".into(), Value::from(reg_rows(st, p, "talents").await?.len()));
    m.insert("talent_zones".into(), Value::from(reg_rows(st, p, "talent_zones").await?.len()));
    // Communities without a ≥ 10万元 allocation this year.
    let year = this_year();
    let funding = reg_rows(st, p, "funding").await?;
    let under = communities.iter().filter(|(c, _)| !funded(&funding, c, year)).count();
    m.insert("communities_underfunded".into(), Value::from(under));
    // Communities, not rows: a community with two office rows (from before one row per
    // community was the rule) is one.
    let offices = reg_rows(st, p, "offices").await?;
    let mut compliant: Vec<&str> =
        offices.iter().filter(|r| !s(r, "compliant_since").is_empty()).map(|r| s(r, "community")).collect();
    compliant.sort();
    compliant.dedup();
    m.insert("offices_up_to_standard".into(), Value::from(compliant.len()));
    let assessed = reg_rows(st, p, "assessments").await?;
    let mut targets: Vec<&str> = assessed.iter().filter(|r| n(r, "year") == year).map(|r| s(r, "target")).collect();
    targets.sort();
    targets.dedup();
    m.insert("assessed_this_year".into(), Value::from(targets.len()));
    let ranking = reverse_ranking(st, p).await?;
    m.insert("reverse_assessed_departments".into(), Value::from(ranking.len()));
    // Over the streets' scores: each department's average weighed by the streets that scored it.
    let streets: usize = ranking.iter().map(|d| d.streets).sum();
    let total: f64 = ranking.iter().map(|d| d.average * d.streets as f64).sum();
    let average = if streets == 0 { 0.0 } else { (total / streets as f64 * 10.0).round() / 10.0 };
    m.insert("reverse_assessment_average".into(), Value::from(average));
    let burdens = reg_rows(st, p, "burden_reduction").await?;
    m.insert("burden_items".into(), Value::from(burdens.len()));
    let met = count(&burdens, &|r| r.data.get("current").is_some_and(Value::is_number) && n(r, "current") <= n(r, "target"));
    m.insert("burden_items_met".into(), Value::from(met));
    Ok(m)
}

fn this_year() -> f64 {
    chrono::Datelike::year(&crate::cases::calendar::local_date(crate::db::now_ms())) as f64
}

/// One county department as the streets in scope scored it this year.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Department {
    /// Unit code.
    pub code: String,
    /// Name as the assessments give it.
    pub name: String,
    /// Streets that scored it.
    pub streets: usize,
    /// Mean of their overall scores, one decimal.
    pub average: f64,
    /// 优秀 / 良好 / 合格 / 不合格 of the average.
    pub grade: &'static str,
}

/// The reverse assessment of this year (streets score the county departments): each department
/// scored by a street in the caller's scope, best first (ties by code).
pub async fn reverse_ranking(st: &AppState, p: &Principal) -> AppResult<Vec<Department>> {
    let year = this_year();
    let mut by: std::collections::BTreeMap<String, (String, Vec<f64>)> = Default::default();
    for r in reg_rows(st, p, "reverse_assessments").await?.iter().filter(|r| n(r, "year") == year) {
        if let Some(total) = catalog::reverse_total(&r.data) {
            let e = by.entry(s(r, "department").to_string()).or_insert_with(|| (s(r, "department_name").to_string(), Vec::new()));
            e.1.push(total);
        }
    }
    let mut out: Vec<Department> = by
        .into_iter()
        .map(|(code, (name, totals))| {
            let average = (totals.iter().sum::<f64>() / totals.len() as f64 * 10.0).round() / 10.0;
            Department { code, name, streets: totals.len(), average, grade: catalog::grade(average) }
        })
        .collect();
    out.sort_by(|a, b| b.average.total_cmp(&a.average).then_with(|| a.code.cmp(&b.code)));
    Ok(out)
}

fn funded(funding: &[Rec], community: &str, year: f64) -> bool {
    funding.iter().any(|f| s(f, "community") == community && n(f, "year") == year && n(f, "allocated") >= 100_000.0)
}

/// The compliance check of the ≥ 10万元 rule: communities in scope without a sufficient
/// allocation this year (including those with no funding record at all).
pub async fn underfunded(st: &AppState, p: &Principal) -> AppResult<Vec<(String, String)>> {
    let year = this_year();
    let funding = reg_rows(st, p, "funding").await?;
    Ok(scope_communities(st, p).await?.into_iter().filter(|(c, _)| !funded(&funding, c, year)).collect())
}

/// (code, name) of the active communities in the caller's scope, by code.
async fn scope_communities(st: &AppState, p: &Principal) -> AppResult<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT code, name FROM nodes WHERE kind = 'community' AND retired_at IS NULL AND path LIKE $1 ESCAPE '\\' ORDER BY code",
    )
    .bind(format!("{}%", crate::db::like_escape(&p.scope_path)))
    .fetch_all(st.db.read())
    .await?)
}

/// The figures of one system, labelled, for its overview page.
pub async fn labelled(st: &AppState, p: &Principal, sys: System) -> AppResult<Vec<(String, String)>> {
    let m = all(st, p).await?;
    Ok(FIGURES
        .iter()
        .filter(|(_, _, s)| *s == sys)
        .map(|(k, label, _)| {
            let v = match m.get(*k) {
                Some(Value::Number(x)) if *k == "unit_report_rate" => format!("{:.1}%", x.as_f64().unwrap_or(0.0) * 100.0),
                Some(Value::Number(x)) => x
                    .as_f64()
                    .map(|f| if f.fract() == 0.0 { format!("{}", f as i64) } else { format!("{f}") })
                    .unwrap_or_default(),
                _ => "—".into(),
            };
            (label.to_string(), v)
        })
        .collect())
}
