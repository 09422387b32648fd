//! Integration tests: the real server on port 0, a fresh PostgreSQL database per test.

mod helpers;

mod alertmanager;
mod api_tokens;
mod architecture;
mod attachments;
mod auth;
mod bad_input;
mod configuration_items;
mod coordination;
mod customers;
mod demo;
mod escalations;
mod events;
mod examples;
mod idempotency;
mod incidents;
mod integrators;
mod knowledge;
mod kpis;
mod notifications;
mod openapi_spec;
mod operations;
mod polling;
mod reference_data;
mod replica;
mod reports;
mod security;
mod statistics;
mod stream;
mod users;
mod webhooks;
