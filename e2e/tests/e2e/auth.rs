//! Authentication and authorization: every endpoint of both APIs against no credential, bad
//! credentials and each role; JWTs; revocation; the actor recorded in the log.

use std::time::Duration;

use partida_auth::{Permission, Role};
use partida_e2e::{Http, Stack, assert_error, decode, eventually, open_books, transfer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Every endpoint behind a credential, with what it needs.
pub(crate) const COMMAND: &[(&str, &str, Permission)] = &[
    ("POST", "/v1/assets", Permission::Administer),
    ("POST", "/v1/accounts", Permission::Administer),
    ("POST", "/v1/accounts/x/freeze", Permission::Administer),
    ("POST", "/v1/accounts/x/unfreeze", Permission::Administer),
    ("POST", "/v1/accounts/x/close", Permission::Administer),
    ("PATCH", "/v1/accounts/x/metadata", Permission::Administer),
    ("POST", "/v1/subjects/x/erase", Permission::Administer),
    ("POST", "/v1/transfers", Permission::Transfer),
    ("POST", "/v1/transfers/batch", Permission::Transfer),
    ("POST", "/v1/transfers/x/post", Permission::Transfer),
    ("POST", "/v1/transfers/x/void", Permission::Transfer),
    ("PATCH", "/v1/transfers/x/metadata", Permission::Transfer),
    ("POST", "/v1/audit/checkpoints", Permission::Audit),
    ("GET", "/v1/whoami", Permission::Authenticated),
];

pub(crate) const QUERY: &[(&str, &str, Permission)] = &[
    ("GET", "/v1/assets", Permission::Read),
    ("GET", "/v1/accounts", Permission::Read),
    ("GET", "/v1/accounts/bank", Permission::Read),
    ("GET", "/v1/accounts/bank/entries", Permission::Read),
    ("GET", "/v1/accounts/bank/balance", Permission::Read),
    ("GET", "/v1/transfers", Permission::Read),
    ("GET", "/v1/transfers/x", Permission::Read),
    ("GET", "/v1/events", Permission::Read),
    ("GET", "/v1/streams/account:bank", Permission::Read),
    ("GET", "/v1/projections", Permission::Read),
    ("GET", "/v1/trial-balance", Permission::Read),
    ("GET", "/v1/balances", Permission::Read),
    ("GET", "/v1/live", Permission::Read),
    ("GET", "/v1/audit/export", Permission::Audit),
    ("GET", "/v1/audit/checkpoints", Permission::Audit),
    ("GET", "/v1/audit/checkpoints/latest", Permission::Audit),
    ("GET", "/v1/audit/keys", Permission::Audit),
    ("GET", "/v1/audit/proof/inclusion?position=1", Permission::Audit),
    ("GET", "/v1/audit/proof/consistency?from=1", Permission::Audit),
    ("GET", "/v1/whoami", Permission::Authenticated),
];

async fn call(client: &reqwest::Client, method: &str, url: &str, token: Option<&str>) -> (StatusCode, Value, bool) {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client.request(method.clone(), url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if method == Method::POST || method == Method::PATCH {
        request = request.json(&json!({}));
    }
    let response = request.send().await.expect("request");
    let challenged = response.headers().contains_key("www-authenticate");
    if url.ends_with("/v1/live") && response.status().is_success() {
        // A stream: its status is the answer.
        return (response.status(), Value::Null, challenged);
    }
    let (status, body) = decode(response).await;
    (status, body, challenged)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_401_without_a_valid_credential_and_403_to_roles_without_the_permission() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    let client = reqwest::Client::new();
    let issued = partida_auth::token::create(stack.db.pool(), "revoked", Role::Admin, None)
        .await
        .expect("token");
    partida_auth::token::revoke(stack.db.pool(), issued.id)
        .await
        .expect("revoke");
    let revoked = issued.token;
    let unknown = format!("ptk_{}", "ab".repeat(32));
    let mut tokens = Vec::new();
    for role in Role::ALL {
        tokens.push((role, stack.token(role).await));
    }
    let endpoints = COMMAND
        .iter()
        .map(|(m, p, n)| (*m, format!("{}{p}", stack.command.url), *n))
        .chain(
            QUERY
                .iter()
                .map(|(m, p, n)| (*m, format!("{}{p}", stack.query.url), *n)),
        );
    let mut checked = 0;
    for (method, url, permission) in endpoints {
        for bad in [
            None,
            Some("not-a-token"),
            Some(unknown.as_str()),
            Some(revoked.as_str()),
        ] {
            let (status, body, challenged) = call(&client, method, &url, bad).await;
            assert_error(&(status, body), 401, "unauthenticated");
            assert!(challenged, "{method} {url}: a 401 carries WWW-Authenticate");
        }
        for (role, token) in &tokens {
            let (status, body, _) = call(&client, method, &url, Some(token)).await;
            if role.permits(permission) {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{role} may {method} {url}: {status} {body}"
                );
            } else {
                let details = assert_error(&(status, body), 403, "forbidden");
                assert_eq!(details["required"], permission.as_str(), "{method} {url}");
                assert_eq!(details["role"], role.as_str());
            }
            checked += 1;
        }
    }
    assert_eq!(checked, (COMMAND.len() + QUERY.len()) * Role::ALL.len());
    // Health, readiness and metrics stay open to probes and scrapers.
    for url in [
        format!("{}/healthz", stack.command.url),
        format!("{}/readyz", stack.query.url),
        format!("{}/metrics", stack.query.url),
    ] {
        let status = client.get(&url).send().await.expect("GET").status();
        assert_eq!(status, StatusCode::OK, "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_404_for_anyone_and_whoami_names_the_caller() {
    let stack = Stack::without_projector().await;
    let client = reqwest::Client::new();
    for (method, path) in [
        ("GET", "/v1/nothing"),
        ("POST", "/v1/nothing"),
        ("GET", "/v1/accounts/x/nothing"),
    ] {
        let (status, body, _) = call(&client, method, &format!("{}{path}", stack.query.url), None).await;
        assert_error(&(status, body), 404, "not_found");
    }
    let whoami = stack.http.get(&format!("{}/v1/whoami", stack.query.url)).await;
    assert_eq!(whoami.0, StatusCode::OK);
    assert_eq!(whoami.1["role"], "admin");
    assert_eq!(whoami.1["subject"], "e2e-admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_name_the_subject_and_credential_that_wrote_them() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    let token = partida_e2e::issue_token(&stack.db, Role::Writer, "alice@example.com").await;
    let writer = Http::with_token(&token);
    let (status, body) = writer
        .post(
            &format!("{}/v1/transfers", stack.command.url),
            json!({"id": "by-alice", "postings": [{"debit": "bank", "credit": "alice", "amount": 5}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let position = body["position"].as_i64().expect("position");
    let (_, stream) = stack.get_at("/v1/streams/transfer:by-alice", position).await;
    let metadata = &stream["events"][0]["metadata"];
    assert_eq!(metadata["actor"], "alice@example.com", "{stream}");
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM api_tokens WHERE subject = 'alice@example.com'")
        .fetch_one(stack.db.pool())
        .await
        .expect("the token");
    assert_eq!(metadata["credential"], format!("token:{id}"));
    // A header cannot claim to be someone else.
    let (status, _) = decode(
        writer
            .client()
            .post(format!("{}/v1/transfers", stack.command.url))
            .header("x-actor", "mallory")
            .json(&json!({"id": "spoof", "postings": [{"debit": "bank", "credit": "alice", "amount": 1}]}))
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, stream) = stack.get_at("/v1/streams/transfer:spoof", position + 1).await;
    assert_eq!(stream["events"][0]["metadata"]["actor"], "alice@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_once_the_cache_forgets_it() {
    let db = partida_testkit::TestDb::new().await;
    let mut config = partida_e2e::command_config(&db);
    config.auth.auth_cache_secs = 1;
    let command = partida_e2e::start_command_api_with(config).await;
    let query = partida_e2e::start_query_api(&db).await;
    let stack = Stack::assemble(db, command, query, None).await;
    let issued = partida_auth::token::create(stack.db.pool(), "temp", Role::Admin, None)
        .await
        .expect("token");
    let http = Http::with_token(&issued.token);
    let url = format!("{}/v1/whoami", stack.command.url);
    assert_eq!(http.get(&url).await.0, StatusCode::OK);
    assert!(
        partida_auth::token::revoke(stack.db.pool(), issued.id)
            .await
            .expect("revoke")
    );
    eventually("the revoked token is refused", Duration::from_secs(10), || async {
        http.get(&url).await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    // An expired token is refused at once.
    let past = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let expired = partida_auth::token::create(stack.db.pool(), "old", Role::Admin, Some(past))
        .await
        .expect("token");
    assert_error(
        &Http::with_token(&expired.token).get(&url).await,
        401,
        "unauthenticated",
    );
}

/// A stack whose APIs accept JWTs from `issuer` for `audience`, signed with the HS256 secret or
/// the RS256 key in `dir`.
async fn jwt_stack(dir: &std::path::Path) -> Stack {
    let auth = partida_auth::AuthConfig {
        jwt_hs256_secret_file: Some(dir.join("hs256.secret")),
        jwt_rs256_public_key_file: Some(dir.join("rs256.pub.pem")),
        jwt_issuer: Some("https://sso.example".into()),
        jwt_audience: Some("partida".into()),
        ..partida_auth::AuthConfig::default()
    };
    let db = partida_testkit::TestDb::new().await;
    let mut command = partida_e2e::command_config(&db);
    command.auth = auth.clone();
    let mut query = partida_e2e::query_config(&db);
    query.auth = auth;
    let command = partida_e2e::start_command_api_with(command).await;
    let query = partida_e2e::start_query_api_with(query).await;
    let (projector, _) = partida_e2e::start_projector(&db).await;
    Stack::assemble(db, command, query, Some(projector)).await
}

fn claims(role: &str, issuer: &str, audience: &str, expires_in: i64) -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    json!({"sub": "carol@sso", "role": role, "iss": issuer, "aud": audience, "exp": now + expires_in, "iat": now})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwts_signed_with_hs256_or_rs256_act_as_their_subject_and_role() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey, LineEnding};

    let dir = std::env::temp_dir().join(format!("partida-jwt-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let secret = b"a shared secret of at least thirty-two bytes";
    std::fs::write(dir.join("hs256.secret"), secret).expect("secret");
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("an RSA key");
    let public_pem = private.to_public_key().to_pkcs1_pem(LineEnding::LF).expect("pem");
    std::fs::write(dir.join("rs256.pub.pem"), public_pem).expect("public key");
    let rsa_key = EncodingKey::from_rsa_der(private.to_pkcs1_der().expect("der").as_bytes());
    let hs_key = EncodingKey::from_secret(secret);
    let sign = |algorithm: Algorithm, key: &EncodingKey, claims: &Value| {
        encode(&Header::new(algorithm), claims, key).expect("a JWT")
    };

    let stack = jwt_stack(&dir).await;
    open_books(&stack).await;
    let good = claims("writer", "https://sso.example", "partida", 300);
    for (algorithm, key) in [(Algorithm::HS256, &hs_key), (Algorithm::RS256, &rsa_key)] {
        let jwt = Http::with_token(&sign(algorithm, key, &good));
        let (status, me) = jwt.get(&format!("{}/v1/whoami", stack.query.url)).await;
        assert_eq!(status, StatusCode::OK, "{algorithm:?}: {me}");
        assert_eq!(
            (me["subject"].as_str(), me["role"].as_str()),
            (Some("carol@sso"), Some("writer"))
        );
        assert_eq!(me["credential"], "jwt:https://sso.example");
        // A writer posts transfers but may not open accounts.
        let id = format!("sso-{algorithm:?}");
        let (status, body) = jwt
            .post(
                &format!("{}/v1/transfers", stack.command.url),
                json!({"id": id, "postings": [{"debit": "bank", "credit": "alice", "amount": 1}]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (_, stream) = stack
            .get_at(
                &format!("/v1/streams/transfer:{id}"),
                body["position"].as_i64().expect("position"),
            )
            .await;
        assert_eq!(stream["events"][0]["metadata"]["actor"], "carol@sso");
        let refused = jwt
            .post(
                &format!("{}/v1/assets", stack.command.url),
                json!({"code": "USD", "scale": 2}),
            )
            .await;
        assert_error(&refused, 403, "forbidden");
    }

    let refused = |jwt: String| {
        let url = format!("{}/v1/whoami", stack.command.url);
        async move { Http::with_token(&jwt).get(&url).await }
    };
    for (what, jwt) in [
        (
            "wrong issuer",
            sign(
                Algorithm::HS256,
                &hs_key,
                &claims("admin", "https://evil.example", "partida", 300),
            ),
        ),
        (
            "wrong audience",
            sign(
                Algorithm::HS256,
                &hs_key,
                &claims("admin", "https://sso.example", "other", 300),
            ),
        ),
        (
            "expired",
            sign(
                Algorithm::RS256,
                &rsa_key,
                &claims("admin", "https://sso.example", "partida", -600),
            ),
        ),
        (
            "unknown role",
            sign(
                Algorithm::HS256,
                &hs_key,
                &claims("root", "https://sso.example", "partida", 300),
            ),
        ),
        (
            "another secret",
            sign(
                Algorithm::HS256,
                &EncodingKey::from_secret(b"another secret of at least thirty-two bytes"),
                &good,
            ),
        ),
        ("unsigned", unsigned(&good)),
    ] {
        let response = refused(jwt).await;
        assert_eq!(response.0, StatusCode::UNAUTHORIZED, "{what}: {}", response.1);
        assert_eq!(response.1["error"]["code"], "unauthenticated", "{what}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `alg: none`: a JWT anyone can make.
fn unsigned(claims: &Value) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_cannot_administer_and_a_reader_cannot_write() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    let writer = Http::with_token(&stack.token(Role::Writer).await);
    let reader = Http::with_token(&stack.token(Role::Reader).await);
    let url = |path: &str| format!("{}{path}", stack.command.url);
    assert_error(
        &writer.post(&url("/v1/accounts/alice/freeze"), json!({})).await,
        403,
        "forbidden",
    );
    assert_error(
        &reader
            .post(
                &url("/v1/transfers"),
                json!({"id": "r", "postings": [{"debit": "bank", "credit": "alice", "amount": 1}]}),
            )
            .await,
        403,
        "forbidden",
    );
    // Nothing refused reached the log.
    let after = transfer(&stack, "after", &[("bank", "alice", 1)]).await;
    assert_error(&stack.get_at("/v1/transfers/r", after).await, 404, "transfer_not_found");
    let (_, alice) = stack.get_at("/v1/accounts/alice", after).await;
    assert_eq!(alice["status"], "open");
}
