//! `incident-desk seed-demo`: generates a demo history (see [`crate::demo`]) on one thread
//! while this one copies the previous batch into the database.

use std::sync::mpsc;
use std::time::Instant;

use chrono::{DateTime, Months, Utc};
use clap::Args;

use super::{explain, settings};
use crate::auth::password;
use crate::demo::knowledge::KnowledgeGenerator;
use crate::demo::{
    self, DemoCustomer, DemoPeople, DemoRules, Generator, Lived, SYSTEMS, caller, customer_name,
};
use crate::domain::role::{Role, Roles};
use crate::domain::workflow::Caller;
use crate::startup;
use crate::store::{self, bootstrap};

/// Incidents generated and written at a time.
const BATCH: u64 = 5_000;

#[derive(Debug, Args)]
pub(super) struct SeedDemoArgs {
    /// How many incidents (1–10 000 000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    incidents: u64,
    /// How many knowledge entries (0–1 000 000); a tenth of the incidents when absent.
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    knowledge: Option<u64>,
    /// Over how many months before `--until` they were reported (1–240).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=240))]
    months: u32,
    /// Seed of the generator: the same seed, counts and `--until` give the same history.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// When the history ends (RFC 3339); now when absent. Incidents reported shortly before
    /// are still open.
    #[arg(long)]
    until: Option<DateTime<Utc>>,
    /// The password of every demo user; DEMO_PASSWORD, else `demo-password`.
    #[arg(
        long,
        env = "DEMO_PASSWORD",
        hide_env_values = true,
        default_value = "demo-password"
    )]
    password: String,
}

/// Generates and writes `count` knowledge entries, in batches; returns how many.
fn write_knowledge(
    conn: &mut crate::store::Connection,
    mut generator: KnowledgeGenerator,
    count: u64,
) -> Result<u64, String> {
    let first = store::demo::reserve_knowledge_ids(conn, count.max(1) as i64).map_err(explain)?;
    let mut index = 0;
    while index < count {
        let size = BATCH.min(count - index);
        let batch = (index..index + size)
            .map(|i| generator.entry(first + i as i64))
            .collect::<Result<Vec<_>, demo::DemoError>>()
            .map_err(|e| e.to_string())?;
        store::demo::write_knowledge(conn, &batch).map_err(explain)?;
        index += size;
    }
    eprintln!("{count} knowledge entries written");
    Ok(count)
}

fn customer_count(incidents: u64) -> usize {
    (incidents / 5_000).clamp(12, 400) as usize
}

pub(super) fn seed_demo(args: SeedDemoArgs) -> Result<(), String> {
    let started = Instant::now();
    let settings = settings()?;
    let taxonomy = startup::prepare_database(&settings).map_err(|e| e.to_string())?;
    let mut conn = bootstrap::connect(&settings.database_url).map_err(|e| e.to_string())?;
    let deadlines = store::calendar::deadlines(&mut conn, settings.timezone).map_err(explain)?;
    let end = args.until.unwrap_or_else(Utc::now);
    let start = end
        .checked_sub_months(Months::new(args.months))
        .ok_or("--months reaches before the calendar")?;

    let customers = customer_count(args.incidents);
    let names: Vec<(String, String)> = (0..customers).map(customer_name).collect();
    // Three systems each, HIS everywhere: a recurring HIS fault reaches many organisations.
    let systems: Vec<Vec<&str>> = (0..customers)
        .map(|i| {
            let mut own = vec![SYSTEMS[0]];
            own.extend((1..3).map(|k| SYSTEMS[1 + (i + k * 2) % (SYSTEMS.len() - 1)]));
            own
        })
        .collect();
    let hash = password::hash(&args.password)?;
    let seeded = store::demo::seed_people(&mut conn, &names, &systems, &hash).map_err(explain)?;
    let staff = |role: Role| -> Vec<Caller> {
        seeded
            .staff
            .iter()
            .filter(|(r, _)| *r == role)
            .flat_map(|(_, people)| people.iter().map(|(id, name)| caller(*id, name, role)))
            .collect()
    };
    let people = DemoPeople {
        desk: staff(Role::ServiceDesk),
        l2: staff(Role::L2Engineer),
        managers: staff(Role::IncidentManager),
        monitoring: staff(Role::Integration)
            .pop()
            .ok_or("no monitoring integration was seeded")?,
        customers: seeded
            .customers
            .iter()
            .map(|(id, (user, name), cis)| DemoCustomer {
                id: *id,
                user: Caller {
                    id: Some(*user),
                    name: name.clone(),
                    roles: Roles::new([Role::Customer]),
                    customer_id: Some(*id),
                },
                cis: cis.clone(),
            })
            .collect(),
    };
    let first_id =
        store::demo::reserve_incident_ids(&mut conn, args.incidents as i64).map_err(explain)?;
    let rules = DemoRules {
        taxonomy: &taxonomy,
        deadlines,
        follow_up_window: chrono::Duration::from_std(settings.follow_up_window)
            .map_err(|e| e.to_string())?,
    };
    let total = args.incidents;
    let knowledge = KnowledgeGenerator::new(
        args.seed,
        &taxonomy,
        [people.desk.as_slice(), &people.l2, &people.managers].concat(),
        [people.l2.as_slice(), &people.managers].concat(),
        (first_id, total),
        start,
        end,
    );
    let mut generator = Generator::new(args.seed, rules, people, start, end, total);
    let (sender, receiver) = mpsc::sync_channel::<Vec<Lived>>(2);
    let written = std::thread::scope(|scope| {
        let producer = scope.spawn(move || -> Result<(), String> {
            let mut index = 0;
            while index < total {
                let size = BATCH.min(total - index);
                let batch = (index..index + size)
                    .map(|i| {
                        let id = first_id + i as i64;
                        generator.incident(i, id, crate::domain::incident::Incident::number_for(id))
                    })
                    .collect::<Result<Vec<_>, demo::DemoError>>()
                    .map_err(|e| e.to_string())?;
                index += size;
                if sender.send(batch).is_err() {
                    break;
                }
            }
            Ok(())
        });
        let mut written = 0u64;
        for batch in receiver {
            store::demo::write_batch(&mut conn, &batch).map_err(explain)?;
            written += batch.len() as u64;
            if written % 100_000 < BATCH || written == total {
                eprintln!(
                    "{written} of {total} incidents written ({:.0} s)",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        producer
            .join()
            .map_err(|_| "the generator panicked".to_owned())??;
        Ok::<u64, String>(written)
    })?;
    let entries = write_knowledge(&mut conn, knowledge, args.knowledge.unwrap_or(total / 10))?;
    eprintln!("summarising for the reports");
    store::report_summaries::rebuild(&mut conn, settings.timezone).map_err(explain)?;
    eprintln!("indexing resolved incidents for suggestions");
    store::suggestions::backfill(&mut conn).map_err(explain)?;
    eprintln!("indexing incidents for search");
    while store::incident_text::backfill(&mut conn, 5_000).map_err(explain)? > 0 {}
    store::demo::analyze(&mut conn).map_err(explain)?;
    println!(
        "seeded {written} incidents and {entries} knowledge entries over {} months up to {end} for {customers} organisations in {:.1} s",
        args.months,
        started.elapsed().as_secs_f64()
    );
    println!(
        "sign in as demo.desk01, demo.l201, demo.manager01, demo.ops01 or demo.h0001 (a customer) with the demo password"
    );
    Ok(())
}
