//! Domain values every layer may use: validated names (a handler can only hold a namespace,
//! table, view or [`ResourceName`] that is legal), typed ids ([`ids`]: a tenant's, warehouse's,
//! principal's, role's or table's id, which cannot be swapped for one another), credential
//! kinds, privileges and grant resources ([`access`]), and the clock ([`now_ms`]).
//!
//! Limits are explicit: a name part is 1..=255 characters, a namespace at most 16 levels deep, and no part
//! may contain control characters, `/` or `\`, or be `.` / `..` (names end up in logs, keys and paths).

pub mod access;
pub mod ids;

pub use ids::{PrincipalId, RoleId, TabularId, TenantId, WarehouseId};

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest allowed namespace level, table, view or warehouse name, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// The names [`check_resource_name`] accepts, as an ECMA-262 regular expression (for the OpenAPI
/// document): no control characters (Unicode `Cc`), `/` or `\`, and not `.` or `..`.
pub const NAME_PATTERN: &str = r"^(?!\.\.?$)[^\u0000-\u001f\u007f-\u009f/\\]+$";
/// Deepest allowed namespace.
pub const MAX_NAMESPACE_DEPTH: usize = 16;
/// The separator of namespace levels in a URL path segment (`%1F`), as the spec's default.
pub const NAMESPACE_SEPARATOR: char = '\u{1f}';

/// Why a name was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("{what} '{name}' is longer than {MAX_NAME_CHARS} characters")]
    TooLong { what: &'static str, name: String },
    #[error(
        "{what} '{name}' contains a character that is not allowed (control characters, '/' and '\\')"
    )]
    BadCharacter { what: &'static str, name: String },
    #[error("{what} must not be '.' or '..'")]
    DotName { what: &'static str },
    #[error("namespace is deeper than {MAX_NAMESPACE_DEPTH} levels")]
    TooDeep,
}

fn check_part(what: &'static str, part: &str) -> Result<(), NameError> {
    if part.is_empty() {
        return Err(NameError::Empty { what });
    }
    if part.chars().count() > MAX_NAME_CHARS {
        let shown: String = part.chars().take(40).collect();
        return Err(NameError::TooLong {
            what,
            name: format!("{shown}..."),
        });
    }
    if part == "." || part == ".." {
        return Err(NameError::DotName { what });
    }
    if part
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(NameError::BadCharacter {
            what,
            name: part.escape_default().to_string(),
        });
    }
    Ok(())
}

/// Where an engine plans its scans of a table: the spec's `scan-planning-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScanPlanningMode {
    /// The engine reads the manifests itself.
    Client,
    /// The engine asks the catalog (`POST .../plan`).
    Server,
}

impl ScanPlanningMode {
    /// The spec's value.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanPlanningMode::Client => "client",
            ScanPlanningMode::Server => "server",
        }
    }

    /// A table property's value, if it is one (case as the spec writes it).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "client" => Some(ScanPlanningMode::Client),
            "server" => Some(ScanPlanningMode::Server),
            _ => None,
        }
    }
}

/// A multi-level namespace such as `["sales", "eu"]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct NamespaceIdent(Vec<String>);

impl NamespaceIdent {
    /// Validates every level.
    pub fn new(parts: Vec<String>) -> Result<Self, NameError> {
        if parts.is_empty() {
            return Err(NameError::Empty { what: "namespace" });
        }
        if parts.len() > MAX_NAMESPACE_DEPTH {
            return Err(NameError::TooDeep);
        }
        for part in &parts {
            check_part("namespace level", part)?;
        }
        Ok(Self(parts))
    }

    /// Parses the URL form, levels joined by the unit separator `0x1F`.
    pub fn from_url_segment(segment: &str) -> Result<Self, NameError> {
        Self::new(
            segment
                .split(NAMESPACE_SEPARATOR)
                .map(str::to_owned)
                .collect(),
        )
    }

    /// The levels, outermost first.
    pub fn parts(&self) -> &[String] {
        &self.0
    }

    /// The enclosing namespace, `None` at the top level.
    pub fn parent(&self) -> Option<NamespaceIdent> {
        (self.0.len() > 1).then(|| Self(self.0[..self.0.len() - 1].to_vec()))
    }

    /// True when `self` lies strictly inside `other`.
    pub fn is_inside(&self, other: &NamespaceIdent) -> bool {
        self.0.len() > other.0.len() && self.0.starts_with(&other.0)
    }
}

impl TryFrom<Vec<String>> for NamespaceIdent {
    type Error = NameError;
    fn try_from(parts: Vec<String>) -> Result<Self, Self::Error> {
        Self::new(parts)
    }
}

