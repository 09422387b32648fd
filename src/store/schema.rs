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

diesel::joinable!(users -> customers (customer_id));
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
);
