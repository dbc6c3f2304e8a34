//! SigV4 signing of S3 requests on a client's behalf (remote signing and presigned URLs), and the
//! checks that a request only touches keys inside one table.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::S3Profile;

/// Characters S3 leaves unencoded in a key segment (RFC 3986 unreserved).
const KEY_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Keys that sign: temporary (with a session token) or the warehouse's own.
pub struct SigningKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Whether a request reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Read,
    Write,
}

/// A request [`check_request`] accepted, and exactly what the signature may cover: the host and
/// port of the URI that was checked (never a client's `host` header), and, for a request whose
/// body was checked (DeleteObjects), that body's SHA-256, so no other body can be sent with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedRequest {
    pub needs: Needs,
    /// `host[:port]` of the checked URI.
    pub host: String,
    /// Lower-case hex SHA-256 of the checked body; signed as `x-amz-content-sha256`.
    pub body_sha256: Option<String>,
}

/// An S3 request a client wants signed, as the spec's `RemoteSignRequest` carries it.
pub struct SignRequest<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub headers: &'a BTreeMap<String, Vec<String>>,
    pub body: Option<&'a str>,
}

/// The URL of one object, for the profile's endpoint and addressing style.
pub fn object_url(profile: &S3Profile, key: &str) -> String {
    let encoded: Vec<String> = key
        .split('/')
        .map(|s| utf8_percent_encode(s, KEY_SEGMENT).to_string())
        .collect();
    let key = encoded.join("/");
    let bucket = &profile.bucket;
    match &profile.endpoint {
        Some(ep) if profile.path_style => format!("{}/{bucket}/{key}", ep.trim_end_matches('/')),
        Some(ep) => {
            let (scheme, host) = ep.split_once("://").unwrap_or(("https", ep));
            format!("{scheme}://{bucket}.{}/{key}", host.trim_end_matches('/'))
        }
        None if profile.path_style => {
            format!("https://s3.{}.amazonaws.com/{bucket}/{key}", profile.region)
        }
        None => format!("https://{bucket}.s3.{}.amazonaws.com/{key}", profile.region),
    }
}

/// A presigned URL: SigV4 in the query string, valid for `ttl`.
pub fn presign(
    method: &str,
    url: &str,
    region: &str,
    keys: &SigningKeys,
    ttl: Duration,
) -> Result<String, String> {
    let host = host_of(url)?;
    let headers = [("host".to_owned(), host)];
    let signed = sign_with(
        method,
        url,
        &headers,
        SignableBody::UnsignedPayload,
        region,
        keys,
        Some(ttl),
    )?;
    Ok(signed.0)
}

/// The `x-amz-*` headers the signer signs (lower case; a trailing `*` is a prefix): checksums,
/// the object's own metadata, storage class and encryption. They describe the object the key
/// names. Any other `x-amz-*` header is refused by [`check_request`]: some name another object
/// (`x-amz-copy-source*` reads any object the signer's keys can) or widen access (`x-amz-acl`,
/// `x-amz-grant-*`).
const SIGNED_AMZ_HEADERS: &[&str] = &[
    "x-amz-content-sha256",
    "x-amz-checksum-*",
    "x-amz-sdk-checksum-algorithm",
    "x-amz-trailer",
    "x-amz-decoded-content-length",
    "x-amz-meta-*",
    "x-amz-storage-class",
    "x-amz-server-side-encryption*",
    "x-amz-expected-bucket-owner",
];

/// Headers the signer sets itself; a client's are dropped (stale or forged).
const SIGNER_HEADERS: &[&str] = &["authorization", "x-amz-date", "x-amz-security-token"];

/// Headers left unsigned because they change between attempts or do not reach S3's decision.
const UNSIGNED_AMZ_HEADERS: &[&str] = &["x-amz-user-agent"];

fn on_list(list: &[&str], name: &str) -> bool {
    list.iter().any(|entry| match entry.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == *entry,
    })
}

/// Whether a client header (lower case) is signed: the host, the body's type and checksum, and
/// the `x-amz-*` headers on [`SIGNED_AMZ_HEADERS`].
fn signed_header(name: &str) -> bool {
    matches!(name, "host" | "content-md5" | "content-type") || on_list(SIGNED_AMZ_HEADERS, name)
}

