//! Accounts, roles, data scopes, sessions, tokens, lockout and CSRF.
//!
//! Authorization is one check, [`Principal::check`]: the role must hold the permission and
//! the record's tree path must lie inside the account's scope. Out-of-scope records answer
//! 404, exactly like missing ones, so a community cannot learn what exists next door.

pub mod cache;
pub mod middleware;
pub mod password;
pub mod routes;
pub mod store;
pub mod throttle;

use serde::Serialize;

use crate::error::{AppError, AppResult};

/// The seven roles of the brief.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 县级管理员 (组织部)
    CountyAdmin,
    /// 街道管理员 (街道党工委)
    StreetAdmin,
    /// 社区工作人员
    CommunityStaff,
    /// 网格员
    GridWorker,
    /// 成员单位联络员
    UnitContact,
    /// 在职党员
    PartyMember,
    /// 居民
    Resident,
}

/// Everything a role may be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Perm {
    /// See the tree, grids and the map.
    TreeRead,
    /// Create, edit and retire tree nodes and grid geometry.
    TreeWrite,
    /// See the (masked) resident register.
    PersonRead,
    /// Register and edit residents.
    PersonWrite,
    /// Reveal full ID numbers and phones (audited).
    PersonReveal,
    /// Manage accounts inside the scope.
    UserManage,
    /// Read and export the audit log.
    AuditRead,
    /// See the registers of the five systems (staff only: they hold household visits, mailbox
    /// messages and staff records; residents, Party members and unit contacts see their figures).
    RegisterRead,
}

impl Role {
    /// All roles, highest first.
    pub const ALL: [Role; 7] = [
        Role::CountyAdmin,
        Role::StreetAdmin,
        Role::CommunityStaff,
        Role::GridWorker,
        Role::UnitContact,
        Role::PartyMember,
        Role::Resident,
    ];

    /// The contract name (`county_admin` …).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::CountyAdmin => "county_admin",
            Role::StreetAdmin => "street_admin",
            Role::CommunityStaff => "community_staff",
            Role::GridWorker => "grid_worker",
            Role::UnitContact => "unit_contact",
            Role::PartyMember => "party_member",
            Role::Resident => "resident",
        }
    }

    /// The zh-CN name.
    pub fn label(self) -> &'static str {
        match self {
            Role::CountyAdmin => "县级管理员",
            Role::StreetAdmin => "街道管理员",
            Role::CommunityStaff => "社区工作人员",
            Role::GridWorker => "网格员",
            Role::UnitContact => "单位联络员",
            Role::PartyMember => "在职党员",
            Role::Resident => "居民",
        }
    }

    /// Parses a contract name.
    pub fn parse(s: &str) -> Result<Role, String> {
        Role::ALL.into_iter().find(|r| r.as_str() == s.trim()).ok_or_else(|| {
            // Named as people say them, each with the code a program sends.
            let all: Vec<String> = Role::ALL.iter().map(|r| format!("{}（{}）", r.label(), r.as_str())).collect();
            let given: String = s.trim().chars().take(32).collect();
            let given = if given.is_empty() { "未选择".to_string() } else { given };
            format!("角色无效：{given}。可选：{}", all.join("、"))
        })
    }

    /// Rank used so that an admin can only create accounts below or at its own level.
    pub fn rank(self) -> u8 {
        Role::ALL.iter().position(|r| *r == self).unwrap_or(0) as u8
    }

    /// Least privilege: the permission table.
    pub fn can(self, p: Perm) -> bool {
        use Perm::*;
        match self {
            Role::CountyAdmin => true,
            Role::StreetAdmin => true,
            Role::CommunityStaff => {
                matches!(p, TreeRead | TreeWrite | PersonRead | PersonWrite | PersonReveal | UserManage | RegisterRead)
            }
            Role::GridWorker => matches!(p, TreeRead | PersonRead | PersonWrite | RegisterRead),
            Role::UnitContact | Role::PartyMember | Role::Resident => matches!(p, TreeRead),
        }
    }
}

/// How the request authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// Browser cookie or API session token; carries the CSRF token.
    Session {
        /// The session's CSRF token.
        csrf: String,
        /// Hash of the session token (to log out).
        token_hash: String,
    },
    /// Personal access token.
    Token,
}

