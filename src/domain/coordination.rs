//! Coordination tickets (SPEC §6, procedure §4.4 and §4.6.2): an L2 engineer hands a
//! customer-side problem to the operations staff (《客户问题协调单》, `customer_issue`) or an
//! information change to problem management (《问题协调单》, `problem`). Their states, who may do
//! what, and what a resolution must say.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::incident::{Status, UnknownCode, text_codes};
use super::role::{Role, Roles};
use super::validation::{FieldError, check_text};

text_codes!(
    /// Which hand-off a ticket is.
    CoordinationKind, "kind" {
        /// 《客户问题协调单》: a customer-side problem for the operations staff; blocks resolving
        /// the incident while open or accepted.
        CustomerIssue => "customer_issue",
        /// 《问题协调单》: an information change for problem management; never blocks.
        Problem => "problem",
    }
);

text_codes!(
    /// Where a ticket is in its life.
    CoordinationStatus, "status" {
        /// Handed over, not yet taken.
        Open => "open",
        /// Taken by its assignee.
        Accepted => "accepted",
        /// Answered; final.
        Resolved => "resolved",
        /// Withdrawn; final.
        Cancelled => "cancelled",
    }
);

text_codes!(
    /// What can be done to a ticket.
    TicketAction, "action" {
        /// The assignee takes it.
        Accept => "accept",
        /// The assignee answers it.
        Resolve => "resolve",
        /// Its creator or an incident manager withdraws it.
        Cancel => "cancel",
    }
);

/// A coordination ticket as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[allow(missing_docs)]
#[schema(example = json!({"id": 1, "incident_id": 2, "kind": "customer_issue", "status": "resolved", "assignee_id": 5, "summary": "请到现场检查 3 号收费机网络", "details": "远程日志显示 3 号机与数据库之间频繁断连，需要现场排查网线和交换机端口。", "analysis": "交换机 12 号端口老化，导致间歇性断连。", "process": "更换网线并改接到 14 号端口，连续观察 30 分钟。", "result": "3 号机连接稳定，收费录入恢复正常。", "root_cause": null, "change_ref": null, "cancel_reason": null, "created_by": 4, "created_at": "2026-12-07T09:15:00Z", "accepted_at": "2026-12-07T09:15:00Z", "resolved_at": "2026-12-07T09:15:00Z", "cancelled_at": null, "updated_at": "2026-12-07T09:15:00Z", "version": 3}))]
pub struct CoordinationTicket {
    pub id: i64,
    pub incident_id: i64,
    pub kind: CoordinationKind,
    pub status: CoordinationStatus,
    pub assignee_id: i64,
    #[schema(example = "医院机房网络中断，需运维现场排查")]
    pub summary: String,
    #[schema(example = "门诊、住院部均无法连接 HIS 服务器，ping 网关超时")]
    pub details: String,
    #[schema(example = "机房核心交换机电源模块故障")]
    pub analysis: Option<String>,
    #[schema(example = "更换电源模块并恢复链路")]
    pub process: Option<String>,
    #[schema(example = "网络已恢复，门诊与住院部可正常登录 HIS")]
    pub result: Option<String>,
    pub root_cause: Option<String>,
    pub change_ref: Option<String>,
    pub cancel_reason: Option<String>,
    pub created_by: i64,
    pub created_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

impl CoordinationTicket {
    /// True while it blocks resolving its incident: an open or accepted `customer_issue`.
    pub fn blocks_resolving(&self) -> bool {
        self.kind == CoordinationKind::CustomerIssue
            && matches!(
                self.status,
                CoordinationStatus::Open | CoordinationStatus::Accepted
            )
    }
}

/// The actions a ticket's state allows.
pub fn allowed_actions(status: CoordinationStatus) -> &'static [TicketAction] {
    match status {
        CoordinationStatus::Open => &[TicketAction::Accept, TicketAction::Cancel],
        CoordinationStatus::Accepted => &[TicketAction::Resolve, TicketAction::Cancel],
        CoordinationStatus::Resolved | CoordinationStatus::Cancelled => &[],
    }
}

