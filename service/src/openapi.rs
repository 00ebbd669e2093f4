//! The OpenAPI 3.1 documents of the APIs, generated from the code: each handler carries its
//! `#[utoipa::path]`, each body and answer derives its schema, and the routers are built with
//! [`utoipa_axum`] so a route cannot exist without its entry in the document. What every Partida
//! API shares is added here: the one error shape, the bearer scheme, the errors any operation can
//! answer. Each API serves its document at `/openapi.json` and Swagger UI at `/docs`.

use std::borrow::Cow;

use axum::Router;
use axum::http::StatusCode;
use serde_json::json;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Header, InfoBuilder, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

/// The name of the bearer security scheme in every document.
pub const BEARER: &str = "bearer";

/// The one error shape: `{"error": {"code", "message", "details"?}}`.
#[derive(ToSchema)]
#[schema(as = Error)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorObject,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct ErrorObject {
    /// Stable and machine-readable, e.g. `validation_failed`, `insufficient_funds`.
    #[schema(example = "validation_failed")]
    code: String,
    /// For people; may change between releases.
    message: String,
    /// Structured context, e.g. `{"field": "postings[0].amount"}`.
    #[schema(value_type = Option<Object>)]
    details: Option<serde_json::Value>,
}

/// A string schema with a pattern: the wire form of the domain's identifiers. The domain crate
/// stays free of documentation concerns; these mirror its parsers, and the API fuzz test holds
/// them to it.
fn pattern_string(pattern: &str, min: usize, max: usize, description: &str, example: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .min_length(Some(min))
        .max_length(Some(max))
        .description(Some(description))
        .examples([json!(example)])
        .into()
}

macro_rules! wire_string {
    ($(#[$doc:meta])* $name:ident, $pattern:expr, $min:expr, $max:expr, $description:expr, $example:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                pattern_string($pattern, $min, $max, $description, $example)
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

wire_string!(
    /// An account id chosen by the client.
    AccountId,
    "^[A-Za-z0-9:._-]+$",
    1,
    128,
    "An account id chosen by the client: 1 to 128 characters of [A-Za-z0-9:._-].",
    "liabilities:customers:alice"
);
wire_string!(
    /// A transfer id chosen by the client: the transfer's idempotency key.
    TransferId,
    "^[A-Za-z0-9:._-]+$",
    1,
    128,
    "A transfer id chosen by the client, and its idempotency key: 1 to 128 characters of [A-Za-z0-9:._-].",
    "order-1042"
);
wire_string!(
    /// A data subject: whose personal data it is.
    SubjectId,
    "^[A-Za-z0-9:._-]+$",
    1,
    128,
    "A data subject chosen by the client, a pseudonym (never a name): 1 to 128 characters of [A-Za-z0-9:._-].",
    "customer-42"
);
wire_string!(
    /// An asset's code.
    AssetCode,
    "^[A-Z][A-Z0-9_]*$",
    1,
    16,
    "An asset's code: 1 to 16 characters of [A-Z0-9_], starting with a letter.",
    "EUR"
);
wire_string!(
    /// A SHA-256 digest in lowercase hex.
    Hash,
    "^[0-9a-f]{64}$",
    64,
    64,
    "A SHA-256 digest: 64 lowercase hex digits.",
    "9f2b5c0d8e4a7b1c3d6e9f0a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c"
);

/// One leg of a transfer: `amount` minor units debited to `debit` and credited to `credit`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Posting {
    #[schema(value_type = AccountId)]
    debit: String,
    #[schema(value_type = AccountId)]
    credit: String,
    /// Minor units of the accounts' asset.
    #[schema(minimum = 1, example = 2500)]
    amount: i64,
}

/// Free-form client data: a JSON object, stored and returned as given (keys sorted).
pub struct Metadata;

impl PartialSchema for Metadata {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(format!(
                "Free-form client data: a JSON object, returned with its keys sorted. At most {} bytes as \
                 compact JSON and {} levels deep (the object itself is level 1); no string in it may contain U+0000. \
                 Personal data goes under the key `personal`, as `{{\"subject\": id, \"data\": value}}`: it is \
                 sealed under the subject's key before it reaches the log, and reads as `{{\"subject\", \"erased\": true}}` \
                 once the subject is erased (docs/PERSONAL-DATA.md).",
                crate::metadata::MAX_BYTES,
                crate::metadata::MAX_DEPTH,
            )))
            .examples([json!({"order": "1042"})])
            .into()
    }
}

impl ToSchema for Metadata {}

/// A change to metadata: the keys to set, and with `null` values the keys to remove.
pub struct MetadataPatch;

impl PartialSchema for MetadataPatch {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .min_properties(Some(1))
            .description(Some(format!(
                "A change to metadata: each key given replaces that key's whole value (a nested object is \
                 replaced, not merged), and a key given as null is removed; other keys stay. At least one key, \
                 at most {} bytes as compact JSON and {} levels deep; no string in it may contain U+0000.",
                crate::metadata::MAX_BYTES,
                crate::metadata::MAX_DEPTH,
            )))
            .examples([json!({"tier": "gold", "old_reference": null})])
            .into()
    }
}

impl ToSchema for MetadataPatch {}

