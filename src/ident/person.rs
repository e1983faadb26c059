//! Identifiers that belong to a natural person.

use std::fmt;

use chrono::{FixedOffset, NaiveDate, Utc};

use super::region::is_region;
use super::{IdentError, all_digits, normalise};

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// 居民身份证号 (GB 11643-1999), always 18 characters with an upper-case `X`.
///
/// `Debug` prints the masked form so that a stray `{:?}` in a log line does
/// not leak the full number; use [`IdNumber::as_str`] when the full value is
/// really needed.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdNumber(String);

ident_newtype!(IdNumber);

impl IdNumber {
    /// Validates length, characters, province code, birth date and check digit.
    pub fn parse(input: &str) -> Result<Self, IdentError> {
        let s = normalise(input, true);
        if s.chars().count() != 18 {
            return Err(IdentError::IdLength);
        }
        let b = s.as_bytes();
        // A byte length other than 18 means a multi-byte character slipped in.
        if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X') {
            return Err(IdentError::IdChars);
        }
        if !is_region(&s[..6]) {
            return Err(IdentError::IdRegion);
        }
        if birth_date_of(&s[6..14]).is_none() {
            return Err(IdentError::IdBirthDate);
        }
        if check_char(&b[..17]) != b[17] {
            return Err(IdentError::IdChecksum);
        }
        Ok(Self(s))
    }

    /// Builds a valid number from its parts, computing the check digit; meant
    /// for fictitious demo residents, never for guessing real people's numbers.
    pub fn compose(region6: &str, birth_yyyymmdd: &str, seq3: u16) -> Result<IdNumber, IdentError> {
        let region = normalise(region6, false);
        if !all_digits(&region, 6) {
            return Err(IdentError::IdRegion);
        }
        let birth = normalise(birth_yyyymmdd, false);
        if !all_digits(&birth, 8) {
            return Err(IdentError::IdBirthDate);
        }
        if seq3 > 999 {
            return Err(IdentError::IdSequence);
        }
        let mut body = format!("{region}{birth}{seq3:03}");
        let check = check_char(body.as_bytes());
        body.push(char::from(check));
        // Re-parse so the province and date rules are enforced in one place.
        Self::parse(&body)
    }

    /// Masked for display to staff who do not need the full number.
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.0[..6], &self.0[14..])
    }

    /// The date of birth encoded in digits 7–14.
    pub fn birth_date(&self) -> NaiveDate {
        birth_date_of(&self.0[6..14]).expect("birth date was validated in parse")
    }

    /// The standard encodes sex in the parity of the 17th digit.
    pub fn is_male(&self) -> bool {
        (self.0.as_bytes()[16] - b'0') % 2 == 1
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IdNumber").field(&self.masked()).finish()
    }
}

/// `first17` must be ASCII digits.
fn check_char(first17: &[u8]) -> u8 {
    let sum: u32 = first17.iter().zip(ID_WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    ID_CHECK[(sum % 11) as usize]
}

/// Birth dates are civil dates in China, so "today" is taken in UTC+8 rather
/// than the server's zone; otherwise a UTC host would reject a baby registered
/// shortly after midnight Beijing time.
fn china_today() -> NaiveDate {
    let cst = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    Utc::now().with_timezone(&cst).date_naive()
}

/// `yyyymmdd` must be 8 ASCII digits.
fn birth_date_of(yyyymmdd: &str) -> Option<NaiveDate> {
    let year = yyyymmdd[0..4].parse().ok()?;
    let month = yyyymmdd[4..6].parse().ok()?;
    let day = yyyymmdd[6..8].parse().ok()?;
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1)?;
    (earliest <= date && date <= china_today()).then_some(date)
}

/// 中国大陆手机号, stored as 11 bare digits without a country code.
///
/// `Debug` prints the masked form for the same reason as [`IdNumber`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mobile(String);

ident_newtype!(Mobile);

impl Mobile {
    /// Accepts the ways people actually write numbers: `+86 138-0013-8000`,
    /// `86 13800138000`, `138 0013 8000`, full-width digits.
    pub fn parse(input: &str) -> Result<Self, IdentError> {
        let compact: String = normalise(input, false).chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let digits = match compact.strip_prefix("+86") {
            Some(rest) => rest,
            // A bare 11-digit mobile starts with 1, so a 13-digit "86…" can
            // only be the country code.
            None if compact.len() == 13 => compact.strip_prefix("86").unwrap_or(&compact),
            None => &compact,
        };
        // Mainland mobile numbers are 13x to 19x: 10000000000 or 12345678901 is a number made up.
        if all_digits(digits, 11) && digits.starts_with('1') && (b'3'..=b'9').contains(&digits.as_bytes()[1]) {
            Ok(Self(digits.to_owned()))
        } else {
            Err(IdentError::Mobile)
        }
    }

