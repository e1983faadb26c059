//! The case loop (群众点单 → 社区派单 → 部门接单 → 办结 → 评价): every need or problem, from any
//! channel, becomes one case that runs the closed loop of grid management.

pub mod admin;
pub mod calendar;
pub mod categories;
pub mod cube;
pub mod demo;
pub mod export;
pub mod flow;
pub mod h5;
pub mod history;
pub mod jobs;
pub mod machine;
pub mod megacity;
pub mod notify;
pub mod pages;
pub mod photos;
pub mod rates;
pub mod rating;
pub mod reveal;
pub mod rollups;
pub mod routes;
pub mod search;
mod service_hours;
pub mod store;
pub mod submissions;
pub mod units;
pub mod view;

use serde::Serialize;

use crate::auth::{Principal, Role};
use crate::db::list::Where;
use crate::db::{Row, get};
use crate::error::AppResult;
pub use machine::{Action, Status};

/// How far up a case has been escalated (0 community, 1 street, 2 county).
pub fn level_label(level: i64) -> &'static str {
    match level {
        0 => "社区",
        1 => "街道",
        _ => "县",
    }
}

/// Who takes a case escalated to `level`, and where: the street's admins, or the county's.
pub fn escalation_target(node_path: &str, level: i64) -> (Role, String) {
    if level >= 2 {
        (Role::CountyAdmin, crate::tree::ancestor(node_path, 1))
    } else {
        (Role::StreetAdmin, crate::tree::ancestor(node_path, 2))
    }
}

/// The level a staff role works at; it may act on cases up to that level.
pub fn staff_level(role: Role) -> Option<i64> {
    match role {
        Role::CommunityStaff => Some(0),
        Role::StreetAdmin => Some(1),
        Role::CountyAdmin => Some(2),
        _ => None,
    }
}

/// A case row as stored (ids, not names).
#[derive(Clone, Debug)]
pub struct CaseRow {
    /// cases.id
    pub id: i64,
    /// YH-2026-000123
    pub number: String,
    /// Category id.
    pub category_id: i64,
    /// Status.
    pub status: Status,
    /// Tree path of its grid (or community).
    pub node_path: String,
    /// Escalation level.
    pub level: i64,
    /// Assigned unit.
    pub unit_id: Option<i64>,
    /// Assigned user (grid worker or Party member).
    pub assignee_user_id: Option<i64>,
    /// Reporting resident account.
    pub reporter_user_id: Option<i64>,
    /// Reporter chose privacy.
    pub private: bool,
    /// Optimistic lock.
    pub version: i64,
    /// Pending extension request, in working hours.
    pub extension_hours: Option<f64>,
    /// The follow-up's or rating's satisfaction code, once there is one.
    pub satisfaction: Option<String>,
    /// Current deadline.
    pub resolve_due: Option<i64>,
    /// When the current clock started.
    pub clock_start: Option<i64>,
    /// Card level (0, 1 yellow, 2 red).
    pub warn_level: i64,
    /// Community code.
    pub community_code: String,
    /// Grid code.
    pub grid_code: String,
    /// What the case counts in the rollups, as read. A step changes the case only if its
    /// version is still the one read (and every change bumps it), so this is also what it
    /// counts when the step changes it: no second read under the writer.
    pub counted: Option<(rollups::Key, rates::Counts)>,
}

/// Columns for [`CaseRow`].
pub const ROW_COLS: &str = "c.id, c.number, c.category_id, c.status, c.node_path, c.level, c.unit_id, c.assignee_user_id, c.reporter_user_id, \
     c.private, c.version, c.extension_hours, c.resolve_due, c.clock_start, c.warn_level, c.community_code, c.grid_code, \
     c.created_at, c.contacted, c.solved, c.satisfaction, c.finished_at, c.rework_count, c.dispatched_at, c.extension_count, \
     c.accepted_at, c.sign_due";

