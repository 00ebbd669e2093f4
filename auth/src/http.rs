//! The axum side: a guard layer per permission, the [`Principal`] extractor, `GET /v1/whoami`.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use partida_service::{ApiError, openapi};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use crate::{AuthError, Authenticator, Permission, Principal, Role};

/// `router`'s routes, each requiring `permission` (unmatched paths stay 404 for everyone); their
/// operations in the document say so: the bearer scheme, the permission, the 401/403/429 answers.
pub fn guarded<S: Clone + Send + Sync + 'static>(
    router: OpenApiRouter<S>,
    auth: &Authenticator,
    permission: Permission,
) -> OpenApiRouter<S> {
    let mut router = router.route_layer(axum::middleware::from_fn_with_state((auth.clone(), permission), guard));
    let roles = Role::ALL
        .into_iter()
        .filter(|role| role.permits(permission))
        .map(Role::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    for item in router.get_openapi_mut().paths.paths.values_mut() {
        for operation in openapi::operations_mut(item) {
            openapi::require_bearer(operation, permission.as_str(), &roles);
        }
    }
    router
}

async fn guard(
    State((auth, permission)): State<(Authenticator, Permission)>,
    mut request: Request,
    next: Next,
) -> Response {
    let authorization = request.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
    let principal = match auth.authenticate(authorization).await {
        Ok(principal) => principal,
        Err(error) => return unauthenticated(&error),
    };
    if !principal.role.permits(permission) {
        return forbidden(principal.role, permission).into_response();
    }
    if let Err(wait) = auth.limit(&principal) {
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "this credential is over its request rate; retry after the delay in Retry-After",
        )
        .retry_after(wait)
        .into_response();
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

fn unauthenticated(error: &AuthError) -> Response {
    if *error == AuthError::Unavailable {
        return ApiError::unavailable(error.to_string()).into_response();
    }
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", error.to_string()).into_response();
    let challenge = match error {
        AuthError::Missing => r#"Bearer realm="partida""#,
        _ => r#"Bearer realm="partida", error="invalid_token""#,
    };
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    response
}

fn forbidden(role: Role, permission: Permission) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("the {role} role may not {}", permission.as_str()),
    )
    .with_details(json!({"role": role, "required": permission}))
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::internal(&"a handler needing a principal is not behind a guard"))
    }
}

/// The caller as the API sees it.
#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    /// The token's subject or the JWT's `sub`: who the log names as the actor.
    subject: String,
    role: Role,
    /// `token:<id>` or `jwt:<issuer>`.
    credential: String,
    /// What the role permits.
    permissions: Vec<Permission>,
}

/// `GET /v1/whoami` for any valid credential.
pub fn whoami_router<S: Clone + Send + Sync + 'static>(auth: &Authenticator) -> OpenApiRouter<S> {
    guarded(
        OpenApiRouter::new().routes(utoipa_axum::routes!(whoami)),
        auth,
        Permission::Authenticated,
    )
}

/// The caller as the API sees it: subject, role, credential and permissions.
#[utoipa::path(get, path = "/v1/whoami", operation_id = "whoami", tag = "auth", responses((status = 200, body = WhoAmI)))]
async fn whoami(principal: Principal) -> axum::Json<WhoAmI> {
    let permissions: Vec<Permission> = Permission::GRANTABLE
        .into_iter()
        .filter(|permission| principal.role.permits(*permission))
        .collect();
    axum::Json(WhoAmI {
        subject: principal.subject,
        role: principal.role,
        credential: principal.credential,
        permissions,
    })
}
