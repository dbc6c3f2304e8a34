//! Properties of the decisions that keep a caller in its lane, checked on generated input
//! (proptest): the STS session policy names only its table's keys, the remote signer signs only
//! requests for keys inside the table, names parse without panics and never hold a separator,
//! and page tokens come back only as issued.
//!
//! Cases per property: `PROPTEST_CASES` (proptest's own setting; 256 by default, which is what CI
//! runs). `PROPTEST_CASES=100000 cargo nextest run --test integration properties::` is the longer run.

use std::collections::BTreeMap;

use floe::catalog::{decode_page_token, encode_page_token};
use floe::domain::{NamespaceIdent, ObjectName};
use floe::storage::S3Profile;
use floe::storage::s3::policy::{PolicyScope, S3Access, escape_iam, session_policy};
use floe::storage::s3::signer::{SignRequest, check_request};
use proptest::prelude::*;
use serde_json::Value;

/// Key segments an attacker would try: wildcards, IAM variables, dots, encoded separators.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_-]{1,12}",
        Just("*".to_owned()),
        Just("?".to_owned()),
        Just("${aws:username}".to_owned()),
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("%2F".to_owned()),
        Just("a%2f..%2fb".to_owned()),
        "\\PC{1,6}",
    ]
}

fn table_key_prefix() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z0-9_-]{1,10}", 1..5)
        .prop_map(|parts| format!("{}/", parts.join("/")))
}

fn resources(policy: &Value) -> Vec<String> {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Resource"].as_str().unwrap().to_owned())
        .collect()
}