/// Refuses a request carrying an `x-amz-*` header the signer does not sign: it might name another
/// object or change who may read this one.
fn check_headers(headers: &BTreeMap<String, Vec<String>>) -> Result<(), String> {
    for name in headers.keys() {
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("x-amz-copy-source") {
            return Err(format!(
                "'{lower}' reads another object: copies are not signed (read the source and write it instead)"
            ));
        }
        if lower.starts_with("x-amz-")
            && !signed_header(&lower)
            && !on_list(SIGNER_HEADERS, &lower)
            && !on_list(UNSIGNED_AMZ_HEADERS, &lower)
        {
            return Err(format!("the header '{lower}' is not signed"));
        }
    }
    Ok(())
}

/// Signs a client's request that [`check_request`] accepted, with SigV4 in headers. The host is
/// the checked URI's; a checked body is signed by its hash (`x-amz-content-sha256`), so S3 takes
/// no other body with the signature. Returns the URI and only the headers the client must add or
/// replace (`authorization`, `x-amz-date`, `x-amz-security-token`, `x-amz-content-sha256` when
/// the signer chose it): clients merge them into the request they already have.
pub fn sign_headers(
    req: &SignRequest,
    checked: &CheckedRequest,
    region: &str,
    keys: &SigningKeys,
) -> Result<(String, BTreeMap<String, Vec<String>>), String> {
    let mut headers: Vec<(String, String)> = vec![("host".into(), checked.host.clone())];
    let mut payload = None;
    for (name, values) in req.headers {
        let lower = name.to_ascii_lowercase();
        // Signing headers are ours to set; a client's would be stale or forged. The host is the
        // checked URI's.
        if on_list(SIGNER_HEADERS, &lower) || !signed_header(&lower) || lower == "host" {
            continue;
        }
        if lower == "x-amz-content-sha256" {
            payload = values.first().cloned();
            continue;
        }
        headers.push((lower, values.join(",")));
    }
    // The checked body's hash, else the client's, else unsigned; the signer's own choice goes
    // back to the client.
    let (hash, chosen) = match (&checked.body_sha256, payload) {
        (Some(hash), _) => (hash.clone(), true),
        (None, Some(client)) => (client, false),
        (None, None) => ("UNSIGNED-PAYLOAD".to_owned(), true),
    };
    headers.push(("x-amz-content-sha256".into(), hash.clone()));
    let body = match hash.as_str() {
        "UNSIGNED-PAYLOAD" => SignableBody::UnsignedPayload,
        hash => SignableBody::Precomputed(hash.to_owned()),
    };
    let (uri, signed) = sign_with(req.method, req.uri, &headers, body, region, keys, None)?;
    let mut added: BTreeMap<String, Vec<String>> = signed
        .into_iter()
        .filter(|(n, _)| n != "x-amz-content-sha256")
        .map(|(n, v)| (n, vec![v]))
        .collect();
    if chosen {
        added.insert("x-amz-content-sha256".into(), vec![hash]);
    }
    Ok((uri, added))
}

fn sign_with(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: SignableBody,
    region: &str,
    keys: &SigningKeys,
    expires_in: Option<Duration>,
) -> Result<(String, Vec<(String, String)>), String> {
    let identity = aws_credential_types::Credentials::new(
        keys.access_key_id.clone(),
        keys.secret_access_key.clone(),
        keys.session_token.clone(),
        None,
        "floe-signer",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = if expires_in.is_some() {
        PayloadChecksumKind::NoHeader
    } else {
        PayloadChecksumKind::XAmzSha256
    };
    if let Some(ttl) = expires_in {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(ttl);
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        body,
    )
    .map_err(|e| format!("cannot sign {url}: {e}"))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| format!("cannot sign {url}: {e}"))?
        .into_parts();
    let (signed_headers, params) = instructions.into_parts();
    let mut url = url.to_owned();
    for (name, value) in params {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(name);
        url.push('=');
        url.push_str(&utf8_percent_encode(&value, KEY_SEGMENT).to_string());
    }
    let signed = signed_headers
        .into_iter()
        .map(|h| (h.name().to_owned(), h.value().to_owned()))
        .collect();
    Ok((url, signed))
}

