//! Incident search (SPEC §14): one weighted `tsvector` per incident in `incident_text`, written
//! in the transaction of every write that changes the text it is made of, so that a change is
//! searchable as soon as its write returns.

use std::collections::HashMap;

use diesel::expression::{
    AppearsOnTable, Expression, SelectableExpression, ValidGrouping, is_aggregate,
};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Double, Text};

use diesel::query_builder::{AstPass, QueryFragment, QueryId};

use crate::domain::search::{
    IncidentDocument, IncidentText, PUBLIC_WEIGHTS, SearchQuery, WEIGHTS, number_lookup,
};
use crate::store::StoreError;
use crate::store::schema::{incident_notes, incident_text, incidents, search_rewrite_pending};

/// The vector each weight of an [`IncidentDocument`] becomes: Latin text through `english`
/// (stemmed, case-folded), the segmented Chinese through `simple`.
const DOCUMENT_VECTOR: &str = "\
    setweight(to_tsvector('english', t.la) || to_tsvector('simple', t.ca), 'A') || \
    setweight(to_tsvector('english', t.lb) || to_tsvector('simple', t.cb), 'B') || \
    setweight(to_tsvector('english', t.lc) || to_tsvector('simple', t.cc), 'C') || \
    setweight(to_tsvector('english', t.ld) || to_tsvector('simple', t.cd), 'D')";

/// Writes the documents of incidents `(id, document)`, replacing earlier ones, in one statement.
pub fn index(
    conn: &mut PgConnection,
    documents: &[(i64, IncidentDocument)],
) -> Result<(), StoreError> {
    if documents.is_empty() {
        return Ok(());
    }
    let column = |pick: &dyn Fn(&IncidentDocument) -> &str| -> Vec<String> {
        documents.iter().map(|(_, d)| pick(d).to_owned()).collect()
    };
    let mut query = diesel::sql_query(format!(
        "INSERT INTO incident_text (incident_id, search_vector) \
         SELECT t.id, {DOCUMENT_VECTOR} \
         FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9) \
              AS t (id, la, ca, lb, cb, lc, cc, ld, cd) \
         ON CONFLICT (incident_id) DO UPDATE SET search_vector = EXCLUDED.search_vector"
    ))
    .bind::<Array<BigInt>, _>(documents.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .into_boxed();
    for weight in 0..4 {
        query = query
            .bind::<Array<Text>, _>(column(&|d| &d.latin[weight]))
            .bind::<Array<Text>, _>(column(&|d| &d.cjk[weight]));
    }
    query.execute(conn)?;
    Ok(())
}

/// Inserts the document of a new incident, as a part of the statement that creates it
/// ([`crate::store::combined_statements::Combined`]).
pub struct NewDocument {
    id: i64,
    document: IncidentDocument,
}

impl NewDocument {
    /// The document of incident `id`.
    pub fn new(id: i64, document: IncidentDocument) -> Self {
        NewDocument { id, document }
    }
}

impl QueryFragment<Pg> for NewDocument {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("INSERT INTO incident_text (incident_id, search_vector) SELECT ");
        out.push_bind_param::<BigInt, _>(&self.id)?;
        for (weight, name) in WEIGHTS.iter().enumerate() {
            out.push_sql(if weight == 0 { ", " } else { " || " });
            out.push_sql("setweight(to_tsvector('english', ");
            out.push_bind_param::<Text, _>(&self.document.latin[weight])?;
            out.push_sql(") || to_tsvector('simple', ");
            out.push_bind_param::<Text, _>(&self.document.cjk[weight])?;
            out.push_sql(&format!("), '{name}')"));
        }
        Ok(())
    }
}

/// Rewrites the document of incident `id` from its stored fields and notes: after a note, or a
/// change of the fields the document is made of.
pub fn reindex(conn: &mut PgConnection, id: i64) -> Result<(), StoreError> {
    let documents = documents(conn, &[id])?;
    index(conn, &documents)
}