    /// Masked for lists where staff only need to tell numbers apart.
    pub fn masked(&self) -> String {
        format!("{}****{}", &self.0[..3], &self.0[7..])
    }
}

/// A work contact number: a mobile, or a landline with its area code (`0856-1234567`,
/// `(0856)1234567`, an extension after `-` or `转`), kept as written apart from spaces.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct WorkPhone(String);

ident_newtype!(WorkPhone);

impl WorkPhone {
    /// Parses a mobile or a landline.
    pub fn parse(input: &str) -> Result<Self, IdentError> {
        if let Ok(m) = Mobile::parse(input) {
            return Ok(Self(m.0));
        }
        let s: String = normalise(input, false).chars().filter(|c| !c.is_whitespace()).collect();
        let (main, ext) = match s.split_once('转') {
            Some((m, e)) => (m.to_string(), Some(e.to_string())),
            None => (s.clone(), None),
        };
        let main = main.replace(['(', ')', '（', '）'], "");
        let parts: Vec<&str> = main.split('-').collect();
        let (area, number, ext) = match (parts.as_slice(), ext) {
            ([a, n], e) => (*a, *n, e),
            ([a, n, x], None) => (*a, *n, Some(x.to_string())),
            // Written without a hyphen: 0 and a 2- or 3-digit code, then 7 or 8 digits.
            // (Digits only before slicing by bytes: a multi-byte character would split.)
            ([all], e) if all.starts_with('0') && all.bytes().all(|b| b.is_ascii_digit()) && (10..=12).contains(&all.len()) => {
                (&all[..all.len() - 8], &all[all.len() - 8..], e)
            }
            _ => return Err(IdentError::WorkPhone),
        };
        let digits = |x: &str, lo: usize, hi: usize| (lo..=hi).contains(&x.len()) && x.chars().all(|c| c.is_ascii_digit());
        // An area code is 0 and a code that does not start with 0 (00 dials abroad), and a
        // local number never starts with 0 (0000-0000000 passed).
        let ok = area.starts_with('0')
            && !area[1..].starts_with('0')
            && digits(area, 3, 4)
            && digits(number, 7, 8)
            && !number.starts_with('0')
            && ext.as_deref().is_none_or(|e| digits(e, 1, 6));
        if ok { Ok(Self(s)) } else { Err(IdentError::WorkPhone) }
    }
}

