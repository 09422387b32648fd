//! incident-desk: a JSON REST backend for IT service incident management.
//!
//! `domain` holds the pure rules, `store` the only database access, `api` the HTTP handlers;
//! `startup` wires them into a server that `main` and the integration tests start alike.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod error;
pub mod fault;
pub mod intake;
pub mod jobs;
pub mod live;
pub mod mail;
pub mod openapi;
pub mod outbound;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
