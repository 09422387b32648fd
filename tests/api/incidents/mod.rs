//! Incidents (SPEC §4), by section.

mod duplicates;
mod fields;
mod follow_ups;
mod lifecycle;
mod lists;
mod procedure;
mod record;
mod search;
mod sla;
mod visibility;
