//! One register mechanism for the many rosters of the five systems. A register is declared
//! (fields with types, the field that decides its scope, list columns, computed columns) and
//! gets, with no code of its own: list with filters/sort/paging and pinyin search, detail with
//! history, create/edit with field-level errors, retire, the JSON API, audit, and Excel
//! export, template and all-or-nothing import (also from the CLI).
//!
//! Rows live in one table (`register_rows`) as JSON documents: registers are county-sized
//! (hundreds to thousands of rows), so filters and sorting run in memory over the caller's
//! scope and the schema stays identical on SQLite and PostgreSQL.

pub mod catalog;
pub mod demo;
pub mod figures;
pub mod names;
pub mod reveal;
pub mod routes;
pub mod store;
pub mod xlsx;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::ident::{CreditCode, IdNumber, Mobile};
use crate::privacy::Keyring;

/// The five systems of the complex.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum System {
    /// 组织体系
    Organization,
    /// 服务体系
    Service,
    /// 发展体系
    Development,
    /// 治理体系
    Governance,
    /// 保障体系
    Assurance,
}

impl System {
    /// Every system in the article's order.
    pub const ALL: [System; 5] =
        [System::Organization, System::Service, System::Development, System::Governance, System::Assurance];

    /// zh-CN name.
    pub fn label(self) -> &'static str {
        match self {
            System::Organization => "组织体系",
            System::Service => "服务体系",
            System::Development => "发展体系",
            System::Governance => "治理体系",
            System::Assurance => "保障体系",
        }
    }

    /// URL segment.
    pub fn slug(self) -> &'static str {
        match self {
            System::Organization => "organization",
            System::Service => "service",
            System::Development => "development",
            System::Governance => "governance",
            System::Assurance => "assurance",
        }
    }
}

/// What a field holds; parsing a cell or form value through it yields a valid JSON value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ty {
    /// Short text (≤ 200 chars).
    Text,
    /// Long text (≤ 5000 chars).
    LongText,
    /// Whole number.
    Int,
    /// Decimal number.
    Number,
    /// Money in 元, two decimals.
    Money,
    /// A score out of 100 (0–100, one decimal): assessments.
    Score,
    /// YYYY-MM-DD.
    Date,
    /// 是/否.
    Bool,
    /// One of the values.
    Enum(&'static [&'static str]),
    /// 统一社会信用代码 (GB 32100).
    CreditCode,
    /// Mobile (work contact; stored plain, shown masked).
    Mobile,
    /// A work contact number: a mobile or a landline with its area code.
    Phone,
    /// 身份证号: encrypted at rest, masked on screen.
    IdNumber,
    /// Personal free text (visit notes): encrypted at rest, hidden in lists.
    Secret,
    /// A tree node code of one of these kinds; decides the row's scope when it is the
    /// register's scope field.
    Node(&'static [crate::tree::Kind]),
    /// A unit code of the unit registry, of one of these kinds (none: any).
    Unit(&'static [&'static str]),
    /// An identifier (a unit's code): full-width characters made half-width, upper case,
    /// letters, digits, `_` and `-` only.
    Code,
}

/// A declared field.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// JSON key and form name.
    pub key: &'static str,
    /// zh-CN column title (also the Excel header).
    pub title: &'static str,
    /// Type.
    pub ty: Ty,
    /// Must be filled.
    pub required: bool,
    /// Shown in the list and offered as a filter.
    pub list: bool,
    /// Explanation for the template's comment row.
    pub help: &'static str,
    /// The values a number may take (inclusive). Without it a whole number, a decimal or an
    /// amount may be anything from 0 up: every such field counts or measures something.
    pub range: Option<(f64, f64)>,
}

impl Field {
    /// The field, taking numbers from `lo` to `hi` only.
    pub const fn within(mut self, lo: f64, hi: f64) -> Field {
        self.range = Some((lo, hi));
        self
    }
}

/// The largest number a field takes when its declaration sets no range.
const MAX_NUMBER: f64 = 1e12;