/// The documents of incidents `ids` as stored now, fields and notes.
pub fn documents(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<Vec<(i64, IncidentDocument)>, StoreError> {
    type Fields = (i64, String, String, String, Option<String>, Option<String>);
    let fields: Vec<Fields> = incidents::table
        .filter(incidents::id.eq_any(ids))
        .select((
            incidents::id,
            incidents::number,
            incidents::title,
            incidents::description,
            incidents::solution,
            incidents::workaround,
        ))
        .load(conn)?;
    let notes: Vec<(i64, String, String)> = incident_notes::table
        .filter(incident_notes::incident_id.eq_any(ids))
        .select((
            incident_notes::incident_id,
            incident_notes::body,
            incident_notes::visibility,
        ))
        .order(incident_notes::id)
        .load(conn)?;
    let mut notes_of: HashMap<i64, Vec<(&str, bool)>> = HashMap::new();
    for (incident_id, body, visibility) in &notes {
        notes_of
            .entry(*incident_id)
            .or_default()
            .push((body.as_str(), visibility != "public"));
    }
    Ok(fields
        .into_iter()
        .map(|(id, number, title, description, solution, workaround)| {
            let text = IncidentText {
                number,
                title,
                description,
                solution,
                workaround,
            };
            let notes = notes_of.remove(&id).unwrap_or_default();
            (id, text.document(notes))
        })
        .collect())
}

/// Whether incidents written before incident search may still lack their documents: set by the
/// migration on a database that had incidents, cleared by [`finish_backfill`].
pub fn backfill_pending(conn: &mut PgConnection) -> Result<bool, StoreError> {
    #[derive(QueryableByName)]
    struct Pending {
        #[diesel(sql_type = Bool)]
        pending: bool,
    }
    let found: Pending =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM incident_text_backfill) AS pending")
            .get_result(conn)?;
    Ok(found.pending)
}

/// Records that every incident has its document, so later start-ups look for none.
pub fn finish_backfill(conn: &mut PgConnection) -> Result<(), StoreError> {
    diesel::sql_query("DELETE FROM incident_text_backfill").execute(conn)?;
    Ok(())
}

/// Indexes up to `batch` of the incidents that have no document yet (those written before
/// incident search existed), oldest first; returns how many it indexed. Instances may run it
/// at once: each takes rows the others have not locked.
pub fn backfill(conn: &mut PgConnection, batch: i64) -> Result<usize, StoreError> {
    conn.transaction(|conn| {
        let ids: Vec<i64> = incidents::table
            .select(incidents::id)
            .filter(diesel::dsl::not(diesel::dsl::exists(
                incident_text::table.filter(incident_text::incident_id.eq(incidents::id)),
            )))
            .order(incidents::id)
            .limit(batch)
            .for_update()
            .skip_locked()
            .load(conn)?;
        let documents = documents(conn, &ids)?;
        index(conn, &documents)?;
        Ok(ids.len())
    })
}

/// Whether documents written before [`kept_abbreviations`](crate::domain::search::kept_abbreviations) may need writing again: set by
/// migration 000026 on a database with incidents or knowledge, cleared by [`finish_rewrite`].
pub fn rewrite_pending(conn: &mut PgConnection) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(
        search_rewrite_pending::table.select(search_rewrite_pending::id),
    ))
    .get_result(conn)?)
}

/// Records that every document holds its abbreviations, so later start-ups look for none.
pub fn finish_rewrite(conn: &mut PgConnection) -> Result<(), StoreError> {
    diesel::delete(search_rewrite_pending::table).execute(conn)?;
    Ok(())
}

/// The ids `select` finds (a query of one `id` column with the parameters `$1` an id to start
/// after, `$2` a pattern, `$3` a limit): the rows a search document rewrite takes next.
pub(super) fn ids_after(
    conn: &mut PgConnection,
    select: &str,
    after: i64,
    pattern: &str,
    batch: i64,
) -> Result<Vec<i64>, StoreError> {
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    Ok(diesel::sql_query(select)
        .bind::<BigInt, _>(after)
        .bind::<Text, _>(pattern)
        .bind::<BigInt, _>(batch)
        .load::<Found>(conn)?
        .into_iter()
        .map(|found| found.id)
        .collect())
}

/// Writes again the documents of up to `batch` incidents after id `after`, in id order, whose
/// fields or notes match `pattern`
/// ([`abbreviations_pattern`](crate::domain::search::abbreviations_pattern)); returns their
/// ids (fewer than `batch`: none are left).
pub fn rewrite_matching(
    conn: &mut PgConnection,
    pattern: &str,
    after: i64,
    batch: i64,
) -> Result<Vec<i64>, StoreError> {
    conn.transaction(|conn| {
        let ids = ids_after(
            conn,
            "SELECT i.id FROM incidents i WHERE i.id > $1 AND (i.title ~ $2 OR i.description ~ $2 \
                 OR i.solution ~ $2 OR i.workaround ~ $2 OR EXISTS (SELECT 1 FROM incident_notes n \
                 WHERE n.incident_id = i.id AND n.body ~ $2)) \
             ORDER BY i.id LIMIT $3",
            after,
            pattern,
            batch,
        )?;
        let documents = documents(conn, &ids)?;
        index(conn, &documents)?;
        Ok(ids)
    })
}

/// A search as the incident list runs it: the `tsquery` PostgreSQL made of the caller's `q`,
/// whether only the public weights count (customers), and the incident `q` names by number.
#[derive(Debug, Clone)]
pub struct IncidentSearch {
    /// The `tsquery` text (see [`tsquery`]); empty when `q` has no term.
    pub tsquery: String,
    /// Match and rank on [`PUBLIC_WEIGHTS`] only.
    pub public_only: bool,
    /// The incident `q` names by its number, listed first when it passes the other filters.
    pub number: Option<i64>,
}

