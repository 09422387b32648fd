//! `GET /api/v1/incidents/{id}/record`: 《事件记录单》 (SPEC §9), the printable record customers
//! sign, as HTML rendered by a compile-time-checked template that escapes every value.

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse, get};
use askama::Template;
use bytesize::ByteSize;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{require_incident_reader, visible_incident};
use crate::api::extract::AuthUser;
use crate::api::problems;
use crate::api::respond::negotiate;
use crate::domain::incident::Incident;
use crate::domain::labels::NameZh;
use crate::domain::taxonomy::Taxonomy;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::incident_record::RecordFacts;

/// Label and value rows under a heading.
struct Section {
    title: &'static str,
    fields: Vec<(&'static str, String)>,
}

/// A table of records (escalations, follow-ups).
struct List {
    title: &'static str,
    headings: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

#[derive(Template)]
#[template(path = "incident_record.html")]
struct RecordPage {
    number: String,
    printed_at: String,
    timezone: &'static str,
    sections: Vec<Section>,
    lists: Vec<List>,
}

const NONE: &str = "—";

fn or_none(value: Option<impl Into<String>>) -> String {
    value.map_or_else(|| NONE.to_owned(), Into::into)
}

fn yes_no(value: bool) -> String {
    if value { "是" } else { "否" }.to_owned()
}

/// A record's view of an incident: every field the paper form has, named as on the form.
struct Record<'a> {
    incident: &'a Incident,
    facts: &'a RecordFacts,
    taxonomy: &'a Taxonomy,
    timezone: Tz,
}

impl Record<'_> {
    fn time(&self, at: Option<DateTime<Utc>>) -> String {
        or_none(at.map(|t| {
            t.with_timezone(&self.timezone)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        }))
    }

    fn user(&self, id: Option<i64>) -> String {
        or_none(id.map(|id| {
            self.facts
                .user_names
                .get(&id)
                .cloned()
                .unwrap_or_else(|| format!("#{id}"))
        }))
    }

