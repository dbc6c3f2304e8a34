//! The committed OpenAPI document is what the code generates, and every Iceberg operation Floe
//! serves has the reference spec's path, method and operationId.
//! Regenerate with: `UPDATE_OPENAPI=1 cargo nextest run --test integration openapi::`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

const COMMITTED: &str = "openapi/floe.json";
const REFERENCE: &str = "openapi/iceberg/rest-catalog-open-api.yaml";

#[test]
fn committed_openapi_document_is_up_to_date() {
    let generated = floe::api::openapi::document_json();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{COMMITTED} is stale: run UPDATE_OPENAPI=1 cargo nextest run --test integration openapi::"
    );
}

/// `(method, path) -> operationId` from the reference YAML, read line by line (paths at two spaces,
/// methods at four, `operationId` at six).
fn reference_operations(text: &str) -> BTreeMap<(String, String), String> {
    let mut ops = BTreeMap::new();
    let (mut path, mut method) = (None::<String>, None::<String>);
    let mut in_paths = false;
    for line in text.lines() {
        if line.starts_with("paths:") {
            in_paths = true;
            continue;
        }
        if in_paths && !line.starts_with(' ') && !line.trim().is_empty() && !line.starts_with('#') {
            in_paths = false;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /").and_then(|l| l.strip_suffix(':')) {
            path = Some(format!("/{p}"));
        } else if let Some(m) = line.strip_prefix("    ").and_then(|l| l.strip_suffix(':'))
            && ["get", "post", "put", "delete", "head"].contains(&m)
        {
            method = Some(m.to_owned());
        } else if let Some(id) = line.strip_prefix("      operationId: ")
            && let (Some(p), Some(m)) = (&path, &method)
        {
            ops.insert((m.clone(), p.clone()), id.trim().to_owned());
        }
    }
    ops
}

/// Floe's own additions under `/v1/` (not in the catalog spec), and the S3 signer spec's one route.
const EXTENSIONS: &[&str] = &[
    "get /v1/{prefix}/namespaces/{namespace}/tables/{table}/presign",
    "post /v1/aws/s3/sign",
];

#[test]
fn iceberg_operations_match_the_reference_spec() {
    let reference_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(REFERENCE);
    let Ok(text) = std::fs::read_to_string(&reference_path) else {
        panic!("reference spec not found at {}", reference_path.display());
    };
    let reference = reference_operations(&text);
    assert!(
        reference.len() > 30,
        "parsed {} reference operations",
        reference.len()
    );
    let ours: Value = serde_json::from_str(&floe::api::openapi::document_json()).unwrap();
    let mut checked = 0;
    for (path, item) in ours["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            if EXTENSIONS.contains(&format!("{method} {path}").as_str()) {
                continue;
            }
            let id = op["operationId"].as_str().unwrap();
            let expected = reference.get(&(method.clone(), path.clone()));
            assert_eq!(
                expected.map(String::as_str),
                Some(id),
                "{method} {path} ({id}) is not in the reference spec as such"
            );
            checked += 1;
        }
    }
    // Every endpoint advertised in /v1/config is served and documented, plus getConfig and getToken.
    for endpoint in floe::api::ENDPOINTS {
        let (method, path) = endpoint.split_once(' ').unwrap();
        assert!(
            ours["paths"][path][method.to_lowercase()].is_object(),
            "advertised {endpoint} is not documented"
        );
    }
    assert_eq!(checked, floe::api::ENDPOINTS.len() + 2);
}
