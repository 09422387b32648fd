//! Pure rules of the incident procedure: no HTTP, no database.
//!
//! Everything here is plain data and functions, unit-tested beside the code, so that the
//! API and the store can only apply these rules, never restate them.

pub mod attachment;
pub mod calendar;
pub mod changes;
pub mod clock;
pub mod coordination;
pub mod customer;
pub mod escalation;
pub mod follow_up;
pub mod incident;
pub mod knowledge;
pub mod kpi;
pub mod labels;
pub mod level;
pub mod monitoring;
pub mod notification;
pub mod procedure;
pub mod report;
pub mod role;
pub mod search;
pub mod sla;
pub mod state_machine;
pub mod stream;
pub mod taxonomy;
pub mod timestamps;
pub mod user;
pub mod validation;
pub mod webhook_target;
pub mod workflow;
