//! E-mail to reporters (SPEC §12): which changes a reporter is told of, what each message says
//! in Chinese and English, and how the messages of one incident thread in a mail client.
//!
//! The store decides nothing here: it queues a message for the changes [`kind_of_event`] and
//! [`tells_note`] name, and the sender composes it with [`compose`] from the incident as it is
//! when the message goes out.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::incident::{ClosureCode, Status, UnknownCode, text_codes};
use super::labels::NameZh;
use super::level::Level;
use super::role::{Role, Roles};
use super::workflow::IncidentEvent;

text_codes!(
    /// What a message tells the reporter.
    NotificationKind, "kind" {
        /// The incident was recorded: its number and deadline.
        Created => "created",
        /// The incident was resolved: the solution, and how to confirm or reject it.
        Resolved => "resolved",
        /// Still resolved and unconfirmed after `CONFIRMATION_REMINDER_AFTER`.
        ConfirmationReminder => "confirmation_reminder",
        /// The incident was closed.
        Closed => "closed",
        /// The desk wrote a public note.
        Note => "note",
    }
);

text_codes!(
    /// Where a message stands.
    NotificationStatus, "status" {
        /// Waiting to be sent, or to be tried again.
        Pending => "pending",
        /// The mail server took it.
        Sent => "sent",
        /// Every attempt failed; no more are made.
        Failed => "failed",
        /// Not sent: no mail server is configured, or what it was about no longer holds.
        Skipped => "skipped",
    }
);

text_codes!(
    /// The language of an organisation's messages.
    #[derive(Default)]
    Locale, "locale" {
        /// Chinese (the default).
        #[default]
        Zh => "zh",
        /// English.
        En => "en",
    }
);

/// Reminders per resolution at most (SPEC §12).
pub const MAX_REMINDERS: i16 = 3;

/// The message an incident event tells the reporter of, if any. Notes are told by
/// [`tells_note`], which needs the note.
pub fn kind_of_event(event: IncidentEvent) -> Option<NotificationKind> {
    match event {
        IncidentEvent::Created => Some(NotificationKind::Created),
        IncidentEvent::Resolved => Some(NotificationKind::Resolved),
        IncidentEvent::Closed => Some(NotificationKind::Closed),
        _ => None,
    }
}

/// True when a note is told to the reporter: a public note written by staff (a customer's own
/// note is not mailed back to them).
pub fn tells_note(public: bool, author: &Roles) -> bool {
    public && !author.has(Role::Customer)
}

/// Whether a message about an incident can reach anyone: its reporter gave an address, or a
/// customer user reported it (whose own address the store looks up). A desk's report without
/// the caller's address needs no lookup at all, which keeps it off the create's statement.
pub fn may_reach(reporter_email: Option<&str>, reported_by_customer_user: bool) -> bool {
    reported_by_customer_user || reporter_email.is_some_and(|email| !email.trim().is_empty())
}

/// Whether a message of `kind` still tells the truth when it is about to go out: a `resolved`
/// message or a reminder about `resolution` only while that resolution still awaits the
/// reporter's answer (a phone call may have confirmed it, or the desk taken it back, since).
pub fn still_true(
    kind: NotificationKind,
    resolution: Option<DateTime<Utc>>,
    status: Status,
    resolved_at: Option<DateTime<Utc>>,
    confirmed: bool,
) -> bool {
    match kind {
        NotificationKind::Resolved | NotificationKind::ConfirmationReminder => {
            status == Status::Resolved
                && !confirmed
                && resolution.is_some()
                && resolution == resolved_at
        }
        _ => true,
    }
}

/// What a message says, read from the incident when it is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// `INC-000123`.
    pub number: String,
    /// The incident's title.
    pub title: String,
    /// Its level.
    pub level: Level,
    /// Its deadline.
    pub due_at: DateTime<Utc>,
    /// The solution, once resolved.
    pub solution: Option<String>,
    /// Why it was closed.
    pub closure_code: Option<ClosureCode>,
    /// For a duplicate, the number of the incident that goes on.
    pub duplicate_of: Option<String>,
    /// The note's text, for a note.
    pub note: Option<String>,
    /// Which reminder this is (1–3), for a reminder.
    pub reminder: Option<i16>,
    /// The page where the reporter confirms or rejects the resolution, when the desk has one
    /// (`CONFIRMATION_URL`).
    pub confirmation_link: Option<String>,
    /// Local time zone of the deadline.
    pub timezone: Tz,
}

/// A labelled value in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    /// The label.
    pub label: &'static str,
    /// The value.
    pub value: String,
}

/// A link to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// What it does.
    pub label: &'static str,
    /// Where it goes.
    pub link: String,
}

