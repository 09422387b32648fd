//! Several data-modifying statements sent as one.
//!
//! A write that stores a row with its history entry and outbox event used to take a round trip
//! per insert plus `BEGIN` and `COMMIT`. PostgreSQL runs every data-modifying `WITH` part of a
//! statement, all in the statement's own transaction, so the same inserts as one statement take
//! one round trip and are committed, or not, together.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::{QueryResult, RunQueryDsl};

/// The name under which later parts read what the first part returns.
pub const RETURNED: &str = "returned";

/// A part of a [`Combined`] statement.
pub type Part = Box<dyn QueryFragment<Pg> + Send>;

/// `WITH returned AS (<first>), <name> AS (<part>)… SELECT * FROM returned`: one statement
/// whose answer is what `first` returns (it needs a `RETURNING` clause).
pub struct Combined<Q> {
    first: Q,
    parts: Vec<(String, Part)>,
}

impl<Q> Combined<Q> {
    /// A statement answering with what `first` returns.
    pub fn new(first: Q) -> Self {
        Combined {
            first,
            parts: Vec::new(),
        }
    }

    /// Adds `part` under `name`, by which later parts may read what it returns.
    pub fn with(
        mut self,
        name: impl Into<String>,
        part: impl QueryFragment<Pg> + Send + 'static,
    ) -> Self {
        self.parts.push((name.into(), Box::new(part)));
        self
    }
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Combined<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH ");
        out.push_identifier(RETURNED)?;
        out.push_sql(" AS (");
        self.first.walk_ast(out.reborrow())?;
        for (name, part) in &self.parts {
            out.push_sql("), ");
            out.push_identifier(name)?;
            out.push_sql(" AS (");
            part.walk_ast(out.reborrow())?;
        }
        out.push_sql(") SELECT * FROM ");
        out.push_identifier(RETURNED)
    }
}

// The text differs with the parts, so statements are told apart (and prepared once each) by
// their SQL rather than by type.
impl<Q> QueryId for Combined<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Combined<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, Conn> RunQueryDsl<Conn> for Combined<Q> {}
