//! The authenticated caller, from a bearer token (an access token or an API token).

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;

use crate::auth::api_token;
use crate::domain::role::{Role, Roles};
use crate::domain::workflow::Caller;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::credentials::Credential;
use crate::store::users::UserRow;

/// The authenticated caller.
///
/// The bearer token is checked, then the user is read from the database on every request, so
/// a deactivated user or a revoked token stops working at once and role changes apply at once.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// User id.
    pub id: i64,
    /// Username.
    pub username: String,
    /// Current roles.
    pub roles: Roles,
    /// Organisation of a customer user.
    pub customer_id: Option<i64>,
    /// The user's row as read for this request.
    pub row: UserRow,
}

impl AuthUser {
    /// 403 unless the caller holds one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), AppError> {
        if self.roles.has_any(roles) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            let mut detail = format!("This needs one of the roles: {}.", names.join(", "));
            // The first account of an install is an administrator; newcomers trying the
            // incident endpoints with it are told where the working roles come from.
            if self.roles.has_any(&[Role::Admin]) && !roles.contains(&Role::Admin) {
                detail.push_str(
                    " The admin role manages accounts and settings only: create a user with one of \
                     these roles (POST /api/v1/users) and sign in as that user.",
                );
            }
            Err(AppError::forbidden(detail))
        }
    }

    /// 403 unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), AppError> {
        self.require_any(&[Role::Admin])
    }

    /// 403 unless the caller is an admin or staff.
    pub fn require_admin_or_staff(&self) -> Result<(), AppError> {
        self.require_any(&[
            Role::Admin,
            Role::ServiceDesk,
            Role::L2Engineer,
            Role::OpsStaff,
            Role::IncidentManager,
        ])
    }

    /// The caller as the incident rules see it.
    pub fn caller(&self) -> Caller {
        Caller {
            id: Some(self.id),
            name: self.row.display_name.clone(),
            roles: self.roles.clone(),
            customer_id: self.customer_id,
        }
    }

    /// Whose records the caller may see: `Some(own organisation)` for a customer user, `None`
    /// (every customer's) for admins and staff; 403 for anyone else.
    pub fn customer_scope(&self) -> Result<Option<i64>, AppError> {
        match self.confined_to_customer() {
            Some(own) => Ok(Some(own)),
            None => self.require_admin_or_staff().map(|()| None),
        }
    }

    /// The customer filter of a list: what was asked, except that a customer user is held to
    /// its own organisation. `None` when a customer user asks for another one, whose records it
    /// must not learn about: the answer is an empty page, as if there were none.
    pub fn customer_filter(&self, asked: Option<i64>) -> Option<Option<i64>> {
        match self.confined_to_customer() {
            Some(own) if asked.is_some_and(|asked| asked != own) => None,
            Some(own) => Some(Some(own)),
            None => Some(asked),
        }
    }

    /// The organisation a customer user is confined to; `None` for everyone else.
    pub fn confined_to_customer(&self) -> Option<i64> {
        if self.roles.has(Role::Customer) {
            self.customer_id
        } else {
            None
        }
    }
}

pub fn bearer_token(req: &HttpRequest) -> Result<String, AppError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        AppError::Unauthorized("An Authorization: Bearer token is required.".into())
    })?;
    let text = value
        .to_str()
        .map_err(|_| AppError::Unauthorized("The Authorization header is not readable.".into()))?;
    let (scheme, token) = text.trim().split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AppError::Unauthorized(
            "The Authorization header must be `Bearer <token>`.".into(),
        ));
    }
    Ok(token.trim().to_owned())
}

impl FromRequest for AuthUser {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // A middleware that already authenticated this request (Idempotency-Key) left the
        // caller here; reading the user again would be the same query for the same answer.
        if let Some(caller) = req.extensions().get::<AuthUser>().cloned() {
            return Box::pin(async move { Ok(caller) });
        }
        let state = req.app_data::<Data<AppState>>().cloned();
        let token = bearer_token(req);
        // A write's caller is left for the read-after-write record (`api::replica`).
        let writing = crate::api::replica::writes(req.method()).then(|| req.clone());
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::internal("application state missing"))?;
            let caller = AuthUser::from_token(&state, token?).await?;
            if let Some(req) = writing {
                req.extensions_mut()
                    .insert(crate::api::replica::Writer(caller.id));
            }
            Ok(caller)
        })
    }
}

impl AuthUser {
    /// The caller a Bearer value stands for: an API token (`idt_…`) or a JWT (SPEC §10).
    /// Deactivation, role changes and revocation apply at once on every server instance (see
    /// `store::credentials`).
    pub async fn from_token(state: &AppState, token: String) -> Result<AuthUser, AppError> {
        let credential = check_credential(state, &token)?;
        let now = state.clock.now();
        let user =
            store::credentials::caller(&state.pool, &state.credentials, credential, now).await?;
        Ok(AuthUser::from(user))
    }
}

impl From<UserRow> for AuthUser {
    fn from(user: UserRow) -> Self {
        AuthUser {
            id: user.id,
            roles: user.roles(),
            username: user.username.clone(),
            customer_id: user.customer_id,
            row: user,
        }
    }
}

fn invalid_token() -> AppError {
    AppError::Unauthorized("The token is invalid or has expired.".into())
}

/// Checks a Bearer value as far as it can be without the database: a JWT's signature and
/// expiry, an API token's shape.
pub fn check_credential(state: &AppState, token: &str) -> Result<Credential, AppError> {
    if api_token::is_api_token(token) {
        return Ok(Credential::ApiToken(api_token::digest(token)));
    }
    let claims = state.tokens.verify(token).map_err(|err| {
        log::debug!("refused token: {err}");
        invalid_token()
    })?;
    Ok(Credential::Jwt {
        user_id: claims.user_id().ok_or_else(invalid_token)?,
        generation: claims.generation,
    })
}