impl From<NamespaceIdent> for Vec<String> {
    fn from(ns: NamespaceIdent) -> Self {
        ns.0
    }
}

impl fmt::Display for NamespaceIdent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// A table or view name (one level).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectName(String);

impl ObjectName {
    /// Validates a table or view name.
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        check_part("table or view name", &name)?;
        Ok(Self(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ObjectName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<ObjectName> for String {
    fn from(n: ObjectName) -> Self {
        n.0
    }
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A table or view inside a namespace, the spec's `TableIdentifier`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TableIdent {
    pub namespace: NamespaceIdent,
    pub name: ObjectName,
}

impl TableIdent {
    /// Joins a namespace and a name.
    pub fn new(namespace: NamespaceIdent, name: ObjectName) -> Self {
        Self { namespace, name }
    }
}

impl fmt::Display for TableIdent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.namespace, self.name)
    }
}

/// A tenant or warehouse name: the same rules as a namespace level.
pub fn check_resource_name(what: &'static str, name: &str) -> Result<(), NameError> {
    check_part(what, name)
}

/// The name of a tenant, warehouse, principal, role or storage credential, checked when it is
/// made (see [`check_resource_name`]): a use-case that takes one never sees an illegal name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceName(String);

impl ResourceName {
    /// `name` as the name of `what` ("warehouse name"), or why it cannot be one.
    pub fn new(what: &'static str, name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        check_resource_name(what, &name)?;
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a storage credential is: the kind decides which storage it fits and which fields it has.
/// Stored and shown under its canonical name; [`CredentialKind::parse`] also takes the names
/// credential stores commonly use (`gcp`, `google_service_account`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialKind {
    /// An S3 access key pair (optionally with a session token).
    S3AccessKey,
    /// An Azure storage account key.
    AzureSharedKey,
    /// An Entra ID application (client credentials), for user-delegation SAS.
    AzureClientSecret,
    /// A Google service account key file.
    GcsServiceAccount,
}

impl CredentialKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [CredentialKind; 4] = [
        CredentialKind::S3AccessKey,
        CredentialKind::AzureSharedKey,
        CredentialKind::AzureClientSecret,
        CredentialKind::GcsServiceAccount,
    ];

    /// Other names accepted for a kind, beside its canonical one.
    const ALIASES: &[(&str, CredentialKind)] = &[
        ("google_service_account", CredentialKind::GcsServiceAccount),
        ("gcp", CredentialKind::GcsServiceAccount),
    ];

    /// The canonical name (`s3-access-key`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::S3AccessKey => "s3-access-key",
            CredentialKind::AzureSharedKey => "azure-shared-key",
            CredentialKind::AzureClientSecret => "azure-client-secret",
            CredentialKind::GcsServiceAccount => "gcs-service-account",
        }
    }

    /// Every name a request may use, canonical names first.
    pub fn accepted_names() -> Vec<&'static str> {
        Self::ALL
            .iter()
            .map(|k| k.as_str())
            .chain(Self::ALIASES.iter().map(|(a, _)| *a))
            .collect()
    }

    /// A kind from its canonical name or an alias; an unknown name is an error listing the names.
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == name)
            .or_else(|| {
                Self::ALIASES
                    .iter()
                    .find(|(a, _)| *a == name)
                    .map(|(_, k)| *k)
            })
            .ok_or_else(|| {
                format!(
                    "storage credential kind '{name}' is not supported (supported: {})",
                    Self::accepted_names().join(", ")
                )
            })
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_url_segment_splits_on_unit_separator() {
        let ns = NamespaceIdent::from_url_segment("a\u{1f}b").unwrap();
        assert_eq!(ns.parts(), ["a", "b"]);
        assert_eq!(ns.parent().unwrap().parts(), ["a"]);
        assert!(ns.is_inside(&ns.parent().unwrap()));
    }

    #[test]
    fn names_that_could_escape_a_path_are_refused() {
        assert!(ObjectName::new("..").is_err());
        assert!(ObjectName::new("a/b").is_err());
        assert!(ObjectName::new("a\\b").is_err());
        assert!(ObjectName::new("a\nb").is_err());
        assert!(ObjectName::new("").is_err());
        assert!(ObjectName::new("x".repeat(256)).is_err());
        assert!(ObjectName::new("x".repeat(255)).is_ok());
        assert!(NamespaceIdent::new(vec!["a".into(); 17]).is_err());
        assert!(NamespaceIdent::from_url_segment("a\u{1f}").is_err());
    }
}