/// Why a ticket command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoordinationError {
    /// The state does not allow the action (409 `illegal_transition`).
    #[error("`{action}` is not allowed while the ticket is {status}")]
    IllegalTransition {
        /// Current status.
        status: CoordinationStatus,
        /// The refused action.
        action: TicketAction,
    },
    /// The incident is closed (409 `incident_closed`).
    #[error("incident {0} is closed; a closed incident takes no more coordination tickets")]
    IncidentClosed(i64),
    /// The caller may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// Fields break the rules (422).
    #[error("invalid fields: {0:?}")]
    Invalid(Vec<FieldError>),
}

/// The assignee named for a new ticket, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssigneeFacts {
    /// Id.
    pub id: i64,
    /// Can still sign in and work.
    pub active: bool,
    /// Roles.
    pub roles: Roles,
}

/// A ticket as requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRequest {
    /// Which hand-off.
    pub kind: CoordinationKind,
    /// Who is to work it.
    pub assignee_id: i64,
    /// One line, 1–200 characters.
    pub summary: String,
    /// Up to 10 000 characters.
    pub details: String,
}

/// A ticket ready to be stored; the store adds id and version.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct NewTicket {
    pub incident_id: i64,
    pub kind: CoordinationKind,
    pub assignee_id: i64,
    pub summary: String,
    pub details: String,
    pub created_by: i64,
    pub created_at: DateTime<Utc>,
}

fn invalid(field: &str, code: &str, message: impl Into<String>) -> FieldError {
    FieldError::new(field, code, message)
}

/// Decides a new ticket on incident `incident_id` (in `incident_status`) by `caller` with
/// `roles`: L2 engineers and incident managers open them; the assignee must fit the kind.
pub fn open_ticket(
    incident_id: i64,
    incident_status: Status,
    caller: i64,
    roles: &Roles,
    request: TicketRequest,
    assignee: Option<AssigneeFacts>,
    now: DateTime<Utc>,
) -> Result<NewTicket, CoordinationError> {
    if incident_status == Status::Closed {
        return Err(CoordinationError::IncidentClosed(incident_id));
    }
    if !roles.has_any(&[Role::L2Engineer, Role::IncidentManager]) {
        return Err(CoordinationError::Forbidden(
            "Coordination tickets are opened by L2 engineers and incident managers.".into(),
        ));
    }
    let mut errors = Vec::new();
    errors.extend(check_text("summary", &request.summary, 200).err());
    if request.details.chars().count() > 10_000 {
        errors.push(invalid(
            "details",
            "length",
            "must be at most 10000 characters",
        ));
    }
    let fits: &[Role] = match request.kind {
        CoordinationKind::CustomerIssue => &[Role::OpsStaff],
        CoordinationKind::Problem => &[Role::L2Engineer, Role::IncidentManager],
    };
    match assignee.filter(|a| a.id == request.assignee_id) {
        Some(a) if a.active && a.roles.has_any(fits) => {}
        Some(_) => errors.push(invalid(
            "assignee_id",
            "invalid",
            match request.kind {
                CoordinationKind::CustomerIssue => {
                    "a customer_issue ticket goes to an active ops_staff user"
                }
                CoordinationKind::Problem => {
                    "a problem ticket goes to an active l2_engineer or incident_manager"
                }
            },
        )),
        None => errors.push(invalid(
            "assignee_id",
            "not_found",
            format!("user {} does not exist", request.assignee_id),
        )),
    }
    if !errors.is_empty() {
        return Err(CoordinationError::Invalid(errors));
    }
    Ok(NewTicket {
        incident_id,
        kind: request.kind,
        assignee_id: request.assignee_id,
        summary: request.summary.trim().to_owned(),
        details: request.details,
        created_by: caller,
        created_at: now,
    })
}

/// What the assignee reports when resolving.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct TicketResolution {
    pub analysis: String,
    pub process: String,
    pub result: String,
    pub root_cause: Option<String>,
    pub change_ref: Option<String>,
}

