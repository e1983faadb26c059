//! Identifiers that belong to an organisation.

use super::region::is_region;
use super::{IdentError, normalise};

/// GB 32100 leaves out I, O, S, V and Z because they are easily confused with
/// digits; the position in this string is the character's value.
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// 统一社会信用代码 (GB 32100-2015) of a company, social organisation or
/// other legal entity, stored upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CreditCode(String);

ident_newtype!(CreditCode);

impl CreditCode {
    /// Validates length, alphabet, the registration authority and the kind of entity it
    /// registers, the region of the registering office, and the check character.
    pub fn parse(input: &str) -> Result<Self, IdentError> {
        let s = normalise(input, true);
        if s.chars().count() != 18 {
            return Err(IdentError::CreditLength);
        }
        let b = s.as_bytes();
        // Non-ASCII characters contribute bytes that are not in the alphabet.
        if b.len() != 18 || !b.iter().all(|c| value(*c).is_some()) {
            return Err(IdentError::CreditChars);
        }
        // A checksum holds for 1 code in 31 typed at random (000000000000000000 passed): the
        // first eight characters have fixed meanings, checked as the standard gives them.
        if !KINDS.iter().any(|(a, _)| *a == b[0]) {
            return Err(IdentError::CreditAuthority);
        }
        if !kind_allowed(b[0], b[1]) {
            return Err(IdentError::CreditKind);
        }
        let region = &s[2..8];
        if !(region == NATIONAL || is_region(region)) {
            return Err(IdentError::CreditRegion);
        }
        if check_char(&b[..17]) != b[17] {
            return Err(IdentError::CreditChecksum);
        }
        Ok(Self(s))
    }

    /// Appends the check character to a 17-character body; meant for
    /// fictitious demo organisations. The result is parsed again, so a body that no
    /// registration authority would issue is refused as in [`CreditCode::parse`].
    pub fn compose(first17: &str) -> Result<CreditCode, IdentError> {
        let mut s = normalise(first17, true);
        if s.chars().count() != 17 {
            return Err(IdentError::CreditBodyLength);
        }
        if s.len() != 17 || !s.bytes().all(|c| value(c).is_some()) {
            return Err(IdentError::CreditChars);
        }
        let check = check_char(s.as_bytes());
        s.push(char::from(check));
        Self::parse(&s)
    }
}

/// The region of an entity registered by a national authority (民政部's social organisations,
/// 中央编办's bodies): the country's code, which no ID number carries.
const NATIONAL: &str = "100000";

/// GB 32100-2015 table 1: each registration authority (the first character) and the kinds of
/// entity it registers (the second). 9 is "other" for every authority but 工商 (9) and Y.
const KINDS: [(u8, &[u8]); 12] = [
    (b'1', b"1239"),   // 机构编制：机关、事业单位、群众团体、其他
    (b'2', b"19"),     // 外交：外国常驻新闻机构、其他
    (b'3', b"123459"), // 司法行政：律师执业机构、公证处、基层法律服务所、司法鉴定机构、仲裁委员会、其他
    (b'4', b"19"),     // 文化：外国在华文化中心、其他
    (b'5', b"1239"),   // 民政：社会团体、民办非企业单位、基金会、其他
    (b'6', b"129"),    // 旅游：外国和港澳台旅游部门常驻代表机构、其他
    (b'7', b"129"),    // 宗教：宗教活动场所、宗教院校、其他
    (b'8', b"19"),     // 工会：基层工会、其他
    (b'9', b"123"),    // 工商：企业、个体工商户、农民专业合作社
    (b'A', b"19"),     // 中央军委改革和编制办公室：军队事业单位、其他
    (b'N', b"1239"),   // 农业：组级、村级、乡镇级集体经济组织、其他
    (b'Y', b"1"),      // 其他：不再细分
];

/// Whether `authority` is a registration authority and `kind` a kind of entity it registers.
fn kind_allowed(authority: u8, kind: u8) -> bool {
    KINDS.iter().any(|(a, kinds)| *a == authority && kinds.contains(&kind))
}

