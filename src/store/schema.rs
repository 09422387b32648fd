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
        customer_id -> Int8,
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
        created_by -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int4,
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
    }
}

diesel::joinable!(users -> customers (customer_id));
diesel::joinable!(incident_history -> incidents (incident_id));
diesel::joinable!(incident_notes -> incidents (incident_id));
diesel::joinable!(configuration_items -> customers (customer_id));
diesel::joinable!(configuration_item_history -> configuration_items (configuration_item_id));
diesel::joinable!(subcategories -> categories (category_code));
diesel::joinable!(subcauses -> causes (cause_code));

diesel::allow_tables_to_appear_in_same_query!(
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
);
