//! Presigned URLs for single objects inside an S3 table.

use std::time::Duration;

use super::signer::{SigningKeys, object_url, presign};
use super::{S3Profile, split_s3};
use crate::storage::access::{PresignMethod, file_inside};

/// The S3 object key of `location` when it lies strictly inside `table_location`.
pub fn object_key(location: &str, table_location: &str) -> Result<String, String> {
    let object = file_inside(location, table_location)?;
    split_s3(&object)
        .map(|(_, key)| key.to_owned())
        .ok_or_else(|| format!("{location} is not an s3:// location"))
}

/// A presigned URL for one object of the profile's bucket.
pub fn presigned_url(
    profile: &S3Profile,
    key: &str,
    method: PresignMethod,
    keys: &SigningKeys,
    ttl: Duration,
) -> Result<String, String> {
    presign(
        method.as_str(),
        &object_url(profile, key),
        &profile.region,
        keys,
        ttl,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_strictly_inside_the_table() {
        let t = "s3://lake/wh/ns/t1";
        assert_eq!(
            object_key("s3://lake/wh/ns/t1/data/a.parquet", t).unwrap(),
            "wh/ns/t1/data/a.parquet"
        );
        for bad in [
            "s3://lake/wh/ns/t10/data/a.parquet",
            "s3://lake/wh/ns/t1",
            "s3://lake/wh/ns/t1/",
            "s3://lake/wh/ns/t1/../t2/a",
            "s3://lake/wh/ns/t1/%2e%2e/t2/a",
            "s3://lake/wh/ns/t1%2F..%2Ft2/a",
            "s3://other/wh/ns/t1/a",
            "s3://lake/wh/ns/t1//a",
            "file:///etc/passwd",
        ] {
            assert!(object_key(bad, t).is_err(), "{bad} accepted");
        }
    }
}
