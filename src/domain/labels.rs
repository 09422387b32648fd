//! The Chinese names the procedure's paper forms use for each code (《事件记录单》,
//! 《事件信息统计表》), so printed records and spreadsheets read as the service desk writes them.

use super::escalation::EscalationKind;
use super::incident::{Channel, ClosureCode, IncidentKind, Status, Tier};
use super::level::Level;

/// A code's name on the procedure's forms.
pub trait NameZh {
    /// The Chinese name.
    fn name_zh(self) -> &'static str;
}

impl NameZh for Level {
    fn name_zh(self) -> &'static str {
        match self {
            Level::Low => "低",
            Level::Medium => "中",
            Level::High => "高",
        }
    }
}

impl NameZh for Status {
    fn name_zh(self) -> &'static str {
        match self {
            Status::New => "已登记",
            Status::InProgress => "处理中",
            Status::Resolved => "已解决，待用户确认",
            Status::Closed => "已关闭",
        }
    }
}

impl NameZh for Tier {
    fn name_zh(self) -> &'static str {
        match self {
            Tier::L1 => "一线",
            Tier::L2 => "二线",
        }
    }
}

impl NameZh for IncidentKind {
    fn name_zh(self) -> &'static str {
        match self {
            IncidentKind::Fault => "故障申报",
            IncidentKind::ServiceRequest => "服务请求",
        }
    }
}

impl NameZh for Channel {
    fn name_zh(self) -> &'static str {
        match self {
            Channel::Phone => "电话",
            Channel::Web => "网站",
            Channel::Email => "电子邮件",
            Channel::Monitoring => "监控系统",
            Channel::Onsite => "现场",
            Channel::Other => "其他",
        }
    }
}

impl NameZh for ClosureCode {
    fn name_zh(self) -> &'static str {
        match self {
            ClosureCode::Resolved => "已解决",
            ClosureCode::Unresolved => "未解决",
            ClosureCode::Duplicate => "重复事件",
            ClosureCode::Withdrawn => "用户撤销",
        }
    }
}

impl NameZh for EscalationKind {
    fn name_zh(self) -> &'static str {
        match self {
            EscalationKind::Functional => "职能升级",
            EscalationKind::Priority => "优先级升级",
            EscalationKind::Hierarchical => "层级升级",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn distinct<T: NameZh + Copy>(all: &[T]) -> bool {
        all.iter()
            .map(|v| v.name_zh())
            .collect::<HashSet<_>>()
            .len()
            == all.len()
    }

    #[test]
    fn every_code_has_a_name_of_its_own() {
        assert!(distinct(&Level::ALL));
        assert!(distinct(Status::ALL));
        assert!(distinct(Tier::ALL));
        assert!(distinct(IncidentKind::ALL));
        assert!(distinct(Channel::ALL));
        assert!(distinct(ClosureCode::ALL));
        assert!(distinct(EscalationKind::ALL));
        assert_eq!(Level::High.name_zh(), "高");
        assert_eq!(ClosureCode::Resolved.name_zh(), "已解决");
    }
}
