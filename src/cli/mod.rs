//! Command line: `serve` (default), `migrate`, `openapi`, `create-user`, `create-api-token`,
//! `seed-demo`, `unlock-user`.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

mod seed_demo;

use clap::{Args, Parser, Subcommand};

use crate::auth::{api_token, password};
use crate::config::Settings;
use crate::domain::clock::SystemClock;
use crate::domain::role::{Role, Roles};
use crate::domain::user;
use crate::domain::validation::FieldError;
use crate::error::AppError;
use crate::startup::{self, Application};
use crate::store::{self, StoreError, bootstrap};
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
    /// Create an API token for an integration and print it (it is shown only once).
    CreateApiToken(CreateApiTokenArgs),
    /// Fill the database with a realistic, reproducible demo history to try the reports on.
    SeedDemo(seed_demo::SeedDemoArgs),
    /// Lift the sign-in lock of a user after repeated wrong passwords (e.g. `admin`), on every
    /// instance at once.
    UnlockUser(UnlockUserArgs),
}

#[derive(Debug, Args)]
struct UnlockUserArgs {
    /// The username.
    username: String,
}

#[derive(Debug, Args)]
struct CreateApiTokenArgs {
    /// Unique name, shown in journals as the author of what the token writes.
    #[arg(long)]
    name: String,
    /// A role; repeat for several (integration, service_desk, l2_engineer, ops_staff,
    /// incident_manager).
    #[arg(long = "role", required = true)]
    roles: Vec<String>,
    /// When the token stops working (RFC 3339); never when absent.
    #[arg(long)]
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
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
        Command::CreateApiToken(args) => create_api_token(args),
        Command::SeedDemo(args) => seed_demo::seed_demo(args),
        Command::UnlockUser(args) => unlock_user(args),
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

fn unlock_user(args: UnlockUserArgs) -> Result<(), String> {
    let settings = settings()?;
    let username =
        user::parse_username(&args.username).map_err(|e| format!("username {}", e.message))?;
    startup::prepare_database(&settings).map_err(|e| e.to_string())?;
    let mut conn = bootstrap::connect(&settings.database_url).map_err(|e| e.to_string())?;
    if store::users::find_by_username(&mut conn, &username)
        .map_err(|e| e.to_string())?
        .is_none()
    {
        return Err(format!("there is no user `{username}`"));
    }
    let key = crate::auth::throttle::user_key(&username);
    let had_lock = store::sign_in_failures::forget(&mut conn, &key).map_err(|e| e.to_string())?;
    if had_lock {
        println!("`{username}` may sign in again: its failed sign-ins are forgotten");
    } else {
        println!("`{username}` had no failed sign-ins to forget");
    }
    Ok(())
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
    let roles = parse_roles(&args.roles)?;
    let username =
        user::parse_username(&args.username).map_err(|e| format!("username {}", e.message))?;
    let display_name = args.display_name.unwrap_or_else(|| username.clone());
    let mut problems: Vec<String> = [
        user::check_password_of(&username, &password),
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
        email: None,
    };
    let row = store::users::insert(&mut conn, new).map_err(explain)?;
    println!("created user `{}` with id {}", row.username, row.id);
    Ok(())
}

fn parse_roles(codes: &[String]) -> Result<Roles, String> {
    codes
        .iter()
        .map(|code| code.parse::<Role>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()
        .map(Roles::new)
}

fn field_problems(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{} {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn explain(err: StoreError) -> String {
    match err {
        StoreError::Invalid(errors) => field_problems(&errors),
        other => AppError::from(other).problem().detail,
    }
}

fn create_api_token(args: CreateApiTokenArgs) -> Result<(), String> {
    let settings = settings()?;
    let roles = parse_roles(&args.roles)?;
    let now = chrono::Utc::now();
    let mut errors = user::check_token_roles(&roles);
    errors.extend(user::check_token_name(&args.name).err());
    if args.expires_at.is_some_and(|expiry| expiry <= now) {
        errors.push(FieldError::new(
            "expires_at",
            "invalid",
            "must lie in the future",
        ));
    }
    if !errors.is_empty() {
        return Err(field_problems(&errors));
    }
    startup::prepare_database(&settings).map_err(|e| e.to_string())?;
    let mut conn = bootstrap::connect(&settings.database_url).map_err(|e| e.to_string())?;
    let token = api_token::generate();
    let new = store::api_tokens::NewApiToken {
        name: args.name.trim().to_owned(),
        roles,
        expires_at: args.expires_at,
        created_by: None,
    };
    let created = store::api_tokens::insert(&mut conn, new, api_token::digest(&token), now)
        .map_err(explain)?;
    eprintln!(
        "created API token `{}` with id {}; it is shown only once:",
        created.row.name, created.row.id
    );
    println!("{token}");
    Ok(())
}