fn host_of(url: &str) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("'{url}' is not a URL: {e}"))?;
    host_and_port(&parsed).ok_or_else(|| format!("'{url}' has no host"))
}

/// Query parameters an object request may carry (multipart, versions, response overrides).
fn object_param_allowed(name: &str) -> bool {
    matches!(
        name,
        "uploads" | "uploadId" | "partNumber" | "versionId" | "x-id"
    ) || name.starts_with("response-")
        || name.starts_with("X-Amz-")
}

/// Query parameters a bucket-level list may carry.
fn list_param_allowed(name: &str) -> bool {
    matches!(
        name,
        "list-type"
            | "prefix"
            | "delimiter"
            | "continuation-token"
            | "start-after"
            | "max-keys"
            | "encoding-type"
            | "fetch-owner"
            | "marker"
            | "x-id"
    )
}

/// The path of `uri` exactly as sent: after the authority, before any query or fragment.
fn raw_path(uri: &str) -> &str {
    let after_scheme = uri.find("://").map_or(uri, |i| &uri[i + 3..]);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    path.split(['?', '#']).next().unwrap_or_default()
}

/// `host[:port]` of a URL, the port included whenever it is not the scheme's default.
fn host_and_port(url: &url::Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    })
}

/// Checks that a request touches only keys under `table_key_prefix` (which ends in `/`) of the
/// profile's bucket, and says whether it reads or writes. Refuses anything it does not understand,
/// and anything S3 could read differently from this check: a path that is not already in the
/// normal form checked (`.`, `..`, backslashes, encoded slashes), a host or port other than the
/// warehouse's endpoint, a query parameter given twice, a fragment.
pub fn check_request(
    profile: &S3Profile,
    req: &SignRequest,
    table_key_prefix: &str,
) -> Result<CheckedRequest, String> {
    debug_assert!(table_key_prefix.ends_with('/'));
    check_headers(req.headers)?;
    let url = url::Url::parse(req.uri).map_err(|e| format!("'{}' is not a URL: {e}", req.uri))?;
    if url.fragment().is_some() {
        return Err("a URI with a fragment is not signed".into());
    }
    let sent_path = raw_path(req.uri);
    let raw_path = url.path();
    if sent_path != raw_path {
        return Err(format!(
            "the path '{sent_path}' is not in normal form ('{raw_path}'): '.', '..' and characters \
             S3 reads differently are refused"
        ));
    }
    if raw_path.to_ascii_lowercase().contains("%2f") || raw_path.contains('\\') {
        return Err("encoded slashes and backslashes are refused in object keys".into());
    }
    let host = url.host_str().unwrap_or_default();
    let authority = host_and_port(&url).ok_or_else(|| format!("'{}' has no host", req.uri))?;
    let bucket = &profile.bucket;
    let virtual_host = host.starts_with(&format!("{bucket}."));
    let path = percent_decode_str(raw_path)
        .decode_utf8()
        .map_err(|_| "the key is not UTF-8".to_owned())?;
    let key: Cow<str> = if virtual_host {
        Cow::Borrowed(path.trim_start_matches('/'))
    } else {
        let rest = path.strip_prefix('/').unwrap_or(&path);
        match rest.split_once('/') {
            Some((b, k)) if b == bucket => Cow::Owned(k.to_owned()),
            None if rest == bucket => Cow::Borrowed(""),
            _ => return Err(format!("the request is not for bucket {bucket}")),
        }
    };
    if let Some(ep) = &profile.endpoint {
        let ep_authority = url::Url::parse(ep)
            .ok()
            .and_then(|u| host_and_port(&u))
            .unwrap_or_default();
        if authority != ep_authority && authority != format!("{bucket}.{ep_authority}") {
            return Err(format!(
                "the request is not for the warehouse's endpoint {ep}"
            ));
        }
    } else if !host.ends_with(".amazonaws.com") || url.port().is_some() {
        return Err("the request is not for AWS S3".into());
    }
    let method = req.method.to_ascii_uppercase();
    let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let mut names = std::collections::HashSet::new();
    if let Some((name, _)) = params.iter().find(|(n, _)| !names.insert(n.as_str())) {
        return Err(format!("the query parameter '{name}' is given twice"));
    }
    let needs = if key.is_empty() {
        if method == "POST"
            && params.iter().any(|(n, _)| n == "delete")
            && !profile.signs_batch_deletes()
        {
            return Err(
                "batch deletes are not signed for this warehouse (its storage does not verify a \
                 signed body hash; setting sign_batch_deletes): delete objects one at a time"
                    .into(),
            );
        }
        check_bucket_request(&method, &params, req.body, table_key_prefix)?
    } else {
        check_object_request(&method, &key, &params, table_key_prefix)?
    };
    let body_sha256 = match (&method[..], req.body) {
        ("POST", Some(body)) if params.iter().any(|(n, _)| n == "delete") => {
            let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes()));
            let sent = req
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-content-sha256"))
                .and_then(|(_, v)| v.first());
            if let Some(sent) = sent
                && sent != "UNSIGNED-PAYLOAD"
                && !sent.eq_ignore_ascii_case(&hash)
            {
                return Err(
                    "x-amz-content-sha256 is not the hash of the body that was checked".into(),
                );
            }
            Some(hash)
        }
        _ => None,
    };
    Ok(CheckedRequest {
        needs,
        host: authority,
        body_sha256,
    })
}

