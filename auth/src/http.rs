//! The axum side: a guard layer per permission, the [`Principal`] extractor, `GET /v1/whoami`.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use partida_service::ApiError;
use serde_json::{Value, json};

use crate::{AuthError, Authenticator, Permission, Principal, Role};

/// `router`'s routes, each requiring `permission` (unmatched paths stay 404 for everyone).
pub fn guarded<S: Clone + Send + Sync + 'static>(
    router: axum::Router<S>,
    auth: &Authenticator,
    permission: Permission,
) -> axum::Router<S> {
    router.route_layer(axum::middleware::from_fn_with_state((auth.clone(), permission), guard))
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

/// `GET /v1/whoami`: the caller as the API sees it.
pub async fn whoami(principal: Principal) -> axum::Json<Value> {
    let permissions: Vec<Permission> = Permission::GRANTABLE
        .into_iter()
        .filter(|permission| principal.role.permits(*permission))
        .collect();
    axum::Json(json!({
        "subject": principal.subject,
        "role": principal.role,
        "credential": principal.credential,
        "permissions": permissions,
    }))
}