proptest! {
    /// Every statement of a session policy names the table's objects, the bucket itself (to list,
    /// under a condition naming the table's prefix) or the KMS key; nothing wider.
    #[test]
    fn a_session_policy_names_only_its_table(
        bucket in "[a-z0-9][a-z0-9.-]{2,20}",
        parts in prop::collection::vec(segment(), 1..6),
        write in any::<bool>(),
    ) {
        let prefix = format!("{}/", parts.join("/"));
        let access = if write { S3Access::ReadWrite } else { S3Access::Read };
        let scope = PolicyScope { bucket: &bucket, key_prefix: &prefix, access, kms_key_arn: None };
        let Ok(policy) = session_policy(&scope) else {
            // Too long to fit: refused, never widened.
            return Ok(());
        };
        let value: Value = serde_json::from_str(&policy.json).unwrap();
        let objects = format!("arn:aws:s3:::{}/{}*", escape_iam(&bucket), escape_iam(&prefix));
        let bucket_arn = format!("arn:aws:s3:::{}", escape_iam(&bucket));
        for resource in resources(&value) {
            prop_assert!(resource == objects || resource == bucket_arn, "{resource}");
        }
        for statement in value["Statement"].as_array().unwrap() {
            let actions = statement["Action"].to_string();
            if statement["Resource"] == bucket_arn.as_str() && actions.contains("s3:ListBucket") {
                let prefixes = &statement["Condition"]["StringLike"]["s3:prefix"];
                for p in prefixes.as_array().unwrap() {
                    prop_assert!(p.as_str().unwrap().starts_with(&escape_iam(&prefix)));
                }
            }
            if !write {
                prop_assert!(!actions.contains("Put") && !actions.contains("Delete"), "{actions}");
            }
        }
        // The only wildcard left unescaped is the one that ends the object resource.
        let body = objects.strip_suffix('*').unwrap();
        let unescaped = body.replace("${*}", "").replace("${?}", "").replace("${$}", "");
        prop_assert!(!unescaped.contains('*') && !unescaped.contains('?') && !unescaped.contains('$'));
    }

    /// The signer signs a request only when its key lies strictly inside the table prefix, with
    /// no `.`/`..`/empty segment, and never a copy from elsewhere.
    #[test]
    fn the_signer_signs_only_keys_inside_the_table(
        prefix in table_key_prefix(),
        parts in prop::collection::vec(segment(), 0..5),
        method in prop_oneof![Just("GET"), Just("PUT"), Just("DELETE"), Just("HEAD"), Just("POST"), Just("PATCH")],
        copy_from in prop::option::of("[a-z/]{1,20}"),
    ) {
        let mut profile = S3Profile::new("lake", "", "us-east-1");
        profile.endpoint = Some("http://s3.test:8333".into());
        profile.path_style = true;
        let key = parts.join("/");
        let uri = format!("http://s3.test:8333/lake/{key}");
        let mut headers = BTreeMap::new();
        if let Some(source) = &copy_from {
            headers.insert("x-amz-copy-source".to_owned(), vec![format!("lake/{source}")]);
        }
        let req = SignRequest { method, uri: &uri, headers: &headers, body: None };
        if let Ok(needs) = check_request(&profile, &req, &prefix) {
            prop_assert!(copy_from.is_none(), "a copy was signed");
            // The key S3 reads is the path as sent, not the checker's parse of it.
            let sent_path = uri.strip_prefix("http://s3.test:8333").unwrap();
            let decoded = percent_encoding::percent_decode_str(sent_path).decode_utf8().unwrap();
            let signed_key = decoded.strip_prefix("/lake/").unwrap_or("");
            if !signed_key.is_empty() {
                prop_assert!(signed_key.starts_with(&prefix) && signed_key.len() > prefix.len(),
                    "{signed_key} is outside {prefix}");
                let inside = &signed_key[prefix.len()..];
                prop_assert!(inside.split('/').all(|s| !s.is_empty() && s != "." && s != ".."),
                    "{signed_key}");
            }
            let _ = needs.needs;
        }
    }

    /// Any text parses as a namespace or a name, or is refused; nothing panics, an accepted level
    /// never holds a separator, and a namespace round-trips through its URL form.
    #[test]
    fn names_parse_or_are_refused(text in "\\PC{0,40}|[\\x00-\\x7f]{0,40}") {
        if let Ok(name) = ObjectName::new(text.clone()) {
            let s = name.as_str();
            prop_assert!(!s.is_empty() && s != "." && s != "..");
            prop_assert!(!s.contains('/') && !s.contains('\\') && !s.chars().any(char::is_control));
        }
        if let Ok(ns) = NamespaceIdent::from_url_segment(&text) {
            let joined = ns.parts().join("\u{1f}");
            prop_assert_eq!(NamespaceIdent::from_url_segment(&joined).unwrap(), ns);
        }
    }

    /// A page token decodes to the name it was issued for, and any other token (made up, or one
    /// issued by a server with another key, or changed in one character) is refused.
    #[test]
    fn page_tokens_come_back_only_as_issued(
        name in "\\PC{0,60}",
        junk in "\\PC{0,80}",
        flip in any::<prop::sample::Index>(),
    ) {
        let key = [9u8; 32];
        let token = encode_page_token(&key, &name);
        prop_assert_eq!(decode_page_token(&key, &token).unwrap(), name.clone());
        prop_assert!(decode_page_token(&[8u8; 32], &token).is_err());
        if junk != token {
            prop_assert!(decode_page_token(&key, &junk).is_err());
        }
        let mut bytes = token.clone().into_bytes();
        let i = flip.index(bytes.len());
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(bytes).unwrap();
        if changed != token {
            prop_assert!(decode_page_token(&key, &changed).is_err(), "{changed}");
        }
    }
}

/// The signer property's setup signs an ordinary request, so its checks do run on accepted ones.
#[test]
fn the_signer_setup_signs_an_ordinary_request_inside_the_table() {
    let mut profile = S3Profile::new("lake", "", "us-east-1");
    profile.endpoint = Some("http://s3.test:8333".into());
    profile.path_style = true;
    let headers = BTreeMap::new();
    for method in ["GET", "PUT", "DELETE", "HEAD"] {
        let req = SignRequest {
            method,
            uri: "http://s3.test:8333/lake/wh/t/data/x.parquet",
            headers: &headers,
            body: None,
        };
        assert!(check_request(&profile, &req, "wh/t/").is_ok(), "{method}");
    }
    let outside = SignRequest {
        method: "GET",
        uri: "http://s3.test:8333/lake/wh/t2/data/x.parquet",
        headers: &headers,
        body: None,
    };
    assert!(check_request(&profile, &outside, "wh/t/").is_err());
}
