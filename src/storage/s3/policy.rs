//! The inline session policy that narrows an assumed role to one table's S3 prefix.
//!
//! The policy never grants more than the table prefix (which always ends in `/`, so `t1` never
//! covers `t10`). When it is too long for STS, it is shortened in fixed steps that only drop
//! conveniences, never widen: see [`PolicyLevel`]. Past the last step the table cannot be vended.

use serde_json::{Value, json};

/// AWS's limit on the plain text of a session policy, in characters.
pub const MAX_POLICY_CHARS: usize = 2048;

/// How much the policy says; each level is tried in order until one fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyLevel {
    /// Separate, named statements for reading, writing, listing, bucket location and KMS.
    Full,
    /// No statement ids, and read and write object actions in one statement.
    Merged,
    /// Merged, without `s3:GetBucketLocation`, `s3:GetObjectVersion` and
    /// `s3:ListMultipartUploadParts` (clients that are told the region do not need them).
    Minimal,
}

/// Whether a session may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum S3Access {
    Read,
    ReadWrite,
}

/// What a session policy is built for.
#[derive(Debug, Clone)]
pub struct PolicyScope<'a> {
    pub bucket: &'a str,
    /// Key prefix of the table, ending in `/` (e.g. `wh/ns/t1/`).
    pub key_prefix: &'a str,
    pub access: S3Access,
    pub kms_key_arn: Option<&'a str>,
}

/// A policy that fits, and how far it had to be shortened.
#[derive(Debug, Clone)]
pub struct SessionPolicy {
    pub json: String,
    pub level: PolicyLevel,
}

/// Escapes IAM's special characters (`*`, `?`, `$`) so a name matches only itself.
pub fn escape_iam(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '*' => out.push_str("${*}"),
            '?' => out.push_str("${?}"),
            '$' => out.push_str("${$}"),
            c => out.push(c),
        }
    }
    out
}

/// Builds the smallest-change policy that fits [`MAX_POLICY_CHARS`], or says why none does.
pub fn session_policy(scope: &PolicyScope) -> Result<SessionPolicy, String> {
    if scope.bucket.is_empty() || scope.key_prefix.is_empty() || !scope.key_prefix.ends_with('/') {
        return Err(format!(
            "refusing to scope a session to bucket '{}' prefix '{}': the prefix must be a non-empty directory ending in '/'",
            scope.bucket, scope.key_prefix
        ));
    }
    let mut last = 0;
    for level in [PolicyLevel::Full, PolicyLevel::Merged, PolicyLevel::Minimal] {
        let json = build(scope, level).to_string();
        if json.len() <= MAX_POLICY_CHARS {
            return Ok(SessionPolicy { json, level });
        }
        last = json.len();
    }
    Err(format!(
        "the table location is too long to scope an STS session to it: the smallest session policy is {last} characters, AWS allows {MAX_POLICY_CHARS}; use a shorter location"
    ))
}