fn check_object_request(
    method: &str,
    key: &str,
    params: &[(String, String)],
    table_key_prefix: &str,
) -> Result<Needs, String> {
    check_key(key, table_key_prefix)?;
    if let Some((name, _)) = params.iter().find(|(n, _)| !object_param_allowed(n)) {
        return Err(format!("the object sub-resource '{name}' is not signed"));
    }
    match method {
        "GET" | "HEAD" => Ok(Needs::Read),
        "PUT" | "POST" | "DELETE" => Ok(Needs::Write),
        other => Err(format!("method {other} is not signed")),
    }
}

fn check_bucket_request(
    method: &str,
    params: &[(String, String)],
    body: Option<&str>,
    table_key_prefix: &str,
) -> Result<Needs, String> {
    if method == "POST" && params.iter().any(|(n, _)| n == "delete") {
        let body = body.ok_or("a DeleteObjects request must carry its body to be checked")?;
        let keys = delete_keys(body)?;
        if keys.is_empty() {
            return Err("a DeleteObjects body without keys".into());
        }
        for k in &keys {
            check_key(k, table_key_prefix)?;
        }
        return Ok(Needs::Write);
    }
    if method == "GET" || method == "HEAD" {
        if let Some((name, _)) = params.iter().find(|(n, _)| !list_param_allowed(n)) {
            return Err(format!("the bucket sub-resource '{name}' is not signed"));
        }
        let prefix = params
            .iter()
            .find(|(n, _)| n == "prefix")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        if !prefix.starts_with(table_key_prefix) || has_bad_segment(prefix) {
            return Err(format!(
                "a list must stay inside the table: prefix '{prefix}' does not start with '{table_key_prefix}'"
            ));
        }
        return Ok(Needs::Read);
    }
    Err("only lists and DeleteObjects are signed at bucket level".into())
}

fn has_bad_segment(key: &str) -> bool {
    key.split('/').any(|s| s == "." || s == "..") || key.contains("//") || key.contains('\\')
}

/// A key is inside the table when it starts with the table prefix and walks nowhere.
fn check_key(key: &str, table_key_prefix: &str) -> Result<(), String> {
    if !key.starts_with(table_key_prefix) || key.len() == table_key_prefix.len() {
        return Err(format!(
            "key '{key}' is outside the table ({table_key_prefix})"
        ));
    }
    if has_bad_segment(key) || key.chars().any(char::is_control) {
        return Err(format!(
            "key '{key}' has '.', '..' or empty segments, or control characters"
        ));
    }
    Ok(())
}

