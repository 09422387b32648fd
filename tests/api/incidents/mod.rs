//! Incidents (SPEC §4), by section.

mod fields;
mod lifecycle;
mod lists;
mod sla;
mod visibility;
