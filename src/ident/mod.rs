//! Chinese civil identifiers as newtypes that can only hold valid values.
//!
//! Identifiers reach us from web forms, spreadsheets and bulk imports typed on
//! Chinese input methods (full-width digits, stray spaces, a lowercase `x`).
//! Parsing once at the edge into one canonical form lets everything downstream
//! — uniqueness checks, blind indexes, exports — trust the value as-is.

/// Shared plumbing for every identifier newtype, so that each one only has to
/// write its own `parse`. Expanded in the child modules, hence `super::`.
macro_rules! ident_newtype {
    ($ty:ident) => {
        impl $ty {
            /// The canonical form, as stored, indexed and displayed.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::convert::AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = super::IdentError;
            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl ::std::convert::TryFrom<String> for $ty {
            type Error = super::IdentError;
            fn try_from(s: String) -> ::std::result::Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl ::std::convert::TryFrom<&str> for $ty {
            type Error = super::IdentError;
            fn try_from(s: &str) -> ::std::result::Result<Self, Self::Error> {
                Self::parse(s)
            }
        }

        impl ::std::convert::From<$ty> for String {
            fn from(v: $ty) -> String {
                v.0
            }
        }

        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        // Deserialising re-validates, so a tampered or stale payload can never
        // smuggle an invalid identifier past the type.
        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                Self::parse(&s).map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }
    };
}

mod credit;
mod person;
mod region;

pub use credit::CreditCode;
pub use person::{IdNumber, Mobile, WorkPhone};
pub use region::{CommunityCode, CountyCode, GridCode, StreetCode};

/// Why an identifier was rejected; the message is shown to users verbatim.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum IdentError {
    /// Wrong length, including the retired 15-digit format.
    #[error("身份证号应为 18 位")]
    IdLength,
    /// Letters or symbols where digits belong.
    #[error("身份证号前 17 位应为数字，末位应为数字或 X")]
    IdChars,
    /// Most often a typo somewhere in the number.
    #[error("身份证号校验位错误")]
    IdChecksum,
    /// Not a calendar date, before 1900 or in the future.
    #[error("身份证号中的出生日期无效")]
    IdBirthDate,
    /// The first two digits are not a province-level code.
    #[error("身份证号中的地区码无效")]
    IdRegion,
    /// Only reachable through [`IdNumber::compose`].
    #[error("身份证号顺序码应在 000 至 999 之间")]
    IdSequence,
    /// Wrong length.
    #[error("统一社会信用代码应为 18 位")]
    CreditLength,
    /// Contains I, O, S, V, Z or a non-alphanumeric character.
    #[error("统一社会信用代码含有非法字符")]
    CreditChars,
    /// Most often a typo somewhere in the code.
    #[error("统一社会信用代码校验位错误")]
    CreditChecksum,
    /// Only reachable through [`CreditCode::compose`].
    #[error("统一社会信用代码的本体应为 17 位")]
    CreditBodyLength,
    /// The first character is no registration authority of GB 32100-2015.
    #[error("统一社会信用代码的第 1 位（登记管理部门代码）无效")]
    CreditAuthority,
    /// The second character is no kind of entity its authority registers.
    #[error("统一社会信用代码的第 2 位（机构类别代码）与登记管理部门不符")]
    CreditKind,
    /// Characters 3–8 are no administrative division.
    #[error("统一社会信用代码的第 3～8 位（登记管理机关行政区划码）无效")]
    CreditRegion,
    /// Not a mainland mobile number.
    #[error("手机号应为以 13～19 开头的 11 位数字")]
    Mobile,
    /// Neither a mobile nor a landline with its area code.
    #[error("联系电话应为手机号，或带区号的固定电话（如 0856-1234567，可加分机号 -123）")]
    WorkPhone,
    /// Not a 6-digit county-level division code.
    #[error("区划代码应为 6 位数字")]
    County,
    /// Not a 9-digit street (township) code.
    #[error("街道代码应为 9 位数字")]
    Street,
    /// Not a 12-digit community (village) code.
    #[error("社区代码应为 12 位数字")]
    Community,
    /// Not a 15-digit grid code.
    #[error("网格编码应为 15 位数字（12 位社区代码 + 3 位序号）")]
    Grid,
    /// Grid sequence numbers start at 001.
    #[error("网格序号不能为 000")]
    GridSeqZero,
    /// Only reachable through [`GridCode::compose`].
    #[error("网格序号应在 001 至 999 之间")]
    GridSeqRange,
    /// Division codes never start with 0; names which kind of code it was.
    #[error("{0}不能以 0 开头")]
    LeadingZero(&'static str),
}

/// Trims and folds full-width ASCII (what Chinese IMEs produce in full-width
/// mode) to half-width; `upper` folds letters to upper case for formats that
/// contain letters.
fn normalise(input: &str, upper: bool) -> String {
    input
        .trim()
        .chars()
        .map(|c| {
            let c = match c {
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                '\u{3000}' => ' ',
                _ => c,
            };
            if upper { c.to_ascii_uppercase() } else { c }
        })
        .collect()
}

/// True when `s` is exactly `len` ASCII digits.
fn all_digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

/// Masks a personal name for lists and exports: keeps the first character and,
/// for names of three or more characters, the last one.
///
/// 张三 → 张*, 王小明 → 王*明, 欧阳娜娜 → 欧**娜; a single character is kept as is.
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.trim().chars().collect();
    match chars.as_slice() {
        [] => String::new(),
        [only] => only.to_string(),
        [first, _] => format!("{first}*"),
        [first, middle @ .., last] => {
            let mut out = String::with_capacity(name.len());
            out.push(*first);
            out.extend(std::iter::repeat_n('*', middle.len()));
            out.push(*last);
            out
        }
    }
}

/// Whether `text` holds a control character (NUL, ESC, a bell, a line break) or a bidirectional
/// override, which can hide or reorder what a name shows: names and short texts refuse them.
pub fn has_control(text: &str) -> bool {
    text.chars().any(|c| c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
}

/// Whether `text` holds a control character other than a tab or a line break: no field of
/// any kind takes one. (PostgreSQL refuses a NUL in text outright, and a NUL in a row written
/// at the end of a batch would fail the whole batch; the rest show as garbage on pages and in
/// exports.) Short texts refuse line breaks too, by [`has_control`].
pub fn stray_control(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

/// The message for a field refused by [`stray_control`].
pub const STRAY_CONTROL: &str = "含有不可见的控制字符";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_name_examples() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("王小明"), "王*明");
        assert_eq!(mask_name("欧阳娜娜"), "欧**娜");
        assert_eq!(mask_name("李"), "李");
        assert_eq!(mask_name(""), "");
        assert_eq!(mask_name(" 张三 "), "张*");
        assert_eq!(mask_name("买买提·艾力"), "买****力");
    }

    #[test]
    fn normalise_folds_full_width() {
        assert_eq!(normalise("　１２ａＢ　", false), "12aB");
        assert_eq!(normalise("１２ａＢ", true), "12AB");
        assert_eq!(normalise("＋８６－１", false), "+86-1");
    }

    #[test]
    fn error_messages_are_user_facing() {
        assert_eq!(IdentError::IdLength.to_string(), "身份证号应为 18 位");
        assert_eq!(IdentError::LeadingZero("区划代码").to_string(), "区划代码不能以 0 开头");
        assert_eq!(IdentError::Grid.to_string(), "网格编码应为 15 位数字（12 位社区代码 + 3 位序号）");
    }
}
