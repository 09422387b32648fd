//! Knowledge entries (SPEC §7) and their search: every write refreshes the entry's
//! `search_vector` in the same transaction from the text the domain segments.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable, Text};

use super::schema::{incidents, knowledge_entries};
use super::{PageRequest, check_version, parse_stored, split_page};
use crate::domain::knowledge::{
    KnowledgeCommand, KnowledgeEntry, KnowledgeStatus, KnowledgeText, check_author, decide_entry,
};
use crate::domain::role::Roles;
use crate::domain::search::{SearchQuery, cjk_lexemes, latin_part};
use crate::domain::taxonomy::Taxonomy;
use crate::domain::validation::FieldError;
use crate::error::AppError;

/// A stored entry.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, AsChangeset)]
#[diesel(table_name = knowledge_entries, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
#[allow(missing_docs)]
pub struct EntryRow {
    pub id: i64,
    pub title: String,
    pub symptom: String,
    pub cause: Option<String>,
    pub solution: String,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub tags: Vec<String>,
    pub source_incident_id: Option<i64>,
    pub status: String,
    pub author_id: i64,
    pub reviewed_by: Option<i64>,
    pub reject_reason: Option<String>,
    pub times_used: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub version: i32,
}

impl TryFrom<EntryRow> for KnowledgeEntry {
    type Error = AppError;

    fn try_from(r: EntryRow) -> Result<Self, AppError> {
        Ok(KnowledgeEntry {
            status: parse_stored(&r.status)?,
            id: r.id,
            title: r.title,
            symptom: r.symptom,
            cause: r.cause,
            solution: r.solution,
            category: r.category,
            subcategory: r.subcategory,
            tags: r.tags,
            source_incident_id: r.source_incident_id,
            author_id: r.author_id,
            reviewed_by: r.reviewed_by,
            reject_reason: r.reject_reason,
            times_used: r.times_used,
            created_at: r.created_at,
            updated_at: r.updated_at,
            published_at: r.published_at,
            version: r.version,
        })
    }
}

impl From<KnowledgeEntry> for EntryRow {
    fn from(e: KnowledgeEntry) -> Self {
        EntryRow {
            status: e.status.as_str().to_owned(),
            id: e.id,
            title: e.title,
            symptom: e.symptom,
            cause: e.cause,
            solution: e.solution,
            category: e.category,
            subcategory: e.subcategory,
            tags: e.tags,
            source_incident_id: e.source_incident_id,
            author_id: e.author_id,
            reviewed_by: e.reviewed_by,
            reject_reason: e.reject_reason,
            times_used: e.times_used,
            created_at: e.created_at,
            updated_at: e.updated_at,
            published_at: e.published_at,
            version: e.version,
        }
    }
}

/// Writes the entry's search vector: the title weighted A, the rest B; Latin text through the
/// `english` configuration, the segmented Chinese through `simple`.
fn index(conn: &mut PgConnection, id: i64, text: &KnowledgeText) -> Result<(), AppError> {
    let (title, body) = text.searchable();
    diesel::sql_query(
        "UPDATE knowledge_entries SET search_vector = \
            setweight(to_tsvector('english', $2) || to_tsvector('simple', $3), 'A') || \
            setweight(to_tsvector('english', $4) || to_tsvector('simple', $5), 'B') \
         WHERE id = $1",
    )
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(latin_part(&title))
    .bind::<Text, _>(cjk_lexemes(&title))
    .bind::<Text, _>(latin_part(&body))
    .bind::<Text, _>(cjk_lexemes(&body))
    .execute(conn)?;
    Ok(())
}

