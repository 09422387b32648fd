//! Incidents (SPEC §4), by section.

mod duplicates;
mod fields;
mod lifecycle;
mod lists;
mod sla;
mod visibility;
