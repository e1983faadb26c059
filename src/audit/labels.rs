//! zh-CN names of what the audit log records: its actions (codes stay in the log, the page and
//! the export show both) and the filter's groups.

/// Action codes and their names; a step of the case loop is `case.` and the step's code.
const ACTIONS: &[(&str, &str)] = &[
    ("login", "登录"),
    ("login.failed", "登录失败"),
    ("logout", "退出登录"),
    ("user.create", "创建账号"),
    ("user.lock", "锁定账号"),
    ("user.unlock", "解锁账号"),
    ("user.password_change", "修改本人密码"),
    ("user.password_reset", "重置密码"),
    ("token.create", "签发访问令牌"),
    ("token.revoke", "吊销访问令牌"),
    ("person.create", "登记居民"),
    ("person.update", "修改居民信息"),
    ("person.retire", "居民迁出"),
    ("person.reveal", "查看完整个人信息"),
    ("person.lookup", "按完整证件号或手机号查找居民"),
    ("person.duplicate", "登记了已登记的身份证号"),
    ("person.id_set", "修改居民身份证号"),
    ("person.export", "导出居民名单"),
    ("node.create", "新建节点"),
    ("node.update", "修改节点"),
    ("node.retire", "停用节点"),
    ("node.restore", "恢复节点"),
    ("node.delete", "删除节点"),
    ("node.geometry", "修改网格范围"),
    ("grid.import", "导入网格"),
    ("register.create", "新增台账记录"),
    ("register.update", "修改台账记录"),
    ("register.retire", "停用台账记录"),
    ("register.restore", "恢复台账记录"),
    ("register.to_case", "台账转为事项"),
    ("register.reveal", "查看台账加密内容"),
    ("register.export", "导出台账"),
    ("case.create", "受理事项"),
    ("case.export", "导出事项清单"),
    ("audit.export", "导出审计日志"),
    ("case.rate", "居民评价"),
    ("category.save", "保存事项类别"),
    ("calendar.save", "保存节假日"),
    ("unit.create", "新增承办单位"),
    ("webhook.create", "登记推送地址"),
    ("webhook.delete", "停用推送地址"),
    ("settings.open311", "Open311 匿名提交设置"),
    ("settings.rate_weights", "设置综合得分权重"),
    ("demo.load", "载入演示数据"),
    ("demo.scale", "生成规模演示数据"),
    ("demo.reset", "清除演示数据"),
    ("database.backup", "备份数据库"),
];

/// The filter's choices: a code or a prefix of codes, and its name.
pub const GROUPS: &[(&str, &str)] = &[
    ("login", "登录（含失败）"),
    ("case", "事项办理"),
    ("person", "居民信息（含查看、导出）"),
    ("person.reveal", "查看完整个人信息"),
    ("person.export", "导出居民名单"),
    ("register", "台账"),
    ("node", "区域与网格"),
    ("user", "账号"),
    ("token", "访问令牌"),
    ("category", "事项类别"),
    ("calendar", "节假日"),
    ("unit", "承办单位"),
    ("webhook", "推送地址"),
    ("settings", "系统设置"),
    ("demo", "演示数据"),
    ("database", "数据库备份"),
];

/// The name of an action code (the code itself when it has none).
pub fn action(code: &str) -> String {
    if let Some((_, l)) = ACTIONS.iter().find(|(c, _)| *c == code) {
        return (*l).to_string();
    }
    match code.strip_prefix("case.").and_then(crate::cases::machine::Action::parse) {
        Some(a) => format!("事项{}", a.label()),
        None => code.to_string(),
    }
}

/// An audit entry's actor as shown: the system's own work (`system:demo`, `system:jobs`) in
/// words, with its code beside; a person's login name as it is.
pub fn actor(name: &str) -> String {
    match name.strip_prefix("system:") {
        Some("demo") => "系统（演示数据）".into(),
        Some("cli") => "系统（命令行）".into(),
        Some(what) => format!("系统（{what}）"),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(actor("system:demo"), "系统（演示数据）");
        assert_eq!(actor("huahuaqiao"), "huahuaqiao");
        assert_eq!(action("person.reveal"), "查看完整个人信息");
        assert_eq!(action("case.dispatch"), "事项派单");
        assert_eq!(action("case.reject_extension"), "事项驳回延期");
        assert_eq!(action("something.new"), "something.new");
    }
}
