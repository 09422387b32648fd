//! The procedure as data (`GET /api/v1/procedure`): states, actions with the roles that may take
//! them, closure codes, levels and escalations. Nothing here is written down twice: every entry
//! is found by asking [`state_machine::decide`] and the level rules, so the answer cannot drift
//! from what the server enforces.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use utoipa::ToSchema;

use super::escalation::EscalationKind;
use super::incident::{ClosureCode, NoteVisibility, Status, Tier};
use super::level::Level;
use super::role::{Role, Roles};
use super::sla::{SlaTargets, level_for_impact};
use super::state_machine::{self, Actor, Command, Escalation, Facts, TransitionError};

/// The incident procedure as the server enforces it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "states": [{"state": "new", "terminal": false}, {"state": "closed", "terminal": true}],
    "actions": [{"action": "accept", "from": "new", "to": "in_progress",
                 "roles": ["service_desk", "l2_engineer", "incident_manager"],
                 "roles_by_tier": {"l1": ["service_desk", "incident_manager"],
                                   "l2": ["l2_engineer", "incident_manager"]},
                 "closure_codes": [], "requires": []}],
    "closure_codes": [{"code": "resolved", "from": ["resolved"]}],
    "levels": [{"level": "high", "sla_hours": 2.0}],
    "regrading": [{"level": "low", "affects_data_upload": true, "affects_onsite_work": false, "becomes": "high"}],
    "escalations": [{"kind": "functional", "direction": null, "roles": ["service_desk", "incident_manager"], "from": ["new", "in_progress"]}]
}))]
pub struct Procedure {
    /// The states of an incident, in the order of its life.
    pub states: Vec<StateEntry>,
    /// Every action a client may call, per state it starts from.
    pub actions: Vec<ActionEntry>,
    /// The closure codes and the states each closes from.
    pub closure_codes: Vec<ClosureCodeEntry>,
    /// The levels, highest first, with their current resolution targets.
    pub levels: Vec<LevelEntry>,
    /// How the impact flags re-grade a level, at creation and when they are set later.
    pub regrading: Vec<RegradingEntry>,
    /// The kinds of escalation and who may raise each.
    pub escalations: Vec<EscalationEntry>,
}

/// One state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StateEntry {
    /// The state.
    pub state: Status,
    /// No action leaves it.
    pub terminal: bool,
}

/// One action from one state.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ActionEntry {
    /// The action's name, as in `allowed_actions` and the action URLs.
    pub action: &'static str,
    /// The state it starts from.
    pub from: Status,
    /// The state it leads to (the same state for actions that record without moving).
    pub to: Status,
    /// Roles that may take it (on some incident in this state).
    pub roles: Vec<Role>,
    /// When the roles depend on the incident's tier: the roles per tier.
    #[schema(nullable = true)]
    pub roles_by_tier: Option<BTreeMap<Tier, Vec<Role>>>,
    /// `close` only: the closure codes allowed from this state.
    pub closure_codes: Vec<ClosureCode>,
    /// What must hold besides the role, each with the refusal's explanation.
    pub requires: Vec<Requirement>,
}

/// A condition an action needs beyond the caller's role.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
pub struct Requirement {
    /// `classified`, `no_open_customer_issue`, `reporter_confirmed`, `withdrawal_requested`
    /// or `tier_l1`.
    pub condition: &'static str,
    /// What the refusal says when it does not hold.
    pub refusal: String,
}

/// A closure code.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClosureCodeEntry {
    /// The code.
    pub code: ClosureCode,
    /// The states an incident may be closed from with it.
    pub from: Vec<Status>,
}

/// A level and its resolution target.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LevelEntry {
    /// The level.
    pub level: Level,
    /// Hours from creation to the resolution deadline (working hours when a business
    /// calendar is set).
    pub sla_hours: f64,
}

/// What the impact flags make of a level.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegradingEntry {
    /// The level given (or the subcategory's default).
    pub level: Level,
    /// The fault holds up the data upload.
    pub affects_data_upload: bool,
    /// The fault holds up on-site work.
    pub affects_onsite_work: bool,
    /// The level the incident gets.
    pub becomes: Level,
}