/// The `<Key>`s of a DeleteObjects body.
fn delete_keys(body: &str) -> Result<Vec<String>, String> {
    let bad = |e: aws_smithy_xml::decode::XmlDecodeError| format!("DeleteObjects body: {e}");
    let mut doc = aws_smithy_xml::decode::Document::new(body);
    let mut root = doc.root_element().map_err(bad)?;
    if !root.start_el().matches("Delete") {
        return Err("DeleteObjects body: the root element is not <Delete>".into());
    }
    let mut keys = Vec::new();
    while let Some(mut el) = root.next_tag() {
        if el.start_el().matches("Object") {
            while let Some(mut field) = el.next_tag() {
                if field.start_el().matches("Key") {
                    keys.push(
                        aws_smithy_xml::decode::try_data(&mut field)
                            .map_err(bad)?
                            .into_owned(),
                    );
                }
            }
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> S3Profile {
        let mut p = S3Profile::new("lake", "wh", "us-east-1");
        p.endpoint = Some("http://127.0.0.1:9000".into());
        p.path_style = true;
        p.sign_batch_deletes = Some(true);
        p
    }

    fn check(method: &str, uri: &str, body: Option<&str>) -> Result<Needs, String> {
        let headers = BTreeMap::new();
        let req = SignRequest {
            method,
            uri,
            headers: &headers,
            body,
        };
        check_request(&profile(), &req, "wh/ns/t1/").map(|c| c.needs)
    }

    const BASE: &str = "http://127.0.0.1:9000/lake";

    #[test]
    fn headers_naming_another_object_or_widening_access_are_refused() {
        let uri = format!("{BASE}/wh/ns/t1/data/x.parquet");
        for (name, value) in [
            ("x-amz-copy-source", "/lake/wh/ns/t2/data/secret.parquet"),
            ("X-Amz-Copy-Source-Range", "bytes=0-9"),
            ("x-amz-acl", "public-read"),
            ("x-amz-grant-full-control", "id=someone"),
            ("x-amz-website-redirect-location", "/elsewhere"),
        ] {
            let headers = BTreeMap::from([(name.to_owned(), vec![value.to_owned()])]);
            let req = SignRequest {
                method: "PUT",
                uri: &uri,
                headers: &headers,
                body: None,
            };
            let refused = check_request(&profile(), &req, "wh/ns/t1/").unwrap_err();
            assert!(refused.contains(&name.to_ascii_lowercase()), "{refused}");
        }
        let headers = BTreeMap::from([
            ("x-amz-meta-writer".to_owned(), vec!["spark".to_owned()]),
            (
                "x-amz-checksum-crc32".to_owned(),
                vec!["AAAAAA==".to_owned()],
            ),
            (
                "x-amz-server-side-encryption".to_owned(),
                vec!["aws:kms".to_owned()],
            ),
            ("x-amz-user-agent".to_owned(), vec!["sdk".to_owned()]),
        ]);
        let req = SignRequest {
            method: "PUT",
            uri: &uri,
            headers: &headers,
            body: None,
        };
        assert_eq!(
            check_request(&profile(), &req, "wh/ns/t1/").map(|c| c.needs),
            Ok(Needs::Write)
        );
    }

    #[test]
    fn inside_the_table_is_signed() {
        assert_eq!(
            check("GET", &format!("{BASE}/wh/ns/t1/data/a.parquet"), None),
            Ok(Needs::Read)
        );
        assert_eq!(
            check("PUT", &format!("{BASE}/wh/ns/t1/data/a.parquet"), None),
            Ok(Needs::Write)
        );
        assert_eq!(
            check("POST", &format!("{BASE}/wh/ns/t1/d/a?uploads"), None),
            Ok(Needs::Write)
        );
        assert_eq!(
            check(
                "GET",
                &format!("{BASE}?list-type=2&prefix=wh/ns/t1/data/"),
                None
            ),
            Ok(Needs::Read)
        );
    }

    #[test]
    fn outside_sibling_and_traversal_are_refused() {
        for uri in [
            format!("{BASE}/wh/ns/t10/data/a.parquet"),
            format!("{BASE}/wh/ns/t2/a"),
            format!("{BASE}/wh/ns/t1/../t2/a"),
            format!("{BASE}/wh/ns/t1/%2E%2E/t2/a"),
            format!("{BASE}/wh/ns/t1%2F..%2Ft2/a"),
            format!("{BASE}/wh/ns/t1/"),
            format!("{BASE}/wh/ns/t1//a"),
            "http://127.0.0.1:9000/other/wh/ns/t1/a".to_owned(),
            "http://evil.example.com/lake/wh/ns/t1/a".to_owned(),
            format!("{BASE}/wh/ns/t1/a?acl"),
        ] {
            assert!(check("GET", &uri, None).is_err(), "{uri} was signed");
        }
        for list in [
            format!("{BASE}?list-type=2&prefix=wh/ns/t1"),
            format!("{BASE}?list-type=2&prefix=wh/ns/"),
            format!("{BASE}?list-type=2"),
            format!("{BASE}?policy"),
        ] {
            assert!(check("GET", &list, None).is_err(), "{list} was signed");
        }
        assert!(check("PUT", &format!("{BASE}?policy"), None).is_err());
    }

    #[test]
    fn every_key_of_a_delete_objects_body_is_checked() {
        let uri = format!("{BASE}?delete");
        let ok = "<Delete><Object><Key>wh/ns/t1/a</Key></Object><Object><Key>wh/ns/t1/b</Key></Object></Delete>";
        assert_eq!(check("POST", &uri, Some(ok)), Ok(Needs::Write));
        let bad = "<Delete><Object><Key>wh/ns/t1/a</Key></Object><Object><Key>wh/ns/t10/b</Key></Object></Delete>";
        assert!(check("POST", &uri, Some(bad)).is_err());
        assert!(check("POST", &uri, None).is_err(), "body required");
        assert!(check("POST", &uri, Some("<Delete></Delete>")).is_err());
        let escaped = "<Delete><Object><Key>wh/ns/t1/&#46;&#46;/x</Key></Object></Delete>";
        assert!(check("POST", &uri, Some(escaped)).is_err());
    }

    /// Issue 23, escape 3: a DeleteObjects naming only the table's own key was signed over
    /// `UNSIGNED-PAYLOAD` (or over a client's hash of another body), so any body could be sent
    /// with the signature. The signature covers the hash of the body that was checked.
    #[test]
    fn a_delete_objects_signature_covers_only_the_body_that_was_checked() {
        let uri = format!("{BASE}?delete");
        let body = "<Delete><Object><Key>wh/ns/t1/a</Key></Object></Delete>";
        let other = "<Delete><Object><Key>wh/ns/t2/a</Key></Object></Delete>";
        let hash = |b: &str| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b.as_bytes()));
        let keys = SigningKeys {
            access_key_id: "AKID".into(),
            secret_access_key: "secret".into(),
            session_token: None,
        };
        for sent in [None, Some("UNSIGNED-PAYLOAD".to_owned()), Some(hash(body))] {
            let headers: BTreeMap<String, Vec<String>> = sent
                .iter()
                .map(|h| ("x-amz-content-sha256".to_owned(), vec![h.clone()]))
                .collect();
            let req = SignRequest {
                method: "POST",
                uri: &uri,
                headers: &headers,
                body: Some(body),
            };
            let checked = check_request(&profile(), &req, "wh/ns/t1/").unwrap();
            assert_eq!(checked.body_sha256, Some(hash(body)));
            let (_, out) = sign_headers(&req, &checked, "us-east-1", &keys).unwrap();
            assert_eq!(out["x-amz-content-sha256"], vec![hash(body)], "{sent:?}");
        }
        let headers = BTreeMap::from([("x-amz-content-sha256".to_owned(), vec![hash(other)])]);
        let req = SignRequest {
            method: "POST",
            uri: &uri,
            headers: &headers,
            body: Some(body),
        };
        let refused = check_request(&profile(), &req, "wh/ns/t1/").unwrap_err();
        assert!(refused.contains("not the hash of the body"), "{refused}");
    }

    /// Issue 23, escape 3: SeaweedFS deleted what a body sent with a signature named, whatever
    /// hash was signed. Batch deletes are signed only where the storage verifies the hash.
    #[test]
    fn batch_deletes_are_signed_only_where_the_body_hash_is_verified() {
        let uri = format!("{BASE}?delete");
        let body = "<Delete><Object><Key>wh/ns/t1/a</Key></Object></Delete>";
        let headers = BTreeMap::new();
        let req = SignRequest {
            method: "POST",
            uri: &uri,
            headers: &headers,
            body: Some(body),
        };
        let mut p = profile();
        p.sign_batch_deletes = None;
        let refused = check_request(&p, &req, "wh/ns/t1/").unwrap_err();
        assert!(refused.contains("sign_batch_deletes"), "{refused}");
        assert!(
            !p.signs_batch_deletes(),
            "off for an S3-compatible endpoint"
        );
        p.endpoint = None;
        assert!(p.signs_batch_deletes(), "on for AWS");
    }

    /// Issue 23, escape 3: what is signed is what was checked: the URI's own host and port, a
    /// path already in normal form, each query parameter once.
    #[test]
    fn only_what_was_checked_is_signed() {
        for uri in [
            // Normalized by the check to t1/a, sent to S3 as written.
            format!("{BASE}/wh/ns/t2/../t1/a"),
            format!("{BASE}/wh/ns/t2/%2e%2e/t1/a"),
            format!("{BASE}/wh/ns/t1/./a"),
            format!("{BASE}/wh/ns/t1/a#frag"),
            // Another port of the same host.
            "http://127.0.0.1:9001/lake/wh/ns/t1/a".to_owned(),
            // Two prefixes: only the first was checked.
            format!("{BASE}?list-type=2&prefix=wh/ns/t1/&prefix=wh/ns/t2/"),
            format!("{BASE}/wh/ns/t1/a?partNumber=1&partNumber=2"),
        ] {
            assert!(check("GET", &uri, None).is_err(), "{uri} was signed");
        }
        let headers = BTreeMap::from([("Host".to_owned(), vec!["evil.example.com".to_owned()])]);
        let uri = format!("{BASE}/wh/ns/t1/a");
        let req = SignRequest {
            method: "GET",
            uri: &uri,
            headers: &headers,
            body: None,
        };
        let checked = check_request(&profile(), &req, "wh/ns/t1/").unwrap();
        assert_eq!(
            checked.host, "127.0.0.1:9000",
            "the URI's host, not the header's"
        );
    }

    #[test]
    fn urls_follow_the_addressing_style() {
        let mut p = profile();
        assert_eq!(
            object_url(&p, "wh/a b/c(1).parquet"),
            "http://127.0.0.1:9000/lake/wh/a%20b/c%281%29.parquet"
        );
        p.path_style = false;
        p.endpoint = None;
        assert_eq!(
            object_url(&p, "wh/x"),
            "https://lake.s3.us-east-1.amazonaws.com/wh/x"
        );
    }

    #[test]
    fn signing_returns_only_the_headers_to_add() {
        let mut headers = BTreeMap::new();
        headers.insert("Authorization".to_owned(), vec!["forged".to_owned()]);
        headers.insert("Range".to_owned(), vec!["bytes=0-9".to_owned()]);
        let uri = format!("{BASE}/wh/ns/t1/a");
        let req = SignRequest {
            method: "GET",
            uri: &uri,
            headers: &headers,
            body: None,
        };
        let keys = SigningKeys {
            access_key_id: "AKID".into(),
            secret_access_key: "secret".into(),
            session_token: Some("tok".into()),
        };
        let checked = check_request(&profile(), &req, "wh/ns/t1/").unwrap();
        let (out_uri, out) = sign_headers(&req, &checked, "us-east-1", &keys).unwrap();
        assert_eq!(out_uri, uri);
        let auth = &out["authorization"][0];
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKID/"),
            "{auth}"
        );
        assert!(
            auth.contains(
                "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"
            ),
            "{auth}"
        );
        assert_eq!(out["x-amz-security-token"], vec!["tok".to_owned()]);
        assert!(
            !out.contains_key("range") && !out.contains_key("host"),
            "only headers to add come back: {out:?}"
        );
        assert_eq!(
            out["x-amz-content-sha256"],
            vec!["UNSIGNED-PAYLOAD".to_owned()]
        );
        let url = presign("GET", &uri, "us-east-1", &keys, Duration::from_secs(60)).unwrap();
        assert!(url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires=60"));
    }
}
