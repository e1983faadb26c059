//! The registers of the five systems, declared on the one mechanism. Adding a register is
//! adding an entry here.

use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::Ty::*;
use super::{Computed, Field, Register, System, ToCase};
use crate::tree::Kind;

// The kinds of node a field names: a street's code where a community is meant would put the
// row in the wrong scope and the figures.
const COMMUNITY: super::Ty = Node(&[Kind::Community]);
const COMMUNITY_OR_SITE: super::Ty = Node(&[Kind::Community, Kind::Site]);
const COMMUNITY_OR_GRID: super::Ty = Node(&[Kind::Community, Kind::Grid]);
const GRID: super::Ty = Node(&[Kind::Grid]);
const GRID_OR_BUILDING: super::Ty = Node(&[Kind::Grid, Kind::Building]);
const COMPOUND: super::Ty = Node(&[Kind::Compound]);
const STREET: super::Ty = Node(&[Kind::Street]);
const UNIT: super::Ty = Unit(&[]);
/// What a street scores in 反向考评: the county's departments and offices, not a company.
const DEPARTMENT: super::Ty = Unit(&["部门", "机关"]);

/// The help of a name kept beside a code (see `store::validate`).
const FROM_CODE: &str = "按编码自动填写";

const fn f(key: &'static str, title: &'static str, ty: super::Ty, required: bool, list: bool) -> Field {
    Field { key, title, ty, required, list, help: "", range: None }
}

const fn h(key: &'static str, title: &'static str, ty: super::Ty, required: bool, list: bool, help: &'static str) -> Field {
    Field { key, title, ty, required, list, help, range: None }
}

fn date(row: &Map<String, Value>, key: &str) -> Option<NaiveDate> {
    row.get(key).and_then(Value::as_str).and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
}

fn num(row: &Map<String, Value>, key: &str) -> f64 {
    row.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

/// 有效 / 60天内到期 / 已到期 / 未生效 from start and end dates.
pub fn term_state(row: &Map<String, Value>, today: NaiveDate, start: &str, end: &str) -> Value {
    let state = match (date(row, start), date(row, end)) {
        (Some(s), _) if s > today => "未生效",
        (_, Some(e)) if e < today => "已到期",
        (_, Some(e)) if (e - today).num_days() <= 60 => "60天内到期",
        (Some(_), _) => "有效",
        _ => "",
    };
    Value::from(state)
}

fn agreement_state(r: &Map<String, Value>, t: NaiveDate) -> Value {
    term_state(r, t, "start_date", "end_date")
}

fn contract_state(r: &Map<String, Value>, t: NaiveDate) -> Value {
    if r.get("contract_start").is_none_or(Value::is_null) {
        Value::from("未签订")
    } else {
        term_state(r, t, "contract_start", "contract_end")
    }
}

fn profit(r: &Map<String, Value>, _: NaiveDate) -> Value {
    Value::from(((num(r, "amount") - num(r, "cost")) * 100.0).round() / 100.0)
}

fn funding_ok(r: &Map<String, Value>, _: NaiveDate) -> Value {
    Value::from(if num(r, "allocated") >= 100_000.0 { "达标" } else { "不足10万元" })
}

fn progress_state(r: &Map<String, Value>, t: NaiveDate) -> Value {
    let done = r.get("status").and_then(Value::as_str) == Some("已解决");
    Value::from(match date(r, "deadline") {
        _ if done => "已销号",
        Some(d) if d < t => "逾期",
        _ => "推进中",
    })
}

/// 优秀 / 良好 / 合格 / 不合格 of a score out of 100 (the usual bands of a 年度考核).
pub fn grade(score: f64) -> &'static str {
    match score {
        s if s >= 90.0 => "优秀",
        s if s >= 80.0 => "良好",
        s if s >= 60.0 => "合格",
        _ => "不合格",
    }
}

fn assessment_grade(r: &Map<String, Value>, _: NaiveDate) -> Value {
    Value::from(r.get("score").and_then(Value::as_f64).map(grade).unwrap_or_default())
}