/// A kind of escalation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EscalationEntry {
    /// The `kind` of `POST /incidents/{id}/escalations`.
    pub kind: EscalationKind,
    /// `raise` or `lower` for a priority escalation.
    #[schema(nullable = true)]
    pub direction: Option<&'static str>,
    /// Roles that may raise it.
    pub roles: Vec<Role>,
    /// States it may be raised from.
    pub from: Vec<Status>,
}

/// The organisation of the customer user the exploration acts as.
const CUSTOMER: i64 = 1;

/// Every situation an incident in `status` can be in, as the state machine sees it.
fn situations(status: Status) -> impl Iterator<Item = Facts> {
    let flags = [false, true];
    Tier::ALL.iter().flat_map(move |&tier| {
        flags.into_iter().flat_map(move |user_reported| {
            flags.into_iter().flat_map(move |user_confirmed| {
                flags.into_iter().flat_map(move |withdrawal_requested| {
                    flags.into_iter().flat_map(move |classified| {
                        flags.into_iter().map(move |open_customer_issue| Facts {
                            status,
                            tier,
                            customer_id: Some(CUSTOMER),
                            user_reported,
                            user_confirmed,
                            withdrawal_requested,
                            classified,
                            open_customer_issue,
                        })
                    })
                })
            })
        })
    })
}

/// The condition a refusal names, when it is one beyond state and role.
fn requirement(error: &TransitionError) -> Option<Requirement> {
    let condition = match error {
        TransitionError::ClassificationRequired => "classified",
        TransitionError::OpenCoordinationTicket => "no_open_customer_issue",
        TransitionError::ConfirmationRequired => "reporter_confirmed",
        TransitionError::WithdrawalNotRequested => "withdrawal_requested",
        TransitionError::AlreadyAtL2 { .. } => "tier_l1",
        _ => return None,
    };
    Some(Requirement {
        condition,
        refusal: error.to_string(),
    })
}

/// What one command from one state comes to, over every situation and single role.
#[derive(Default)]
struct Findings {
    to: BTreeSet<Status>,
    roles: BTreeSet<Role>,
    by_tier: BTreeMap<Tier, BTreeSet<Role>>,
    requires: BTreeSet<Requirement>,
}

fn explore(status: Status, command: Command) -> Findings {
    let mut found = Findings::default();
    for facts in situations(status) {
        for &role in &Role::ALL {
            let roles = Roles::new([role]);
            let actor = Actor {
                roles: &roles,
                customer_id: (role == Role::Customer).then_some(CUSTOMER),
            };
            match state_machine::decide(&facts, &actor, command) {
                Ok(next) => {
                    found.to.insert(next);
                    found.roles.insert(role);
                    found.by_tier.entry(facts.tier).or_default().insert(role);
                }
                Err(error) => found.requires.extend(requirement(&error)),
            }
        }
    }
    found
}

/// The commands a client can send, as (action name, commands of that action).
fn client_commands() -> Vec<Vec<Command>> {
    vec![
        vec![Command::Accept],
        vec![Command::Workaround],
        vec![Command::Resolve],
        vec![Command::Confirm],
        vec![Command::RejectResolution],
        ClosureCode::ALL
            .iter()
            .map(|&code| Command::Close(code))
            .collect(),
        vec![Command::Withdraw],
        vec![Command::Assign],
        vec![Command::Edit],
        NoteVisibility::ALL
            .iter()
            .map(|&visibility| Command::AddNote(visibility))
            .collect(),
        vec![
            Command::Escalate(Escalation::Functional),
            Command::Escalate(Escalation::RaiseLevel),
            Command::Escalate(Escalation::LowerLevel),
            Command::Escalate(Escalation::Hierarchical),
        ],
    ]
}

fn sorted<T: Ord + Copy>(set: &BTreeSet<T>) -> Vec<T> {
    set.iter().copied().collect()
}

