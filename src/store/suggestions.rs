//! Suggestions for an open incident (SPEC §7): the published knowledge entries and the incidents
//! closed as `resolved` most similar to it, from the same kind of index as knowledge search.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{Array, BigInt, Bool, Double, Nullable, Text, Timestamptz};

use super::StoreError;
use super::knowledge::{ENTRY_COLUMNS, Ranked, ScoredEntry};
use super::schema::{incident_search, incident_search_state, incidents};
use crate::domain::incident::{ClosureCode, Incident, Status};
use crate::domain::search::{Lexeme, SimilarityQuery, SimilarityText, latin_part, simple_lexemes};

/// What suggestions index of a resolved incident.
type Indexed = (i64, String, String, Option<String>, Option<String>);

/// Indexes incidents (id, title, description, category, subcategory) in one statement.
fn index_many(conn: &mut PgConnection, rows: &[Indexed]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let texts: Vec<String> = rows.iter().map(|r| format!("{}\n{}", r.1, r.2)).collect();
    diesel::sql_query(
        "INSERT INTO incident_search (incident_id, search_vector, category, subcategory) \
         SELECT id, to_tsvector('english', latin) || to_tsvector('simple', cjk), category, subcategory \
         FROM unnest($1, $2, $3, $4, $5) AS t (id, latin, cjk, category, subcategory) \
         ON CONFLICT (incident_id) DO NOTHING",
    )
    .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.0).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(texts.iter().map(|t| latin_part(t)).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(texts.iter().map(|t| simple_lexemes(t)).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.3.clone()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.4.clone()).collect::<Vec<_>>())
    .execute(conn)?;
    Ok(())
}

/// Makes `incident`, just closed as `resolved` in this transaction, a suggestion.
pub fn index_resolved(conn: &mut PgConnection, incident: &Incident) -> Result<(), StoreError> {
    if incident.status == Status::Closed && incident.closure_code == Some(ClosureCode::Resolved) {
        index_many(
            conn,
            &[(
                incident.id,
                incident.title.clone(),
                incident.description.clone(),
                incident.category.clone(),
                incident.subcategory.clone(),
            )],
        )?;
    }
    Ok(())
}

/// Indexes the incidents closed as `resolved` before `incident_search` existed, once: a
/// database that has been backfilled says so in `incident_search_state` and is not scanned
/// again. Returns how many were indexed.
pub fn ensure_backfilled(conn: &mut PgConnection) -> Result<usize, StoreError> {
    let done: bool = diesel::select(diesel::dsl::exists(
        incident_search_state::table.select(incident_search_state::id),
    ))
    .get_result(conn)?;
    if done { Ok(0) } else { backfill(conn) }
}