/// A command on an existing ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketCommand {
    /// Take it.
    Accept,
    /// Answer it.
    Resolve(TicketResolution),
    /// Withdraw it, saying why.
    Cancel {
        /// Why.
        reason: String,
    },
    /// Its incident was closed (SPEC §6): the ticket is cancelled, whoever closed the
    /// incident.
    CancelForClosure {
        /// Names the closure.
        reason: String,
    },
}

impl TicketCommand {
    /// The action it is.
    pub fn action(&self) -> TicketAction {
        match self {
            TicketCommand::Accept => TicketAction::Accept,
            TicketCommand::Resolve(_) => TicketAction::Resolve,
            TicketCommand::Cancel { .. } | TicketCommand::CancelForClosure { .. } => {
                TicketAction::Cancel
            }
        }
    }
}

/// Decides `command` by `caller` (with `roles`) on `ticket`: the state first (409), then who
/// (403), then the fields (422). Returns the ticket as it is to be stored.
pub fn decide_ticket(
    ticket: &CoordinationTicket,
    caller: i64,
    roles: &Roles,
    command: TicketCommand,
    now: DateTime<Utc>,
) -> Result<CoordinationTicket, CoordinationError> {
    let action = command.action();
    if !allowed_actions(ticket.status).contains(&action) {
        return Err(CoordinationError::IllegalTransition {
            status: ticket.status,
            action,
        });
    }
    let mut next = ticket.clone();
    match command {
        TicketCommand::Accept => {
            if caller != ticket.assignee_id {
                return Err(CoordinationError::Forbidden(
                    "Only the ticket's assignee accepts it.".into(),
                ));
            }
            next.status = CoordinationStatus::Accepted;
            next.accepted_at = Some(now);
        }
        TicketCommand::Resolve(resolution) => {
            if caller != ticket.assignee_id {
                return Err(CoordinationError::Forbidden(
                    "Only the ticket's assignee resolves it.".into(),
                ));
            }
            let mut errors: Vec<FieldError> = [
                check_text("analysis", &resolution.analysis, 10_000),
                check_text("process", &resolution.process, 10_000),
                check_text("result", &resolution.result, 10_000),
            ]
            .into_iter()
            .filter_map(Result::err)
            .collect();
            match (ticket.kind, &resolution.root_cause) {
                (CoordinationKind::Problem, None) => errors.push(invalid(
                    "root_cause",
                    "required",
                    "a problem ticket is resolved with its root cause",
                )),
                (CoordinationKind::Problem, Some(cause)) => {
                    errors.extend(check_text("root_cause", cause, 10_000).err())
                }
                (CoordinationKind::CustomerIssue, Some(_)) => errors.push(invalid(
                    "root_cause",
                    "invalid",
                    "only a problem ticket records a root cause",
                )),
                (CoordinationKind::CustomerIssue, None) => {}
            }
            match (ticket.kind, &resolution.change_ref) {
                (CoordinationKind::CustomerIssue, Some(_)) => errors.push(invalid(
                    "change_ref",
                    "invalid",
                    "only a problem ticket records a change",
                )),
                (_, Some(change)) => errors.extend(check_text("change_ref", change, 100).err()),
                (_, None) => {}
            }
            if !errors.is_empty() {
                return Err(CoordinationError::Invalid(errors));
            }
            next.status = CoordinationStatus::Resolved;
            next.resolved_at = Some(now);
            next.analysis = Some(resolution.analysis);
            next.process = Some(resolution.process);
            next.result = Some(resolution.result);
            next.root_cause = resolution.root_cause;
            next.change_ref = resolution.change_ref;
        }
        TicketCommand::Cancel { reason } => {
            if caller != ticket.created_by && !roles.has(Role::IncidentManager) {
                return Err(CoordinationError::Forbidden(
                    "Only the ticket's creator or an incident manager cancels it.".into(),
                ));
            }
            if let Err(error) = check_text("reason", &reason, 10_000) {
                return Err(CoordinationError::Invalid(vec![error]));
            }
            next.status = CoordinationStatus::Cancelled;
            next.cancelled_at = Some(now);
            next.cancel_reason = Some(reason);
        }
        TicketCommand::CancelForClosure { reason } => {
            next.status = CoordinationStatus::Cancelled;
            next.cancelled_at = Some(now);
            next.cancel_reason = Some(reason);
        }
    }
    next.updated_at = now;
    next.version += 1;
    Ok(next)
}