/// Writes a new draft by `author` (with `roles`).
pub fn create(
    conn: &mut PgConnection,
    author: i64,
    roles: &Roles,
    text: KnowledgeText,
    source_incident_id: Option<i64>,
    taxonomy: &Taxonomy,
    now: DateTime<Utc>,
) -> Result<KnowledgeEntry, AppError> {
    check_author(roles)?;
    let (text, mut errors) = match text.check(taxonomy) {
        Ok(text) => (Some(text), vec![]),
        Err(errors) => (None, errors),
    };
    conn.transaction(|conn| {
        if let Some(id) = source_incident_id {
            let exists: bool =
                diesel::select(diesel::dsl::exists(incidents::table.find(id))).get_result(conn)?;
            if !exists {
                errors.push(FieldError::new(
                    "source_incident_id",
                    "not_found",
                    format!("incident {id} does not exist"),
                ));
            }
        }
        let Some(text) = text.filter(|_| errors.is_empty()) else {
            return Err(AppError::Validation(errors));
        };
        let row: EntryRow = diesel::insert_into(knowledge_entries::table)
            .values((
                knowledge_entries::title.eq(&text.title),
                knowledge_entries::symptom.eq(&text.symptom),
                knowledge_entries::cause.eq(&text.cause),
                knowledge_entries::solution.eq(&text.solution),
                knowledge_entries::category.eq(&text.category),
                knowledge_entries::subcategory.eq(&text.subcategory),
                knowledge_entries::tags.eq(&text.tags),
                knowledge_entries::source_incident_id.eq(source_incident_id),
                knowledge_entries::status.eq(KnowledgeStatus::Draft.as_str()),
                knowledge_entries::author_id.eq(author),
                knowledge_entries::created_at.eq(now),
                knowledge_entries::updated_at.eq(now),
            ))
            .returning(EntryRow::as_returning())
            .get_result(conn)?;
        index(conn, row.id, &text)?;
        row.try_into()
    })
}

/// Runs `command` by `caller` on entry `id` under its row lock, so two concurrent approvals
/// see each other: one publishes, the other finds it published (409).
pub fn execute(
    conn: &mut PgConnection,
    id: i64,
    expected_version: Option<i32>,
    (caller, roles): (i64, &Roles),
    command: KnowledgeCommand,
    taxonomy: &Taxonomy,
    now: DateTime<Utc>,
) -> Result<KnowledgeEntry, AppError> {
    conn.transaction(|conn| {
        let current: KnowledgeEntry = knowledge_entries::table
            .find(id)
            .select(EntryRow::as_select())
            .for_update()
            .first(conn)
            .optional()?
            .ok_or_else(|| AppError::not_found("knowledge entry", id))?
            .try_into()?;
        let edits = matches!(command, KnowledgeCommand::Edit(_));
        let next = decide_entry(&current, caller, roles, command, taxonomy, now)?;
        check_version(expected_version, current.version)?;
        let stored: KnowledgeEntry = diesel::update(knowledge_entries::table.find(id))
            .set(&EntryRow::from(next))
            .returning(EntryRow::as_returning())
            .get_result::<EntryRow>(conn)?
            .try_into()?;
        if edits {
            index(conn, id, &stored.text())?;
        }
        Ok(stored)
    })
}

/// Entry `id`; customers (`published_only`) know published entries only.
pub fn find(
    conn: &mut PgConnection,
    id: i64,
    published_only: bool,
) -> Result<KnowledgeEntry, AppError> {
    let entry: KnowledgeEntry = knowledge_entries::table
        .find(id)
        .select(EntryRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found("knowledge entry", id))?
        .try_into()?;
    if published_only && entry.status != KnowledgeStatus::Published {
        return Err(AppError::not_found("knowledge entry", id));
    }
    Ok(entry)
}

/// Entry `id` as a resolve names it: (id, published), `None` when it does not exist. Locks the
/// row against a concurrent retire until the resolve commits.
pub fn published(conn: &mut PgConnection, id: i64) -> Result<Option<(i64, bool)>, AppError> {
    let status: Option<String> = knowledge_entries::table
        .find(id)
        .select(knowledge_entries::status)
        .for_share()
        .first(conn)
        .optional()?;
    Ok(status.map(|s| (id, s == KnowledgeStatus::Published.as_str())))
}

