//! The closed loop as a table: which action leads from which status to which, and who may
//! take it. Everything else (deadlines, notifications, history) hangs off these transitions.

use serde::Serialize;

/// Where a case stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// 待受理: reported, not yet registered.
    Submitted,
    /// 已立案，待派单.
    Registered,
    /// 已派单，待接单.
    Dispatched,
    /// 已接单，处置中.
    Accepted,
    /// 已办结，待回访.
    Finished,
    /// 已回访，待结案.
    FollowedUp,
    /// 已结案.
    Closed,
    /// 不予受理.
    Rejected,
    /// 已作废.
    Voided,
}

impl Status {
    /// Every status, in loop order.
    pub const ALL: [Status; 9] = [
        Status::Submitted,
        Status::Registered,
        Status::Dispatched,
        Status::Accepted,
        Status::Finished,
        Status::FollowedUp,
        Status::Closed,
        Status::Rejected,
        Status::Voided,
    ];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Submitted => "submitted",
            Status::Registered => "registered",
            Status::Dispatched => "dispatched",
            Status::Accepted => "accepted",
            Status::Finished => "finished",
            Status::FollowedUp => "followed_up",
            Status::Closed => "closed",
            Status::Rejected => "rejected",
            Status::Voided => "voided",
        }
    }

    /// zh-CN label.
    pub fn label(self) -> &'static str {
        match self {
            Status::Submitted => "待受理",
            Status::Registered => "待派单",
            Status::Dispatched => "待接单",
            Status::Accepted => "处置中",
            Status::Finished => "待回访",
            Status::FollowedUp => "待结案",
            Status::Closed => "已结案",
            Status::Rejected => "不予受理",
            Status::Voided => "已作废",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// No further action is possible.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Closed | Status::Rejected | Status::Voided)
    }

    /// Open311 maps everything to open/closed.
    pub fn open311(self) -> &'static str {
        if self.is_terminal() { "closed" } else { "open" }
    }
}

/// Who takes an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    /// Community, street or county staff with the case in scope and at its level.
    Staff,
    /// The unit contact, grid worker or Party member the case is assigned to.
    Assignee,
    /// A reported Party member claiming an open 微心愿.
    Claimer,
    /// The resident who reported it (H5 or resident account).
    Reporter,
}

/// Every action of the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// 立案
    Register,
    /// 派单
    Dispatch,
    /// 接单
    Accept,
    /// 退回
    Return,
    /// 转派
    Reassign,
    /// 申请延期
    RequestExtension,
    /// 批准延期
    ApproveExtension,
    /// 驳回延期
    RejectExtension,
    /// 办结
    Finish,
    /// 回访
    FollowUp,
    /// 返工
    Rework,
    /// 上报
    Escalate,
    /// 结案
    Close,
    /// 不予受理
    Reject,
    /// 作废
    Void,
    /// 认领（微心愿）
    Claim,
    /// 居民评价
    Rate,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 17] = [
        Action::Register,
        Action::Dispatch,
        Action::Accept,
        Action::Return,
        Action::Reassign,
        Action::RequestExtension,
        Action::ApproveExtension,
        Action::RejectExtension,
        Action::Finish,
        Action::FollowUp,
        Action::Rework,
        Action::Escalate,
        Action::Close,
        Action::Reject,
        Action::Void,
        Action::Claim,
        Action::Rate,
    ];

    /// Contract name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Register => "register",
            Action::Dispatch => "dispatch",
            Action::Accept => "accept",
            Action::Return => "return",
            Action::Reassign => "reassign",
            Action::RequestExtension => "request_extension",
            Action::ApproveExtension => "approve_extension",
            Action::RejectExtension => "reject_extension",
            Action::Finish => "finish",
            Action::FollowUp => "follow_up",
            Action::Rework => "rework",
            Action::Escalate => "escalate",
            Action::Close => "close",
            Action::Reject => "reject",
            Action::Void => "void",
            Action::Claim => "claim",
            Action::Rate => "rate",
        }
    }

    /// zh-CN label.
    pub fn label(self) -> &'static str {
        match self {
            Action::Register => "立案",
            Action::Dispatch => "派单",
            Action::Accept => "接单",
            Action::Return => "退回",
            Action::Reassign => "转派",
            Action::RequestExtension => "申请延期",
            Action::ApproveExtension => "批准延期",
            Action::RejectExtension => "驳回延期",
            Action::Finish => "办结",
            Action::FollowUp => "回访",
            Action::Rework => "返工",
            Action::Escalate => "上报",
            Action::Close => "结案",
            Action::Reject => "不予受理",
            Action::Void => "作废",
            Action::Claim => "认领",
            Action::Rate => "评价",
        }
    }

    /// Parses a contract name.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s.trim())
    }

    /// Who may take it.
    pub fn actor(self) -> Actor {
        use Action::*;
        match self {
            Accept | Return | RequestExtension | Finish => Actor::Assignee,
            Claim => Actor::Claimer,
            Rate => Actor::Reporter,
            _ => Actor::Staff,
        }
    }

    /// Must come with a note (a reason).
    pub fn needs_note(self) -> bool {
        matches!(
            self,
            Action::Return | Action::Reject | Action::Void | Action::Rework | Action::RequestExtension | Action::RejectExtension
        )
    }

    /// The status after this action from `from`, or None when the step is illegal.
    /// `Rate` and `Escalate` depend on details and are resolved by the caller.
    pub fn next(self, from: Status) -> Option<Status> {
        use Status::*;
        let to = match (self, from) {
            (Action::Register, Submitted) => Registered,
            (Action::Dispatch, Registered) => Dispatched,
            (Action::Accept, Dispatched) => Accepted,
            (Action::Return, Dispatched | Accepted) => Registered,
            (Action::Reassign, Dispatched | Accepted) => Dispatched,
            (Action::RequestExtension, Accepted) => Accepted,
            (Action::ApproveExtension | Action::RejectExtension, Accepted) => Accepted,
            (Action::Finish, Accepted) => Finished,
            (Action::FollowUp, Finished) => FollowedUp,
            (Action::Rework, Finished | FollowedUp) => Accepted,
            (Action::Escalate, Submitted | Registered) => Registered,
            (Action::Close, FollowedUp) => Closed,
            (Action::Reject, Submitted | Registered) => Rejected,
            // Before dispatch only: voiding a handled case would take it out of every rate (a
            // dispatched one is returned first, which the history shows).
            (Action::Void, Submitted | Registered) => Voided,
            (Action::Claim, Registered) => Accepted,
            (Action::Rate, Finished | FollowedUp) => FollowedUp,
            _ => return None,
        };
        Some(to)
    }
}