/// The comment of the incident's `coordination_resolved` history entry: what the assignee found,
/// did and achieved.
pub fn resolution_comment(ticket: &CoordinationTicket) -> String {
    let field = |label: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(|v| format!("{label}：{v}"))
            .unwrap_or_default()
    };
    [
        field("原因分析", &ticket.analysis),
        field("处理过程", &ticket.process),
        field("处理结果", &ticket.result),
        field("根本原因", &ticket.root_cause),
        field("变更单", &ticket.change_ref),
    ]
    .into_iter()
    .filter(|line| !line.is_empty())
    .collect::<Vec<_>>()
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T01:00:00Z")
            .unwrap()
            .to_utc()
    }

    const L2: i64 = 5;
    const OPS: i64 = 7;

    fn roles(role: Role) -> Roles {
        Roles::new([role])
    }

    fn request(kind: CoordinationKind, assignee_id: i64) -> TicketRequest {
        TicketRequest {
            kind,
            assignee_id,
            summary: "机房网络中断".into(),
            details: "需运维现场排查".into(),
        }
    }

    fn facts(id: i64, role: Role) -> Option<AssigneeFacts> {
        Some(AssigneeFacts {
            id,
            active: true,
            roles: roles(role),
        })
    }

    fn ticket(kind: CoordinationKind, status: CoordinationStatus) -> CoordinationTicket {
        let new = open_ticket(
            1,
            Status::InProgress,
            L2,
            &roles(Role::L2Engineer),
            request(kind, OPS),
            facts(
                OPS,
                match kind {
                    CoordinationKind::CustomerIssue => Role::OpsStaff,
                    CoordinationKind::Problem => Role::IncidentManager,
                },
            ),
            now(),
        )
        .unwrap();
        CoordinationTicket {
            id: 3,
            incident_id: new.incident_id,
            kind,
            status,
            assignee_id: new.assignee_id,
            summary: new.summary,
            details: new.details,
            analysis: None,
            process: None,
            result: None,
            root_cause: None,
            change_ref: None,
            cancel_reason: None,
            created_by: L2,
            created_at: now(),
            accepted_at: None,
            resolved_at: None,
            cancelled_at: None,
            updated_at: now(),
            version: 1,
        }
    }

    fn resolution(root_cause: Option<&str>) -> TicketCommand {
        TicketCommand::Resolve(TicketResolution {
            analysis: "交换机故障".into(),
            process: "更换交换机".into(),
            result: "网络恢复".into(),
            root_cause: root_cause.map(str::to_owned),
            change_ref: None,
        })
    }

    #[test]
    fn the_assignee_must_fit_the_kind() {
        let open = |kind, assignee| {
            open_ticket(
                1,
                Status::InProgress,
                L2,
                &roles(Role::L2Engineer),
                request(kind, OPS),
                assignee,
                now(),
            )
        };
        assert!(open(CoordinationKind::CustomerIssue, facts(OPS, Role::OpsStaff)).is_ok());
        assert!(open(CoordinationKind::Problem, facts(OPS, Role::L2Engineer)).is_ok());
        for (kind, role) in [
            (CoordinationKind::CustomerIssue, Role::L2Engineer),
            (CoordinationKind::Problem, Role::OpsStaff),
            (CoordinationKind::Problem, Role::ServiceDesk),
        ] {
            let Err(CoordinationError::Invalid(errors)) = open(kind, facts(OPS, role)) else {
                panic!("{kind:?} to {role:?} must be refused");
            };
            assert_eq!(errors[0].field, "assignee_id");
        }
        let inactive = Some(AssigneeFacts {
            active: false,
            ..facts(OPS, Role::OpsStaff).unwrap()
        });
        assert!(open(CoordinationKind::CustomerIssue, inactive).is_err());
        assert!(matches!(
            open(CoordinationKind::CustomerIssue, None),
            Err(CoordinationError::Invalid(_))
        ));
    }

    #[test]
    fn only_l2_and_managers_open_tickets_and_not_on_closed_incidents() {
        let open = |status, role| {
            open_ticket(
                1,
                status,
                L2,
                &roles(role),
                request(CoordinationKind::CustomerIssue, OPS),
                facts(OPS, Role::OpsStaff),
                now(),
            )
        };
        assert!(open(Status::New, Role::IncidentManager).is_ok());
        assert!(matches!(
            open(Status::InProgress, Role::ServiceDesk),
            Err(CoordinationError::Forbidden(_))
        ));
        assert_eq!(
            open(Status::Closed, Role::L2Engineer),
            Err(CoordinationError::IncidentClosed(1))
        );
    }

    #[test]
    fn states_move_open_accepted_resolved_or_cancelled() {
        use CoordinationStatus::*;
        let issue = CoordinationKind::CustomerIssue;
        let ops = roles(Role::OpsStaff);
        let accepted = decide_ticket(
            &ticket(issue, Open),
            OPS,
            &ops,
            TicketCommand::Accept,
            now(),
        );
        assert_eq!(accepted.as_ref().map(|t| t.status), Ok(Accepted));
        assert_eq!(accepted.as_ref().map(|t| t.version), Ok(2));
        let resolved = decide_ticket(&accepted.unwrap(), OPS, &ops, resolution(None), now());
        assert_eq!(resolved.as_ref().map(|t| t.status), Ok(Resolved));
        assert!(!resolved.unwrap().blocks_resolving());
        // Resolving before accepting, or anything on a final ticket, is a state conflict.
        for (status, command) in [
            (Open, resolution(None)),
            (Accepted, TicketCommand::Accept),
            (Resolved, TicketCommand::Accept),
            (Cancelled, TicketCommand::Cancel { reason: "x".into() }),
        ] {
            assert!(matches!(
                decide_ticket(&ticket(issue, status), OPS, &ops, command, now()),
                Err(CoordinationError::IllegalTransition { .. })
            ));
        }
        assert!(ticket(issue, Open).blocks_resolving());
        assert!(ticket(issue, Accepted).blocks_resolving());
        assert!(!ticket(CoordinationKind::Problem, Open).blocks_resolving());
    }

    #[test]
    fn who_may_act_and_what_a_resolution_says() {
        use CoordinationStatus::*;
        let issue = CoordinationKind::CustomerIssue;
        let l2 = roles(Role::L2Engineer);
        assert!(matches!(
            decide_ticket(&ticket(issue, Open), L2, &l2, TicketCommand::Accept, now()),
            Err(CoordinationError::Forbidden(_))
        ));
        let cancel = || TicketCommand::Cancel {
            reason: "用户已自行处理".into(),
        };
        assert!(decide_ticket(&ticket(issue, Open), L2, &l2, cancel(), now()).is_ok());
        let manager = roles(Role::IncidentManager);
        assert!(decide_ticket(&ticket(issue, Accepted), 99, &manager, cancel(), now()).is_ok());
        let ops = roles(Role::OpsStaff);
        assert!(matches!(
            decide_ticket(&ticket(issue, Accepted), OPS, &ops, cancel(), now()),
            Err(CoordinationError::Forbidden(_))
        ));
        // A problem needs its root cause; a customer issue has none.
        let problem = ticket(CoordinationKind::Problem, Accepted);
        let Err(CoordinationError::Invalid(errors)) =
            decide_ticket(&problem, OPS, &manager, resolution(None), now())
        else {
            panic!("a problem without root cause must be refused");
        };
        assert_eq!(errors[0].field, "root_cause");
        let done =
            decide_ticket(&problem, OPS, &manager, resolution(Some("配置错误")), now()).unwrap();
        assert!(resolution_comment(&done).contains("根本原因：配置错误"));
        assert!(matches!(
            decide_ticket(
                &ticket(issue, Accepted),
                OPS,
                &ops,
                resolution(Some("x")),
                now()
            ),
            Err(CoordinationError::Invalid(_))
        ));
    }
}
