//! The OpenAPI documents: served openly by both APIs, with Swagger UI; and exactly the endpoints
//! the authorization matrix tests, each naming the permission the guard enforces.

use std::collections::BTreeSet;

use partida_auth::Permission;
use partida_e2e::{Stack, decode};
use reqwest::StatusCode;

use crate::auth::{COMMAND, QUERY};

/// `(METHOD, path template, permission)` of each `/v1` operation in the document at `base`.
async fn documented(client: &reqwest::Client, base: &str) -> BTreeSet<(String, String, String)> {
    let (status, document) = decode(client.get(format!("{base}/openapi.json")).send().await.expect("GET")).await;
    assert_eq!(status, StatusCode::OK, "{document}");
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"], "bearer",
        "{document}"
    );
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let responses = &operation["responses"];
            assert!(responses.get("503").is_some(), "{method} {path} documents no 503");
            if !path.starts_with("/v1/") {
                assert!(operation.get("security").is_none(), "{method} {path} is open");
                continue;
            }
            for status in ["401", "403", "429"] {
                assert!(responses.get(status).is_some(), "{method} {path} documents no {status}");
            }
            let permission = operation["x-partida-permission"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} names no permission"));
            operations.insert((method.to_uppercase(), path.clone(), permission.to_owned()));
        }
    }
    operations
}

/// The matrix's endpoints in the document's terms: concrete segments back to their templates.
fn tested(matrix: &[(&str, &str, Permission)], templates: &BTreeSet<String>) -> BTreeSet<(String, String, String)> {
    matrix
        .iter()
        .map(|(method, url, permission)| {
            let path = url.split('?').next().unwrap_or(url);
            let template = templates
                .iter()
                .find(|template| matches(template, path))
                .unwrap_or_else(|| panic!("{method} {path} is not in the document"));
            (method.to_string(), template.clone(), permission.as_str().to_owned())
        })
        .collect()
}

/// Whether `path` fits `template`, whose `{name}` segments match any one segment.
fn matches(template: &str, path: &str) -> bool {
    let (template, path): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    template.len() == path.len()
        && template
            .iter()
            .zip(&path)
            .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}')))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_api_documents_exactly_the_endpoints_it_guards_with_their_permissions() {
    let stack = Stack::start().await;
    let client = reqwest::Client::new();
    for (base, matrix) in [(&stack.command.url, COMMAND), (&stack.query.url, QUERY)] {
        let documented = documented(&client, base).await;
        let templates = documented.iter().map(|(_, path, _)| path.clone()).collect();
        assert_eq!(tested(matrix, &templates), documented, "{base}");

        let docs = client.get(format!("{base}/docs/")).send().await.expect("GET /docs/");
        assert_eq!(docs.status(), StatusCode::OK);
        let page = docs.text().await.expect("the docs page");
        assert!(page.contains("swagger-ui"), "{page}");
    }
}