/// Indexes every incident closed as `resolved` that is not indexed yet (as `seed-demo` writes
/// them) and records that the database is backfilled; returns how many.
pub fn backfill(conn: &mut PgConnection) -> Result<usize, StoreError> {
    let mut done = 0;
    loop {
        let batch: Vec<Indexed> = incidents::table
            .filter(incidents::closure_code.eq(ClosureCode::Resolved.as_str()))
            .filter(diesel::dsl::not(diesel::dsl::exists(
                incident_search::table.filter(incident_search::incident_id.eq(incidents::id)),
            )))
            .order(incidents::id.asc())
            .limit(5_000)
            .select((
                incidents::id,
                incidents::title,
                incidents::description,
                incidents::category,
                incidents::subcategory,
            ))
            .load(conn)?;
        if batch.is_empty() {
            break;
        }
        done += batch.len();
        index_many(conn, &batch)?;
    }
    diesel::insert_into(incident_search_state::table)
        .values((
            incident_search_state::id.eq(1),
            incident_search_state::backfilled_at.eq(diesel::dsl::now),
        ))
        .on_conflict(incident_search_state::id)
        .do_update()
        .set(incident_search_state::backfilled_at.eq(diesel::dsl::now))
        .execute(conn)?;
    Ok(done)
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
struct LexemeRow {
    #[diesel(sql_type = Text)]
    lexeme: String,
    #[diesel(sql_type = Bool)]
    in_title: bool,
    #[diesel(sql_type = Double)]
    incident_share: f64,
    #[diesel(sql_type = Double)]
    knowledge_share: f64,
}

/// The lexemes of a [`SimilarityText`] and how common each is among the indexed incidents and
/// the knowledge entries, by the planner's statistics of the two search vectors.
const LEXEMES: &str = "\
    WITH text AS (SELECT to_tsvector('english', $1) || to_tsvector('simple', $2) AS title, \
                         to_tsvector('english', $3) || to_tsvector('simple', $4) AS body), \
         lexemes AS (SELECT t.lexeme, true AS in_title FROM text, unnest(text.title) t \
                     UNION ALL SELECT b.lexeme, false FROM text, unnest(text.body) b), \
         common AS (SELECT s.tablename, c.lexeme, c.share \
                    FROM pg_stats s, \
                         unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) \
                             AS c (lexeme, share) \
                    WHERE s.schemaname = current_schema() AND s.attname = 'search_vector' \
                      AND s.tablename IN ('incident_search', 'knowledge_entries')) \
    SELECT l.lexeme, bool_or(l.in_title) AS in_title, \
           COALESCE(max(c.share) FILTER (WHERE c.tablename = 'incident_search'), 0)::float8 \
               AS incident_share, \
           COALESCE(max(c.share) FILTER (WHERE c.tablename = 'knowledge_entries'), 0)::float8 \
               AS knowledge_share \
    FROM lexemes l LEFT JOIN common c ON c.lexeme = l.lexeme \
    GROUP BY l.lexeme";

/// How many candidates are ranked at most, gathered tier by tier (see [`SimilarityQuery`]).
const CANDIDATES: i64 = 60;
/// How many of the newest rows of the incident's subcategory are looked through first.
const RECENT: i64 = 1_000;

/// At most `limit` published entries and `limit` resolved incidents most similar to
/// `incident` by its title and description; the same subcategory (then category) ranks higher.
pub fn suggest(
    conn: &mut PgConnection,
    incident: &Incident,
    limit: i64,
) -> Result<(Vec<Ranked>, Vec<SimilarIncident>), StoreError> {
    let text = SimilarityText::of(&incident.title, &incident.description);
    let lexemes: Vec<LexemeRow> = diesel::sql_query(LEXEMES)
        .bind::<Text, _>(&text.title_latin)
        .bind::<Text, _>(&text.title_cjk)
        .bind::<Text, _>(&text.body_latin)
        .bind::<Text, _>(&text.body_cjk)
        .load(conn)?;
    let query_for = |share: fn(&LexemeRow) -> f64| {
        let lexemes: Vec<Lexeme> = lexemes
            .iter()
            .map(|l| Lexeme {
                text: l.lexeme.clone(),
                in_title: l.in_title,
                share: share(l),
            })
            .collect();
        SimilarityQuery::new(&lexemes)
    };
    let entries = match query_for(|l| l.knowledge_share) {
        Some(query) => similar_entries(conn, &query, incident, limit)?,
        None => vec![],
    };
    let similar = match query_for(|l| l.incident_share) {
        Some(query) => similar_incidents(conn, &query, incident, limit)?,
        None => vec![],
    };
    Ok((entries, similar))
}

/// Ranks the candidates of `table` (rows with key `id`, `filter` applying to them) and returns
/// the `$7` best as `ranked (id, score)`. Candidates are read with their vector and
/// classification in one pass, at most [`CANDIDATES`]: first the newest [`RECENT`] rows of the
/// incident's subcategory `$5` matching `$8` (an index range, newest first), then the search
/// index's tiers `$1`–`$3`; `LIMIT` over `UNION ALL` runs a tier only while too few were
/// found. The score is the text similarity to `$4` plus a bonus for the subcategory `$5` (else
/// the category `$6`) of the incident asked about.
fn ranked(table: &str, id: &str, filter: &str) -> String {
    let columns = format!("{id} AS id, search_vector, category, subcategory");
    let tier = |n: u8| {
        format!("(SELECT {columns} FROM {table} WHERE search_vector @@ ${n}::tsquery AND {filter})")
    };
    format!(
        "candidates AS MATERIALIZED ( \
             SELECT * FROM ( \
                 (SELECT * FROM (SELECT {columns} FROM {table} \
                                 WHERE subcategory = $5 AND {filter} \
                                 ORDER BY {id} DESC LIMIT {RECENT}) recent \
                  WHERE search_vector @@ $8::tsquery) \
                 UNION ALL {} UNION ALL {} UNION ALL {}) c \
             LIMIT {CANDIDATES}), \
         ranked AS ( \
             SELECT DISTINCT ON (score, id) id, score FROM ( \
                 SELECT id, (ts_rank(search_vector, $4::tsquery) \
                             + CASE WHEN subcategory = $5 THEN 0.2 \
                                    WHEN category = $6 THEN 0.1 ELSE 0 END)::float8 AS score \
                 FROM candidates) c \
             ORDER BY score DESC, id DESC LIMIT $7)",
        tier(1),
        tier(2),
        tier(3)
    )
}

/// `sql` (a [`ranked`] statement) with the parameters `$1`–`$8` of `query` for `incident`.
fn bound<'a>(
    sql: String,
    query: &'a SimilarityQuery,
    incident: &'a Incident,
    limit: i64,
) -> BoxedSqlQuery<'a, Pg, SqlQuery> {
    diesel::sql_query(sql)
        .into_boxed()
        .bind::<Nullable<Text>, _>(&query.tiers[0])
        .bind::<Nullable<Text>, _>(&query.tiers[1])
        .bind::<Nullable<Text>, _>(&query.tiers[2])
        .bind::<Text, _>(&query.rank)
        .bind::<Nullable<Text>, _>(&incident.subcategory)
        .bind::<Nullable<Text>, _>(&incident.category)
        .bind::<BigInt, _>(limit)
        .bind::<Text, _>(&query.same_subcategory)
}

fn similar_entries(
    conn: &mut PgConnection,
    query: &SimilarityQuery,
    incident: &Incident,
    limit: i64,
) -> Result<Vec<Ranked>, StoreError> {
    let sql = format!(
        "WITH {ranked} \
         SELECT {ENTRY_COLUMNS}, r.score \
         FROM ranked r JOIN knowledge_entries k ON k.id = r.id \
         ORDER BY r.score DESC, k.id DESC",
        ranked = ranked("knowledge_entries", "id", "status = 'published'"),
    );
    let found: Vec<ScoredEntry> = bound(sql, query, incident, limit).load(conn)?;
    found.into_iter().map(Ranked::try_from).collect()
}

fn similar_incidents(
    conn: &mut PgConnection,
    query: &SimilarityQuery,
    incident: &Incident,
    limit: i64,
) -> Result<Vec<SimilarIncident>, StoreError> {
    let sql = format!(
        "WITH {ranked} \
         SELECT i.id, i.number, i.title, i.customer_id, i.solution, i.cause, i.subcause, \
                i.closed_at, r.score \
         FROM ranked r JOIN incidents i ON i.id = r.id \
         ORDER BY r.score DESC, i.id DESC",
        ranked = ranked("incident_search", "incident_id", "incident_id <> $9"),
    );
    Ok(bound(sql, query, incident, limit)
        .bind::<BigInt, _>(incident.id)
        .load(conn)?)
}
