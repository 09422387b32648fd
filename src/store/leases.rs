//! Outbox rows that any instance may take: the due `pending` rows of a table with `id`,
//! `status`, `next_attempt_at` and `locked_until`, claimed for a lease with `FOR UPDATE SKIP
//! LOCKED`, so two instances never take the same row and a crashed worker's claim ends with its
//! lease. Webhook deliveries and reporters' e-mail are claimed this way.

/// The statement that claims up to `$1` due rows of `table` for `$2` seconds: the claimed rows'
/// `returning` columns are readable as `claimed` by `select`, which makes the statement's answer.
pub fn claim_statement(table: &str, returning: &str, select: &str) -> String {
    format!(
        "WITH due AS ( \
             SELECT id FROM {table} \
             WHERE status = 'pending' AND next_attempt_at <= now() \
               AND (locked_until IS NULL OR locked_until < now()) \
             ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED \
         ), claimed AS ( \
             UPDATE {table} t SET locked_until = now() + make_interval(secs => $2) \
             FROM due WHERE t.id = due.id \
             RETURNING {returning} \
         ) {select}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claim_reads_only_due_unleased_rows_and_leases_them() {
        let sql = claim_statement("jobs", "t.id", "SELECT id FROM claimed");
        assert!(sql.contains("FROM jobs WHERE status = 'pending'"));
        assert!(sql.contains("FOR UPDATE SKIP LOCKED"));
        assert!(sql.contains("UPDATE jobs t SET locked_until"));
        assert!(sql.ends_with("SELECT id FROM claimed"));
    }
}