fn build(scope: &PolicyScope, level: PolicyLevel) -> Value {
    let bucket = escape_iam(scope.bucket);
    let prefix = escape_iam(scope.key_prefix);
    let objects = format!("arn:aws:s3:::{bucket}/{prefix}*");
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    let write = scope.access == S3Access::ReadWrite;
    let full = level == PolicyLevel::Full;
    let minimal = level == PolicyLevel::Minimal;

    let mut read_actions = vec!["s3:GetObject"];
    if !minimal {
        read_actions.push("s3:GetObjectVersion");
    }
    let mut write_actions = vec!["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"];
    if !minimal {
        write_actions.push("s3:ListMultipartUploadParts");
    }

    let mut statements = Vec::new();
    let statement = |sid: &str, actions: Vec<&str>, resource: &str| {
        let mut s = json!({"Effect": "Allow", "Action": actions, "Resource": resource});
        if full {
            s["Sid"] = json!(sid);
        }
        s
    };
    if full {
        statements.push(statement("TableRead", read_actions, &objects));
        if write {
            statements.push(statement("TableWrite", write_actions, &objects));
        }
    } else {
        let mut actions = read_actions;
        if write {
            actions.extend(write_actions);
        }
        statements.push(statement("TableObjects", actions, &objects));
    }
    let mut list = statement("TableList", vec!["s3:ListBucket"], &bucket_arn);
    list["Condition"] = json!({"StringLike": {"s3:prefix": [prefix, format!("{prefix}*")]}});
    statements.push(list);
    if !minimal {
        statements.push(statement(
            "BucketLocation",
            vec!["s3:GetBucketLocation"],
            &bucket_arn,
        ));
    }
    if let Some(key) = scope.kms_key_arn {
        let mut actions = vec!["kms:Decrypt", "kms:DescribeKey"];
        if write {
            actions.extend(["kms:Encrypt", "kms:GenerateDataKey"]);
        }
        statements.push(statement("TableKms", actions, key));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(key_prefix: &str, access: S3Access) -> PolicyScope<'_> {
        PolicyScope {
            bucket: "lake",
            key_prefix,
            access,
            kms_key_arn: None,
        }
    }

    fn parsed(p: &SessionPolicy) -> Value {
        serde_json::from_str(&p.json).unwrap()
    }

    #[test]
    fn read_policy_names_only_the_table_prefix() {
        let p = session_policy(&scope("wh/ns/t1/", S3Access::Read)).unwrap();
        assert_eq!(p.level, PolicyLevel::Full);
        let v = parsed(&p);
        let statements = v["Statement"].as_array().unwrap();
        assert_eq!(statements[0]["Resource"], "arn:aws:s3:::lake/wh/ns/t1/*");
        assert_eq!(
            statements[0]["Action"],
            json!(["s3:GetObject", "s3:GetObjectVersion"])
        );
        assert!(!p.json.contains("PutObject"), "read access cannot write");
        assert!(!p.json.contains("DeleteObject"));
        let list = &statements[1];
        assert_eq!(list["Action"], json!(["s3:ListBucket"]));
        assert_eq!(list["Resource"], "arn:aws:s3:::lake");
        assert_eq!(
            list["Condition"]["StringLike"]["s3:prefix"],
            json!(["wh/ns/t1/", "wh/ns/t1/*"])
        );
        assert!(!p.json.contains("\"*\""), "no bare wildcard resource");
    }

    #[test]
    fn read_write_policy_adds_writes_on_the_same_prefix_only() {
        let p = session_policy(&scope("wh/ns/t1/", S3Access::ReadWrite)).unwrap();
        let v = parsed(&p);
        let write = &v["Statement"][1];
        assert_eq!(write["Sid"], "TableWrite");
        assert_eq!(write["Resource"], "arn:aws:s3:::lake/wh/ns/t1/*");
        assert!(
            write["Action"]
                .as_array()
                .unwrap()
                .contains(&json!("s3:PutObject"))
        );
    }

    #[test]
    fn a_prefix_without_trailing_slash_is_refused() {
        // `wh/ns/t1*` would also cover `wh/ns/t10/...`.
        assert!(session_policy(&scope("wh/ns/t1", S3Access::Read)).is_err());
        assert!(session_policy(&scope("", S3Access::Read)).is_err());
    }

    #[test]
    fn wildcards_in_names_are_escaped() {
        assert_eq!(escape_iam("a*b?c$d"), "a${*}b${?}c${$}d");
        let p = session_policy(&scope("wh/n*s/t?1/", S3Access::Read)).unwrap();
        let v = parsed(&p);
        assert_eq!(
            v["Statement"][0]["Resource"],
            "arn:aws:s3:::lake/wh/n${*}s/t${?}1/*"
        );
        assert_eq!(
            v["Statement"][1]["Condition"]["StringLike"]["s3:prefix"][0],
            "wh/n${*}s/t${?}1/"
        );
    }

    #[test]
    fn kms_statement_follows_access() {
        let mut s = scope("wh/t/", S3Access::Read);
        s.kms_key_arn = Some("arn:aws:kms:us-east-1:1:key/k");
        let read = session_policy(&s).unwrap().json;
        assert!(read.contains("kms:Decrypt") && !read.contains("kms:GenerateDataKey"));
        s.access = S3Access::ReadWrite;
        let write = session_policy(&s).unwrap().json;
        assert!(write.contains("kms:GenerateDataKey"));
    }

    /// A location with one directory per namespace level, each `len` bytes long.
    fn deep_prefix(depth: usize, len: usize) -> String {
        let mut p = String::from("warehouse/");
        for i in 0..depth {
            p.push_str(&format!("{i:x}").repeat(len)[..len]);
            p.push('/');
        }
        p.push_str("table/");
        p
    }

    #[test]
    fn sizes_by_namespace_depth_and_fallback_steps() {
        // Floe's own layout uses ids (about 80 characters below the warehouse); names of 20
        // bytes per level fit in full at every depth up to the limit of 16 levels.
        for depth in 1..=16 {
            let prefix = deep_prefix(depth, 20);
            let p = session_policy(&scope(&prefix, S3Access::ReadWrite)).unwrap();
            assert!(p.json.len() <= MAX_POLICY_CHARS);
            assert_eq!(p.level, PolicyLevel::Full, "depth {depth}");
            eprintln!(
                "depth {depth:2}: prefix {} chars, policy {} chars",
                prefix.len(),
                p.json.len()
            );
        }
        // Longer names need the fallback steps; each step keeps the same scope.
        let mut seen = Vec::new();
        let mut refused = false;
        for len in 20..=60 {
            let prefix = deep_prefix(16, len);
            match session_policy(&scope(&prefix, S3Access::ReadWrite)) {
                Ok(p) => {
                    eprintln!(
                        "depth 16, {len}-byte names: {:?}, {} chars",
                        p.level,
                        p.json.len()
                    );
                    assert!(p.json.len() <= MAX_POLICY_CHARS);
                    let v = parsed(&p);
                    let objects = format!("arn:aws:s3:::lake/{prefix}*");
                    assert_eq!(v["Statement"][0]["Resource"], objects.as_str());
                    assert!(p.json.contains("s3:PutObject"));
                    seen.push(p.level);
                }
                Err(e) => {
                    assert!(e.contains("too long"), "{e}");
                    eprintln!("depth 16, {len}-byte names: refused");
                    refused = true;
                    break;
                }
            }
        }
        assert!(seen.contains(&PolicyLevel::Merged), "{seen:?}");
        assert!(seen.contains(&PolicyLevel::Minimal), "{seen:?}");
        assert!(refused, "long enough locations are refused");
        assert!(
            session_policy(&scope(&deep_prefix(16, 255), S3Access::Read)).is_err(),
            "never widened to fit"
        );
    }

    #[test]
    fn each_fallback_level_is_smaller() {
        let s = scope("wh/ns/t/", S3Access::ReadWrite);
        let full = build(&s, PolicyLevel::Full).to_string().len();
        let merged = build(&s, PolicyLevel::Merged).to_string().len();
        let minimal = build(&s, PolicyLevel::Minimal).to_string().len();
        assert!(
            full > merged && merged > minimal,
            "{full} {merged} {minimal}"
        );
    }
}
