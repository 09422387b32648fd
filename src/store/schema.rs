// @generated-style Diesel table definitions, kept in step with `migrations/`.

diesel::table! {
    customers (id) {
        id -> Int8,
        code -> Text,
        name -> Text,
        active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int4,
        locale -> Text,
    }
}

diesel::table! {
    notifications (id) {
        id -> Int8,
        incident_id -> Int8,
        kind -> Text,
        recipient -> Text,
        locale -> Text,
        note_id -> Nullable<Int8>,
        resolution -> Nullable<Timestamptz>,
        reminder -> Nullable<Int2>,
        status -> Text,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        next_attempt_at -> Timestamptz,
        locked_until -> Nullable<Timestamptz>,
        sent_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        username -> Text,
        password_hash -> Text,
        display_name -> Text,
        roles -> Array<Text>,
        customer_id -> Nullable<Int8>,
        active -> Bool,
        token_generation -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int4,
        kind -> Text,
        email -> Nullable<Text>,
    }
}

diesel::table! {
    configuration_items (id) {
        id -> Int8,
        name -> Text,
        ci_type -> Text,
        customer_id -> Int8,
        system -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int4,
    }
}

diesel::table! {
    configuration_item_history (id) {
        id -> Int8,
        configuration_item_id -> Int8,
        actor_id -> Nullable<Int8>,
        action -> Text,
        changes -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    categories (code) {
        code -> Text,
        name_zh -> Text,
        name_en -> Text,
        position -> Int4,
    }
}

diesel::table! {
    subcategories (code) {
        code -> Text,
        category_code -> Text,
        name_zh -> Text,
        name_en -> Text,
        default_level -> Text,
        position -> Int4,
    }
}

diesel::table! {
    causes (code) {
        code -> Text,
        name_zh -> Text,
        name_en -> Text,
        position -> Int4,
    }
}

diesel::table! {
    subcauses (code) {
        code -> Text,
        cause_code -> Text,
        name_zh -> Text,
        name_en -> Text,
        position -> Int4,
    }
}

diesel::table! {
    sla_policies (level) {
        level -> Text,
        resolution_minutes -> Int4,
        updated_at -> Timestamptz,
        updated_by -> Nullable<Int8>,
        version -> Int4,
    }
}

diesel::table! {
    incidents (id) {
        id -> Int8,
        number -> Text,
        kind -> Text,
        channel -> Text,
        title -> Text,
        description -> Text,
        customer_id -> Nullable<Int8>,
        reporter -> Nullable<Jsonb>,
        source_system -> Nullable<Text>,
        ci_id -> Nullable<Int8>,
        category -> Nullable<Text>,
        subcategory -> Nullable<Text>,
        level -> Text,
        level_rank -> Int2,
        affects_onsite_work -> Bool,
        affects_data_upload -> Bool,
        status -> Text,
        tier -> Text,
        assignee_id -> Nullable<Int8>,
        workaround -> Nullable<Text>,
        workaround_applied -> Bool,
        solution -> Nullable<Text>,
        cause -> Nullable<Text>,
        subcause -> Nullable<Text>,
        due_at -> Timestamptz,
        accepted_at -> Nullable<Timestamptz>,
        resolved_at -> Nullable<Timestamptz>,
        user_confirmed_at -> Nullable<Timestamptz>,
        closed_at -> Nullable<Timestamptz>,
        closed_by -> Nullable<Int8>,
        closure_code -> Nullable<Text>,
        duplicate_of -> Nullable<Int8>,
        recurrence_of -> Nullable<Int8>,
        occurrences -> Int4,
        last_occurrence_at -> Nullable<Timestamptz>,
        dedup_key -> Nullable<Text>,
        change_ref -> Nullable<Text>,
        follow_up_due_at -> Nullable<Timestamptz>,
        knowledge_entry_id -> Nullable<Int8>,
        created_by -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int4,
        user_reported -> Bool,
        withdrawal_requested_at -> Nullable<Timestamptz>,
        links -> Jsonb,
    }
}

diesel::table! {
    incident_history (id) {
        id -> Int8,
        incident_id -> Int8,
        actor_id -> Nullable<Int8>,
        action -> Text,
        changes -> Jsonb,
        comment -> Nullable<Text>,
        internal -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    incident_notes (id) {
        id -> Int8,
        incident_id -> Int8,
        author_id -> Int8,
        visibility -> Text,
        body -> Text,
        created_at -> Timestamptz,
        attachment_ids -> Array<Int8>,
    }
}

diesel::table! {
    escalations (id) {
        id -> Int8,
        incident_id -> Int8,
        kind -> Text,
        trigger -> Nullable<Text>,
        reason -> Nullable<Text>,
        from_tier -> Text,
        to_tier -> Text,
        from_level -> Text,
        to_level -> Text,
        from_assignee_id -> Nullable<Int8>,
        to_assignee_id -> Nullable<Int8>,
        due_at -> Nullable<Timestamptz>,
        created_by -> Nullable<Int8>,
        created_at -> Timestamptz,
        acknowledged_by -> Nullable<Int8>,
        acknowledged_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Int8,
        url -> Text,
        events -> Array<Text>,
        secret -> Text,
        active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int4,
        customer_id -> Nullable<Int8>,
    }
}

diesel::table! {
    outbox_events (id) {
        id -> Int8,
        event_type -> Text,
        occurred_at -> Timestamptz,
        data -> Jsonb,
        customer_id -> Nullable<Int8>,
        actor_id -> Nullable<Int8>,
    }
}

diesel::table! {
    stream_tickets (digest) {
        digest -> Text,
        user_id -> Int8,
        token_generation -> Int4,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Int8,
        webhook_id -> Int8,
        event_id -> Int8,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        locked_until -> Nullable<Timestamptz>,
        last_status_code -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_delivery_attempts (id) {
        id -> Int8,
        delivery_id -> Int8,
        attempted_at -> Timestamptz,
        status_code -> Nullable<Int4>,
        error -> Nullable<Text>,
        duration_ms -> Int4,
    }
}

diesel::table! {
    business_calendar (id) {
        id -> Int2,
        enabled -> Bool,
        hours -> Jsonb,
        holidays -> Array<Date>,
        updated_at -> Timestamptz,
        version -> Int4,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Int8,
        name -> Text,
        token_hash -> Bytea,
        created_by -> Nullable<Int8>,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    idempotency_keys (user_id, method, path, key) {
        user_id -> Int8,
        method -> Text,
        path -> Text,
        key -> Text,
        request_hash -> Bytea,
        status -> Nullable<Int2>,
        content_type -> Nullable<Text>,
        etag -> Nullable<Text>,
        location -> Nullable<Text>,
        body -> Nullable<Bytea>,
        created_at -> Timestamptz,
        claim_token -> Int8,
    }
}

diesel::table! {
    follow_ups (id) {
        id -> Int8,
        incident_id -> Int8,
        channel -> Text,
        reached -> Bool,
        satisfaction -> Nullable<Int2>,
        comment -> Text,
        performed_by -> Int8,
        performed_at -> Timestamptz,
        on_time -> Bool,
        completes -> Bool,
    }
}

diesel::table! {
    report_summaries (id) {
        id -> Int2,
        timezone -> Text,
        built_at -> Timestamptz,
    }
}

diesel::table! {
    kpi_monthly (month, level, tier) {
        month -> Date,
        customer_id -> Nullable<Int8>,
        level -> Text,
        tier -> Text,
        closed -> Int8,
        resolved -> Int8,
        resolved_on_time -> Int8,
        follow_ups -> Int8,
        follow_ups_on_time -> Int8,
        satisfaction_sum -> Int8,
        satisfaction_count -> Int8,
        assignee_id -> Nullable<Int8>,
    }
}

diesel::table! {
    statistics_monthly (month, dimension, code, subcode) {
        month -> Date,
        dimension -> Text,
        code -> Text,
        subcode -> Text,
        count -> Int8,
        breached -> Int8,
    }
}

diesel::table! {
    resolve_times (month, level, minutes) {
        month -> Date,
        level -> Text,
        minutes -> Float8,
        measure -> Text,
        bucket -> Int4,
    }
}

diesel::table! {
    search_rewrite_pending (id) {
        id -> Int2,
    }
}

diesel::table! {
    duration_buckets (month, measure, level, bucket) {
        month -> Date,
        measure -> Text,
        level -> Text,
        bucket -> Int4,
        count -> Int8,
        minutes_sum -> Float8,
    }
}

diesel::table! {
    coordination_tickets (id) {
        id -> Int8,
        incident_id -> Int8,
        kind -> Text,
        status -> Text,
        assignee_id -> Int8,
        summary -> Text,
        details -> Text,
        analysis -> Nullable<Text>,
        process -> Nullable<Text>,
        result -> Nullable<Text>,
        root_cause -> Nullable<Text>,
        change_ref -> Nullable<Text>,
        cancel_reason -> Nullable<Text>,
        created_by -> Int8,
        created_at -> Timestamptz,
        accepted_at -> Nullable<Timestamptz>,
        resolved_at -> Nullable<Timestamptz>,
        cancelled_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
        version -> Int4,
    }
}

diesel::table! {
    coordination_ticket_history (id) {
        id -> Int8,
        ticket_id -> Int8,
        actor_id -> Nullable<Int8>,
        action -> Text,
        changes -> Jsonb,
        comment -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

// Its `search_vector` (tsvector) is written with SQL of `store/suggestions.rs` only.
diesel::table! {
    incident_search (incident_id) {
        incident_id -> Int8,
        category -> Nullable<Text>,
        subcategory -> Nullable<Text>,
    }
}

// Its `search_vector` (tsvector) is written and read with SQL of `store/incident_text.rs` only.
diesel::table! {
    incident_text (incident_id) {
        incident_id -> Int8,
    }
}

diesel::table! {
    incident_search_state (id) {
        id -> Int2,
        backfilled_at -> Timestamptz,
    }
}

// `search_vector` (tsvector) is written and read with SQL of `store/knowledge.rs` only.
diesel::table! {
    knowledge_entries (id) {
        id -> Int8,
        title -> Text,
        symptom -> Text,
        cause -> Nullable<Text>,
        solution -> Text,
        category -> Nullable<Text>,
        subcategory -> Nullable<Text>,
        tags -> Array<Text>,
        source_incident_id -> Nullable<Int8>,
        status -> Text,
        author_id -> Int8,
        reviewed_by -> Nullable<Int8>,
        reject_reason -> Nullable<Text>,
        times_used -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        published_at -> Nullable<Timestamptz>,
        version -> Int4,
    }
}

diesel::joinable!(users -> customers (customer_id));
diesel::joinable!(coordination_tickets -> incidents (incident_id));
diesel::joinable!(coordination_ticket_history -> coordination_tickets (ticket_id));
diesel::joinable!(follow_ups -> incidents (incident_id));
diesel::joinable!(escalations -> incidents (incident_id));
diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));
diesel::joinable!(stream_tickets -> users (user_id));
diesel::joinable!(webhook_deliveries -> outbox_events (event_id));
diesel::joinable!(webhook_delivery_attempts -> webhook_deliveries (delivery_id));
diesel::joinable!(incident_history -> incidents (incident_id));
diesel::joinable!(incident_notes -> incidents (incident_id));
diesel::joinable!(notifications -> incidents (incident_id));
diesel::joinable!(configuration_items -> customers (customer_id));
diesel::joinable!(configuration_item_history -> configuration_items (configuration_item_id));
diesel::joinable!(subcategories -> categories (category_code));
diesel::joinable!(subcauses -> causes (cause_code));

diesel::table! {
    sign_in_failures (key) {
        key -> Text,
        failures -> Array<Timestamptz>,
        last_failed_at -> Timestamptz,
    }
}

diesel::table! {
    attachment_contents (id) {
        id -> Int8,
        sha256 -> Nullable<Bytea>,
        size -> Int8,
        chunk_size -> Int4,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    attachment_chunks (content_id, seq) {
        content_id -> Int8,
        seq -> Int4,
        data -> Bytea,
    }
}

diesel::table! {
    attachments (id) {
        id -> Int8,
        incident_id -> Nullable<Int8>,
        ticket_id -> Nullable<Int8>,
        entry_id -> Nullable<Int8>,
        content_id -> Int8,
        filename -> Text,
        content_type -> Text,
        size -> Int8,
        sha256 -> Bytea,
        visibility -> Text,
        uploaded_by -> Int8,
        uploaded_at -> Timestamptz,
    }
}

diesel::joinable!(attachment_chunks -> attachment_contents (content_id));
diesel::joinable!(attachments -> attachment_contents (content_id));
diesel::joinable!(attachments -> incidents (incident_id));

diesel::allow_tables_to_appear_in_same_query!(
    attachment_contents,
    attachment_chunks,
    attachments,
    customers,
    users,
    configuration_items,
    configuration_item_history,
    categories,
    subcategories,
    causes,
    subcauses,
    sla_policies,
    incidents,
    incident_history,
    incident_notes,
    escalations,
    webhooks,
    outbox_events,
    webhook_deliveries,
    webhook_delivery_attempts,
    business_calendar,
    api_tokens,
    idempotency_keys,
    follow_ups,
    report_summaries,
    kpi_monthly,
    statistics_monthly,
    resolve_times,
    duration_buckets,
    search_rewrite_pending,
    coordination_tickets,
    coordination_ticket_history,
    knowledge_entries,
    incident_search,
    incident_search_state,
    incident_text,
    stream_tickets,
    notifications,
);