/// The authenticated caller.
#[derive(Clone, Debug)]
pub struct Principal {
    /// users.id
    pub user_id: i64,
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Scope node code.
    pub scope: String,
    /// Scope node path (`/520627/…/`).
    pub scope_path: String,
    /// The unit of a unit contact.
    pub unit_id: Option<i64>,
    /// That unit's name, as it was when the token was last looked up (steps are labelled
    /// with it; `None` where it was not read).
    pub unit_name: Option<String>,
    /// Whether the password must be changed first.
    pub must_change_password: bool,
    /// How the caller authenticated.
    pub via: Via,
    /// Client address.
    pub ip: String,
}

impl Principal {
    /// The whole-system actor used by CLI commands: every permission, every scope.
    pub fn system(what: &str) -> Principal {
        Principal {
            user_id: 0,
            username: format!("system:{what}"),
            display_name: "系统".into(),
            role: Role::CountyAdmin,
            scope: String::new(),
            scope_path: "/".into(),
            unit_id: None,
            unit_name: None,
            must_change_password: false,
            via: Via::Token,
            ip: "local".into(),
        }
    }

    /// The path of the county the caller belongs to (`/` for the system actor).
    pub fn county_path(&self) -> String {
        if self.scope_path == "/" { "/".into() } else { crate::tree::ancestor(&self.scope_path, 1) }
    }

    /// True when the tree path lies inside the caller's scope.
    pub fn in_scope(&self, path: &str) -> bool {
        path.starts_with(&self.scope_path)
    }

    /// The central authorization check: the role must hold `perm`, and `path` (the record's
    /// tree path) must lie inside the scope — otherwise 404, as if it did not exist.
    pub fn check(&self, perm: Perm, path: &str) -> AppResult<()> {
        if !self.in_scope(path) {
            return Err(AppError::NotFound);
        }
        self.require(perm)
    }

    /// The role must hold `perm` (for lists, which are filtered by scope in SQL).
    pub fn require(&self, perm: Perm) -> AppResult<()> {
        self.ready()?;
        if self.role.can(perm) { Ok(()) } else { Err(AppError::Forbidden) }
    }

    /// The initial password must have been changed (for what any role may read of its own).
    pub fn ready(&self) -> AppResult<()> {
        if self.must_change_password { Err(AppError::PasswordChangeRequired) } else { Ok(()) }
    }

    /// The actor for audit entries.
    pub fn actor(&self) -> crate::audit::Actor {
        crate::audit::Actor { name: self.username.clone(), ip: self.ip.clone() }
    }

    /// The CSRF token for forms (empty for token callers, who need none).
    pub fn csrf(&self) -> &str {
        match &self.via {
            Via::Session { csrf, .. } => csrf,
            Via::Token => "",
        }
    }
}

/// Random bytes from the OS as lower-case hex.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::getrandom(&mut buf).expect("the OS random source is available");
    crate::audit::hex(&buf)
}

/// SHA-256 of a token, as stored in the database (tokens themselves never are).
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    crate::audit::hex(&sha2::Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_least_privilege() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
        }
        assert!(Role::parse("root").is_err());
        assert!(!Role::GridWorker.can(Perm::PersonReveal));
        assert!(!Role::Resident.can(Perm::PersonRead));
        assert!(Role::CommunityStaff.can(Perm::PersonReveal));
        assert!(!Role::CommunityStaff.can(Perm::AuditRead));
    }

    #[test]
    fn scope_check_hides_other_communities() {
        let p = Principal {
            user_id: 1,
            username: "a".into(),
            display_name: "a".into(),
            role: Role::CommunityStaff,
            scope: "520627001001".into(),
            scope_path: "/520627/520627001/520627001001/".into(),
            unit_id: None,
            unit_name: None,
            must_change_password: false,
            via: Via::Token,
            ip: String::new(),
        };
        assert!(p.check(Perm::PersonRead, "/520627/520627001/520627001001/520627001001002/").is_ok());
        assert!(matches!(p.check(Perm::PersonRead, "/520627/520627001/520627001002/"), Err(AppError::NotFound)));
        assert!(matches!(p.check(Perm::AuditRead, "/520627/520627001/520627001001/"), Err(AppError::Forbidden)));
    }
}
