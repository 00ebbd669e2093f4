//! Browsers may call an API from another origin only when the operator has allowed that origin.

use partida_e2e::{Stack, start_command_api_with, start_query_api};
use reqwest::{Method, Response};

const CONSOLE: &str = "https://console.example";

fn header<'r>(response: &'r Response, name: &str) -> Option<&'r str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_configured_origins_get_cross_origin_access() {
    let db = partida_testkit::TestDb::new().await;
    let mut config = partida_e2e::command_config(&db);
    config.cors_origins = vec![format!("{CONSOLE}/")];
    let command = start_command_api_with(config).await;
    let query = start_query_api(&db).await;
    let stack = Stack::assemble(db, command, query, None).await;
    let anonymous = reqwest::Client::new();
    let preflight = |base: &str, origin: &str| {
        anonymous
            .request(Method::OPTIONS, format!("{base}/v1/transfers"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,idempotency-key",
            )
            .send()
    };

    // The preflight is answered before authentication, for the configured origin only.
    let allowed = preflight(&stack.command.url, CONSOLE).await.expect("OPTIONS");
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(header(&allowed, "access-control-allow-origin"), Some(CONSOLE));
    let methods = header(&allowed, "access-control-allow-methods").unwrap_or_default();
    assert!(methods.contains("POST") && methods.contains("PATCH"), "{methods}");
    let headers = header(&allowed, "access-control-allow-headers").unwrap_or_default();
    assert!(
        headers.contains("idempotency-key") && headers.contains("authorization"),
        "{headers}"
    );
    assert_eq!(header(&allowed, "access-control-allow-credentials"), None);

    let other = preflight(&stack.command.url, "https://elsewhere.example")
        .await
        .expect("OPTIONS");
    assert_eq!(header(&other, "access-control-allow-origin"), None);

    // An actual request from the configured origin may read the answer and its request id.
    let whoami = stack
        .http
        .client()
        .get(format!("{}/v1/whoami", stack.command.url))
        .header("origin", CONSOLE)
        .send()
        .await
        .expect("GET");
    assert!(whoami.status().is_success());
    assert_eq!(header(&whoami, "access-control-allow-origin"), Some(CONSOLE));
    let exposed = header(&whoami, "access-control-expose-headers").unwrap_or_default();
    assert!(
        exposed.contains("x-request-id") && exposed.contains("retry-after"),
        "{exposed}"
    );

    // query-api was given no origin: no page of another origin may read it.
    let read = stack
        .http
        .client()
        .get(format!("{}/v1/whoami", stack.query.url))
        .header("origin", CONSOLE)
        .send()
        .await
        .expect("GET");
    assert!(read.status().is_success());
    assert_eq!(header(&read, "access-control-allow-origin"), None);
}

#[test]
fn an_origin_that_is_not_scheme_host_and_port_stops_the_service_at_startup() {
    let mut config = command_api::Config::for_database("postgres://127.0.0.1:1/none");
    config.cors_origins = vec!["https://console.example/app".to_owned()];
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let error = runtime
        .block_on(command_api::Application::build(config))
        .err()
        .expect("refused");
    assert!(error.to_string().contains("console.example/app"), "{error}");
}
