//! `incident-desk seed-demo`: a realistic, reproducible history to try the reports on.
//!
//! Every incident lives its life through the same rules as the API's: `new_incident` decides
//! its level and deadline, and each step after (accept, escalations, resolve, confirm, close,
//! the follow-up) is a decision of `workflow::decide` or `record_follow_up`, with the history
//! entries, notes and escalation records those decisions produce. Only the writing differs:
//! the store copies whole batches in with `COPY`. The same `--seed` gives the same history.

pub mod knowledge;

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::domain::escalation::{EscalationRecord, PriorityTrigger};
use crate::domain::follow_up::{FollowUpReport, NewFollowUp, record_follow_up};
use crate::domain::incident::{Channel, ClosureCode, Incident, Reporter};
use crate::domain::level::Level;
use crate::domain::role::{Role, Roles};
use crate::domain::sla::Deadlines;
use crate::domain::state_machine::TransitionError;
use crate::domain::taxonomy::Taxonomy;
use crate::domain::workflow::{
    self, Caller, CiRef, CreationLookups, EscalationRequest, HistoryEntry, IncidentCommand,
    IncidentDraft, IncidentRef, Lookups, NewNote, Resolution, UserFacts, created,
};

/// Hospital-style organisations, as the procedure's customers are.
const CITIES: &[&str] = &[
    "青岛", "济南", "烟台", "潍坊", "临沂", "淄博", "济宁", "泰安", "威海", "日照", "德州", "聊城",
    "滨州", "菏泽", "枣庄", "东营",
];
const INSTITUTIONS: &[&str] = &[
    "市立医院",
    "第一人民医院",
    "中医院",
    "妇幼保健院",
    "第二人民医院",
    "人民医院",
    "肿瘤医院",
    "口腔医院",
    "疾病预防控制中心",
    "中心卫生院",
];
/// The systems the customers run.
pub const SYSTEMS: &[&str] = &[
    "HIS",
    "LIS",
    "PACS",
    "EMR",
    "收费系统",
    "医保接口",
    "体检系统",
];
const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"];
const GIVEN: &[&str] = &["医生", "护士", "主任", "工程师", "老师", "科长"];
const WARDS: &[&str] = &[
    "门诊",
    "住院部",
    "药房",
    "检验科",
    "放射科",
    "收费处",
    "信息科",
];

/// A customer organisation of the demo, with its user and configuration items.
#[derive(Debug, Clone)]
pub struct DemoCustomer {
    /// Id.
    pub id: i64,
    /// Its customer user, the reporter of its web reports.
    pub user: Caller,
    /// Its configuration items: (id, system).
    pub cis: Vec<(i64, String)>,
}

/// Everyone the demo's incidents involve.
#[derive(Debug, Clone)]
pub struct DemoPeople {
    /// Service-desk engineers (L1).
    pub desk: Vec<Caller>,
    /// L2 engineers.
    pub l2: Vec<Caller>,
    /// Incident managers.
    pub managers: Vec<Caller>,
    /// The monitoring integration.
    pub monitoring: Caller,
    /// The customers.
    pub customers: Vec<DemoCustomer>,
}

/// A staff member or integration of the demo, as [`Caller`].
pub fn caller(id: i64, name: &str, role: Role) -> Caller {
    Caller {
        id: Some(id),
        name: name.to_owned(),
        roles: Roles::new([role]),
        customer_id: None,
    }
}

/// Names for the demo's organisations: `(code, name)` of the `index`th.
pub fn customer_name(index: usize) -> (String, String) {
    let city = CITIES[index % CITIES.len()];
    let institution = INSTITUTIONS[(index / CITIES.len()) % INSTITUTIONS.len()];
    let round = index / (CITIES.len() * INSTITUTIONS.len());
    let name = if round == 0 {
        format!("{city}{institution}")
    } else {
        format!("{city}{institution}（第{}分院）", round + 1)
    };
    (format!("H{:04}", index + 1), name)
}

/// One of `items`, which are never empty.
fn pick<T: Clone>(rng: &mut StdRng, items: &[T]) -> T {
    items
        .choose(rng)
        .cloned()
        .expect("demo lists are not empty")
}