impl fmt::Debug for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Mobile").field(&self.masked()).finish()
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn work_phones() {
        for ok in [
            "13800138000",
            "0856-1234567",
            "010-12345678",
            "(0856)1234567",
            "0856-1234567-123",
            "0856-1234567转88",
            "08561234567",
            "0856 123 4567",
        ] {
            assert!(WorkPhone::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "abc",
            "1234567",
            "856-1234567",
            "0856-123",
            "0856-1234567-",
            "0856-12345678901",
            "",
            "23456789012",
            "0中文中",
            "00000000000",
            "0000-0000000",
            "0056-1234567",
            "0856-0234567",
            "010-02345678",
            "12345678901",
        ] {
            assert_eq!(WorkPhone::parse(bad), Err(IdentError::WorkPhone), "{bad}");
        }
    }
    use super::*;
    use chrono::Days;

    // Fictitious but well-formed: GB 11643's own worked example.
    const SAMPLE: &str = "11010519491231002X";

    #[test]
    fn accepts_valid_number() {
        let id = IdNumber::parse(SAMPLE).unwrap();
        assert_eq!(id.as_str(), SAMPLE);
        assert_eq!(id.to_string(), SAMPLE);
        assert_eq!(id.birth_date(), NaiveDate::from_ymd_opt(1949, 12, 31).unwrap());
        assert!(!id.is_male());
        assert_eq!(id.masked(), "110105********002X");
    }

    #[test]
    fn normalises_input() {
        let id = IdNumber::parse("  １１０１０５１９４９１２３１００２ｘ ").unwrap();
        assert_eq!(id.as_str(), SAMPLE);
        let id: IdNumber = "11010519491231002x".parse().unwrap();
        assert_eq!(id.as_str(), SAMPLE);
        let id = IdNumber::try_from(String::from(SAMPLE)).unwrap();
        assert_eq!(String::from(id), SAMPLE);
    }

    #[test]
    fn rejects_bad_numbers() {
        use IdentError::*;
        assert_eq!(IdNumber::parse("110105491231002"), Err(IdLength));
        assert_eq!(IdNumber::parse(""), Err(IdLength));
        assert_eq!(IdNumber::parse("1101051949123100X2"), Err(IdChars));
        assert_eq!(IdNumber::parse("11010519491231002一"), Err(IdChars));
        assert_eq!(IdNumber::parse("110105194912310021"), Err(IdChecksum));
        assert_eq!(IdNumber::parse(&with_check("99010519491231002")), Err(IdRegion));
        assert_eq!(IdNumber::parse(&with_check("16010519491231002")), Err(IdRegion));
        assert_eq!(IdNumber::parse(&with_check("11010519490229002")), Err(IdBirthDate));
        assert_eq!(IdNumber::parse(&with_check("11010518991231002")), Err(IdBirthDate));
        let tomorrow = china_today().checked_add_days(Days::new(1)).unwrap();
        let body = format!("110105{}002", tomorrow.format("%Y%m%d"));
        assert_eq!(IdNumber::parse(&with_check(&body)), Err(IdBirthDate));
    }

    #[test]
    fn accepts_boundary_dates() {
        assert!(IdNumber::compose("110105", "19000101", 1).is_ok());
        let today = china_today().format("%Y%m%d").to_string();
        assert!(IdNumber::compose("110105", &today, 1).is_ok());
        assert!(IdNumber::compose("110105", "20000229", 1).is_ok());
    }

    #[test]
    fn compose_computes_check_digit() {
        let id = IdNumber::compose("110105", "19491231", 2).unwrap();
        assert_eq!(id.as_str(), SAMPLE);
        let id = IdNumber::compose("520627", "19900101", 123).unwrap();
        assert!(id.as_str().starts_with("52062719900101123"));
        assert!(id.is_male());
        assert_eq!(IdNumber::parse(id.as_str()), Ok(id));
        assert_eq!(IdNumber::compose("000000", "19900101", 1), Err(IdentError::IdRegion));
        assert_eq!(IdNumber::compose("11010", "19900101", 1), Err(IdentError::IdRegion));
        assert_eq!(IdNumber::compose("110105", "1990011", 1), Err(IdentError::IdBirthDate));
        assert_eq!(IdNumber::compose("110105", "19900101", 1000), Err(IdentError::IdSequence));
    }

    #[test]
    fn debug_is_masked() {
        let id = IdNumber::parse(SAMPLE).unwrap();
        assert_eq!(format!("{id:?}"), "IdNumber(\"110105********002X\")");
        let m = Mobile::parse("13800138000").unwrap();
        assert_eq!(format!("{m:?}"), "Mobile(\"138****8000\")");
    }

    #[test]
    fn mobile_forms() {
        for input in [
            "13800138000",
            " 13800138000 ",
            "+8613800138000",
            "+86 13800138000",
            "+86-138-0013-8000",
            "86 13800138000",
            "8613800138000",
            "138 0013 8000",
            "１３８００１３８０００",
            "＋８６　１３８００１３８０００",
        ] {
            let m = Mobile::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(m.as_str(), "13800138000", "{input}");
        }
        for second in 3..=9 {
            assert!(Mobile::parse(&format!("1{second}800138000")).is_ok(), "1{second}");
        }
        assert_eq!(Mobile::parse("13800138000").unwrap().masked(), "138****8000");
    }

    #[test]
    fn mobile_rejects() {
        for input in [
            "",
            "23800138000",
            "1380013800",
            "138001380001",
            "+85213800138000",
            "1380013800a",
            "+86+8613800138000",
            "(86)13800138000",
            "10000000000",
            "12345678901",
            "11800138000",
            "+86 12800138000",
        ] {
            assert_eq!(Mobile::parse(input), Err(IdentError::Mobile), "{input}");
        }
    }

    #[test]
    fn serde_round_trip_revalidates() {
        use serde::Deserialize;
        use serde::de::value::{Error, StrDeserializer};
        let ok = IdNumber::deserialize(StrDeserializer::<Error>::new("11010519491231002x"));
        assert_eq!(ok.unwrap().as_str(), SAMPLE);
        let bad = Mobile::deserialize(StrDeserializer::<Error>::new("12345"));
        assert_eq!(bad.unwrap_err().to_string(), "手机号应为以 13～19 开头的 11 位数字");
    }

    fn with_check(first17: &str) -> String {
        format!("{first17}{}", char::from(check_char(first17.as_bytes())))
    }
}