/// A column computed from a row (a contract's state from its dates, a profit, a flag).
#[derive(Clone, Copy)]
pub struct Computed {
    /// JSON key.
    pub key: &'static str,
    /// zh-CN title.
    pub title: &'static str,
    /// The rule; `today` is the local date.
    pub f: fn(&Map<String, Value>, chrono::NaiveDate) -> Value,
}

impl std::fmt::Debug for Computed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key)
    }
}

/// A declared register.
#[derive(Clone, Copy, Debug)]
pub struct Register {
    /// URL and API name.
    pub name: &'static str,
    /// zh-CN title.
    pub title: &'static str,
    /// The system it belongs to.
    pub system: System,
    /// Fields in form order.
    pub fields: &'static [Field],
    /// The field whose value names the row (`name` or `title`).
    pub name_field: &'static str,
    /// The node field that scopes the row (None: the county).
    pub scope_field: Option<&'static str>,
    /// Computed columns.
    pub computed: &'static [Computed],
    /// Rows of this register can be turned into a case (a problem, a visit's finding, a mailbox
    /// message) that the row then follows through `case_number`.
    pub to_case: Option<ToCase>,
    /// Fields that together name one active row (a unit's code; a community's year): a second
    /// row with the same values is refused, in a form and in an import.
    pub unique: &'static [&'static str],
    /// The rows are staff's personal employment records (grade, contract, insurance): read
    /// within one's scope and from above it only, not as an ancestor's row from below (a grid
    /// worker read the community's staff records).
    pub personal: bool,
}

/// How a row becomes a case.
#[derive(Clone, Copy, Debug)]
pub struct ToCase {
    /// Case channel.
    pub channel: &'static str,
    /// Field holding the text of the case.
    pub text: &'static str,
    /// Node field locating it (grid, building or community).
    pub node: &'static str,
    /// Category when the caller names none.
    pub category: &'static str,
}

impl Register {
    /// A field by key.
    pub fn field(&self, key: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.key == key)
    }
}