/// Where a case came from.
pub const CHANNELS: [(&str, &str); 8] = [
    ("resident_h5", "居民H5"),
    ("grid_visit", "网格走访"),
    ("grid_mailbox", "网格信箱"),
    ("research_visit", "调研走访"),
    ("hotline_12345", "12345热线转办"),
    ("alliance_meeting", "联盟会议"),
    ("open311", "Open311接口"),
    ("staff", "工作人员录入"),
];

/// The zh-CN label of a channel code.
pub fn channel_label(code: &str) -> &'static str {
    CHANNELS.iter().find(|(c, _)| *c == code).map(|(_, l)| *l).unwrap_or("其他")
}

/// Satisfaction grades of a follow-up or rating.
pub const SATISFACTION: [(&str, &str); 3] =
    [("satisfied", "满意"), ("basically_satisfied", "基本满意"), ("unsatisfied", "不满意")];

/// zh-CN label of a satisfaction code.
pub fn satisfaction_label(code: &str) -> &'static str {
    SATISFACTION.iter().find(|(c, _)| *c == code).map(|(_, l)| *l).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_path_closes_the_loop() {
        let mut s = Status::Submitted;
        for a in [Action::Register, Action::Dispatch, Action::Accept, Action::Finish, Action::FollowUp, Action::Close] {
            s = a.next(s).unwrap_or_else(|| panic!("{a:?} from {s:?}"));
        }
        assert_eq!(s, Status::Closed);
    }

    #[test]
    fn terminal_states_accept_nothing() {
        for s in [Status::Closed, Status::Rejected, Status::Voided] {
            for a in Action::ALL {
                assert_eq!(a.next(s), None, "{a:?} from {s:?}");
            }
        }
    }

    #[test]
    fn illegal_steps_are_refused() {
        assert_eq!(Action::Accept.next(Status::Registered), None);
        assert_eq!(Action::Close.next(Status::Finished), None, "a follow-up comes first");
        assert_eq!(Action::Dispatch.next(Status::Submitted), None, "register first");
        assert_eq!(Action::Finish.next(Status::Dispatched), None, "accept first");
        for s in [Status::Dispatched, Status::Accepted, Status::Finished, Status::FollowedUp] {
            assert_eq!(Action::Void.next(s), None, "no voiding a handled case ({s:?})");
        }
    }

    #[test]
    fn names_round_trip() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(channel_label("hotline_12345"), "12345热线转办");
    }
}