    /// The names of a code pair (category and subcategory, cause and sub-cause), each its
    /// code when the taxonomy no longer has it.
    fn pair_names<'t>(
        code: Option<&'t str>,
        subcode: Option<&'t str>,
        outer: impl Fn(&str) -> Option<&'t str>,
        inner: impl Fn(&str, &str) -> Option<&'t str>,
    ) -> (String, String) {
        let name = code.map(|c| outer(c).unwrap_or(c));
        let subname = code.zip(subcode).map(|(c, s)| inner(c, s).unwrap_or(s));
        (or_none(name), or_none(subname))
    }

    fn classification(&self) -> (String, String) {
        let taxonomy = self.taxonomy;
        Self::pair_names(
            self.incident.category.as_deref(),
            self.incident.subcategory.as_deref(),
            |code| {
                let found = taxonomy.categories.iter().find(|c| c.code == code);
                found.map(|c| c.name_zh.as_str())
            },
            |code, sub| taxonomy.subcategory(code, sub).map(|s| s.name_zh.as_str()),
        )
    }

    fn cause(&self) -> (String, String) {
        let taxonomy = self.taxonomy;
        Self::pair_names(
            self.incident.cause.as_deref(),
            self.incident.subcause.as_deref(),
            |code| {
                let found = taxonomy.causes.iter().find(|c| c.code == code);
                found.map(|c| c.name_zh.as_str())
            },
            |code, sub| taxonomy.subcause(code, sub).map(|s| s.name_zh.as_str()),
        )
    }

    fn sections(&self) -> Vec<Section> {
        let i = self.incident;
        let reporter = i.reporter.as_ref();
        let (category, subcategory) = self.classification();
        let (cause, subcause) = self.cause();
        vec![
            Section {
                title: "一、客户与报告人",
                fields: vec![
                    ("客户", or_none(self.facts.customer_name.clone())),
                    ("报告人", or_none(reporter.map(|r| r.name.clone()))),
                    ("联系电话", or_none(reporter.and_then(|r| r.phone.clone()))),
                    ("电子邮件", or_none(reporter.and_then(|r| r.email.clone()))),
                    ("来源渠道", i.channel.name_zh().to_owned()),
                    ("登记时间", self.time(Some(i.created_at))),
                    ("登记人", self.user(Some(i.created_by))),
                ],
            },
            Section {
                title: "二、事件描述",
                fields: vec![
                    ("事件类型", i.kind.name_zh().to_owned()),
                    ("标题", i.title.clone()),
                    ("描述", i.description.clone()),
                    ("所属系统", or_none(i.source_system.clone())),
                    ("配置项", or_none(self.facts.ci_name.clone())),
                ],
            },
            Section {
                title: "三、分类与分级",
                fields: vec![
                    ("事件分类", category),
                    ("子类", subcategory),
                    ("事件等级", i.level.name_zh().to_owned()),
                    ("解决时限", self.time(Some(i.due_at))),
                    ("影响现场工作", yes_no(i.affects_onsite_work)),
                    ("影响数据上传", yes_no(i.affects_data_upload)),
                ],
            },
            Section {
                title: "四、处理过程",
                fields: vec![
                    ("状态", i.status.name_zh().to_owned()),
                    ("受理时间", self.time(i.accepted_at)),
                    ("处理层级", i.tier.name_zh().to_owned()),
                    ("处理人", self.user(i.assignee_id)),
                    ("临时解决方案", or_none(i.workaround.clone())),
                ],
            },
            Section {
                title: "五、解决方案与原因",
                fields: vec![
                    ("解决方案", or_none(i.solution.clone())),
                    ("事件原因", cause),
                    ("子原因", subcause),
                    ("解决时间", self.time(i.resolved_at)),
                ],
            },
            Section {
                title: "六、用户确认与关闭",
                fields: vec![
                    ("用户确认时间", self.time(i.user_confirmed_at)),
                    ("关闭时间", self.time(i.closed_at)),
                    ("关闭人", self.user(i.closed_by)),
                    ("关闭原因", or_none(i.closure_code.map(|c| c.name_zh()))),
                    ("回访期限", self.time(i.follow_up_due_at)),
                ],
            },
        ]
    }

    /// The public attachments and the monitoring links, for every reader; then escalations and
    /// follow-ups: records only staff may read, left out for anyone else.
    fn lists(&self, staff: bool) -> Vec<List> {
        let attachment_rows = self
            .facts
            .attachments
            .iter()
            .map(|a| {
                vec![
                    a.filename.clone(),
                    a.content_type.clone(),
                    ByteSize::b(a.size as u64).to_string(),
                    self.user(Some(a.uploaded_by)),
                    self.time(Some(a.uploaded_at)),
                ]
            })
            .collect();
        let link_rows = self
            .incident
            .links
            .iter()
            .map(|link| vec![link.text.clone(), link.href.clone()])
            .collect();
        let mut lists = vec![
            List {
                title: "附件",
                headings: vec!["文件名", "类型", "大小", "上传人", "上传时间"],
                rows: attachment_rows,
            },
            List {
                title: "相关链接",
                headings: vec!["说明", "地址"],
                rows: link_rows,
            },
        ];
        if staff {
            lists.extend(self.staff_lists());
        }
        lists
    }

    /// Escalations and follow-ups: records only staff may read.
    fn staff_lists(&self) -> Vec<List> {
        let escalation_rows = self
            .facts
            .escalations
            .iter()
            .map(|e| {
                let named = |kind: &str| {
                    kind.parse::<crate::domain::escalation::EscalationKind>()
                        .map_or_else(|_| kind.to_owned(), |k| k.name_zh().to_owned())
                };
                vec![
                    self.time(Some(e.created_at)),
                    named(&e.kind),
                    format!("{} → {}", e.from_tier, e.to_tier),
                    format!("{} → {}", e.from_level, e.to_level),
                    self.user(e.to_assignee_id),
                    or_none(e.reason.clone()),
                ]
            })
            .collect();
        let follow_up_rows = self
            .facts
            .follow_ups
            .iter()
            .map(|f| {
                vec![
                    self.time(Some(f.performed_at)),
                    f.channel.name_zh().to_owned(),
                    yes_no(f.reached),
                    or_none(f.satisfaction.map(|s| s.to_string())),
                    f.comment.clone(),
                    self.user(Some(f.performed_by)),
                    yes_no(f.on_time),
                ]
            })
            .collect();
        vec![
            List {
                title: "七、升级记录",
                headings: vec!["时间", "类型", "层级", "等级", "接手人", "原因"],
                rows: escalation_rows,
            },
            List {
                title: "八、回访记录",
                headings: vec![
                    "回访时间",
                    "方式",
                    "联系上",
                    "满意度",
                    "回访意见",
                    "回访人",
                    "按时",
                ],
                rows: follow_up_rows,
            },
        ]
    }
}

/// 《事件记录单》: the incident record as a printable page
///
/// HTML (`Accept: text/html`) with Chinese labels and a print stylesheet, for customers who sign
/// paper records. It lists the public attachments and the links monitoring gave; the
/// escalation and follow-up tables are printed for staff only.
///
/// Roles: whoever may read the incident.
///
/// Errors: 404 `not_found` for an incident the caller may not see; 406 `not_acceptable` for another
/// `Accept`.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id")),
    responses(
        (status = 200, description = "The record as a printable page",
            content((String = "text/html", example = "<!DOCTYPE html><html lang=\"zh-CN\">…<h1>事件记录单</h1>…"))),
        problems::DocumentErrors
    )
)]
#[get("/incidents/{id}/record")]
pub async fn get_incident_record(
    request: HttpRequest,
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    negotiate(&request, &["text/html"])?;
    let id = id.into_inner();
    let who = caller.caller();
    let staff = caller.roles.is_staff();
    let (incident, facts) = store::run(&state.pool, move |conn| {
        let incident = visible_incident(conn, &who, id)?;
        let facts = store::incident_record::record_facts(conn, &incident, staff)?;
        Ok::<_, AppError>((incident, facts))
    })
    .await?;
    let timezone = state.settings.timezone;
    let record = Record {
        incident: &incident,
        facts: &facts,
        taxonomy: &state.taxonomy,
        timezone,
    };
    let page = RecordPage {
        number: incident.number.clone(),
        printed_at: record.time(Some(state.clock.now())),
        timezone: timezone.name(),
        sections: record.sections(),
        lists: record.lists(staff),
    };
    let html = page
        .render()
        .map_err(|e| AppError::internal_error("rendering the incident record", &e))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}