/// A composed message, ready for the plain-text and HTML templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The subject line, with the incident number.
    pub subject: String,
    /// `zh-CN` or `en`, for the HTML `lang`.
    pub language: &'static str,
    /// The opening line.
    pub greeting: &'static str,
    /// What happened, one paragraph each.
    pub paragraphs: Vec<String>,
    /// The incident's facts.
    pub details: Vec<Detail>,
    /// A link to act on.
    pub action: Option<Action>,
    /// The closing line.
    pub closing: &'static str,
}

/// The words of one language.
struct Words {
    language: &'static str,
    greeting: &'static str,
    closing: &'static str,
    number: &'static str,
    title: &'static str,
    level: &'static str,
    due: &'static str,
    solution: &'static str,
    closure: &'static str,
    note: &'static str,
    confirm_link: &'static str,
}

const ZH: Words = Words {
    language: "zh-CN",
    greeting: "您好：",
    closing: "此邮件由服务台系统发出。如有疑问，请直接回复或致电服务台。",
    number: "事件编号",
    title: "事件标题",
    level: "事件级别",
    due: "计划解决时间",
    solution: "解决方案",
    closure: "关闭原因",
    note: "服务台留言",
    confirm_link: "确认或驳回解决结果",
};

const EN: Words = Words {
    language: "en",
    greeting: "Hello,",
    closing: "This message was sent by the service desk. Reply to it or call the service desk with any question.",
    number: "Incident",
    title: "Title",
    level: "Level",
    due: "Due by",
    solution: "Solution",
    closure: "Closed as",
    note: "Note from the service desk",
    confirm_link: "Confirm or reject the resolution",
};

fn level_en(level: Level) -> &'static str {
    match level {
        Level::Low => "low",
        Level::Medium => "medium",
        Level::High => "high",
    }
}

fn closure_en(code: ClosureCode) -> &'static str {
    match code {
        ClosureCode::Resolved => "resolved",
        ClosureCode::Unresolved => "not resolved",
        ClosureCode::Duplicate => "duplicate",
        ClosureCode::Withdrawn => "withdrawn",
    }
}

/// Composes the message of `kind` in `locale` from `facts`.
pub fn compose(kind: NotificationKind, locale: Locale, facts: &Facts) -> Message {
    let words = match locale {
        Locale::Zh => &ZH,
        Locale::En => &EN,
    };
    let zh = locale == Locale::Zh;
    let number = &facts.number;
    let due = facts
        .due_at
        .with_timezone(&facts.timezone)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let due = format!("{due} ({})", facts.timezone.name());
    let mut details = vec![
        Detail {
            label: words.number,
            value: number.clone(),
        },
        Detail {
            label: words.title,
            value: facts.title.clone(),
        },
    ];
    let mut paragraphs = Vec::new();
    let mut action = None;
    let subject;
    match kind {
        NotificationKind::Created => {
            subject = if zh {
                format!("[{number}] 事件已登记：{}", facts.title)
            } else {
                format!("[{number}] Incident recorded: {}", facts.title)
            };
            paragraphs.push(if zh {
                format!("您报告的事件已登记，编号 {number}。我们将在计划时间内处理，处理进展会通过邮件告知您。")
            } else {
                format!("The incident you reported is recorded as {number}. We will work on it within the time below and tell you by email how it goes.")
            });
            details.push(Detail {
                label: words.level,
                value: if zh {
                    facts.level.name_zh().to_owned()
                } else {
                    level_en(facts.level).to_owned()
                },
            });
            details.push(Detail {
                label: words.due,
                value: due,
            });
        }
        NotificationKind::Resolved | NotificationKind::ConfirmationReminder => {
            let reminder = kind == NotificationKind::ConfirmationReminder;
            subject = match (zh, reminder) {
                (true, false) => format!("[{number}] 事件已解决，请确认：{}", facts.title),
                (true, true) => format!("[{number}] 提醒：请确认事件解决结果：{}", facts.title),
                (false, false) => format!("[{number}] Resolved, please confirm: {}", facts.title),
                (false, true) => format!(
                    "[{number}] Reminder: please confirm the resolution: {}",
                    facts.title
                ),
            };
            paragraphs.push(match (zh, reminder) {
                (true, false) => format!("您报告的事件 {number} 已解决，解决方案见下。"),
                (true, true) => format!(
                    "您报告的事件 {number} 已解决，但我们尚未收到您的确认（第 {} 次提醒，共 {MAX_REMINDERS} 次）。",
                    facts.reminder.unwrap_or(1)
                ),
                (false, false) => {
                    format!("The incident {number} you reported is resolved; the solution is below.")
                }
                (false, true) => format!(
                    "The incident {number} you reported is resolved, and we have not heard from you yet (reminder {} of {MAX_REMINDERS}).",
                    facts.reminder.unwrap_or(1)
                ),
            });
            paragraphs.push(match (zh, facts.confirmation_link.is_some()) {
                (true, true) => "请点击下方链接确认问题已解决；如问题仍然存在，请在同一页面驳回并说明原因，我们会继续处理。".to_owned(),
                (true, false) => "请回复此邮件或致电服务台，确认问题已解决；如问题仍然存在，请告知原因，我们会继续处理。".to_owned(),
                (false, true) => "Please use the link below to confirm that the problem is solved. If it is not, reject the resolution on the same page and tell us why; we will continue to work on it.".to_owned(),
                (false, false) => "Please reply to this message or call the service desk to confirm that the problem is solved. If it is not, tell us why; we will continue to work on it.".to_owned(),
            });
            if let Some(solution) = &facts.solution {
                details.push(Detail {
                    label: words.solution,
                    value: solution.clone(),
                });
            }
            action = facts.confirmation_link.clone().map(|link| Action {
                label: words.confirm_link,
                link,
            });
        }
        NotificationKind::Closed => {
            subject = if zh {
                format!("[{number}] 事件已关闭：{}", facts.title)
            } else {
                format!("[{number}] Incident closed: {}", facts.title)
            };
            paragraphs.push(match (zh, &facts.duplicate_of) {
                (true, Some(survivor)) => format!(
                    "事件 {number} 与事件 {survivor} 重复，已关闭；后续处理在 {survivor} 中进行。"
                ),
                (true, None) => format!("事件 {number} 已关闭。感谢您的配合。"),
                (false, Some(survivor)) => format!(
                    "The incident {number} duplicates {survivor} and is closed; the work goes on in {survivor}."
                ),
                (false, None) => {
                    format!("The incident {number} is closed. Thank you for your help.")
                }
            });
            if let Some(code) = facts.closure_code {
                details.push(Detail {
                    label: words.closure,
                    value: if zh {
                        code.name_zh().to_owned()
                    } else {
                        closure_en(code).to_owned()
                    },
                });
            }
        }
        NotificationKind::Note => {
            subject = if zh {
                format!("[{number}] 服务台留言：{}", facts.title)
            } else {
                format!("[{number}] A note from the service desk: {}", facts.title)
            };
            paragraphs.push(if zh {
                format!("服务台就事件 {number} 给您留言：")
            } else {
                format!("The service desk wrote about the incident {number}:")
            });
            if let Some(note) = &facts.note {
                details.push(Detail {
                    label: words.note,
                    value: note.clone(),
                });
            }
        }
    }
    Message {
        subject,
        language: words.language,
        greeting: words.greeting,
        paragraphs,
        details,
        action,
        closing: words.closing,
    }
}