/// The items a street scores a county department on.
pub const REVERSE_ITEMS: [&str; 3] = ["attitude", "efficiency", "support"];

/// A reverse assessment's overall score: the mean of its items, one decimal.
pub fn reverse_total(r: &Map<String, Value>) -> Option<f64> {
    let items: Vec<f64> = REVERSE_ITEMS.iter().filter_map(|k| r.get(*k).and_then(Value::as_f64)).collect();
    (items.len() == REVERSE_ITEMS.len()).then(|| (items.iter().sum::<f64>() / items.len() as f64 * 10.0).round() / 10.0)
}

fn reverse_total_col(r: &Map<String, Value>, _: NaiveDate) -> Value {
    reverse_total(r).map(Value::from).unwrap_or(Value::Null)
}

fn reverse_grade(r: &Map<String, Value>, _: NaiveDate) -> Value {
    Value::from(reverse_total(r).map(grade).unwrap_or_default())
}

/// A burden-reduction item: 已达标 once what is left is within the target, else 逾期 past its
/// deadline, else 推进中.
fn burden_state(r: &Map<String, Value>, t: NaiveDate) -> Value {
    let left = r.get("current").and_then(Value::as_f64);
    Value::from(match (left, date(r, "deadline")) {
        (Some(n), _) if n <= num(r, "target") => "已达标",
        (_, Some(d)) if d < t => "逾期",
        _ => "推进中",
    })
}

/// Facility types of the service system.
pub const FACILITY_KINDS: &[&str] =
    &["党群服务中心", "服务驿站", "服务点", "日间照料中心", "文娱健身中心", "4点半课堂", "城市党建人才之家"];
/// Unit types.
pub const UNIT_KINDS: &[&str] = &["机关", "事业", "国企", "非公", "教育", "医院", "部门"];