/// One incident's whole life, ready to be written.
#[derive(Debug, Clone)]
pub struct Lived {
    /// The incident as its last decision left it.
    pub incident: Incident,
    /// History entries: author, time, entry.
    pub history: Vec<(Option<i64>, DateTime<Utc>, HistoryEntry)>,
    /// Notes: author, time, note.
    pub notes: Vec<(i64, DateTime<Utc>, NewNote)>,
    /// Escalation records.
    pub escalations: Vec<EscalationRecord>,
    /// The follow-up, when performed.
    pub follow_up: Option<NewFollowUp>,
}

/// The settings a demo history is generated under.
pub struct DemoRules<'a> {
    /// Classification codes.
    pub taxonomy: &'a Taxonomy,
    /// Deadlines in force.
    pub deadlines: Deadlines,
    /// `FOLLOW_UP_WINDOW`.
    pub follow_up_window: Duration,
}

/// Generates incidents one after another, `created_at` rising from `start` to `end`.
pub struct Generator<'a> {
    rng: StdRng,
    rules: DemoRules<'a>,
    people: DemoPeople,
    subcategories: Vec<String>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    total: u64,
    /// The last incident of each customer: a duplicate names it.
    last_of_customer: HashMap<i64, IncidentRef>,
    /// Incidents per week, for the size of each week's recurring fault.
    per_week: f64,
}

/// Why a demo incident could not be generated: the rules refused a step (a defect of the
/// generator, reported with the step).
#[derive(Debug, thiserror::Error)]
#[error("demo {what} {id}, step {step}: {error}")]
pub struct DemoError {
    what: &'static str,
    id: i64,
    step: &'static str,
    error: Refusal,
}