/// The link of `CONFIRMATION_URL` with the token put in for `{token}`.
pub fn confirmation_link(template: &str, token: &str) -> String {
    template.replace("{token}", token)
}

/// The `Message-ID` every message of the incident numbered `number` refers to: the `created`
/// message carries it, the others name it in `In-Reply-To` and `References`, so mail clients
/// show them as one conversation even when the first was never received.
pub fn thread_id(number: &str, domain: &str) -> String {
    format!("<{number}@{domain}>")
}

/// The `Message-ID` of message `id` about the incident numbered `number`.
pub fn message_id(kind: NotificationKind, number: &str, id: i64, domain: &str) -> String {
    match kind {
        NotificationKind::Created => thread_id(number, domain),
        _ => format!("<{number}.{id}@{domain}>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn facts() -> Facts {
        Facts {
            number: "INC-000042".into(),
            title: "财务系统升级出错".into(),
            level: Level::High,
            due_at: Utc.with_ymd_and_hms(2026, 12, 7, 3, 15, 0).unwrap(),
            solution: Some("重新执行升级脚本".into()),
            closure_code: Some(ClosureCode::Resolved),
            duplicate_of: None,
            note: Some("工程师已到场".into()),
            reminder: None,
            confirmation_link: Some("https://desk.example/confirm?token=icc_1".into()),
            timezone: chrono_tz::Asia::Shanghai,
        }
    }

    #[test]
    fn created_gives_the_number_and_the_local_deadline_in_both_languages() {
        let zh = compose(NotificationKind::Created, Locale::Zh, &facts());
        assert_eq!(zh.subject, "[INC-000042] 事件已登记：财务系统升级出错");
        assert!(zh.details.iter().any(|d| d.label == "计划解决时间"
            && d.value == "2026-12-07 11:15 (Asia/Shanghai)"));
        assert!(zh.details.iter().any(|d| d.value == "高"));
        let en = compose(NotificationKind::Created, Locale::En, &facts());
        assert_eq!(
            en.subject,
            "[INC-000042] Incident recorded: 财务系统升级出错"
        );
        assert!(en.details.iter().any(|d| d.label == "Due by"));
        assert_eq!(en.language, "en");
    }

    #[test]
    fn resolved_carries_the_solution_and_the_confirmation_link() {
        let message = compose(NotificationKind::Resolved, Locale::En, &facts());
        assert!(message.subject.contains("Resolved, please confirm"));
        assert!(
            message
                .details
                .iter()
                .any(|d| d.value == "重新执行升级脚本")
        );
        assert_eq!(
            message.action.map(|action| action.link),
            Some("https://desk.example/confirm?token=icc_1".to_owned())
        );
        let without_page = Facts {
            confirmation_link: None,
            ..facts()
        };
        let message = compose(NotificationKind::Resolved, Locale::Zh, &without_page);
        assert!(message.action.is_none());
        assert!(message.paragraphs.iter().any(|p| p.contains("回复此邮件")));
    }

    #[test]
    fn a_reminder_says_it_is_one_and_which() {
        let second = Facts {
            reminder: Some(2),
            ..facts()
        };
        let message = compose(NotificationKind::ConfirmationReminder, Locale::Zh, &second);
        assert!(message.subject.contains("提醒"));
        assert!(message.paragraphs[0].contains("第 2 次提醒，共 3 次"));
        assert!(message.action.is_some());
        let message = compose(NotificationKind::ConfirmationReminder, Locale::En, &second);
        assert!(message.paragraphs[0].contains("reminder 2 of 3"));
    }

    #[test]
    fn a_closed_duplicate_names_the_incident_that_goes_on() {
        let duplicate = Facts {
            closure_code: Some(ClosureCode::Duplicate),
            duplicate_of: Some("INC-000040".into()),
            ..facts()
        };
        let message = compose(NotificationKind::Closed, Locale::Zh, &duplicate);
        assert!(message.paragraphs[0].contains("INC-000040"));
        assert!(message.details.iter().any(|d| d.value == "重复事件"));
        let message = compose(NotificationKind::Closed, Locale::En, &duplicate);
        assert!(message.details.iter().any(|d| d.value == "duplicate"));
    }

    #[test]
    fn only_staff_public_notes_are_told() {
        let desk = Roles::new([Role::ServiceDesk]);
        let customer = Roles::new([Role::Customer]);
        assert!(tells_note(true, &desk));
        assert!(!tells_note(false, &desk));
        assert!(!tells_note(true, &customer));
    }

    #[test]
    fn only_creation_resolution_and_closure_events_are_told() {
        assert_eq!(
            kind_of_event(IncidentEvent::Resolved),
            Some(NotificationKind::Resolved)
        );
        assert_eq!(kind_of_event(IncidentEvent::Assigned), None);
        assert_eq!(kind_of_event(IncidentEvent::NoteCreated), None);
    }

    #[test]
    fn messages_of_an_incident_thread_on_its_number() {
        assert_eq!(
            message_id(NotificationKind::Created, "INC-000042", 7, "desk.example"),
            thread_id("INC-000042", "desk.example")
        );
        assert_eq!(
            message_id(NotificationKind::Closed, "INC-000042", 9, "desk.example"),
            "<INC-000042.9@desk.example>"
        );
        assert_eq!(
            confirmation_link("https://d.example/c?token={token}", "icc_x"),
            "https://d.example/c?token=icc_x"
        );
    }

    #[test]
    fn a_confirmation_request_is_dropped_once_its_resolution_is_answered() {
        let resolved = Utc.with_ymd_and_hms(2026, 12, 7, 3, 15, 0).unwrap();
        let kind = NotificationKind::ConfirmationReminder;
        let at = Some(resolved);
        assert!(still_true(kind, at, Status::Resolved, at, false));
        assert!(!still_true(kind, at, Status::Resolved, at, true));
        assert!(!still_true(kind, at, Status::InProgress, None, false));
        let later = Some(resolved + chrono::TimeDelta::hours(1));
        assert!(!still_true(kind, at, Status::Resolved, later, false));
        assert!(still_true(
            NotificationKind::Closed,
            None,
            Status::Closed,
            None,
            true
        ));
    }

    #[test]
    fn a_desk_report_without_an_address_reaches_nobody() {
        assert!(!may_reach(None, false));
        assert!(!may_reach(Some("  "), false));
        assert!(may_reach(Some("wang@hospital.example"), false));
        assert!(may_reach(None, true));
    }

    #[test]
    fn codes_round_trip() {
        for kind in NotificationKind::ALL {
            assert_eq!(kind.as_str().parse::<NotificationKind>(), Ok(*kind));
        }
        assert_eq!("en".parse::<Locale>(), Ok(Locale::En));
        assert!("fr".parse::<Locale>().is_err());
    }
}