/// RFC 3339 in UTC with microseconds, like the log.
pub struct Timestamp;

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .description(Some("RFC 3339 in UTC with microseconds."))
            .examples([json!("2026-11-22T10:00:00.000000Z")])
            .into()
    }
}

impl ToSchema for Timestamp {}

/// The shared error answers, as `components.responses` entries: (status, name, description).
const SHARED_RESPONSES: [(&str, &str, &str); 7] = [
    (
        "400",
        "BadRequest",
        "Invalid input: `validation_failed` (with `details.field`) or `malformed_json`.",
    ),
    (
        "401",
        "Unauthorized",
        "No credential, or one that is unknown, expired or revoked.",
    ),
    (
        "403",
        "Forbidden",
        "The credential's role lacks the permission (`details.role`, `details.required`).",
    ),
    ("413", "PayloadTooLarge", "The body, or a batch, is over its limit."),
    ("415", "UnsupportedMediaType", "The body is not `application/json`."),
    (
        "429",
        "TooManyRequests",
        "The credential is over its request rate; retry after `Retry-After` seconds.",
    ),
    (
        "503",
        "Unavailable",
        "The database is unreachable or busy, or the request timed out; retry after `Retry-After` seconds.",
    ),
];

/// The shared answers an operation can get beyond its own: every operation can be unavailable;
/// one with input can be invalid; one with a body can be too large or of the wrong type.
fn shared_statuses(operation: &Operation) -> Vec<&'static str> {
    let mut statuses = vec!["503"];
    if operation.parameters.as_ref().is_some_and(|p| !p.is_empty()) || operation.request_body.is_some() {
        statuses.push("400");
    }
    if operation.request_body.is_some() {
        statuses.extend(["413", "415"]);
    }
    statuses
}

/// The document's operations, whatever their method.
pub fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
        &mut item.head,
        &mut item.options,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// Adds `responses` (by status) to `operation` as references to the shared answers, keeping any
/// the operation documents itself.
pub fn add_shared_responses(operation: &mut Operation, statuses: &[&str]) {
    for status in statuses {
        let Some((_, name, _)) = SHARED_RESPONSES.iter().find(|(s, _, _)| s == status) else {
            continue;
        };
        operation
            .responses
            .responses
            .entry((*status).to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
    }
}

/// Marks `operation` as needing a bearer credential with `permission`: the security requirement,
/// its 401/403/429 answers and an `x-partida-permission` extension naming the permission.
pub fn require_bearer(operation: &mut Operation, permission: &str, roles: &str) {
    operation.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
    let extensions = ExtensionsBuilder::new()
        .add("x-partida-permission", json!(permission))
        .build();
    match &mut operation.extensions {
        Some(existing) => existing.merge(extensions),
        None => operation.extensions = Some(extensions),
    }
    let note = format!("Requires the `{permission}` permission (roles: {roles}).");
    operation.description = Some(match operation.description.take() {
        Some(description) => format!("{description}\n\n{note}"),
        None => note,
    });
    add_shared_responses(operation, &["401", "403", "429"]);
}

/// Finishes a generated document: title and description, the bearer scheme, the error schema and
/// the shared answers, and the answers every operation can get.
pub fn finish(mut openapi: OpenApi, title: &str, description: &str) -> OpenApi {
    openapi.info = InfoBuilder::new()
        .title(title)
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(description))
        .build();
    let components = openapi.components.get_or_insert_with(Default::default);
    components.security_schemes.insert(
        BEARER.to_owned(),
        RefOr::T(SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer))),
    );
    components.schemas.insert("Error".to_owned(), ErrorBody::schema());
    let mut error_schemas = Vec::new();
    ErrorBody::schemas(&mut error_schemas);
    components.schemas.extend(error_schemas);
    for (status, name, description) in SHARED_RESPONSES {
        let mut response = ResponseBuilder::new().description(description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        );
        if matches!(status, "429" | "503") {
            response = response.header("Retry-After", whole_seconds_header());
        }
        if status == "401" {
            response = response.header(
                "WWW-Authenticate",
                Header::new(ObjectBuilder::new().schema_type(Type::String)),
            );
        }
        components.responses.insert(name.to_owned(), response.build().into());
    }
    for item in openapi.paths.paths.values_mut() {
        for operation in operations_mut(item) {
            let statuses = shared_statuses(operation);
            add_shared_responses(operation, &statuses);
            describe_responses(operation);
        }
    }
    openapi
}

/// A response's description is required: where the code gave none, the status's reason phrase.
fn describe_responses(operation: &mut Operation) {
    for (status, response) in &mut operation.responses.responses {
        if let RefOr::T(response) = response
            && response.description.is_empty()
        {
            let reason = status
                .parse::<u16>()
                .ok()
                .and_then(|code| StatusCode::from_u16(code).ok())
                .and_then(|code| code.canonical_reason());
            response.description = reason.unwrap_or("The answer.").to_owned();
        }
    }
}

fn whole_seconds_header() -> Header {
    let mut header = Header::new(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)));
    header.description = Some("Whole seconds to wait before retrying.".to_owned());
    header
}

/// `GET /openapi.json` and Swagger UI at `/docs`, for `openapi`.
pub fn docs<S: Clone + Send + Sync + 'static>(openapi: OpenApi) -> Router<S> {
    SwaggerUi::new("/docs").url("/openapi.json", openapi).into()
}