/// The search of `q` by a caller who sees internal notes or not (`public_only`); `None` when
/// `q` has neither a word nor a number (punctuation only), which filters nothing, as in
/// knowledge search.
pub fn search(
    conn: &mut PgConnection,
    q: &str,
    public_only: bool,
) -> Result<Option<IncidentSearch>, StoreError> {
    let query = SearchQuery::parse(q);
    let number = number_lookup(q);
    if query.is_none() && number.is_none() {
        return Ok(None);
    }
    let tsquery = match query {
        Some(query) => tsquery(conn, &query)?,
        None => String::new(),
    };
    Ok(Some(IncidentSearch {
        tsquery,
        public_only,
        number,
    }))
}

/// The `tsquery` of `query` as text: the conjunction of its Latin part (stemmed by `english`)
/// and its Chinese part, an empty part left out. Made once per search, so that the list's query
/// carries it as a constant the planner can estimate.
pub fn tsquery(conn: &mut PgConnection, query: &SearchQuery) -> Result<String, StoreError> {
    #[derive(QueryableByName)]
    struct Made {
        #[diesel(sql_type = Text)]
        tsquery: String,
    }
    let made: Made = diesel::sql_query(
        "SELECT (CASE WHEN $1 = '' THEN to_tsquery('simple', $2) \
                      WHEN $2 = '' THEN plainto_tsquery('english', $1) \
                      ELSE plainto_tsquery('english', $1) && to_tsquery('simple', $2) END)::text \
                AS tsquery",
    )
    .bind::<Text, _>(&query.latin)
    .bind::<Text, _>(&query.cjk)
    .get_result(conn)?;
    Ok(made.tsquery)
}

/// The condition on `incidents` that a row matches a search: its document matches the query
/// (on the public weights for customers), or it is the incident named by number.
#[derive(Debug, Clone)]
pub struct Matches(IncidentSearch);

/// The condition that a row of `incidents` matches `search`.
pub fn matching(search: &IncidentSearch) -> Matches {
    Matches(search.clone())
}

impl Expression for Matches {
    type SqlType = Bool;
}

impl<QS> AppearsOnTable<QS> for Matches {}

impl<QS> SelectableExpression<QS> for Matches {}

impl ValidGrouping<()> for Matches {
    type IsAggregate = is_aggregate::Never;
}

impl QueryId for Matches {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<Pg> for Matches {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let search = &self.0;
        // Planned anew for every query: a statement prepared once would be planned for any
        // query after a few runs, and the plan that suits a rare word reads every incident for
        // a common one.
        out.unsafe_to_cache_prepared();
        out.push_sql(
            "incidents.id IN (SELECT t.incident_id FROM incident_text t \
             WHERE t.search_vector @@ ",
        );
        out.push_bind_param::<Text, _>(&search.tsquery)?;
        out.push_sql("::tsquery");
        // The full vector's match lets the search index find candidates; for customers the
        // filtered one then drops those only an internal note matched.
        if search.public_only {
            out.push_sql(&format!(
                " AND ts_filter(t.search_vector, '{PUBLIC_WEIGHTS}') @@ "
            ));
            out.push_bind_param::<Text, _>(&search.tsquery)?;
            out.push_sql("::tsquery");
        }
        // The number's incident joins the matches inside the `IN`: an `OR` beside it would keep
        // PostgreSQL from joining, and it would test every incident against the matches.
        if let Some(number) = &search.number {
            out.push_sql(" UNION ALL SELECT ");
            out.push_bind_param::<BigInt, _>(number)?;
        }
        out.push_sql(")");
        Ok(())
    }
}

/// The relevance (`ts_rank`) of each of `ids` for `search`, in no particular order; an id
/// without a document is left out.
pub fn ranks(
    conn: &mut PgConnection,
    search: &IncidentSearch,
    ids: &[i64],
) -> Result<Vec<(i64, f64)>, StoreError> {
    #[derive(QueryableByName)]
    struct Ranked {
        #[diesel(sql_type = BigInt)]
        incident_id: i64,
        #[diesel(sql_type = Double)]
        score: f64,
    }
    let vector = if search.public_only {
        format!("ts_filter(search_vector, '{PUBLIC_WEIGHTS}')")
    } else {
        "search_vector".to_owned()
    };
    let rows: Vec<Ranked> = diesel::sql_query(format!(
        "SELECT incident_id, ts_rank({vector}, $1::tsquery)::float8 AS score \
         FROM incident_text WHERE incident_id = ANY($2)"
    ))
    .bind::<Text, _>(&search.tsquery)
    .bind::<Array<BigInt>, _>(ids)
    .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|row| (row.incident_id, row.score))
        .collect())
}
