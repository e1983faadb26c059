//! The administrative hierarchy the platform is organised around:
//! county (区县) → street (街道/乡镇) → community (社区/村) → grid (网格).
//!
//! Each longer code embeds its parent as a prefix, which is what lets the
//! accessor methods hand back the parent as an already-valid newtype.

use super::{IdentError, all_digits, normalise};

/// 县级行政区划代码 (GB/T 2260), 6 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountyCode(String);

/// 街道（乡镇）代码, 9 digits: county code + 3.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreetCode(String);

/// 社区（村）代码 as used by the statistics bureau, 12 digits: street code + 3.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommunityCode(String);

/// 网格编码, 15 digits: community code + a 3-digit sequence from 001 to 999.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GridCode(String);

ident_newtype!(CountyCode);
ident_newtype!(StreetCode);
ident_newtype!(CommunityCode);
ident_newtype!(GridCode);

/// Whether `code` is an administrative region as far as this crate checks one: six digits
/// whose first two name a province (GB/T 2260). The rest is not checked: counties are merged
/// and renamed every year, and a code retired since stays on the ID cards and licences issued
/// under it.
pub(super) fn is_region(code: &str) -> bool {
    all_digits(code, 6) && is_province(code[..2].parse().unwrap_or(0))
}

/// The province-level codes of GB/T 2260 (71 台湾, 81 香港, 82 澳门 included).
fn is_province(code: u8) -> bool {
    matches!(
        code,
        11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65 | 71 | 81 | 82
    )
}

/// Division codes start with the province code, which is never 0x, so a
/// leading zero almost always means a spreadsheet ate or added a digit.
fn division(input: &str, len: usize, err: IdentError, kind: &'static str) -> Result<String, IdentError> {
    let s = normalise(input, false);
    if !all_digits(&s, len) {
        return Err(err);
    }
    if s.starts_with('0') {
        return Err(IdentError::LeadingZero(kind));
    }
    Ok(s)
}

impl CountyCode {
    /// Accepts exactly 6 digits not starting with 0.
    pub fn parse(input: &str) -> Result<Self, IdentError> {
        division(input, 6, IdentError::County, "区划代码").map(Self)
    }
}

impl StreetCode {
    /// Accepts exactly 9 digits not starting with 0.
    pub fn parse(input: &str) -> Result<Self, IdentError> {
        division(input, 9, IdentError::Street, "街道代码").map(Self)
    }

    /// The county this street belongs to.
    pub fn county(&self) -> CountyCode {
        CountyCode(self.0[..6].to_owned())
    }
}

impl CommunityCode {
    /// Accepts exactly 12 digits not starting with 0.
    pub fn parse(input: &str) -> Result<Self, IdentError> {
        division(input, 12, IdentError::Community, "社区代码").map(Self)
    }

    /// The street this community belongs to.
    pub fn street(&self) -> StreetCode {
        StreetCode(self.0[..9].to_owned())
    }

    /// The county this community belongs to.
    pub fn county(&self) -> CountyCode {
        CountyCode(self.0[..6].to_owned())
    }
}

impl GridCode {
    /// Accepts exactly 15 digits not starting with 0 whose last three are not 000.
    pub fn parse(input: &str) -> Result<Self, IdentError> {
        let s = division(input, 15, IdentError::Grid, "网格编码")?;
        if s.ends_with("000") {
            return Err(IdentError::GridSeqZero);
        }
        Ok(Self(s))
    }

    /// Numbers a new grid inside a community.
    pub fn compose(community: &CommunityCode, seq: u16) -> Result<GridCode, IdentError> {
        match seq {
            0 => Err(IdentError::GridSeqZero),
            1..=999 => Ok(Self(format!("{}{seq:03}", community.as_str()))),
            _ => Err(IdentError::GridSeqRange),
        }
    }

    /// The community this grid belongs to.
    pub fn community(&self) -> CommunityCode {
        CommunityCode(self.0[..12].to_owned())
    }

    /// The grid's number within its community, 1–999.
    pub fn seq(&self) -> u16 {
        self.0[12..].parse().expect("grid sequence was validated in parse")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use IdentError::*;

    #[test]
    fn county() {
        assert_eq!(CountyCode::parse(" 520627 ").unwrap().as_str(), "520627");
        assert_eq!(CountyCode::parse("５２０６２７").unwrap().as_str(), "520627");
        assert_eq!(CountyCode::parse("52062"), Err(County));
        assert_eq!(CountyCode::parse("5206271"), Err(County));
        assert_eq!(CountyCode::parse("52062a"), Err(County));
        assert_eq!(CountyCode::parse("020627"), Err(LeadingZero("区划代码")));
        assert_eq!(CountyCode::parse("020627").unwrap_err().to_string(), "区划代码不能以 0 开头");
    }

    #[test]
    fn street_and_community_prefixes() {
        let street = StreetCode::parse("520627100").unwrap();
        assert_eq!(street.county().as_str(), "520627");
        assert_eq!(StreetCode::parse("52062710"), Err(Street));
        assert_eq!(StreetCode::parse("052062710"), Err(LeadingZero("街道代码")));

        let community: CommunityCode = "520627100001".parse().unwrap();
        assert_eq!(community.street(), street);
        assert_eq!(community.county().as_str(), "520627");
        assert_eq!(CommunityCode::parse("52062710000"), Err(Community));
        assert_eq!(CommunityCode::parse("5206271000011"), Err(Community));
    }

    #[test]
    fn grid() {
        let grid = GridCode::parse("520627100001007").unwrap();
        assert_eq!(grid.seq(), 7);
        assert_eq!(grid.community().as_str(), "520627100001");
        assert_eq!(grid.community().county().as_str(), "520627");
        assert_eq!(GridCode::parse("520627100001000"), Err(GridSeqZero));
        assert_eq!(GridCode::parse("52062710000100"), Err(Grid));
        assert_eq!(GridCode::parse("520627100001-01"), Err(Grid));
        assert_eq!(GridCode::parse("520627100001999").unwrap().seq(), 999);
    }

    #[test]
    fn grid_compose() {
        let community = CommunityCode::parse("520627100001").unwrap();
        let grid = GridCode::compose(&community, 12).unwrap();
        assert_eq!(grid.as_str(), "520627100001012");
        assert_eq!(GridCode::parse(grid.as_str()), Ok(grid));
        assert_eq!(GridCode::compose(&community, 0), Err(GridSeqZero));
        assert_eq!(GridCode::compose(&community, 1000), Err(GridSeqRange));
        assert_eq!(GridCode::compose(&community, 999).unwrap().as_str(), "520627100001999");
    }

    #[test]
    fn regions() {
        for ok in ["110105", "520627", "820000", "710000"] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in ["000000", "999999", "160000", "100000", "52062", "5206270", "52A627", "５２０６２７"] {
            assert!(!is_region(bad), "{bad}");
        }
    }

    #[test]
    fn try_from_string() {
        assert!(GridCode::try_from(String::from("520627100001001")).is_ok());
        assert_eq!(StreetCode::try_from("x"), Err(Street));
    }
}
