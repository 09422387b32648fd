//! Knowledge entries (SPEC §7) and their search: every write refreshes the entry's
//! `search_vector` in the same transaction from the text the domain segments.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Nullable, Text, Timestamptz};

use super::StoreError;
use super::schema::{incidents, knowledge_entries};
use super::{ChangesPage, ListPosition, check_version, outbox, parse_stored};
use crate::domain::knowledge::{
    self, KnowledgeCommand, KnowledgeEntry, KnowledgeStatus, KnowledgeText, check_author,
    decide_entry,
};
use crate::domain::role::Roles;
use crate::domain::search::{SearchQuery, latin_part, simple_lexemes};
use crate::domain::taxonomy::Taxonomy;
use crate::domain::validation::FieldError;

/// A stored entry.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, AsChangeset, Insertable)]
#[diesel(table_name = knowledge_entries, check_for_backend(diesel::pg::Pg), treat_none_as_null = true, treat_none_as_default_value = false)]
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
    type Error = StoreError;

    fn try_from(r: EntryRow) -> Result<Self, StoreError> {
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

/// Writes the search vectors of entries `(id, text)`: the title weighted A, the rest B; Latin
/// text through the `english` configuration, the segmented Chinese through `simple`.
pub fn index(conn: &mut PgConnection, entries: &[(i64, KnowledgeText)]) -> Result<(), StoreError> {
    let mut columns: [Vec<String>; 4] = Default::default();
    for (_, text) in entries {
        let (title, body) = text.searchable();
        columns[0].push(latin_part(&title));
        columns[1].push(simple_lexemes(&title));
        columns[2].push(latin_part(&body));
        columns[3].push(simple_lexemes(&body));
    }
    let [title_latin, title_cjk, body_latin, body_cjk] = columns;
    diesel::sql_query(
        "UPDATE knowledge_entries k SET search_vector = \
            setweight(to_tsvector('english', t.title_latin) || to_tsvector('simple', t.title_cjk), 'A') || \
            setweight(to_tsvector('english', t.body_latin) || to_tsvector('simple', t.body_cjk), 'B') \
         FROM unnest($1, $2, $3, $4, $5) AS t (id, title_latin, title_cjk, body_latin, body_cjk) \
         WHERE k.id = t.id",
    )
    .bind::<Array<BigInt>, _>(entries.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(title_latin)
    .bind::<Array<Text>, _>(title_cjk)
    .bind::<Array<Text>, _>(body_latin)
    .bind::<Array<Text>, _>(body_cjk)
    .execute(conn)?;
    Ok(())
}

/// Writes again the search vectors of up to `batch` entries after id `after`, in id order, whose
/// text matches `pattern` (see [`super::incident_text::rewrite_matching`]); returns their ids
/// (fewer than `batch`: none are left).
pub fn rewrite_matching(
    conn: &mut PgConnection,
    pattern: &str,
    after: i64,
    batch: i64,
) -> Result<Vec<i64>, StoreError> {
    type Stored = (
        i64,
        String,
        String,
        Option<String>,
        String,
        Option<String>,
        Option<String>,
        Vec<String>,
    );
    conn.transaction(|conn| {
        let ids = super::incident_text::ids_after(
            conn,
            "SELECT id FROM knowledge_entries WHERE id > $1 AND (title ~ $2 OR symptom ~ $2 \
                 OR cause ~ $2 OR solution ~ $2 OR array_to_string(tags, ' ') ~ $2) \
             ORDER BY id LIMIT $3",
            after,
            pattern,
            batch,
        )?;
        let rows: Vec<Stored> = knowledge_entries::table
            .filter(knowledge_entries::id.eq_any(&ids))
            .select((
                knowledge_entries::id,
                knowledge_entries::title,
                knowledge_entries::symptom,
                knowledge_entries::cause,
                knowledge_entries::solution,
                knowledge_entries::category,
                knowledge_entries::subcategory,
                knowledge_entries::tags,
            ))
            .load(conn)?;
        let entries: Vec<(i64, KnowledgeText)> = rows
            .into_iter()
            .map(
                |(id, title, symptom, cause, solution, category, subcategory, tags)| {
                    let text = KnowledgeText {
                        title,
                        symptom,
                        cause,
                        solution,
                        category,
                        subcategory,
                        tags,
                    };
                    (id, text)
                },
            )
            .collect();
        index(conn, &entries)?;
        Ok(entries.iter().map(|(id, _)| *id).collect())
    })
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
) -> Result<KnowledgeEntry, StoreError> {
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
            return Err(StoreError::Invalid(errors));
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
        let entry: KnowledgeEntry = row.try_into()?;
        index(conn, &[(entry.id, text)])?;
        Ok(entry)
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
) -> Result<KnowledgeEntry, StoreError> {
    conn.transaction(|conn| {
        let current: KnowledgeEntry = knowledge_entries::table
            .find(id)
            .select(EntryRow::as_select())
            .for_update()
            .first(conn)
            .optional()?
            .ok_or_else(|| StoreError::not_found("knowledge entry", id))?
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
            index(conn, &[(id, stored.text())])?;
        }
        if knowledge::publishes(&current, &stored) {
            let entry = serde_json::to_value(&stored).map_err(StoreError::internal)?;
            let event = outbox::Event {
                event_type: "knowledge.published",
                customer_id: None,
                actor_id: Some(caller),
            };
            outbox::emit(
                conn,
                event,
                now,
                serde_json::json!({ "knowledge_entry": entry }),
            )?;
        }
        Ok(stored)
    })
}

/// Entry `id`; customers (`published_only`) know published entries only.
pub fn find(
    conn: &mut PgConnection,
    id: i64,
    published_only: bool,
) -> Result<KnowledgeEntry, StoreError> {
    let entry: KnowledgeEntry = knowledge_entries::table
        .find(id)
        .select(EntryRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| StoreError::not_found("knowledge entry", id))?
        .try_into()?;
    if published_only && entry.status != KnowledgeStatus::Published {
        return Err(StoreError::not_found("knowledge entry", id));
    }
    Ok(entry)
}

/// Entry `id` as a resolve names it: (id, published), `None` when it does not exist. Locks the
/// row against a concurrent retire until the resolve commits.
pub fn published(conn: &mut PgConnection, id: i64) -> Result<Option<(i64, bool)>, StoreError> {
    let status: Option<String> = knowledge_entries::table
        .find(id)
        .select(knowledge_entries::status)
        .for_share()
        .first(conn)
        .optional()?;
    Ok(status.map(|s| (id, s == KnowledgeStatus::Published.as_str())))
}

/// Counts one more incident solved with entry `id`.
pub fn count_use(conn: &mut PgConnection, id: i64) -> Result<(), StoreError> {
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

/// A row of `knowledge_entries` with a score, for SQL that selects [`ENTRY_COLUMNS`] and
/// `score`.
#[derive(QueryableByName)]
pub(super) struct ScoredEntry {
    #[diesel(embed)]
    entry: EntryRow,
    #[diesel(sql_type = Double)]
    score: f64,
}

impl TryFrom<ScoredEntry> for Ranked {
    type Error = StoreError;

    fn try_from(found: ScoredEntry) -> Result<Self, StoreError> {
        Ok((KnowledgeEntry::try_from(found.entry)?, found.score))
    }
}

/// The columns of [`EntryRow`] of an entry aliased `k`.
pub(super) const ENTRY_COLUMNS: &str = "k.id, k.title, k.symptom, k.cause, k.solution, \
    k.category, k.subcategory, k.tags, k.source_incident_id, k.status, k.author_id, \
    k.reviewed_by, k.reject_reason, k.times_used, k.created_at, k.updated_at, k.published_at, \
    k.version";

/// An entry found, with its `ts_rank`.
pub type Ranked = (KnowledgeEntry, f64);

/// At most this many matching entries are ranked, the newest: a query of one common word that
/// matches half the knowledge base ranks the newest thousand instead of reading every match,
/// which keeps a search within milliseconds whatever it matches.
pub const RANK_WINDOW: i64 = 1_000;

/// Entries matching `filter`, changed since `page.updated_since` when given. In id order: ranked
/// by relevance when there is a query (the newest [`RANK_WINDOW`] matches; the position is then
/// a rank offset), else oldest first. In the order of change: least recently changed first,
/// with their rank when there is a query.
pub fn search(
    conn: &mut PgConnection,
    filter: &KnowledgeFilter,
    page: ChangesPage,
) -> Result<(Vec<Ranked>, Option<ListPosition>), StoreError> {
    let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
    let (latin, cjk) = filter
        .query
        .as_ref()
        .map(|q| (q.latin.clone(), q.cjk.clone()))
        .unwrap_or_default();
    // The query is the conjunction of its Latin part (stemmed by `english`) and its Chinese
    // part, an empty part left out. Written out rather than computed once in a CTE so that the
    // planner sees a constant query, estimates how many entries match and chooses between the
    // search index and reading the newest entries first.
    const QUERY: &str = "(CASE WHEN $1 = '' THEN to_tsquery('simple', $2) \
                               WHEN $2 = '' THEN plainto_tsquery('english', $1) \
                               ELSE plainto_tsquery('english', $1) && to_tsquery('simple', $2) END)";
    const FILTERS: &str = "k.status = ANY($3) \
        AND ($4::text IS NULL OR k.category = $4) AND ($5::text IS NULL OR k.subcategory = $5) \
        AND ($6::text IS NULL OR k.tags @> ARRAY[$6]) \
        AND ($9::timestamptz IS NULL OR k.updated_at >= $9)";
    let (after_id, after_change) = match page.after {
        ListPosition::Id(after) => (after, None),
        ListPosition::Changed(after) => (after.map(|(_, id)| id), after.map(|(at, _)| at)),
    };
    let sql = match (&page.after, filter.query.is_some()) {
        (ListPosition::Changed(_), searched) => {
            let (matching, score) = if searched {
                (
                    format!("k.search_vector @@ {QUERY} AND"),
                    format!("ts_rank(k.search_vector, {QUERY})::float8"),
                )
            } else {
                (String::new(), "0::float8".to_owned())
            };
            format!(
                "SELECT {ENTRY_COLUMNS}, {score} AS score FROM knowledge_entries k \
                 WHERE {matching} {FILTERS} \
                   AND ($10::timestamptz IS NULL OR (k.updated_at, k.id) > ($10, $7)) \
                 ORDER BY k.updated_at, k.id LIMIT $8"
            )
        }
        (ListPosition::Id(_), true) => format!(
            "WITH ranked AS ( \
                 SELECT m.id, ts_rank(m.search_vector, {QUERY})::float8 AS score \
                 FROM (SELECT k.id, k.search_vector FROM knowledge_entries k \
                       WHERE k.search_vector @@ {QUERY} AND {FILTERS} \
                       ORDER BY k.id DESC LIMIT {RANK_WINDOW}) m \
                 ORDER BY score DESC, m.id OFFSET COALESCE($7, 0) LIMIT $8) \
             SELECT {ENTRY_COLUMNS}, r.score \
             FROM ranked r JOIN knowledge_entries k ON k.id = r.id \
             ORDER BY r.score DESC, k.id"
        ),
        (ListPosition::Id(_), false) => format!(
            "SELECT {ENTRY_COLUMNS}, 0::float8 AS score FROM knowledge_entries k \
             WHERE {FILTERS} AND ($7::bigint IS NULL OR k.id > $7) \
             ORDER BY k.id LIMIT $8"
        ),
    };
    let rows: Vec<ScoredEntry> = diesel::sql_query(sql)
        .bind::<Text, _>(latin)
        .bind::<Text, _>(cjk)
        .bind::<Array<Text>, _>(statuses)
        .bind::<Nullable<Text>, _>(&filter.category)
        .bind::<Nullable<Text>, _>(&filter.subcategory)
        .bind::<Nullable<Text>, _>(&filter.tag)
        .bind::<Nullable<BigInt>, _>(after_id)
        .bind::<BigInt, _>(page.limit + 1)
        .bind::<Nullable<Timestamptz>, _>(page.updated_since)
        .bind::<Nullable<Timestamptz>, _>(after_change)
        .load(conn)?;
    let mut found: Vec<Ranked> = rows
        .into_iter()
        .map(Ranked::try_from)
        .collect::<Result<_, StoreError>>()?;
    if filter.query.is_some() && matches!(page.after, ListPosition::Id(_)) {
        // Ranked pages continue at a rank offset, not an id.
        let more = found.len() as i64 > page.limit;
        found.truncate(page.limit as usize);
        let next = more.then_some(ListPosition::Id(Some(after_id.unwrap_or(0) + page.limit)));
        return Ok((found, next));
    }
    Ok(page.split(found, |(entry, _)| (entry.updated_at, entry.id)))
}
