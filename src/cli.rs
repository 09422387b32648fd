//! Command line: `serve` (default), `migrate`, `openapi`, `create-user`.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::auth::password;
use crate::config::Settings;
use crate::domain::clock::SystemClock;
use crate::domain::role::{Role, Roles};
use crate::domain::user;
use crate::error::AppError;
use crate::startup::{self, Application};
use crate::store::{self, bootstrap};
use crate::telemetry;

/// incident-desk: IT service incident management backend.
#[derive(Debug, Parser)]
#[command(name = "incident-desk", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (the default): creates and migrates the database first.
    Serve,
    /// Create the database if missing and run pending migrations, then exit.
    Migrate,
    /// Print the OpenAPI document as JSON.
    Openapi,
    /// Create a user account.
    CreateUser(CreateUserArgs),
}

#[derive(Debug, Args)]
struct CreateUserArgs {
    /// Login name (2-64 characters of a-z 0-9 _ . @ -).
    #[arg(long)]
    username: String,
    /// Name shown to people (defaults to the username).
    #[arg(long)]
    display_name: Option<String>,
    /// A role; repeat for several (admin, service_desk, l2_engineer, ops_staff,
    /// incident_manager, customer, integration).
    #[arg(long = "role", required = true)]
    roles: Vec<String>,
    /// Organisation of a customer user.
    #[arg(long)]
    customer_id: Option<i64>,
    /// Password; read from NEW_USER_PASSWORD, else from the first line of standard input.
    #[arg(long, env = "NEW_USER_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

/// Parses the command line and runs it.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init_logging();
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => print_openapi(),
        Command::Serve => serve(),
        Command::Migrate => migrate(),
        Command::CreateUser(args) => create_user(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn settings() -> Result<Settings, String> {
    Settings::from_env().map_err(|e| e.to_string())
}

fn print_openapi() -> Result<(), String> {
    let document = crate::openapi::document();
    let json = serde_json::to_string_pretty(&document).map_err(|e| e.to_string())?;
    println!("{json}");
    Ok(())
}

fn serve() -> Result<(), String> {
    let settings = settings()?;
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings, Arc::new(SystemClock))
            .await
            .map_err(|e| e.to_string())?;
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })
}

fn migrate() -> Result<(), String> {
    let settings = settings()?;
    if bootstrap::ensure_database(&settings.database_url).map_err(|e| e.to_string())? {
        println!("created database");
    }
    let mut conn = bootstrap::connect(&settings.database_url).map_err(|e| e.to_string())?;
    let applied = bootstrap::run_migrations(&mut conn).map_err(|e| e.to_string())?;
    if applied.is_empty() {
        println!("no pending migrations");
    } else {
        println!("applied: {}", applied.join(", "));
    }
    Ok(())
}

fn create_user(args: CreateUserArgs) -> Result<(), String> {
    let settings = settings()?;
    let password = match args.password {
        Some(password) => password,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| format!("reading the password from standard input: {e}"))?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let roles = args
        .roles
        .iter()
        .map(|code| code.parse::<Role>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()
        .map(Roles::new)?;
    let username =
        user::parse_username(&args.username).map_err(|e| format!("username {}", e.message))?;
    let display_name = args.display_name.unwrap_or_else(|| username.clone());
    let mut problems: Vec<String> = [
        user::check_password(&password),
        user::check_display_name(&display_name),
    ]
    .into_iter()
    .filter_map(Result::err)
    .chain(user::check_role_binding(&roles, args.customer_id))
    .map(|e| format!("{} {}", e.field, e.message))
    .collect();
    if !problems.is_empty() {
        problems.sort();
        return Err(problems.join("; "));
    }

    startup::prepare_database(&settings).map_err(|e| e.to_string())?;
    let mut conn = bootstrap::connect(&settings.database_url).map_err(|e| e.to_string())?;
    let new = store::users::NewUser {
        username,
        password_hash: password::hash(&password)?,
        display_name,
        roles,
        customer_id: args.customer_id,
    };
    match store::users::insert(&mut conn, new) {
        Ok(row) => {
            println!("created user `{}` with id {}", row.username, row.id);
            Ok(())
        }
        Err(AppError::Validation(errors)) => Err(errors
            .iter()
            .map(|e| format!("{} {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ")),
        Err(err) => Err(err.problem().detail),
    }
}