impl CaseRow {
    /// Decodes [`ROW_COLS`].
    pub fn from_row(r: &Row) -> AppResult<CaseRow> {
        let status: String = get(r, "status")?;
        Ok(CaseRow {
            id: get(r, "id")?,
            number: get(r, "number")?,
            category_id: get(r, "category_id")?,
            status: Status::parse(&status).ok_or_else(|| crate::error::AppError::Internal(format!("bad status {status}")))?,
            node_path: get(r, "node_path")?,
            level: get(r, "level")?,
            unit_id: get(r, "unit_id")?,
            assignee_user_id: get(r, "assignee_user_id")?,
            reporter_user_id: get(r, "reporter_user_id")?,
            private: get::<i64>(r, "private")? != 0,
            version: get(r, "version")?,
            extension_hours: get(r, "extension_hours")?,
            satisfaction: get(r, "satisfaction")?,
            resolve_due: get(r, "resolve_due")?,
            clock_start: get(r, "clock_start")?,
            warn_level: get(r, "warn_level")?,
            community_code: get(r, "community_code")?,
            grid_code: get(r, "grid_code")?,
            counted: rollups::contribution(r)?,
        })
    }

    /// True when `p` is the one the case is assigned to.
    pub fn is_assignee(&self, p: &Principal) -> bool {
        match p.role {
            Role::UnitContact => p.unit_id.is_some() && p.unit_id == self.unit_id,
            Role::GridWorker | Role::PartyMember => self.assignee_user_id == Some(p.user_id),
            _ => false,
        }
    }

    /// True when `p` may act as staff on it: a staff role, in scope, at or above its level.
    pub fn is_staff(&self, p: &Principal) -> bool {
        staff_level(p.role).is_some_and(|l| l >= self.level) && p.in_scope(&self.node_path) && !p.must_change_password
    }

    /// The central visibility rule, mirrored in SQL by [`visible`].
    pub fn visible_to(&self, p: &Principal, claimable: bool) -> bool {
        match p.role {
            Role::CountyAdmin | Role::StreetAdmin | Role::CommunityStaff => p.in_scope(&self.node_path),
            Role::GridWorker => p.in_scope(&self.node_path) || self.is_assignee(p),
            Role::UnitContact => self.is_assignee(p),
            // What they may claim (see `flow::who_may`): an escalated case is the street's or
            // the county's, no longer the community's 微心愿.
            Role::PartyMember => {
                self.is_assignee(p)
                    || (claimable && self.status == Status::Registered && self.level == 0 && p.in_scope(&self.node_path))
            }
            Role::Resident => self.reporter_user_id == Some(p.user_id),
        }
    }
}

/// Adds the caller's visibility condition to a case query (`c` = cases, `cat` = categories).
pub fn visible(w: &mut Where, p: &Principal) {
    match p.role {
        Role::CountyAdmin | Role::StreetAdmin | Role::CommunityStaff => {
            w.under("c.node_path", &p.scope_path);
        }
        Role::GridWorker => {
            w.arg(
                &format!("(c.node_path LIKE ? ESCAPE '\\' OR c.assignee_user_id = {})", p.user_id),
                format!("{}%", crate::db::like_escape(&p.scope_path)),
            );
        }
        Role::UnitContact => {
            w.raw(&format!("c.unit_id = {}", p.unit_id.unwrap_or(-1)));
        }
        Role::PartyMember => {
            w.arg(
                &format!(
                    "(c.assignee_user_id = {} OR (c.status = 'registered' AND c.level = 0 AND cat.claimable = 1 AND c.node_path LIKE ? ESCAPE '\\'))",
                    p.user_id
                ),
                format!("{}%", crate::db::like_escape(&p.scope_path)),
            );
        }
        Role::Resident => {
            w.raw(&format!("c.reporter_user_id = {}", p.user_id));
        }
    }
}

/// A suggested assignee for dispatch.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Assignee {
    /// Id to send back as `assignee`: a unit code, or `u<user id>` for people.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `unit`, `grid_worker` or `party_member`.
    pub kind: String,
    /// Why it is suggested (default of the category, the case's grid…).
    pub reason: String,
}