/// Every register.
pub static REGISTERS: &[Register] = &[
    Register {
        name: "units",
        title: "成员单位",
        system: System::Organization,
        name_field: "name",
        scope_field: None,
        computed: &[],
        to_case: None,
        unique: &["code"],
        personal: false,
        fields: &[
            h("code", "单位编码", Code, true, true, "与派单使用的单位编码一致，如 DW001"),
            f("name", "单位名称", Text, true, true),
            f("kind", "单位类型", Enum(UNIT_KINDS), true, true),
            h("credit_code", "统一社会信用代码", CreditCode, false, true, "18 位，按 GB 32100 校验"),
            f("party_org", "党组织名称", Text, false, true),
            f("contact_name", "联系人", Text, false, true),
            f("contact_phone", "联系电话", Phone, false, false),
            h("community", "报到社区", COMMUNITY, false, true, "12 位社区代码"),
        ],
    },
    Register {
        name: "agreements",
        title: "共建协议",
        system: System::Organization,
        name_field: "title",
        scope_field: Some("community"),
        computed: &[Computed { key: "state", title: "状态", f: agreement_state }],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("title", "协议名称", Text, true, true),
            f("community", "社区", COMMUNITY, true, true),
            h("unit", "共建单位", UNIT, true, true, "单位编码"),
            f("start_date", "开始日期", Date, true, true),
            f("end_date", "结束日期", Date, true, true),
            f("content", "共建内容", LongText, false, false),
        ],
    },
    Register {
        name: "research_visits",
        title: "主题调研（四张清单）",
        system: System::Organization,
        name_field: "topic",
        scope_field: Some("community"),
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("topic", "调研主题", Text, true, true),
            f("date", "调研日期", Date, true, true),
            f("leader", "带队领导", Text, true, true),
            f("community", "调研社区", COMMUNITY, true, true),
            f("summary", "调研情况", LongText, false, false),
        ],
    },
    Register {
        name: "problems",
        title: "问题清单",
        system: System::Organization,
        name_field: "problem",
        scope_field: Some("community"),
        computed: &[Computed { key: "progress_state", title: "进度状态", f: progress_state }],
        to_case: Some(ToCase { channel: "research_visit", text: "problem", node: "community", category: "qita" }),
        unique: &[],
        personal: false,
        fields: &[
            f("problem", "问题", Text, true, true),
            h("visit", "所属调研", Text, false, true, "调研主题"),
            f("community", "社区", COMMUNITY, true, true),
            f("task", "任务清单", Text, false, false),
            h("responsible", "责任单位/责任人", Text, true, true, "责任清单"),
            f("result", "成果清单", Text, false, false),
            f("status", "状态", Enum(&["未开始", "推进中", "已解决"]), true, true),
            f("progress", "进度%", Int, false, true).within(0.0, 100.0),
            f("deadline", "完成时限", Date, false, true),
            h("case_number", "关联事项编号", Text, false, true, "转为事项后自动填写"),
        ],
    },
    Register {
        name: "meetings",
        title: "联盟会议",
        system: System::Organization,
        name_field: "title",
        scope_field: None,
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("title", "会议名称", Text, true, true),
            f("date", "日期", Date, true, true),
            h("attendees", "参会单位（签到）", LongText, false, false, "以顿号分隔"),
            f("agenda", "议程", LongText, false, false),
            f("minutes", "纪要", LongText, false, false),
            f("decisions", "议定事项", LongText, false, false),
            f("follow_up_done", "议定事项已办结", Bool, false, true),
        ],
    },
    Register {
        name: "seconded_staff",
        title: "组团式联合办公人员",
        system: System::Organization,
        name_field: "name",
        scope_field: None,
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("name", "姓名", Text, true, true),
            h("home_unit", "派出单位", Text, true, true, "县直单位或街道"),
            f("post", "岗位", Text, false, true),
            f("start_date", "到岗日期", Date, false, true),
        ],
    },
    Register {
        name: "facilities",
        title: "服务阵地",
        system: System::Service,
        name_field: "name",
        scope_field: Some("community"),
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("name", "名称", Text, true, true),
            f("kind", "类型", Enum(FACILITY_KINDS), true, true),
            h("community", "所属社区或安置点", COMMUNITY_OR_SITE, true, true, "社区代码，或安置点编码"),
            f("area", "面积（㎡）", Number, false, true),
            f("hours", "开放时间", Text, false, false),
            f("services", "服务内容", LongText, false, false),
            // Within China.
            f("lng", "经度", Number, false, false).within(73.0, 136.0),
            f("lat", "纬度", Number, false, false).within(3.0, 54.0),
        ],
    },
    Register {
        name: "unit_reports",
        title: "单位报到（双报到）",
        system: System::Service,
        name_field: "unit_name",
        scope_field: Some("community"),
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("unit", "单位编码", UNIT, true, true),
            h("unit_name", "单位名称", Text, false, true, FROM_CODE),
            f("community", "报到社区", COMMUNITY, true, true),
            f("date", "报到日期", Date, true, true),
            f("services", "认领服务", LongText, false, false),
            f("review", "年度评价", Enum(&["优秀", "良好", "一般", "较差"]), false, true),
        ],
    },
    Register {
        name: "member_reports",
        title: "在职党员报到",
        system: System::Service,
        name_field: "name",
        scope_field: Some("community"),
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("name", "姓名", Text, true, true),
            f("unit", "工作单位编码", UNIT, false, true),
            f("community", "居住地社区", COMMUNITY, true, true),
            f("date", "报到日期", Date, true, true),
            f("mobile", "手机号", Mobile, false, true),
        ],
    },
    Register {
        name: "service_records",
        title: "志愿服务记录",
        system: System::Service,
        name_field: "what",
        scope_field: Some("community"),
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("member", "党员姓名", Text, true, true),
            f("what", "服务内容", Text, true, true),
            f("community", "社区", COMMUNITY, true, true),
            f("date", "日期", Date, true, true),
            // One record per activity, and an activity within a day.
            f("hours", "服务时长（小时）", Number, true, true).within(0.0, 24.0),
            f("points", "积分", Int, false, true),
            h("confirmed", "社区确认", Bool, false, true, "谁记录谁证明"),
            h("case", "关联事项", Text, false, true, "党员认领事项办结时自动生成；社区结案即确认"),
        ],
    },
    Register {
        name: "property_committees",
        title: "物业行业党委",
        system: System::Service,
        name_field: "name",
        scope_field: None,
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("name", "名称", Text, true, true),
            f("secretary", "书记", Text, false, true),
            f("founded", "成立日期", Date, false, true),
        ],
    },
    Register {
        name: "property_companies",
        title: "物业企业",
        system: System::Service,
        name_field: "name",
        scope_field: None,
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("name", "企业名称", Text, true, true),
            f("credit_code", "统一社会信用代码", CreditCode, true, true),
            f("party_org", "党组织", Text, false, true),
            h("compounds", "服务小区", LongText, false, false, "小区编码，以逗号分隔"),
            f("demo_site", "红色物业示范点", Bool, false, true),
        ],
    },
    Register {
        name: "owners_committees",
        title: "业主委员会",
        system: System::Service,
        name_field: "name",
        scope_field: Some("compound"),
        computed: &[Computed { key: "state", title: "任期状态", f: |r, t| term_state(r, t, "term_start", "term_end") }],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("name", "名称", Text, true, true),
            f("compound", "小区编码", COMPOUND, true, true),
            f("members", "成员", LongText, false, false),
            f("term_start", "任期开始", Date, false, true),
            f("term_end", "任期结束", Date, false, true),
        ],
    },
    Register {
        name: "collective_companies",
        title: "集体经济公司",
        system: System::Development,
        name_field: "name",
        scope_field: None,
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("name", "公司名称", Text, true, true),
            f("level", "层级", Enum(&["县级联合公司", "乡镇公司"]), true, true),
            f("credit_code", "统一社会信用代码", CreditCode, false, true),
            f("business_lines", "业务板块", Text, false, true),
            f("linked_to", "联结公司", Text, false, true),
        ],
    },
    Register {
        name: "revenue",
        title: "集体经济收入台账",
        system: System::Development,
        name_field: "source",
        scope_field: None,
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("date", "日期", Date, true, true),
            f("company", "公司", Text, true, true),
            f("line", "业务板块", Enum(&["农副产品销售", "家政服务", "养老托幼", "物业管理", "仓储运输"]), true, true),
            f("amount", "金额（元）", Money, true, true),
            f("source", "来源", Text, true, true),
        ],
    },
    Register {
        name: "supermarkets",
        title: "联动超市",
        system: System::Development,
        name_field: "name",
        scope_field: None,
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("name", "名称", Text, true, true),
            f("opened", "开业日期", Date, true, true),
            f("address", "地址", Text, false, true),
            f("suppliers", "供货来源", LongText, false, false),
        ],
    },
    Register {
        name: "sales",
        title: "超市销售台账",
        system: System::Development,
        name_field: "supermarket",
        scope_field: None,
        computed: &[Computed { key: "profit", title: "利润（元）", f: profit }],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("supermarket", "超市", Text, true, true),
            f("date", "日期", Date, true, true),
            f("channel", "“六进”渠道", Enum(&["机关", "校园", "企业", "农村", "社区", "安置点"]), true, true),
            f("amount", "销售额（元）", Money, true, true),
            f("cost", "成本（元）", Money, true, true),
        ],
    },
    Register {
        name: "community_workers",
        title: "社区工作者",
        system: System::Governance,
        name_field: "name",
        scope_field: Some("community"),
        computed: &[Computed { key: "contract_state", title: "劳动合同", f: contract_state }],
        to_case: None,
        unique: &[],
        // Grade, contract dates, insurance, ID number: the community's and those above it.
        personal: true,
        fields: &[
            f("name", "姓名", Text, true, true),
            f("community", "社区", COMMUNITY, true, true),
            f("post", "岗位", Text, false, true),
            f("grade", "等级（定岗定级）", Enum(&["一级", "二级", "三级", "四级", "五级", "六级"]), false, true),
            f("certified", "持证", Bool, false, true),
            f("contract_start", "合同开始", Date, false, true),
            f("contract_end", "合同结束", Date, false, true),
            f("insurance", "五险一金", Bool, false, true),
            f("id_number", "身份证号", IdNumber, false, false),
        ],
    },
    Register {
        name: "grid_roles",
        title: "网格员与“三小长”",
        system: System::Governance,
        name_field: "name",
        scope_field: Some("node"),
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("name", "姓名", Text, true, true),
            f("role", "角色", Enum(&["网格员", "党小组长", "街区长", "楼栋长"]), true, true),
            h("node", "负责网格/楼栋", GRID_OR_BUILDING, true, true, "网格编码或楼栋编码"),
            f("wulao", "“五老”", Bool, false, true),
            f("mobile", "手机号", Mobile, false, true),
        ],
    },
    Register {
        name: "grid_party_groups",
        title: "网格党小组",
        system: System::Governance,
        name_field: "name",
        scope_field: Some("grid"),
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("name", "名称", Text, true, true),
            f("grid", "网格编码", GRID, true, true),
            f("leader", "党小组长", Text, false, true),
            f("members", "党员人数", Int, false, true),
        ],
    },
    Register {
        name: "visits",
        title: "入户走访",
        system: System::Governance,
        name_field: "household",
        scope_field: Some("node"),
        computed: &[],
        to_case: Some(ToCase { channel: "grid_visit", text: "issue", node: "node", category: "qita" }),
        unique: &[],
        personal: false,
        fields: &[
            f("visitor", "走访人", Text, true, true),
            f("household", "走访对象（户）", Text, true, true),
            f("node", "网格/楼栋", GRID_OR_BUILDING, true, true),
            f("date", "日期", Date, true, true),
            h("notes", "走访记录", Secret, false, false, "加密保存，仅授权人员可查看"),
            h("issue", "发现问题", Text, false, true, "填写后可转为事项"),
            h("case_number", "关联事项编号", Text, false, true, "转为事项后自动填写"),
        ],
    },
    Register {
        name: "talents",
        title: "人才",
        system: System::Governance,
        name_field: "name",
        scope_field: None,
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("name", "姓名", Text, true, true),
            f("field", "领域", Enum(&["科技", "教育", "卫生", "农业", "文化", "管理"]), true, true),
            f("origin", "来源", Text, false, true),
            f("paired_with", "结对单位/社区", Text, false, true),
            f("zone", "示范区", Text, false, true),
        ],
    },
    Register {
        name: "talent_zones",
        title: "人才示范区",
        system: System::Governance,
        name_field: "name",
        scope_field: None,
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("name", "名称", Text, true, true),
            f("field", "领域", Text, false, true),
            f("address", "地址", Text, false, true),
        ],
    },
    Register {
        name: "funding",
        title: "社区工作经费",
        system: System::Assurance,
        name_field: "community_name",
        scope_field: Some("community"),
        computed: &[Computed { key: "compliance", title: "≥10万元", f: funding_ok }],
        to_case: None,
        unique: &["community", "year"],
        personal: false,
        fields: &[
            f("community", "社区", COMMUNITY, true, true),
            h("community_name", "社区名称", Text, false, true, FROM_CODE),
            f("year", "年度", Int, true, true).within(2000.0, 2100.0),
            f("allocated", "拨付（元）", Money, true, true),
            f("spent", "支出（元）", Money, false, true),
        ],
    },
    Register {
        name: "offices",
        title: "办公用房达标",
        system: System::Assurance,
        name_field: "community_name",
        scope_field: Some("community"),
        computed: &[],
        to_case: None,
        // One office per community: a second row counted it twice in 办公用房达标社区.
        unique: &["community"],
        personal: false,
        fields: &[
            f("community", "社区", COMMUNITY, true, true),
            h("community_name", "社区名称", Text, false, true, FROM_CODE),
            f("area", "面积（㎡）", Number, false, true),
            f("checklist", "达标清单", LongText, false, false),
            f("compliant_since", "达标日期", Date, false, true),
        ],
    },
    Register {
        name: "secretaries",
        title: "书记第一责任人清单",
        system: System::Assurance,
        name_field: "name",
        scope_field: None,
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("name", "姓名", Text, true, true),
            f("level", "层级", Enum(&["县", "街道", "社区"]), true, true),
            f("duties", "责任事项", LongText, false, false),
            f("done", "年度完成事项数", Int, false, true),
        ],
    },
    Register {
        name: "assessments",
        title: "考核评分",
        system: System::Assurance,
        name_field: "target",
        scope_field: None,
        computed: &[Computed { key: "grade", title: "等次", f: assessment_grade }],
        to_case: None,
        unique: &["target", "year", "assessor"],
        personal: false,
        fields: &[
            h("target", "被考核对象", Text, true, true, "单位、部门、街道或社区的名称"),
            f("target_kind", "对象类型", Enum(&["成员单位", "县直部门", "街道", "社区"]), true, true),
            f("year", "年度", Int, true, true).within(2000.0, 2100.0),
            h("score", "得分", Score, true, true, "百分制：90 分以上优秀，80 分以上良好，60 分以上合格"),
            h("assessor", "考核主体", Text, true, true, "如 县委组织部、县城市基层党建工作领导小组"),
            f("deductions", "扣分事项", LongText, false, false),
        ],
    },
    Register {
        name: "reverse_assessments",
        title: "反向考评（街道评县直部门）",
        system: System::Assurance,
        name_field: "department_name",
        scope_field: Some("street"),
        computed: &[
            Computed { key: "total", title: "综合得分", f: reverse_total_col },
            Computed { key: "grade", title: "等次", f: reverse_grade },
        ],
        to_case: None,
        unique: &["street", "department", "year"],
        personal: false,
        fields: &[
            h("street", "评价街道", STREET, true, true, "9 位街道代码"),
            h("department", "被评部门", DEPARTMENT, true, true, "县直部门或机关的单位编码"),
            h("department_name", "部门名称", Text, false, true, FROM_CODE),
            f("year", "年度", Int, true, true).within(2000.0, 2100.0),
            h("attitude", "服务态度", Score, true, true, "0～100 分"),
            h("efficiency", "办事效率", Score, true, true, "0～100 分"),
            h("support", "支持基层", Score, true, true, "0～100 分：下沉力量、解决问题、不推诿"),
            f("opinion", "意见建议", LongText, false, false),
        ],
    },
    Register {
        name: "burden_reduction",
        title: "基层减负事项",
        system: System::Assurance,
        name_field: "item",
        scope_field: None,
        computed: &[Computed { key: "state", title: "进度", f: burden_state }],
        to_case: None,
        unique: &["item"],
        personal: false,
        fields: &[
            f("item", "减负事项", Text, true, true),
            f(
                "kind",
                "类别",
                Enum(&["报表填报", "会议活动", "检查考核", "台账资料", "挂牌", "政务APP与工作群", "其他"]),
                true,
                true,
            ),
            h("baseline", "清理前数量", Int, true, true, "如 原有报表 40 张"),
            h("target", "目标数量", Int, true, true, "清理后不超过"),
            h("current", "现有数量", Int, false, true, "不多于目标数量即为已达标"),
            f("deadline", "完成时限", Date, false, true),
            f("lead", "牵头单位", Text, false, true),
        ],
    },
    Register {
        name: "documents",
        title: "联盟章程与制度",
        system: System::Organization,
        name_field: "title",
        scope_field: None,
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("title", "标题", Text, true, true),
            f("kind", "类别", Enum(&["工作原则", "工作要点", "工作制度"]), true, true),
            f("version", "版本", Text, false, true),
            f("issued", "印发日期", Date, false, true),
            f("body", "正文", LongText, false, false),
            h("attachment", "附件", Text, false, false, "附件文件名或内网地址"),
        ],
    },
    Register {
        name: "cross_appointments",
        title: "干部交叉任职",
        system: System::Organization,
        name_field: "person",
        scope_field: Some("community"),
        computed: &[Computed { key: "state", title: "任职状态", f: |r, t| term_state(r, t, "start_date", "end_date") }],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("person", "姓名", Text, true, true),
            f("home_unit", "原单位编码", UNIT, true, true),
            f("community", "任职社区", COMMUNITY, true, true),
            f("post", "兼任职务", Text, true, true),
            f("start_date", "开始日期", Date, true, true),
            f("end_date", "结束日期", Date, false, true),
        ],
    },
    Register {
        name: "talent_pairings",
        title: "人才结对培养",
        system: System::Organization,
        name_field: "mentor",
        scope_field: Some("community"),
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("mentor", "导师", Text, true, true),
            f("trainee", "培养对象", Text, true, true),
            f("community", "社区", COMMUNITY, true, true),
            f("start_date", "结对日期", Date, false, true),
            f("goal", "培养目标", Text, false, false),
        ],
    },
    Register {
        name: "leader_contacts",
        title: "县级领导联系社区网格",
        system: System::Organization,
        name_field: "leader",
        scope_field: Some("node"),
        computed: &[Computed { key: "state", title: "状态", f: |r, t| term_state(r, t, "start_date", "end_date") }],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("leader", "县级领导", Text, true, true),
            h("node", "联系社区/网格", COMMUNITY_OR_GRID, true, true, "社区代码或网格编码"),
            f("start_date", "开始日期", Date, true, true),
            f("end_date", "结束日期", Date, false, true),
        ],
    },
    Register {
        name: "evaluations",
        title: "双向评价",
        system: System::Organization,
        name_field: "subject",
        scope_field: None,
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("subject", "被评价方", Text, true, true),
            f("direction", "方向", Enum(&["联盟评成员单位", "成员单位评联盟"]), true, true),
            f("period", "评价期", Text, true, true),
            h("score", "得分", Score, true, true, "百分制"),
            f("comment", "评语", LongText, false, false),
        ],
    },
    Register {
        name: "wuyi_members",
        title: "乌江流域党建联建成员",
        system: System::Development,
        name_field: "name",
        scope_field: None,
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("name", "成员", Text, true, true),
            f("role", "角色", Enum(&["牵头方", "成员"]), true, true),
            f("corridor", "所属走廊", Text, false, true),
        ],
    },
    Register {
        name: "wuyi_meetings",
        title: "乌江流域联席会议",
        system: System::Development,
        name_field: "title",
        scope_field: None,
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("title", "会议", Text, true, true),
            f("date", "日期", Date, true, true),
            f("host", "承办方", Text, false, true),
            f("decisions", "议定事项", LongText, false, false),
        ],
    },
    Register {
        name: "recruitment",
        title: "社区工作者招聘批次",
        system: System::Governance,
        name_field: "batch",
        scope_field: None,
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("batch", "批次", Text, true, true),
            f("date", "日期", Date, true, true),
            f("posts", "岗位数", Int, true, true),
            f("hired", "录用人数", Int, false, true),
        ],
    },
    Register {
        name: "contact_points",
        title: "“两代表一委员”联系点",
        system: System::Governance,
        name_field: "name",
        scope_field: Some("community"),
        computed: &[],
        to_case: None,
        unique: &[],
        personal: false,
        fields: &[
            f("name", "联系点", Text, true, true),
            f("community", "社区", COMMUNITY, true, true),
            f("representatives", "代表委员", Text, true, true),
            f("schedule", "接待安排", Text, false, true),
        ],
    },
    Register {
        name: "mailbox",
        title: "网格信箱",
        system: System::Governance,
        name_field: "message",
        scope_field: Some("grid"),
        computed: &[],
        to_case: Some(ToCase { channel: "grid_mailbox", text: "message", node: "grid", category: "qita" }),
        unique: &[],
        personal: false,
        fields: &[
            f("message", "意见内容", LongText, true, true),
            f("grid", "网格编码", GRID, true, true),
            f("date", "收到日期", Date, true, true),
            h("case_number", "关联事项编号", Text, false, true, "转为事项后自动填写"),
        ],
    },
];

/// A register by name.
pub fn find(name: &str) -> Option<&'static Register> {
    REGISTERS.iter().find(|r| r.name == name)
}