fn value(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// `body` must be 17 characters from [`ALPHABET`].
fn check_char(body: &[u8]) -> u8 {
    let sum: u32 = body.iter().zip(WEIGHTS).map(|(c, w)| value(*c).unwrap_or(0) * w).sum();
    ALPHABET[((31 - sum % 31) % 31) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "91350100M000100Y43";

    #[test]
    fn accepts_known_code() {
        let code = CreditCode::parse(SAMPLE).unwrap();
        assert_eq!(code.as_str(), SAMPLE);
        assert_eq!(code.to_string(), SAMPLE);
        assert_eq!(format!("{code:?}"), format!("CreditCode(\"{SAMPLE}\")"));
    }

    #[test]
    fn normalises_case_and_width() {
        let code: CreditCode = " 91350100m000100y43 ".parse().unwrap();
        assert_eq!(code.as_str(), SAMPLE);
        let code = CreditCode::parse("９１３５０１００Ｍ０００１００ｙ４３").unwrap();
        assert_eq!(code.as_str(), SAMPLE);
        let code = CreditCode::try_from(SAMPLE.to_owned()).unwrap();
        assert_eq!(String::from(code), SAMPLE);
    }

    #[test]
    fn rejects_bad_codes() {
        use IdentError::*;
        assert_eq!(CreditCode::parse("91350100M000100Y4"), Err(CreditLength));
        assert_eq!(CreditCode::parse(""), Err(CreditLength));
        assert_eq!(CreditCode::parse("91350100M000100Y433"), Err(CreditLength));
        assert_eq!(CreditCode::parse("91350100O000100Y43"), Err(CreditChars));
        assert_eq!(CreditCode::parse("91350100M000100Y4-"), Err(CreditChars));
        assert_eq!(CreditCode::parse("91350100M000100Y4码"), Err(CreditChars));
        assert_eq!(CreditCode::parse("91350100M000100Y44"), Err(CreditChecksum));
        assert_eq!(CreditCode::parse("91350100M000101Y43"), Err(CreditChecksum));
    }

    #[test]
    fn rejects_codes_no_authority_issues() {
        use IdentError::*;
        // Each with a valid check character: only the first eight characters are wrong.
        for (body, want) in [
            ("00000000000000000", CreditAuthority), // no authority 0
            ("YYYYYYYYYYYYYYYYY", CreditKind),      // Y registers kind 1 only
            ("Q1520627MA6DXXXX0", CreditAuthority), // no authority Q
            ("1Q520627000100000", CreditKind),      // a letter as the kind
            ("14520627000100000", CreditKind),      // 机构编制 registers no kind 4
            ("54520627000100000", CreditKind),      // nor 民政
            ("99520627000100000", CreditKind),      // 工商 has no "other"
            ("Y2520627000100000", CreditKind),
            ("91000000MA0000001", CreditRegion), // no region 000000
            ("91999999MA0000001", CreditRegion), // nor 999999
            ("91160000MA0000001", CreditRegion), // 16 is no province
            ("9152A627MA0000001", CreditRegion), // a region of letters
        ] {
            let code = format!("{body}{}", char::from(check_char(body.as_bytes())));
            assert_eq!(CreditCode::parse(&code), Err(want.clone()), "{code}");
            assert_eq!(CreditCode::compose(body), Err(want), "{body}");
        }
        assert_eq!(CreditCode::parse("000000000000000000"), Err(CreditAuthority));
        assert_eq!(CreditCode::parse("YYYYYYYYYYYYYYYYYT"), Err(CreditKind));
        assert_eq!(CreditCode::parse("Q1520627MA6DXXXX0F"), Err(CreditAuthority));
        assert_eq!(CreditCode::parse("1Q5206270001000004"), Err(CreditKind));
        // Every authority with each of its kinds, a nationally registered body, Hong Kong.
        for (a, kinds) in KINDS {
            for k in kinds.iter() {
                let body = format!("{}{}520627MA0000001", char::from(a), char::from(*k));
                assert!(CreditCode::compose(&body).is_ok(), "{body}");
            }
        }
        assert!(CreditCode::compose("51100000500000001").is_ok());
        assert!(CreditCode::compose("91810000MA0000001").is_ok());
    }

    #[test]
    fn compose_appends_check() {
        assert_eq!(CreditCode::compose("91350100M000100Y4").unwrap().as_str(), SAMPLE);
        let code = CreditCode::compose("91110105MA0000001").unwrap();
        assert_eq!(CreditCode::parse(code.as_str()), Ok(code));
        assert_eq!(CreditCode::compose("9135"), Err(IdentError::CreditBodyLength));
        assert_eq!(CreditCode::compose("91350100I000100Y4"), Err(IdentError::CreditChars));
    }

    #[test]
    fn every_check_value_is_reachable() {
        // Guards the (31 − sum mod 31) mod 31 wrap-around: a sum divisible by
        // 31 must give '0', not index 31.
        let mut seen = std::collections::HashSet::new();
        for n in 0..2000u32 {
            let body = format!("9111010{n:010}");
            seen.insert(CreditCode::compose(&body).unwrap().as_str().as_bytes()[17]);
        }
        assert_eq!(seen.len(), 31);
    }
}