/// Counts one more incident solved with entry `id`.
pub fn count_use(conn: &mut PgConnection, id: i64) -> Result<(), AppError> {
    diesel::update(knowledge_entries::table.find(id))
        .set(knowledge_entries::times_used.eq(knowledge_entries::times_used + 1))
        .execute(conn)?;
    Ok(())
}

/// Filters of a knowledge search.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct KnowledgeFilter {
    pub query: Option<SearchQuery>,
    pub statuses: Vec<KnowledgeStatus>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub tag: Option<String>,
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(embed)]
    entry: EntryRow,
    #[diesel(sql_type = Double)]
    score: f64,
}

/// An entry found, with its `ts_rank`.
pub type Ranked = (KnowledgeEntry, f64);

/// Entries matching `filter`: ranked by relevance when there is a query (`page` is then a
/// rank offset in `after`), else oldest first by id.
pub fn search(
    conn: &mut PgConnection,
    filter: &KnowledgeFilter,
    page: PageRequest,
) -> Result<(Vec<Ranked>, Option<i64>), AppError> {
    let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
    let (latin, cjk) = filter
        .query
        .as_ref()
        .map(|q| (q.latin.clone(), q.cjk.clone()))
        .unwrap_or_default();
    let ranked = filter.query.is_some();
    // The query is the conjunction of its Latin part (stemmed by `english`) and its Chinese
    // part; an empty part is left out rather than matched as nothing.
    let sql = format!(
        "WITH q AS (SELECT CASE WHEN $1 = '' THEN NULL ELSE plainto_tsquery('english', $1) END AS latin, \
                           CASE WHEN $2 = '' THEN NULL ELSE to_tsquery('simple', $2) END AS cjk) \
         SELECT k.id, k.title, k.symptom, k.cause, k.solution, k.category, k.subcategory, k.tags, \
                k.source_incident_id, k.status, k.author_id, k.reviewed_by, k.reject_reason, \
                k.times_used, k.created_at, k.updated_at, k.published_at, k.version, \
                {score} AS score \
         FROM knowledge_entries k, q \
         WHERE k.status = ANY($3) \
           AND ($4::text IS NULL OR k.category = $4) AND ($5::text IS NULL OR k.subcategory = $5) \
           AND ($6::text IS NULL OR k.tags @> ARRAY[$6]) \
           AND (q.latin IS NULL OR k.search_vector @@ q.latin) \
           AND (q.cjk IS NULL OR k.search_vector @@ q.cjk) \
           {keyset} \
         ORDER BY {order} LIMIT $8",
        score = if ranked {
            "ts_rank(k.search_vector, COALESCE(q.latin && q.cjk, q.latin, q.cjk))::float8"
        } else {
            "0::float8"
        },
        keyset = if ranked {
            ""
        } else {
            "AND ($7::bigint IS NULL OR k.id > $7)"
        },
        order = if ranked {
            "score DESC, k.id OFFSET COALESCE($7, 0)"
        } else {
            "k.id"
        },
    );
    let rows: Vec<Found> = diesel::sql_query(sql)
        .bind::<Text, _>(latin)
        .bind::<Text, _>(cjk)
        .bind::<diesel::sql_types::Array<Text>, _>(statuses)
        .bind::<Nullable<Text>, _>(&filter.category)
        .bind::<Nullable<Text>, _>(&filter.subcategory)
        .bind::<Nullable<Text>, _>(&filter.tag)
        .bind::<Nullable<BigInt>, _>(page.after)
        .bind::<BigInt, _>(page.limit + 1)
        .load(conn)?;
    let offset = page.after.unwrap_or(0);
    let mut found: Vec<Ranked> = rows
        .into_iter()
        .map(|f| Ok((KnowledgeEntry::try_from(f.entry)?, f.score)))
        .collect::<Result<_, AppError>>()?;
    if ranked {
        // Ranked pages continue at a rank offset, not an id.
        let more = found.len() as i64 > page.limit;
        found.truncate(page.limit as usize);
        let next = more.then_some(offset + page.limit);
        return Ok((found, next));
    }
    Ok(split_page(found, page, |(entry, _)| entry.id))
}
