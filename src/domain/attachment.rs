//! Attachments (SPEC §13): what a file is (sniffed from its bytes, never taken from the client),
//! how it is named and served, who reads and removes it, and the limits.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::incident::{NoteVisibility, UnknownCode, text_codes};
use super::state_machine::Action;
use super::workflow::{HistoryEntry, history_visibility};

text_codes!(
    /// What an attachment belongs to.
    OwnerKind, "owner kind" {
        /// An incident.
        Incident => "incident",
        /// A coordination ticket.
        CoordinationTicket => "coordination_ticket",
        /// A knowledge entry.
        KnowledgeEntry => "knowledge_entry",
    }
);

/// What an attachment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Owner {
    /// `incident`, `coordination_ticket` or `knowledge_entry`.
    pub kind: OwnerKind,
    /// Its id.
    pub id: i64,
}

/// The most attachments one owner holds (409 `attachment_limit` beyond).
pub const MAX_PER_OWNER: i64 = 50;

/// The longest filename kept, in bytes (what file systems allow).
pub const MAX_FILENAME_BYTES: usize = 255;

/// The name of a file whose client sent none, or nothing usable.
pub const UNNAMED: &str = "attachment";

/// A stored attachment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": 12, "owner": {"kind": "incident", "id": 1}, "filename": "his-error.log", "content_type": "text/plain", "size": 18230, "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "visibility": "public", "uploaded_by": 3, "uploaded_at": "2026-12-07T09:30:00Z"}))]
pub struct Attachment {
    /// Id.
    pub id: i64,
    /// What it belongs to.
    pub owner: Owner,
    /// The name the uploader gave, cleaned of paths and control characters.
    pub filename: String,
    /// What the bytes are, sniffed from them (not what the client claimed).
    pub content_type: String,
    /// Bytes.
    pub size: i64,
    /// SHA-256 of the bytes, lowercase hex; also the download's `ETag`.
    pub sha256: String,
    /// `public`: staff and the incident's organisation; `internal`: staff only.
    pub visibility: NoteVisibility,
    /// Who uploaded it.
    pub uploaded_by: i64,
    /// When.
    #[serde(serialize_with = "crate::domain::timestamps::serialize")]
    pub uploaded_at: DateTime<Utc>,
}

/// The filename `raw` as kept: the last part of any path (`/` or `\`), without control
/// characters or `..`, trimmed, at most [`MAX_FILENAME_BYTES`]; [`UNNAMED`] when nothing is
/// left. Everything else stays as the user wrote it, Chinese included.
pub fn clean_filename(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut name: String = last.chars().filter(|c| !c.is_control()).collect();
    while name.contains("..") {
        name = name.replace("..", ".");
    }
    let name = name.trim().trim_start_matches('.').trim();
    let mut kept = String::new();
    for c in name.chars() {
        if kept.len() + c.len_utf8() > MAX_FILENAME_BYTES {
            break;
        }
        kept.push(c);
    }
    let kept = kept.trim_end().to_owned();
    if kept.is_empty() {
        UNNAMED.to_owned()
    } else {
        kept
    }
}

/// How many leading bytes [`sniff`] looks at.
pub const SNIFF_BYTES: usize = 8192;

/// What the bytes starting with `head` are: a type recognised from its magic numbers, else
/// `text/plain` for text (UTF-8 without NUL bytes), else `application/octet-stream`.
pub fn sniff(head: &[u8]) -> String {
    let head = &head[..head.len().min(SNIFF_BYTES)];
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_owned();
    }
    if looks_like_text(head) {
        "text/plain".to_owned()
    } else {
        "application/octet-stream".to_owned()
    }
}

fn looks_like_text(head: &[u8]) -> bool {
    if head.is_empty() || head.contains(&0) {
        return head.is_empty();
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        // Cut in the middle of a character by the sniffing window: still text.
        Err(error) => error.error_len().is_none(),
    }
}

/// Types that run when opened (programs, scripts), served only as bytes to save.
const ACTIVE_TYPES: [&str; 14] = [
    "application/vnd.microsoft.portable-executable",
    "application/x-executable",
    "application/x-msdownload",
    "application/x-mach-binary",
    "application/x-elf",
    "application/x-sharedlib",
    "application/vnd.android.dex",
    "application/vnd.android.dey",
    "application/java",
    "application/java-vm",
    "application/wasm",
    "application/x-shellscript",
    "text/x-shellscript",
    "application/javascript",
];

/// The `Content-Type` a download is served with: executables and scripts always as
/// `application/octet-stream`; text with its charset; anything else as what it is (served as an
/// attachment in a sandbox, so even HTML never runs in the desk's origin).
pub fn served_type(content_type: &str) -> String {
    if ACTIVE_TYPES.contains(&content_type)
        || content_type.contains("javascript")
        || content_type.contains("ecmascript")
    {
        "application/octet-stream".to_owned()
    } else if content_type.starts_with("text/") {
        format!("{content_type}; charset=utf-8")
    } else {
        content_type.to_owned()
    }
}

/// Whether a reader may know an attachment exists. Customers (`customer` = their organisation)
/// see public attachments of their own organisation's incidents, and public attachments of
/// knowledge entries they may read; staff see all.
pub fn readable(
    customer: Option<i64>,
    owner: OwnerKind,
    owner_customer: Option<i64>,
    visibility: NoteVisibility,
) -> bool {
    match customer {
        None => true,
        Some(own) => {
            visibility == NoteVisibility::Public
                && match owner {
                    OwnerKind::Incident => owner_customer == Some(own),
                    OwnerKind::KnowledgeEntry => true,
                    OwnerKind::CoordinationTicket => false,
                }
        }
    }
}