fn action_entries() -> Vec<ActionEntry> {
    let mut entries = Vec::new();
    for commands in client_commands() {
        let action = commands[0].action().as_str();
        for &from in Status::ALL {
            let mut merged = Findings::default();
            let mut codes = Vec::new();
            for &command in &commands {
                let found = explore(from, command);
                if let (Command::Close(code), false) = (command, found.roles.is_empty()) {
                    codes.push(code);
                }
                merged.to.extend(found.to);
                merged.roles.extend(found.roles);
                for (tier, roles) in found.by_tier {
                    merged.by_tier.entry(tier).or_default().extend(roles);
                }
                merged.requires.extend(found.requires);
            }
            if merged.roles.is_empty() {
                continue;
            }
            let tiers_differ = merged.by_tier.values().any(|roles| *roles != merged.roles);
            for to in merged.to.iter().copied() {
                entries.push(ActionEntry {
                    action,
                    from,
                    to,
                    roles: sorted(&merged.roles),
                    roles_by_tier: tiers_differ.then(|| {
                        merged
                            .by_tier
                            .iter()
                            .map(|(tier, roles)| (*tier, sorted(roles)))
                            .collect()
                    }),
                    closure_codes: codes.clone(),
                    requires: merged.requires.iter().cloned().collect(),
                });
            }
        }
    }
    entries
}

fn escalation_entries() -> Vec<EscalationEntry> {
    [
        (EscalationKind::Functional, None, Escalation::Functional),
        (
            EscalationKind::Priority,
            Some("raise"),
            Escalation::RaiseLevel,
        ),
        (
            EscalationKind::Priority,
            Some("lower"),
            Escalation::LowerLevel,
        ),
        (EscalationKind::Hierarchical, None, Escalation::Hierarchical),
    ]
    .into_iter()
    .map(|(kind, direction, escalation)| {
        let mut roles = BTreeSet::new();
        let mut from = Vec::new();
        for &status in Status::ALL {
            let found = explore(status, Command::Escalate(escalation));
            if !found.roles.is_empty() {
                from.push(status);
            }
            roles.extend(found.roles);
        }
        EscalationEntry {
            kind,
            direction,
            roles: sorted(&roles),
            from,
        }
    })
    .collect()
}

/// The procedure, with the resolution targets currently configured.
pub fn procedure(targets: &SlaTargets) -> Procedure {
    let actions = action_entries();
    let states = Status::ALL
        .iter()
        .map(|&state| StateEntry {
            state,
            terminal: !actions.iter().any(|entry| entry.from == state),
        })
        .collect();
    let closure_codes = ClosureCode::ALL
        .iter()
        .map(|&code| ClosureCodeEntry {
            code,
            from: actions
                .iter()
                .filter(|entry| entry.closure_codes.contains(&code))
                .map(|entry| entry.from)
                .collect(),
        })
        .collect();
    let levels = Level::ALL
        .iter()
        .rev()
        .map(|&level| LevelEntry {
            level,
            sla_hours: targets.target(level).num_seconds() as f64 / 3600.0,
        })
        .collect();
    let mut regrading = Vec::new();
    for &level in &Level::ALL {
        for affects_data_upload in [false, true] {
            for affects_onsite_work in [false, true] {
                let becomes = level_for_impact(level, affects_data_upload, affects_onsite_work);
                if becomes != level {
                    regrading.push(RegradingEntry {
                        level,
                        affects_data_upload,
                        affects_onsite_work,
                        becomes,
                    });
                }
            }
        }
    }
    Procedure {
        states,
        actions,
        closure_codes,
        levels,
        regrading,
        escalations: escalation_entries(),
    }
}