/// The rule that refused a demo step.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error(transparent)]
    Incident(#[from] TransitionError),
    #[error(transparent)]
    Knowledge(#[from] crate::domain::knowledge::KnowledgeError),
}

impl<'a> Generator<'a> {
    /// A generator of `total` incidents over `[start, end)` for `people`, seeded with `seed`.
    pub fn new(
        seed: u64,
        rules: DemoRules<'a>,
        people: DemoPeople,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        total: u64,
    ) -> Self {
        let subcategories = rules
            .taxonomy
            .categories
            .iter()
            .flat_map(|c| c.subcategories.iter().map(|s| s.code.clone()))
            .collect();
        let weeks = ((end - start).num_days() as f64 / 7.0).max(1.0);
        Generator {
            rng: StdRng::seed_from_u64(seed),
            rules,
            people,
            subcategories,
            start,
            end,
            total: total.max(1),
            last_of_customer: HashMap::new(),
            per_week: total as f64 / weeks,
        }
    }

    fn minutes(&mut self, low: i64, high: i64) -> Duration {
        Duration::minutes(self.rng.random_range(low..=high))
    }

    /// The recurring fault of `created_at`'s week: one subcategory and system several
    /// organisations report within days (procedure §4.9), the same for the whole week.
    fn weekly_fault(&self, created_at: DateTime<Utc>) -> (String, &'static str) {
        let week = (created_at - self.start).num_days() / 7;
        let mut week_rng = StdRng::seed_from_u64(week as u64 ^ 0x5EED);
        let subcategory =
            self.subcategories[week_rng.random_range(0..self.subcategories.len())].clone();
        (
            subcategory,
            SYSTEMS[week_rng.random_range(0..SYSTEMS.len())],
        )
    }

    /// The `index`th incident (0-based), stored as `id` with `number`.
    pub fn incident(&mut self, index: u64, id: i64, number: String) -> Result<Lived, DemoError> {
        let span = (self.end - self.start).num_seconds().max(1) as f64;
        let offset = (index as f64 + self.rng.random::<f64>()) / self.total as f64 * span;
        let created_at = self.start + Duration::seconds(offset as i64);
        let customer = pick(&mut self.rng, &self.people.customers);
        // A few reports a week are the week's recurring fault; at least enough for three
        // organisations when the history is thin.
        let recurring_share = (4.0 / self.per_week).clamp(0.01, 0.3);
        let (subcategory, system, ci) = if self.rng.random_bool(recurring_share) {
            let (subcategory, system) = self.weekly_fault(created_at);
            let ci = customer.cis.iter().find(|(_, s)| s == system).map(|c| c.0);
            (subcategory, system.to_owned(), ci)
        } else {
            let subcategory = pick(&mut self.rng, &self.subcategories);
            let (ci, system) = pick(&mut self.rng, &customer.cis);
            (subcategory, system, Some(ci))
        };
        let channel = match self.rng.random_range(0..100) {
            0..40 => Channel::Phone,
            40..65 => Channel::Web,
            65..75 => Channel::Email,
            75..85 => Channel::Monitoring,
            85..95 => Channel::Onsite,
            _ => Channel::Other,
        };
        let reporter_caller = match channel {
            Channel::Web => customer.user.clone(),
            Channel::Monitoring => self.people.monitoring.clone(),
            _ => pick(&mut self.rng, &self.people.desk),
        };
        let reporter = matches!(
            channel,
            Channel::Phone | Channel::Email | Channel::Onsite | Channel::Other
        )
        .then(|| Reporter {
            name: format!(
                "{}{}",
                pick(&mut self.rng, SURNAMES),
                pick(&mut self.rng, GIVEN)
            ),
            phone: Some(format!("0532-{:04}-{:04}", id % 10_000, (id * 7) % 10_000)),
            email: None,
        });
        let subcategory_name = self
            .rules
            .taxonomy
            .categories
            .iter()
            .flat_map(|c| &c.subcategories)
            .find(|s| s.code == subcategory)
            .map_or(subcategory.as_str(), |s| s.name_zh.as_str())
            .to_owned();
        let ward = pick(&mut self.rng, WARDS);
        let draft = IncidentDraft {
            channel: Some(channel),
            title: format!("{system}：{ward}{subcategory_name}"),
            description: Some(format!(
                "{ward}反映{system}{subcategory_name}，影响日常业务，请尽快处理。"
            )),
            customer_id: Some(customer.id),
            reporter,
            source_system: Some(system),
            ci_id: ci,
            subcategory: Some(subcategory),
            affects_onsite_work: Some(self.rng.random_bool(0.1)),
            affects_data_upload: Some(self.rng.random_bool(0.05)),
            ..IncidentDraft::default()
        };
        let lookups = CreationLookups {
            now: created_at,
            taxonomy: self.rules.taxonomy,
            customer: Some(workflow::CustomerFacts {
                id: customer.id,
                active: true,
            }),
            ci: ci.map(|id| CiRef {
                id,
                customer_id: customer.id,
            }),
            recurrence: None,
            deadlines: self.rules.deadlines.clone(),
            upload_cutoff: None,
        };
        let new = workflow::new_incident(&reporter_caller, draft, &lookups).map_err(|error| {
            DemoError {
                what: "incident",
                id,
                step: "create",
                error: error.into(),
            }
        })?;
        let incident = new.into_incident(id, number);
        let (entry, _) = created(&incident);
        let mut life = Life {
            lived: Lived {
                history: vec![(reporter_caller.id, created_at, entry)],
                incident,
                notes: vec![],
                escalations: vec![],
                follow_up: None,
            },
            now: created_at,
        };
        self.live(&mut life, &customer)?;
        let lived = life.lived;
        self.last_of_customer.insert(
            customer.id,
            IncidentRef {
                id,
                customer_id: Some(customer.id),
                status: lived.incident.status,
            },
        );
        Ok(lived)
    }

    /// Takes the incident through accept, escalations, resolution, confirmation, closing and
    /// the follow-up, stopping at the first step that would lie after the end of the history.
    fn live(&mut self, life: &mut Life, customer: &DemoCustomer) -> Result<(), DemoError> {
        let id = life.lived.incident.id;
        let end = self.end;
        let desk = pick(&mut self.rng, &self.people.desk);
        let roll = self.rng.random_range(0..100);
        if roll < 3 {
            if let Some(original) = self.last_of_customer.get(&customer.id).copied() {
                let after = self.minutes(5, 240);
                let command = IncidentCommand::Close {
                    closure_code: ClosureCode::Duplicate,
                    duplicate_of: Some(original.id),
                    note: None,
                };
                let mut lookups = self.lookups(life.now + after);
                lookups.incident = Some(original);
                return life
                    .step(&desk, command, &lookups, end, "close duplicate")
                    .map(drop);
            }
        } else if roll < 5 {
            let after = self.minutes(5, 120);
            // The reporter calls to drop it; the desk records the request, then closes.
            let request = IncidentCommand::Withdraw {
                channel: Some(Channel::Phone),
                note: Some("问题已自行解决，不用处理了".into()),
            };
            let asked = self.lookups(life.now + after - chrono::Duration::minutes(2));
            if !life.step(&desk, request, &asked, end, "withdraw request")? {
                return Ok(());
            }
            let command = IncidentCommand::Close {
                closure_code: ClosureCode::Withdrawn,
                duplicate_of: None,
                note: Some("用户来电撤销：问题已自行解决".into()),
            };
            let lookups = self.lookups(life.now + after);
            return life
                .step(&desk, command, &lookups, end, "withdraw")
                .map(drop);
        }
        // The backlog every desk has: a few reports wait untouched, a few stay in work.
        if self.rng.random_bool(0.003) {
            return Ok(());
        }
        let after = self.minutes(2, 45);
        let lookups = self.lookups(life.now + after);
        let accept = IncidentCommand::Accept { assignee_id: None };
        if !life.step(&desk, accept, &lookups, end, "accept")? || self.rng.random_bool(0.005) {
            return Ok(());
        }
        if life.lived.incident.level != Level::High && self.rng.random_bool(0.04) {
            let after = self.minutes(5, 30);
            let command = IncidentCommand::Escalate(EscalationRequest::Priority {
                level: Level::High,
                reason: "影响现场工作，用户要求加急".into(),
                trigger: Some(PriorityTrigger::OnsiteUrgent),
            });
            let mut lookups = self.lookups(life.now + after);
            lookups.deadlines = Some(self.rules.deadlines.clone());
            if !life.step(&desk, command, &lookups, end, "raise level")? {
                return Ok(());
            }
        }
        // How long resolving takes, as a share of the time the deadline allows: about one in
        // ten misses it.
        let allowed = life.lived.incident.due_at - life.lived.incident.created_at;
        let share = if self.rng.random_bool(0.1) {
            self.rng.random_range(1.05..3.0)
        } else {
            self.rng.random_range(0.1..0.95)
        };
        let resolve_at = life.lived.incident.created_at
            + Duration::seconds((allowed.num_seconds() as f64 * share) as i64);
        let mut resolver = desk.clone();
        if self.rng.random_bool(0.3) {
            let l2 = pick(&mut self.rng, &self.people.l2);
            let at = life.now + (resolve_at - life.now) / 3;
            let command = IncidentCommand::Escalate(EscalationRequest::Functional {
                assignee_id: l2.id.unwrap_or_default(),
                diagnosis: "一线已排查网络与客户端配置，需二线分析程序日志".into(),
            });
            let mut lookups = self.lookups(at);
            lookups.user = Some(UserFacts {
                id: l2.id.unwrap_or_default(),
                active: true,
                roles: l2.roles.clone(),
            });
            if !life.step(&desk, command, &lookups, end, "functional escalation")? {
                return Ok(());
            }
            resolver = l2;
        }
        if self.rng.random_bool(0.02) {
            let at = life.now + (resolve_at - life.now) / 2;
            let command = IncidentCommand::Escalate(EscalationRequest::Hierarchical {
                reason: "多家单位同时出现，需事件经理协调".into(),
            });
            let lookups = self.lookups(at);
            if !life.step(&resolver, command, &lookups, end, "hierarchical escalation")? {
                return Ok(());
            }
        }
        let cause = pick(&mut self.rng, &self.rules.taxonomy.causes);
        let subcause = pick(&mut self.rng, &cause.subcauses);
        let command = IncidentCommand::Resolve(Resolution {
            solution: "已定位原因并处理，用户验证可正常使用".into(),
            cause: cause.code.clone(),
            subcause: subcause.code.clone(),
            category: None,
            subcategory: None,
            knowledge_entry_id: None,
        });
        let lookups = self.lookups(resolve_at.max(life.now + Duration::minutes(1)));
        if !life.step(&resolver, command, &lookups, end, "resolve")? {
            return Ok(());
        }
        if life.lived.incident.user_reported {
            let after = self.minutes(10, 24 * 60);
            let confirmer = if life.lived.incident.channel == Channel::Web {
                customer.user.clone()
            } else {
                desk.clone()
            };
            let command = IncidentCommand::Confirm {
                channel: Some(Channel::Phone).filter(|_| confirmer.customer_id.is_none()),
            };
            let lookups = self.lookups(life.now + after);
            if !life.step(&confirmer, command, &lookups, end, "confirm")? {
                return Ok(());
            }
        }
        let after = self.minutes(5, 8 * 60);
        let closure_code = if self.rng.random_bool(0.92) {
            ClosureCode::Resolved
        } else {
            ClosureCode::Unresolved
        };
        let command = IncidentCommand::Close {
            closure_code,
            duplicate_of: None,
            note: None,
        };
        let lookups = self.lookups(life.now + after);
        if !life.step(&desk, command, &lookups, end, "close")? {
            return Ok(());
        }
        let Some(due) = life.lived.incident.follow_up_due_at else {
            return Ok(());
        };
        if !self.rng.random_bool(0.85) {
            return Ok(());
        }
        let window = (due - life.now).num_minutes().max(60);
        let performed_at = if self.rng.random_bool(0.85) {
            life.now + self.minutes(30, window)
        } else {
            due + self.minutes(60, 72 * 60)
        };
        if performed_at >= end {
            return Ok(());
        }
        let report = FollowUpReport {
            channel: Channel::Phone,
            reached: self.rng.random_bool(0.9),
            satisfaction: Some(self.rng.random_range(3..=5)),
            comment: "用户对处理结果表示满意".into(),
        };
        let follow_up = record_follow_up(
            &life.lived.incident,
            desk.id.unwrap_or_default(),
            &desk.roles,
            report,
            performed_at,
            // The demo calls each user once; an unreached call leaves the incident in the queue.
            crate::domain::follow_up::FollowUpProgress::default(),
            3,
        )
        .map_err(|e| DemoError {
            what: "incident",
            id,
            step: "follow-up",
            error: match e {
                crate::domain::follow_up::FollowUpError::Refused(error) => error,
                other => TransitionError::Forbidden(other.to_string()),
            }
            .into(),
        })?;
        life.lived.follow_up = Some(follow_up);
        Ok(())
    }

    fn lookups(&self, now: DateTime<Utc>) -> Lookups<'a> {
        Lookups::nothing_looked_up(now, self.rules.taxonomy, self.rules.follow_up_window)
    }
}