/// Turns one raw value (form text, JSON, Excel cell) into the stored JSON value, or a zh-CN
/// error. Empty input is `Null` (the caller checks `required`).
pub fn parse_value(f: &Field, raw: &Value, keys: &Keyring) -> Result<Value, String> {
    let text = text_of(raw).trim().to_string();
    if text.is_empty() {
        return Ok(Value::Null);
    }
    let num = |t: &str| t.replace([',', '，', ' '], "").parse::<f64>().ok().filter(|x| x.is_finite());
    let (lo, hi) = f.range.unwrap_or((0.0, MAX_NUMBER));
    let out_of_range = |x: f64| match f.range {
        Some(_) => format!("应在 {lo}～{hi} 之间"),
        None if x < 0.0 => "不能为负数".into(),
        None => "数值过大".into(),
    };
    match f.ty {
        Ty::Text if text.chars().count() > 200 => Err("不能超过 200 个字".into()),
        Ty::LongText if text.chars().count() > 5000 => Err("不能超过 5000 个字".into()),
        Ty::Text | Ty::LongText => Ok(Value::String(text)),
        Ty::Int => match num(&text) {
            Some(x) if x.fract() == 0.0 && (lo..=hi).contains(&x) => Ok(Value::from(x as i64)),
            Some(x) if x.fract() == 0.0 => Err(out_of_range(x)),
            _ => Err("应为整数".into()),
        },
        Ty::Number => match num(&text) {
            Some(x) if (lo..=hi).contains(&x) => Ok(Value::from(x + 0.0)),
            Some(x) => Err(out_of_range(x)),
            None => Err("应为数字".into()),
        },
        Ty::Score => match num(text.trim_end_matches('分')) {
            // Plus zero: "-0" is 0, not -0.0.
            Some(x) if (0.0..=100.0).contains(&x) => Ok(Value::from((x * 10.0).round() / 10.0 + 0.0)),
            _ => Err("应为 0～100 的分数".into()),
        },
        Ty::Money => match num(text.trim_end_matches('元')) {
            Some(x) if (lo..=hi).contains(&x) => Ok(Value::from((x * 100.0).round() / 100.0 + 0.0)),
            Some(x) => Err(out_of_range(x)),
            _ => Err("金额应为数字（单位：元）".into()),
        },
        Ty::Date => match parse_date(&text) {
            Some(d) if (1900..=2100).contains(&chrono::Datelike::year(&d)) => Ok(Value::String(d.format("%Y-%m-%d").to_string())),
            Some(_) => Err("日期应在 1900～2100 年之间".into()),
            None => Err("日期格式应为 YYYY-MM-DD".into()),
        },
        Ty::Bool => match text.as_str() {
            "是" | "true" | "1" | "Y" | "y" | "yes" => Ok(Value::Bool(true)),
            "否" | "false" | "0" | "N" | "n" | "no" => Ok(Value::Bool(false)),
            _ => Err("应为“是”或“否”".into()),
        },
        Ty::Enum(values) => {
            if values.contains(&text.as_str()) {
                Ok(Value::String(text))
            } else {
                Err(format!("应为以下之一：{}", values.join("、")))
            }
        }
        Ty::CreditCode => CreditCode::parse(&text).map(|c| Value::String(c.as_str().into())).map_err(|e| e.to_string()),
        // As shown and exported (masked): not a number to keep in place of the real one.
        Ty::Mobile | Ty::Phone | Ty::IdNumber if text.contains('*') => Err(MASKED.into()),
        Ty::Mobile => Mobile::parse(&text).map(|m| Value::String(m.as_str().into())).map_err(|e| e.to_string()),
        Ty::Phone => crate::ident::WorkPhone::parse(&text).map(|m| Value::String(m.as_str().into())).map_err(|e| e.to_string()),
        Ty::IdNumber => {
            IdNumber::parse(&text).map(|i| Value::String(hex_enc(keys, i.as_str(), f.key))).map_err(|e| e.to_string())
        }
        Ty::Secret if text.chars().count() > 5000 => Err("不能超过 5000 个字".into()),
        Ty::Secret => Ok(Value::String(hex_enc(keys, &text, f.key))),
        Ty::Node(_) | Ty::Unit(_) => Ok(Value::String(half_width(&text).to_uppercase())),
        Ty::Code => {
            let code = half_width(&text).to_uppercase();
            if code.chars().count() <= 32 && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                Ok(Value::String(code))
            } else {
                Err("编码只能由字母、数字、下划线和连字符组成（不超过 32 位）".into())
            }
        }
    }
}

/// Why a masked value (an export's 139****5678) is not taken as a new value.
const MASKED: &str = "这是脱敏后的显示值（含 *），请填写完整号码";

/// A work phone as shown: a mobile as 139****5678, a landline with its area code and its last
/// four digits (0856-***4567), an extension as written.
pub fn masked_phone(stored: &str) -> String {
    if let Ok(m) = Mobile::parse(stored) {
        return m.masked();
    }
    let s: String = stored.chars().filter(|c| !c.is_whitespace()).collect();
    let (main, ext) = match s.split_once('转') {
        Some((m, e)) => (m.to_string(), format!("转{e}")),
        None => (s.clone(), String::new()),
    };
    let main = main.replace(['(', '（'], "").replace([')', '）'], "-");
    let parts: Vec<&str> = main.split('-').filter(|p| !p.is_empty()).collect();
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    let (area, number, ext) = match parts.as_slice() {
        [a, n] if digits(a) && digits(n) => (a.to_string(), n.to_string(), ext),
        [a, n, x] if ext.is_empty() && digits(a) && digits(n) => (a.to_string(), n.to_string(), format!("-{x}")),
        // Written without a hyphen: 010 and 02x are the three-digit area codes.
        [all] if digits(all) && all.starts_with('0') && all.len() > 8 => {
            let k = if all.starts_with("01") || all.starts_with("02") { 3 } else { 4 };
            (all[..k].to_string(), all[k..].to_string(), ext)
        }
        _ => return mask_digits(stored),
    };
    // A number too short to keep four digits of is hidden whole.
    let hide = if number.len() > 4 { number.len() - 4 } else { number.len() };
    format!("{area}-{}{}{ext}", "*".repeat(hide), &number[hide..])
}

