//! Suggestions for an open incident (SPEC §7): the published knowledge entries and the incidents
//! closed as `resolved` most similar to it, from the same kind of index as knowledge search.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Nullable, Text, Timestamptz};

use super::knowledge::{EntryRow, Ranked};
use super::schema::incidents;
use crate::domain::incident::{ClosureCode, Incident, Status};
use crate::domain::knowledge::KnowledgeEntry;
use crate::domain::search::{any_of, cjk_lexemes, latin_part};
use crate::error::AppError;

fn searchable(title: &str, description: &str) -> String {
    format!("{title}\n{description}")
}

/// Indexes `incidents` (id, title, description) in one statement.
fn index_many(conn: &mut PgConnection, rows: &[(i64, String, String)]) -> Result<(), AppError> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let texts: Vec<String> = rows.iter().map(|r| searchable(&r.1, &r.2)).collect();
    let latin: Vec<String> = texts.iter().map(|t| latin_part(t)).collect();
    let cjk: Vec<String> = texts.iter().map(|t| cjk_lexemes(t)).collect();
    diesel::sql_query(
        "INSERT INTO incident_search (incident_id, search_vector) \
         SELECT id, to_tsvector('english', latin) || to_tsvector('simple', cjk) \
         FROM unnest($1, $2, $3) AS t (id, latin, cjk) \
         ON CONFLICT (incident_id) DO NOTHING",
    )
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<Text>, _>(latin)
    .bind::<Array<Text>, _>(cjk)
    .execute(conn)?;
    Ok(())
}

/// Makes `incident`, just closed as `resolved` in this transaction, a suggestion.
pub fn index_resolved(conn: &mut PgConnection, incident: &Incident) -> Result<(), AppError> {
    if incident.status == Status::Closed && incident.closure_code == Some(ClosureCode::Resolved) {
        index_many(
            conn,
            &[(
                incident.id,
                incident.title.clone(),
                incident.description.clone(),
            )],
        )?;
    }
    Ok(())
}

/// Indexes the incidents closed as `resolved` that are not indexed yet (those closed before the
/// index existed, or written by `seed-demo`); returns how many.
pub fn backfill(conn: &mut PgConnection) -> Result<usize, AppError> {
    let mut done = 0;
    loop {
        let batch: Vec<(i64, String, String)> = incidents::table
            .filter(incidents::closure_code.eq(ClosureCode::Resolved.as_str()))
            .filter(diesel::dsl::not(diesel::dsl::exists(
                super::schema::incident_search::table
                    .filter(super::schema::incident_search::incident_id.eq(incidents::id)),
            )))
            .order(incidents::id.asc())
            .limit(5_000)
            .select((incidents::id, incidents::title, incidents::description))
            .load(conn)?;
        if batch.is_empty() {
            return Ok(done);
        }
        done += batch.len();
        index_many(conn, &batch)?;
    }
}

/// A resolved incident similar to the one asked about.
#[derive(Debug, Clone, QueryableByName)]
#[allow(missing_docs)]
pub struct SimilarIncident {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub number: String,
    #[diesel(sql_type = Text)]
    pub title: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub customer_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub solution: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub cause: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub subcause: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub closed_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Double)]
    pub score: f64,
}

#[derive(QueryableByName)]
struct FoundEntry {
    #[diesel(embed)]
    entry: EntryRow,
    #[diesel(sql_type = Double)]
    score: f64,
}

/// The query of "any word of the incident", Latin and Chinese.
const QUERY: &str = "q AS (SELECT CASE WHEN $1 = '' THEN NULL ELSE to_tsquery('english', $1) END AS latin, \
                                      CASE WHEN $2 = '' THEN NULL ELSE to_tsquery('simple', $2) END AS cjk), \
                     qq AS (SELECT CASE WHEN latin IS NULL THEN cjk WHEN cjk IS NULL THEN latin \
                                        ELSE latin || cjk END AS query FROM q)";

/// At most `limit` published entries and `limit` resolved incidents most similar to
/// `incident` by its title and description; the same subcategory (then category) ranks higher.
pub fn suggest(
    conn: &mut PgConnection,
    incident: &Incident,
    limit: i64,
) -> Result<(Vec<Ranked>, Vec<SimilarIncident>), AppError> {
    let (latin, cjk) = any_of(&searchable(&incident.title, &incident.description));
    if latin.is_empty() && cjk.is_empty() {
        return Ok((vec![], vec![]));
    }
    // Ranking: text similarity, plus a bonus for the same classification.
    let entries: Vec<FoundEntry> = diesel::sql_query(format!(
        "WITH {QUERY} \
         SELECT k.id, k.title, k.symptom, k.cause, k.solution, k.category, k.subcategory, k.tags, \
                k.source_incident_id, k.status, k.author_id, k.reviewed_by, k.reject_reason, \
                k.times_used, k.created_at, k.updated_at, k.published_at, k.version, \
                (ts_rank(k.search_vector, qq.query) \
                 + CASE WHEN k.subcategory = $3 THEN 0.2 WHEN k.category = $4 THEN 0.1 ELSE 0 END \
                )::float8 AS score \
         FROM knowledge_entries k, qq \
         WHERE k.status = 'published' AND k.search_vector @@ qq.query \
         ORDER BY score DESC, k.id LIMIT $5"
    ))
    .bind::<Text, _>(&latin)
    .bind::<Text, _>(&cjk)
    .bind::<Nullable<Text>, _>(&incident.subcategory)
    .bind::<Nullable<Text>, _>(&incident.category)
    .bind::<BigInt, _>(limit)
    .load(conn)?;
    let similar: Vec<SimilarIncident> = diesel::sql_query(format!(
        "WITH {QUERY} \
         SELECT i.id, i.number, i.title, i.customer_id, i.solution, i.cause, i.subcause, \
                i.closed_at, \
                (ts_rank(s.search_vector, qq.query) \
                 + CASE WHEN i.subcategory = $3 THEN 0.2 WHEN i.category = $4 THEN 0.1 ELSE 0 END \
                )::float8 AS score \
         FROM incident_search s JOIN incidents i ON i.id = s.incident_id, qq \
         WHERE s.search_vector @@ qq.query AND i.id <> $6 \
         ORDER BY score DESC, i.id DESC LIMIT $5"
    ))
    .bind::<Text, _>(&latin)
    .bind::<Text, _>(&cjk)
    .bind::<Nullable<Text>, _>(&incident.subcategory)
    .bind::<Nullable<Text>, _>(&incident.category)
    .bind::<BigInt, _>(limit)
    .bind::<BigInt, _>(incident.id)
    .load(conn)?;
    let entries = entries
        .into_iter()
        .map(|f| Ok((KnowledgeEntry::try_from(f.entry)?, f.score)))
        .collect::<Result<_, AppError>>()?;
    Ok((entries, similar))
}
