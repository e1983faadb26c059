//! Identifiers that belong to an organisation.

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
    /// Validates length, alphabet and check character.
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
        if check_char(&b[..17]) != b[17] {
            return Err(IdentError::CreditChecksum);
        }
        Ok(Self(s))
    }

    /// Appends the check character to a 17-character body; meant for
    /// fictitious demo organisations.
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
        Ok(Self(s))
    }
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