/// Every digit but the last four hidden (a number kept in a form no rule reads).
fn mask_digits(s: &str) -> String {
    let total = s.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    s.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen + 4 <= total { '*' } else { c }
            } else {
                c
            }
        })
        .collect()
}

/// The node kinds a field takes, in words: 社区, 网格或楼栋…
pub fn node_kinds(kinds: &[crate::tree::Kind]) -> String {
    kinds.iter().map(|k| k.label()).collect::<Vec<_>>().join("或")
}

/// A stored or raw value as plain text (是/否 for booleans).
/// Full-width letters, digits and signs (ＤＷ００１, typed with a Chinese input method) as their
/// half-width selves: two spellings of one code are one code.
pub fn half_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        })
        .collect()
}

/// A value as text (a form's, a cell's).
pub fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => (if *b { "是" } else { "否" }).into(),
        other => other.to_string(),
    }
}

/// Dates as typed in China: 2026-03-01, 2026/3/1, 2026.3.1, 2026年3月1日, or an Excel serial.
pub fn parse_date(s: &str) -> Option<chrono::NaiveDate> {
    let t = s.trim().replace(['/', '.', '年', '月'], "-").replace('日', "");
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t.trim_end_matches('-'), "%Y-%m-%d") {
        return Some(d);
    }
    // Excel stores dates as days since 1899-12-30.
    let serial: f64 = s.trim().parse().ok()?;
    (20000.0..80000.0)
        .contains(&serial)
        .then(|| chrono::NaiveDate::from_ymd_opt(1899, 12, 30).and_then(|b| b.checked_add_days(chrono::Days::new(serial as u64))))
        .flatten()
}

fn hex_enc(keys: &Keyring, text: &str, field: &str) -> String {
    format!("enc:{}", crate::audit::hex(&keys.encrypt(text, format!("register.{field}").as_bytes())))
}

/// Decrypts a stored secret (for reveal and for masking ID numbers).
pub fn decrypt(keys: &Keyring, stored: &str, field: &str) -> Option<String> {
    let hex = stored.strip_prefix("enc:")?;
    let bytes: Vec<u8> = (0..hex.len()).step_by(2).filter_map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect();
    keys.decrypt(&bytes, format!("register.{field}").as_bytes()).ok()
}