/// An incident part-way through its life.
struct Life {
    lived: Lived,
    /// The time of the last step.
    now: DateTime<Utc>,
}

impl Life {
    /// Decides `command` at `lookups.now` unless that is at or after `end`; true when taken.
    fn step(
        &mut self,
        caller: &Caller,
        command: IncidentCommand,
        lookups: &Lookups<'_>,
        end: DateTime<Utc>,
        step: &'static str,
    ) -> Result<bool, DemoError> {
        if lookups.now >= end {
            return Ok(false);
        }
        let outcome =
            workflow::decide(&self.lived.incident, caller, command, lookups).map_err(|error| {
                DemoError {
                    what: "incident",
                    id: self.lived.incident.id,
                    step,
                    error: error.into(),
                }
            })?;
        let at = lookups.now;
        if let Some(entry) = outcome.history {
            self.lived.history.push((caller.id, at, entry));
        }
        if let (Some(note), Some(author)) = (outcome.note, caller.id) {
            self.lived.notes.push((author, at, note));
        }
        self.lived.escalations.extend(outcome.escalation);
        self.lived.incident = outcome.incident;
        // As the store writes each decision: one version step, stamped with its time.
        self.lived.incident.version += 1;
        self.lived.incident.updated_at = at;
        self.now = at;
        Ok(true)
    }
}
