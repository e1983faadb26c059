//! The administrative tree: county → street → community → grid → compound → building, plus
//! relocation sites attached to communities. One table, one materialised path per node
//! (`/520627/520627001/…/`) so that every scope check is a prefix test.

pub mod geometry;
pub mod routes;
pub mod store;

use serde::Serialize;

use crate::ident;

/// The kinds of tree node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// 县
    County,
    /// 街道
    Street,
    /// 社区
    Community,
    /// 网格
    Grid,
    /// 小区
    Compound,
    /// 楼栋
    Building,
    /// 易地扶贫搬迁安置点
    Site,
}

impl Kind {
    /// Every kind, top down.
    pub const ALL: [Kind; 7] =
        [Kind::County, Kind::Street, Kind::Community, Kind::Grid, Kind::Compound, Kind::Building, Kind::Site];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::County => "county",
            Kind::Street => "street",
            Kind::Community => "community",
            Kind::Grid => "grid",
            Kind::Compound => "compound",
            Kind::Building => "building",
            Kind::Site => "site",
        }
    }

    /// zh-CN name.
    pub fn label(self) -> &'static str {
        match self {
            Kind::County => "县",
            Kind::Street => "街道",
            Kind::Community => "社区",
            Kind::Grid => "网格",
            Kind::Compound => "小区",
            Kind::Building => "楼栋",
            Kind::Site => "安置点",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind a parent of this kind must have (None for the county).
    pub fn parent_kind(self) -> Option<Kind> {
        match self {
            Kind::County => None,
            Kind::Street => Some(Kind::County),
            Kind::Community | Kind::Site => Some(Kind::Street).filter(|_| self == Kind::Community).or(Some(Kind::Community)),
            Kind::Grid => Some(Kind::Community),
            Kind::Compound => Some(Kind::Grid),
            Kind::Building => Some(Kind::Compound),
        }
    }

    /// Kinds that may hang below this one.
    pub fn child_kinds(self) -> Vec<Kind> {
        Kind::ALL.into_iter().filter(|k| k.parent_kind() == Some(self)).collect()
    }
}

/// The path of a node's ancestor `levels` deep (1 county, 2 street, 3 community), e.g.
/// `ancestor("/520627/520627001/520627001001/…/", 3)` = `/520627/520627001/520627001001/`.
pub fn ancestor(path: &str, levels: usize) -> String {
    path.split('/').take(levels + 1).collect::<Vec<_>>().join("/") + "/"
}

/// Checks a node code for its kind and parent: statistical codes for county, street,
/// community and grid (each extending its parent's), `PARENT-NN` for the rest.
pub fn check_code(kind: Kind, code: &str, parent_code: Option<&str>) -> Result<(), String> {
    let prefix_ok = |p: &str| parent_code.is_none_or(|pc| p == pc);
    match kind {
        Kind::County => ident::CountyCode::parse(code).map(|_| ()).map_err(|e| e.to_string()),
        Kind::Street => {
            let c = ident::StreetCode::parse(code).map_err(|e| e.to_string())?;
            if prefix_ok(&c.as_str()[..6]) {
                Ok(())
            } else {
                Err("街道代码的前 6 位必须是所属县的区划代码".into())
            }
        }
        Kind::Community => {
            let c = ident::CommunityCode::parse(code).map_err(|e| e.to_string())?;
            if prefix_ok(&c.as_str()[..9]) {
                Ok(())
            } else {
                Err("社区代码的前 9 位必须是所属街道的代码".into())
            }
        }
        Kind::Grid => {
            let c = ident::GridCode::parse(code).map_err(|e| e.to_string())?;
            if prefix_ok(&c.as_str()[..12]) {
                Ok(())
            } else {
                Err("网格编码的前 12 位必须是所属社区的代码".into())
            }
        }
        Kind::Compound | Kind::Building | Kind::Site => {
            let pc = parent_code.unwrap_or_default();
            let tail = code.strip_prefix(pc).and_then(|t| t.strip_prefix('-'));
            match tail {
                Some(t) if (1..=4).contains(&t.len()) && t.chars().all(|c| c.is_ascii_digit()) => Ok(()),
                _ => Err(format!("{}编码应为“上级编码-序号”，如 {pc}-01", kind.label())),
            }
        }
    }
}

/// A node of the tree.
#[derive(Clone, Debug, Serialize)]
pub struct Node {
    /// nodes.id
    #[serde(skip)]
    pub id: i64,
    /// Unique code.
    pub code: String,
    /// Kind name.
    pub kind: Kind,
    /// Name.
    pub name: String,
    /// Parent's code.
    pub parent_code: Option<String>,
    /// Materialised path.
    #[serde(skip)]
    pub path: String,
    /// Address text.
    pub address: String,
    /// Free note.
    pub note: String,
    /// Made up for the demo county.
    pub is_demo: bool,
    /// Retired (kept for history, hidden from pickers).
    pub retired: bool,
    /// Optimistic-lock version.
    pub version: i64,
    /// Has a polygon.
    pub has_geometry: bool,
}

impl Node {
    /// The community code for nodes at or below a community (from the path).
    pub fn community_code(&self) -> Option<String> {
        self.path.split('/').find(|s| s.len() == 12 && s.chars().all(|c| c.is_ascii_digit())).map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_kinds() {
        assert_eq!(Kind::Site.parent_kind(), Some(Kind::Community));
        assert_eq!(Kind::Community.parent_kind(), Some(Kind::Street));
        assert_eq!(Kind::Community.child_kinds(), vec![Kind::Grid, Kind::Site]);
    }

    #[test]
    fn ancestors() {
        let p = "/520627/520627001/520627001001/520627001001003/";
        assert_eq!(ancestor(p, 1), "/520627/");
        assert_eq!(ancestor(p, 2), "/520627/520627001/");
        assert_eq!(ancestor(p, 3), "/520627/520627001/520627001001/");
    }

    #[test]
    fn codes() {
        assert!(check_code(Kind::County, "520627", None).is_ok());
        assert!(check_code(Kind::Street, "520627001", Some("520627")).is_ok());
        assert!(check_code(Kind::Street, "520628001", Some("520627")).is_err());
        assert!(check_code(Kind::Grid, "520627001001001", Some("520627001001")).is_ok());
        assert!(check_code(Kind::Grid, "520627001001000", Some("520627001001")).is_err());
        assert!(check_code(Kind::Compound, "520627001001001-01", Some("520627001001001")).is_ok());
        assert!(check_code(Kind::Compound, "520627001001001-x", Some("520627001001001")).is_err());
    }
}