/// The history entry of attachments added to an incident or removed from it: public when the
/// files are, so a customer's journal shows their own uploads and none of the desk's internal
/// files.
pub fn history_entry(
    removed: bool,
    visibility: NoteVisibility,
    filenames: &[&str],
) -> HistoryEntry {
    let action = if removed {
        Action::Detach
    } else {
        Action::Attach
    };
    let shown = history_visibility(action, &[], Some(visibility), None);
    HistoryEntry {
        action: action.as_str(),
        changes: vec![],
        comment: Some(filenames.join(", ")),
        internal: shown == NoteVisibility::Internal,
    }
}

/// Why an upload is refused before its bytes are stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The owner would hold more than [`MAX_PER_OWNER`] (409 `attachment_limit`).
    #[error(
        "at most {MAX_PER_OWNER} attachments per {kind}; it has {held}, and this upload adds {adding}"
    )]
    TooMany {
        /// The owner's kind.
        kind: OwnerKind,
        /// Attachments it holds.
        held: i64,
        /// Files in this upload.
        adding: i64,
    },
}

/// Checks that an owner holding `held` attachments can take `adding` more.
pub fn check_room(kind: OwnerKind, held: i64, adding: i64) -> Result<(), LimitError> {
    if held + adding > MAX_PER_OWNER {
        Err(LimitError::TooMany { kind, held, adding })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn filenames_lose_paths_control_characters_and_dot_dot() {
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("C:\\Users\\王\\日志.txt"), "日志.txt");
        assert_eq!(clean_filename("a\u{0}b\r\n.log"), "ab.log");
        assert_eq!(clean_filename("report..pdf"), "report.pdf");
        assert_eq!(clean_filename(".."), UNNAMED);
        assert_eq!(clean_filename("   "), UNNAMED);
        assert_eq!(clean_filename(".bashrc"), "bashrc");
        assert_eq!(
            clean_filename("事件记录单 (扫描).pdf"),
            "事件记录单 (扫描).pdf"
        );
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary() {
        let name = clean_filename(&"日".repeat(200));
        assert!(name.len() <= MAX_FILENAME_BYTES);
        assert_eq!(name.chars().count(), MAX_FILENAME_BYTES / 3);
    }

    proptest! {
        #[test]
        fn a_cleaned_name_is_never_a_path(raw in ".{0,300}") {
            let name = clean_filename(&raw);
            prop_assert!(!name.is_empty());
            prop_assert!(!name.contains('/') && !name.contains('\\'));
            prop_assert!(!name.contains(".."));
            prop_assert!(!name.chars().any(char::is_control));
            prop_assert!(name.len() <= MAX_FILENAME_BYTES);
            prop_assert_eq!(clean_filename(&name), name.clone());
        }
    }

    #[test]
    fn the_bytes_decide_the_type() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(sniff(png), "image/png");
        assert_eq!(
            sniff(b"<!DOCTYPE html><html><script>alert(1)</script>"),
            "text/html"
        );
        assert_eq!(sniff(b"%PDF-1.7\n"), "application/pdf");
        assert_eq!(
            sniff("2026-12-07 ERROR 数据库连接失败\n".as_bytes()),
            "text/plain"
        );
        assert_eq!(sniff(&[0xff, 0x00, 0x13, 0x37]), "application/octet-stream");
        assert_eq!(sniff(b""), "text/plain");
        // A character cut by the sniffing window is still text.
        let mut text = "日".repeat(SNIFF_BYTES).into_bytes();
        text.truncate(SNIFF_BYTES);
        assert_eq!(sniff(&text), "text/plain");
    }

    #[test]
    fn programs_and_scripts_are_served_as_bytes_only() {
        assert_eq!(
            sniff(b"MZ\x90\0\x03\0\0\0"),
            "application/vnd.microsoft.portable-executable"
        );
        for kind in [
            "application/vnd.microsoft.portable-executable",
            "application/x-executable",
            "text/x-shellscript",
            "text/javascript",
        ] {
            assert_eq!(served_type(kind), "application/octet-stream", "{kind}");
        }
        assert_eq!(served_type("text/plain"), "text/plain; charset=utf-8");
        assert_eq!(served_type("text/html"), "text/html; charset=utf-8");
        assert_eq!(served_type("image/png"), "image/png");
    }

    #[test]
    fn customers_read_public_files_of_their_own_incidents_and_of_knowledge() {
        use NoteVisibility::{Internal, Public};
        use OwnerKind::*;
        assert!(readable(Some(1), Incident, Some(1), Public));
        assert!(!readable(Some(1), Incident, Some(2), Public));
        assert!(!readable(Some(1), Incident, Some(1), Internal));
        assert!(!readable(Some(1), Incident, None, Public));
        assert!(!readable(Some(1), CoordinationTicket, Some(1), Public));
        assert!(readable(Some(1), KnowledgeEntry, None, Public));
        assert!(readable(None, CoordinationTicket, None, Internal));
    }

    #[test]
    fn fifty_per_owner() {
        assert!(check_room(OwnerKind::Incident, 49, 1).is_ok());
        assert_eq!(
            check_room(OwnerKind::Incident, 50, 1),
            Err(LimitError::TooMany {
                kind: OwnerKind::Incident,
                held: 50,
                adding: 1
            })
        );
        assert!(check_room(OwnerKind::Incident, 48, 3).is_err());
    }

    #[test]
    fn journal_entries_are_as_visible_as_the_files() {
        let entry = history_entry(false, NoteVisibility::Public, &["a.log", "b.png"]);
        assert_eq!(entry.action, "attach");
        assert_eq!(entry.comment.as_deref(), Some("a.log, b.png"));
        assert!(!entry.internal);
        assert!(history_entry(true, NoteVisibility::Internal, &["a"]).internal);
    }
}
