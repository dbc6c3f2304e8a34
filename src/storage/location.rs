//! The rules for locations: one normalized form (schemes folded, no `.`/`..`/empty segments, no
//! escapes), and "inside" as a path, never as a sibling name.

/// Strips a trailing `/` and refuses `.`/`..`/empty segments after the scheme, so a location can be
/// compared to a warehouse root by plain prefix. Hadoop's `file:/path` (what Spark sends) is
/// `file:///path`.
pub fn normalize_location(location: &str) -> Result<String, String> {
    let hadoop_form;
    let location = match location.strip_prefix("file:") {
        Some(path) if path.starts_with('/') && !path.starts_with("//") => {
            hadoop_form = format!("file://{path}");
            hadoop_form.as_str()
        }
        _ => location,
    };
    let (scheme, rest) = location.split_once("://").ok_or_else(|| {
        format!("location '{location}' has no scheme (expected s3://, abfss:// or file://)")
    })?;
    let scheme = match scheme {
        "s3" | "s3a" | "s3n" => "s3",
        "abfss" | "abfs" => "abfss",
        "gs" => "gs",
        "file" => "file",
        other => return Err(format!("location scheme '{other}' is not supported")),
    };
    let rest = rest.trim_end_matches('/');
    let body = if scheme == "file" {
        rest.strip_prefix('/').unwrap_or(rest)
    } else {
        rest
    };
    if body.is_empty()
        || body
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(format!(
            "location '{location}' has an empty, '.' or '..' path segment"
        ));
    }
    if location.contains('\\') || location.chars().any(char::is_control) || location.contains('%') {
        return Err(format!(
            "location '{location}' contains characters that are not allowed"
        ));
    }
    Ok(format!("{scheme}://{rest}"))
}

/// True when `location` is `root` itself or lies below it (as a path, never as a sibling name:
/// `s3://b/t1` does not contain `s3://b/t10`). Both must be normalized.
pub fn is_inside(location: &str, root: &str) -> bool {
    location == root
        || location
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sibling_prefixes_are_not_inside() {
        assert!(is_inside("s3://b/wh/t1/x", "s3://b/wh/t1"));
        assert!(!is_inside("s3://b/wh/t10", "s3://b/wh/t1"));
        assert!(is_inside("s3://b/wh", "s3://b/wh"));
    }

    #[test]
    fn hadoop_file_paths_are_file_urls() {
        assert_eq!(
            normalize_location("file:/tmp/w/t/").unwrap(),
            "file:///tmp/w/t"
        );
        assert_eq!(
            normalize_location("file:///tmp/w/t").unwrap(),
            "file:///tmp/w/t"
        );
        assert!(normalize_location("file:relative").is_err());
    }

    #[test]
    fn traversal_and_odd_schemes_are_refused() {
        assert!(normalize_location("s3://b/wh/../other").is_err());
        assert!(normalize_location("s3://b/wh//x").is_err());
        assert!(normalize_location("http://b/wh").is_err());
        assert!(normalize_location("/tmp/x").is_err());
        assert!(normalize_location("s3://b/wh/%2e%2e/x").is_err());
        assert_eq!(normalize_location("s3a://b/wh/").unwrap(), "s3://b/wh");
        assert_eq!(
            normalize_location("file:///tmp/wh/").unwrap(),
            "file:///tmp/wh"
        );
    }
}
