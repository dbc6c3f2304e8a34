//! S3 specifics of vending: which role and access a session gets, the table's key prefix, the
//! client settings, and the checks of an S3 profile.

use std::collections::BTreeMap;

use super::inside_warehouse;
use super::s3_policy::S3Access;
use crate::authz::DataAccess;
use crate::catalog::{CatalogError, CatalogResult, ErrorType, Warehouse};
use crate::store::{S3Profile, S3Vending};

/// The role and the access a session gets: writers use the write role, or the read role when the
/// profile allows it; otherwise they get read-only credentials. Never wider than granted.
pub fn role_for(profile: &S3Profile, access: DataAccess) -> Option<(&str, S3Access)> {
    let read = profile.read_role_arn.as_deref()?;
    match access {
        DataAccess::ReadWrite => match profile.write_role_arn.as_deref() {
            Some(write) => Some((write, S3Access::ReadWrite)),
            None if profile.write_uses_read_role => Some((read, S3Access::ReadWrite)),
            None => Some((read, S3Access::Read)),
        },
        _ => Some((read, S3Access::Read)),
    }
}

/// The table's bucket and key prefix (ending in `/`), after checking that the location lies
/// inside the warehouse.
pub fn table_prefix(
    wh: &Warehouse,
    profile: &S3Profile,
    location: &str,
) -> CatalogResult<(String, String)> {
    let location = inside_warehouse(wh, location)?;
    let (bucket, key) = split_s3(&location)
        .ok_or_else(|| CatalogError::bad_request(format!("{location} is not an s3:// location")))?;
    if bucket != profile.bucket {
        return Err(CatalogError::new(
            ErrorType::Forbidden,
            format!("table location {location} is not in the warehouse's bucket"),
        ));
    }
    Ok((bucket.to_owned(), format!("{key}/")))
}

/// Splits `s3://bucket/key` into bucket and key.
pub fn split_s3(location: &str) -> Option<(&str, &str)> {
    location
        .strip_prefix("s3://")?
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
}

/// The non-secret client settings of an S3 warehouse: region, endpoint, addressing.
pub fn s3_client_config(profile: &S3Profile) -> BTreeMap<String, String> {
    let mut config = BTreeMap::new();
    config.insert("s3.region".into(), profile.region.clone());
    config.insert("client.region".into(), profile.region.clone());
    if let Some(ep) = &profile.endpoint {
        config.insert("s3.endpoint".into(), ep.clone());
    }
    config.insert(
        "s3.path-style-access".into(),
        profile.path_style.to_string(),
    );
    config.insert(
        "s3.force-virtual-addressing".into(),
        (!profile.path_style).to_string(),
    );
    config
}

/// Checks an S3 profile's vending settings; the message names the setting at fault.
pub fn check_s3_profile(p: &S3Profile, has_credential: bool) -> Result<(), String> {
    if p.bucket.len() < 3
        || p.bucket.len() > 63
        || !p
            .bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    {
        return Err(format!(
            "bucket '{}' is not a valid S3 bucket name (3-63 lowercase letters, digits, '-' and '.')",
            p.bucket
        ));
    }
    if p.region.is_empty() {
        return Err("region must be set".into());
    }
    for (name, url) in [("endpoint", &p.endpoint), ("sts_endpoint", &p.sts_endpoint)] {
        if let Some(url) = url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!("{name} must be an http:// or https:// URL"));
        }
    }
    for (name, arn) in [
        ("read_role_arn", &p.read_role_arn),
        ("write_role_arn", &p.write_role_arn),
    ] {
        if let Some(arn) = arn
            && !(arn.starts_with("arn:") && arn.contains(":role/"))
        {
            return Err(format!(
                "{name} '{arn}' is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
            ));
        }
    }
    if !(900..=43200).contains(&p.session_duration_secs) {
        return Err(format!(
            "session_duration_secs must be between 900 and 43200, not {}",
            p.session_duration_secs
        ));
    }
    if p.write_role_arn.is_some() && p.read_role_arn.is_none() {
        return Err("write_role_arn needs a read_role_arn too".into());
    }
    match p.vending_mode() {
        S3Vending::Sts if p.read_role_arn.is_none() => {
            Err("vending 'sts' needs read_role_arn (or set vending to 'static' or 'off')".into())
        }
        S3Vending::Static if !has_credential => Err(
            "vending 'static' hands out the warehouse's own keys, so it needs a storage credential"
                .into(),
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_never_get_more_than_the_profile_allows() {
        let mut p = S3Profile::new("lake", "wh", "us-east-1");
        assert!(
            role_for(&p, DataAccess::Read).is_none(),
            "no role, no session"
        );
        p.read_role_arn = Some("arn:aws:iam::1:role/r".into());
        assert_eq!(
            role_for(&p, DataAccess::ReadWrite),
            Some(("arn:aws:iam::1:role/r", S3Access::Read))
        );
        p.write_uses_read_role = true;
        assert_eq!(
            role_for(&p, DataAccess::ReadWrite),
            Some(("arn:aws:iam::1:role/r", S3Access::ReadWrite))
        );
        p.write_role_arn = Some("arn:aws:iam::1:role/w".into());
        assert_eq!(
            role_for(&p, DataAccess::ReadWrite),
            Some(("arn:aws:iam::1:role/w", S3Access::ReadWrite))
        );
        assert_eq!(
            role_for(&p, DataAccess::Read),
            Some(("arn:aws:iam::1:role/r", S3Access::Read))
        );
    }

    #[test]
    fn profile_checks_name_the_setting() {
        let mut p = S3Profile::new("lake", "wh", "us-east-1");
        assert!(
            check_s3_profile(&p, false).is_ok(),
            "vending off by default"
        );
        p.vending = Some(S3Vending::Sts);
        assert!(
            check_s3_profile(&p, false)
                .unwrap_err()
                .contains("read_role_arn")
        );
        p.read_role_arn = Some("arn:aws:iam::1:role/r".into());
        p.session_duration_secs = 60;
        assert!(check_s3_profile(&p, false).unwrap_err().contains("900"));
        p.session_duration_secs = 900;
        assert!(check_s3_profile(&p, false).is_ok());
        p.vending = Some(S3Vending::Static);
        assert!(
            check_s3_profile(&p, false)
                .unwrap_err()
                .contains("credential")
        );
        p.bucket = "Bad_Bucket".into();
        assert!(check_s3_profile(&p, true).unwrap_err().contains("bucket"));
    }

    #[test]
    fn s3_locations_split() {
        assert_eq!(split_s3("s3://b/k/x"), Some(("b", "k/x")));
        assert_eq!(split_s3("s3://b"), None);
        assert_eq!(split_s3("s3:///k"), None);
    }
}