/// The state diagram of `procedure` in Mermaid, one arrow per (from, to) with its actions.
pub fn mermaid(procedure: &Procedure) -> String {
    let mut arrows: BTreeMap<(Status, Status), BTreeSet<String>> = BTreeMap::new();
    for entry in &procedure.actions {
        // Recording without moving (notes, edits, assignment, escalation) would only clutter
        // the drawing; the action list holds them. The reporter's steps stay.
        let drawn =
            entry.from != entry.to || matches!(entry.action, "workaround" | "withdraw" | "confirm");
        if drawn {
            let codes: Vec<&str> = entry.closure_codes.iter().map(|c| c.as_str()).collect();
            let label = if codes.is_empty() {
                entry.action.to_owned()
            } else {
                format!("{} ({})", entry.action, codes.join(" or "))
            };
            arrows
                .entry((entry.from, entry.to))
                .or_default()
                .insert(label);
        }
    }
    let mut text = String::from("stateDiagram-v2\n    [*] --> new\n");
    for ((from, to), labels) in &arrows {
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        text.push_str(&format!("    {from} --> {to}: {}\n", labels.join(", ")));
    }
    for state in procedure.states.iter().filter(|state| state.terminal) {
        text.push_str(&format!("    {} --> [*]\n", state.state));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries<'a>(procedure: &'a Procedure, action: &str) -> Vec<&'a ActionEntry> {
        procedure
            .actions
            .iter()
            .filter(|entry| entry.action == action)
            .collect()
    }

    #[test]
    fn close_is_the_service_desks_and_nothing_leaves_closed() {
        let procedure = procedure(&SlaTargets::procedure_defaults());
        let closes = entries(&procedure, "close");
        assert_eq!(closes.len(), 3, "{closes:?}");
        for close in &closes {
            assert_eq!(close.roles, vec![Role::ServiceDesk]);
            assert_eq!(close.to, Status::Closed);
        }
        assert!(procedure.actions.iter().all(|e| e.from != Status::Closed));
        let terminal: Vec<Status> = procedure
            .states
            .iter()
            .filter(|s| s.terminal)
            .map(|s| s.state)
            .collect();
        assert_eq!(terminal, vec![Status::Closed]);
    }

    #[test]
    fn the_rules_beside_the_role_are_named() {
        let procedure = procedure(&SlaTargets::procedure_defaults());
        let resolve = entries(&procedure, "resolve");
        assert_eq!(resolve.len(), 1);
        let conditions: Vec<&str> = resolve[0].requires.iter().map(|r| r.condition).collect();
        assert_eq!(conditions, vec!["classified", "no_open_customer_issue"]);
        let accept = entries(&procedure, "accept")[0];
        let by_tier = accept
            .roles_by_tier
            .as_ref()
            .expect("accept depends on tier");
        assert_eq!(
            by_tier[&Tier::L1],
            vec![Role::ServiceDesk, Role::IncidentManager]
        );
        assert_eq!(
            by_tier[&Tier::L2],
            vec![Role::L2Engineer, Role::IncidentManager]
        );
        let close_resolved = entries(&procedure, "close")
            .into_iter()
            .find(|e| e.from == Status::Resolved)
            .unwrap();
        assert_eq!(
            close_resolved.closure_codes,
            vec![ClosureCode::Resolved, ClosureCode::Unresolved]
        );
        assert!(
            close_resolved
                .requires
                .iter()
                .any(|r| r.condition == "reporter_confirmed")
        );
        let confirm = entries(&procedure, "confirm");
        assert_eq!(confirm.len(), 1);
        assert_eq!(confirm[0].roles, vec![Role::ServiceDesk, Role::Customer]);
    }

    #[test]
    fn levels_and_escalations_come_from_their_rules() {
        let procedure = procedure(&SlaTargets::procedure_defaults());
        let hours: Vec<(Level, f64)> = procedure
            .levels
            .iter()
            .map(|l| (l.level, l.sla_hours))
            .collect();
        assert_eq!(
            hours,
            vec![(Level::High, 2.0), (Level::Medium, 4.0), (Level::Low, 8.0)]
        );
        assert!(procedure.regrading.iter().all(|r| r.becomes > r.level));
        assert!(
            procedure
                .regrading
                .iter()
                .any(|r| r.affects_data_upload && r.becomes == Level::High)
        );
        let lower = procedure
            .escalations
            .iter()
            .find(|e| e.direction == Some("lower"))
            .unwrap();
        assert_eq!(lower.roles, vec![Role::IncidentManager]);
    }

    #[test]
    fn the_checked_in_diagram_is_the_generated_one() {
        let diagram = mermaid(&procedure(&SlaTargets::procedure_defaults()));
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/procedure.md"))
                .unwrap_or_default();
        assert!(
            doc.contains(&format!("```mermaid\n{diagram}```")),
            "docs/procedure.md is stale; its diagram is now:\n```mermaid\n{diagram}```"
        );
    }
}