/// The value as shown on screen and in exports: masked personal data, 是/否, plain text.
pub fn display(f: &Field, v: &Value, keys: &Keyring) -> String {
    match (f.ty, v) {
        (_, Value::Null) => String::new(),
        (Ty::IdNumber, Value::String(s)) => {
            decrypt(keys, s, f.key).and_then(|x| IdNumber::parse(&x).ok()).map(|i| i.masked()).unwrap_or_default()
        }
        (Ty::Secret, _) => "（已加密）".into(),
        (Ty::Mobile, Value::String(s)) => Mobile::parse(s).map(|m| m.masked()).unwrap_or_default(),
        (Ty::Phone, Value::String(s)) => masked_phone(s),
        (Ty::Bool, Value::Bool(b)) => {
            if *b {
                "是".into()
            } else {
                "否".into()
            }
        }
        (Ty::Money, Value::Number(n)) => format!("{:.2}", n.as_f64().unwrap_or(0.0)),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

/// Full pinyin and initials of Chinese text, lowercase, for search (`hhq`, `huahuaqiao`).
pub fn pinyin_keys(text: &str) -> String {
    use pinyin::ToPinyin;
    let mut full = String::new();
    let mut initials = String::new();
    for c in text.chars() {
        match c.to_pinyin() {
            Some(p) => {
                full.push_str(p.plain());
                initials.push_str(p.first_letter());
            }
            None if c.is_ascii_alphanumeric() => {
                full.push(c.to_ascii_lowercase());
                initials.push(c.to_ascii_lowercase());
            }
            None => {}
        }
    }
    format!("{full} {initials}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(ty: Ty) -> Field {
        Field { key: "x", title: "x", ty, required: false, list: true, help: "", range: None }
    }

    #[test]
    fn values_parse_or_explain() {
        let k = Keyring::from_bytes([1; 32], [2; 32]);
        assert_eq!(parse_value(&field(Ty::Int), &Value::from("1,024"), &k), Ok(Value::from(1024)));
        assert!(parse_value(&field(Ty::Int), &Value::from("1.5"), &k).is_err());
        assert_eq!(parse_value(&field(Ty::Money), &Value::from("7880000元"), &k), Ok(Value::from(7_880_000.0)));
        assert_eq!(parse_value(&field(Ty::Score), &Value::from("92.46分"), &k), Ok(Value::from(92.5)));
        assert_eq!(parse_value(&field(Ty::Score), &Value::from("100"), &k), Ok(Value::from(100.0)));
        assert_eq!(parse_value(&field(Ty::Int), &Value::from("-3"), &k), Err("不能为负数".into()));
        assert_eq!(parse_value(&field(Ty::Number), &Value::from("1e308"), &k), Err("数值过大".into()));
        let hours = field(Ty::Number).within(0.0, 24.0);
        assert_eq!(parse_value(&hours, &Value::from("24"), &k), Ok(Value::from(24.0)));
        assert_eq!(parse_value(&hours, &Value::from("-500"), &k), Err("应在 0～24 之间".into()));
        assert!(parse_value(&field(Ty::Date), &Value::from("0000-01-01"), &k).unwrap_err().contains("1900"));
        for bad in ["101", "-1", "优"] {
            assert!(parse_value(&field(Ty::Score), &Value::from(bad), &k).unwrap_err().contains("0～100"), "{bad}");
        }
        assert_eq!(parse_value(&field(Ty::Date), &Value::from("2026年3月1日"), &k), Ok(Value::from("2026-03-01")));
        assert_eq!(parse_value(&field(Ty::Date), &Value::from("46082"), &k), Ok(Value::from("2026-03-01")));
        assert!(parse_value(&field(Ty::Date), &Value::from("3月"), &k).unwrap_err().contains("YYYY"));
        assert_eq!(parse_value(&field(Ty::Bool), &Value::from("是"), &k), Ok(Value::Bool(true)));
        assert!(parse_value(&field(Ty::Enum(&["甲", "乙"])), &Value::from("丙"), &k).unwrap_err().contains("甲、乙"));
        assert!(parse_value(&field(Ty::CreditCode), &Value::from("91350100M000100Y44"), &k).unwrap_err().contains("校验位"));
        assert_eq!(parse_value(&field(Ty::Text), &Value::from("  "), &k), Ok(Value::Null));
        let enc = parse_value(&field(Ty::IdNumber), &Value::from("520627198001010018"), &k).unwrap();
        assert!(!enc.as_str().unwrap().contains("520627198001010018"));
        assert_eq!(display(&field(Ty::IdNumber), &enc, &k), "520627********0018");
    }

    #[test]
    fn work_phones_are_masked() {
        for (stored, shown) in [
            ("13912345678", "139****5678"),
            ("0856-1234567", "0856-***4567"),
            ("010-12345678", "010-****5678"),
            ("(0856)1234567", "0856-***4567"),
            ("0856-1234567-123", "0856-***4567-123"),
            ("0856-1234567转88", "0856-***4567转88"),
            ("08561234567", "0856-***4567"),
            ("01012345678", "010-****5678"),
            ("0856-123", "0856-***"),
            ("电话 12", "电话 12"),
            ("123456789", "*****6789"),
        ] {
            assert_eq!(masked_phone(stored), shown, "{stored}");
        }
        let k = Keyring::from_bytes([1; 32], [2; 32]);
        assert_eq!(display(&field(Ty::Phone), &Value::from("0856-1234567"), &k), "0856-***4567");
        for ty in [Ty::Phone, Ty::Mobile, Ty::IdNumber] {
            assert!(parse_value(&field(ty), &Value::from("139****5678"), &k).unwrap_err().contains("脱敏"));
        }
    }

    #[test]
    fn pinyin_finds_chinese_names() {
        let p = pinyin_keys("花花桥社区");
        assert!(p.contains("huahuaqiao") && p.contains("hhqsq"), "{p}");
        assert!(pinyin_keys("燎原").contains("ly"));
    }
}
