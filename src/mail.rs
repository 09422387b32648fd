//! Sending reporters' e-mail (SPEC §12): the composed message of `domain::notification`
//! rendered as plain text and HTML (askama), with the headers that thread it, and sent over
//! SMTP with lettre.

use std::time::Duration;

use askama::Template;
use chrono_tz::Tz;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::auth::confirmation::ConfirmationKeys;
use crate::config::Settings;
use crate::domain::incident::{ClosureCode, Status};
use crate::domain::level::Level;
use crate::domain::notification::{
    self, Facts, Locale, Message, NotificationKind, confirmation_link, message_id, thread_id,
};
use crate::store::notifications::Claimed;

/// How long one message may take to send, connection included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Template)]
#[template(path = "notification.txt")]
struct PlainText<'a> {
    message: &'a Message,
}

#[derive(Template)]
#[template(path = "notification.html")]
struct Html<'a> {
    message: &'a Message,
}

/// Why a claimed message is not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotSent {
    /// It no longer tells the truth, or cannot be made; it is skipped for good.
    Skip(String),
    /// The mail server did not take it; it is tried again.
    Fail(String),
}

/// Composes and sends messages; `None` transport when no `SMTP_URL` is set.
pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    domain: String,
    confirmation_url: Option<String>,
    keys: ConfirmationKeys,
    timezone: Tz,
}

impl Mailer {
    /// The mailer of `settings`; confirmation links are signed with `keys`.
    pub fn new(settings: &Settings, keys: ConfirmationKeys) -> Result<Self, String> {
        let from: Mailbox = settings
            .mail_from
            .parse()
            .map_err(|e| format!("MAIL_FROM: {e}"))?;
        let domain = from.email.domain().to_owned();
        let transport = match &settings.smtp_url {
            None => None,
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|e| format!("SMTP_URL: {e}"))?
                    .timeout(Some(SEND_TIMEOUT))
                    .build(),
            ),
        };
        Ok(Mailer {
            transport,
            from,
            domain,
            confirmation_url: settings.confirmation_url.clone(),
            keys,
            timezone: settings.timezone,
        })
    }

    /// True when a mail server is configured.
    pub fn sends(&self) -> bool {
        self.transport.is_some()
    }

    /// The message `claimed` stands for, as it would go out.
    pub fn compose(&self, claimed: &Claimed) -> Result<lettre::Message, NotSent> {
        let skip = |why: String| NotSent::Skip(why);
        let kind: NotificationKind = claimed.kind.parse().map_err(|e| skip(format!("{e}")))?;
        let status: Status = claimed.status.parse().map_err(|e| skip(format!("{e}")))?;
        if !notification::still_true(
            kind,
            claimed.resolution,
            status,
            claimed.resolved_at,
            claimed.user_confirmed_at.is_some(),
        ) {
            return Err(skip(
                "the resolution was answered or taken back before the message went out".into(),
            ));
        }
        let level: Level = claimed.level.parse().map_err(|e| skip(format!("{e}")))?;
        let closure_code = claimed
            .closure_code
            .as_deref()
            .map(str::parse::<ClosureCode>)
            .transpose()
            .map_err(|e| skip(format!("{e}")))?;
        let locale: Locale = claimed.locale.parse().unwrap_or_default();
        let confirmation_link = match (&self.confirmation_url, claimed.resolution) {
            (Some(template), Some(resolution)) => Some(confirmation_link(
                template,
                &self.keys.issue(claimed.incident_id, resolution),
            )),
            _ => None,
        };
        let facts = Facts {
            number: claimed.number.clone(),
            title: claimed.title.clone(),
            level,
            due_at: claimed.due_at,
            solution: claimed.solution.clone(),
            closure_code,
            duplicate_of: claimed.duplicate_of.clone(),
            note: claimed.note.clone(),
            reminder: claimed.reminder,
            confirmation_link,
            timezone: self.timezone,
        };
        let message = notification::compose(kind, locale, &facts);
        let plain = PlainText { message: &message }
            .render()
            .map_err(|e| skip(format!("rendering failed: {e}")))?;
        let html = Html { message: &message }
            .render()
            .map_err(|e| skip(format!("rendering failed: {e}")))?;
        let to: Mailbox = claimed
            .recipient
            .parse()
            .map_err(|e| skip(format!("`{}` is not an address: {e}", claimed.recipient)))?;
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .message_id(Some(message_id(
                kind,
                &claimed.number,
                claimed.id,
                &self.domain,
            )));
        if kind != NotificationKind::Created {
            let root = thread_id(&claimed.number, &self.domain);
            builder = builder.in_reply_to(root.clone()).references(root);
        }
        builder
            .multipart(MultiPart::alternative_plain_html(plain, html))
            .map_err(|e| skip(format!("the message cannot be built: {e}")))
    }

    /// Sends `message` to the configured mail server.
    pub async fn send(&self, message: lettre::Message) -> Result<(), NotSent> {
        let Some(transport) = &self.transport else {
            return Err(NotSent::Skip(
                "no mail server is configured (SMTP_URL)".into(),
            ));
        };
        transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| NotSent::Fail(format!("the mail server did not take it: {e}")))
    }
}
