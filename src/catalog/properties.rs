//! Reserved table properties, handled as Iceberg's reference implementation does: they steer a
//! create or a commit and are never persisted. `format-version` picks the table's format version
//! (1, 2 or 3); the others (`uuid`, `snapshot-count`, `current-snapshot-*`, `current-schema`,
//! `default-partition-spec`, `default-sort-order`) describe metadata the server derives itself and
//! are dropped. Engines send them unasked: DuckDB, Trino and Spark put `format-version` into every
//! create request.

use std::collections::HashMap;

use iceberg::TableUpdate;
use iceberg::spec::{FormatVersion, TableProperties};

use super::{CatalogError, CatalogResult};

/// The format version a new table gets when the request names none (Iceberg Java's default).
pub const DEFAULT_FORMAT_VERSION: FormatVersion = FormatVersion::V2;

/// A property map with the reserved keys taken out.
#[derive(Debug, PartialEq)]
pub struct SplitProperties {
    /// `format-version`, when the map named one.
    pub format_version: Option<FormatVersion>,
    /// What is persisted: every key that is not reserved.
    pub persisted: HashMap<String, String>,
}

fn is_reserved(key: &str) -> bool {
    TableProperties::RESERVED_PROPERTIES.contains(&key)
}

/// Parses a `format-version` value; anything but 1, 2 or 3 is a 400 that says what is allowed.
pub fn parse_format_version(value: &str) -> CatalogResult<FormatVersion> {
    match value.trim() {
        "1" => Ok(FormatVersion::V1),
        "2" => Ok(FormatVersion::V2),
        "3" => Ok(FormatVersion::V3),
        other => Err(CatalogError::bad_request(format!(
            "table property format-version={other} is not supported: use 1, 2 or 3"
        ))),
    }
}

/// Takes the reserved keys out of `properties`, reading `format-version`.
pub fn split_reserved(properties: HashMap<String, String>) -> CatalogResult<SplitProperties> {
    let mut format_version = None;
    let mut persisted = HashMap::with_capacity(properties.len());
    for (key, value) in properties {
        if key == TableProperties::PROPERTY_FORMAT_VERSION {
            format_version = Some(parse_format_version(&value)?);
        } else if !is_reserved(&key) {
            persisted.insert(key, value);
        }
    }
    Ok(SplitProperties {
        format_version,
        persisted,
    })
}

/// One commit update as the server applies it: `set-properties` loses its reserved keys, and a
/// `format-version` among them becomes an `upgrade-format-version` (a downgrade is refused by the
/// metadata builder); `remove-properties` drops reserved keys, which are never persisted anyway.
pub fn without_reserved(update: TableUpdate) -> CatalogResult<Vec<TableUpdate>> {
    Ok(match update {
        TableUpdate::SetProperties { updates } => {
            let split = split_reserved(updates)?;
            let mut out = Vec::with_capacity(2);
            if let Some(format_version) = split.format_version {
                out.push(TableUpdate::UpgradeFormatVersion { format_version });
            }
            if !split.persisted.is_empty() {
                out.push(TableUpdate::SetProperties {
                    updates: split.persisted,
                });
            }
            out
        }
        TableUpdate::RemoveProperties { removals } => {
            let removals: Vec<String> = removals.into_iter().filter(|k| !is_reserved(k)).collect();
            if removals.is_empty() {
                Vec::new()
            } else {
                vec![TableUpdate::RemoveProperties { removals }]
            }
        }
        other => vec![other],
    })
}

/// Every update of a commit, reserved properties handled as [`without_reserved`] does.
pub fn updates_without_reserved(updates: Vec<TableUpdate>) -> CatalogResult<Vec<TableUpdate>> {
    let mut out = Vec::with_capacity(updates.len());
    for u in updates {
        out.extend(without_reserved(u)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn format_version_is_read_and_reserved_keys_are_not_persisted() {
        let split = split_reserved(props(&[
            ("format-version", "3"),
            ("uuid", "0000"),
            ("current-snapshot-id", "7"),
            ("write.format.default", "parquet"),
        ]))
        .unwrap();
        assert_eq!(split.format_version, Some(FormatVersion::V3));
        assert_eq!(
            split.persisted,
            props(&[("write.format.default", "parquet")])
        );
    }

    #[test]
    fn an_unsupported_format_version_says_what_is_allowed() {
        for bad in ["4", "0", "two", ""] {
            let err = split_reserved(props(&[("format-version", bad)])).unwrap_err();
            assert!(err.message.contains("use 1, 2 or 3"), "{}", err.message);
        }
    }

    #[test]
    fn a_commit_setting_format_version_becomes_an_upgrade() {
        let updates = updates_without_reserved(vec![
            TableUpdate::SetProperties {
                updates: props(&[("format-version", "2"), ("k", "v")]),
            },
            TableUpdate::RemoveProperties {
                removals: vec!["format-version".into()],
            },
        ])
        .unwrap();
        assert_eq!(
            updates,
            vec![
                TableUpdate::UpgradeFormatVersion {
                    format_version: FormatVersion::V2
                },
                TableUpdate::SetProperties {
                    updates: props(&[("k", "v")])
                },
            ]
        );
    }
}
