//! Who owns which location in a warehouse: every table and view owns its location (in its
//! namespace or, dropped, in the recycle bin until it leaves), a namespace with a `location`
//! property owns that, and a staged create reserves its table's location until it is committed
//! or its reservation expires. No two owners share a location and none lies inside another, with
//! one exception: a table, view, staged table or child namespace may lie inside the location of
//! its own namespace or of an enclosing one (so `CREATE SCHEMA ... WITH (location=...)` places its
//! tables there). Both backends enforce these rules inside the transaction that claims the
//! location, so two requests (or two replicas) cannot race past them. A reservation gives way
//! only to the table its stage commits (same id, same namespace) or, once expired, to anyone.

use uuid::Uuid;

use crate::domain::NamespaceIdent;

use super::{NamespaceRecord, TabularKind, TabularRecord};

/// The namespace property that holds a namespace's location.
pub const NAMESPACE_LOCATION: &str = "location";

/// What owns a location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OwnerKind {
    Namespace,
    Table,
    View,
    /// A staged create's reservation, until its commit or `expires_at_ms`.
    Staged,
}

/// A location and its owner.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LocationClaim {
    pub location: String,
    pub owner: Uuid,
    pub kind: OwnerKind,
    /// The owning namespace, or the namespace the table or view was created in.
    pub namespace: NamespaceIdent,
    /// When a reservation ([`OwnerKind::Staged`]) lapses; `None` for every other claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
}

impl LocationClaim {
    /// The claim of a table or view.
    pub fn of_tabular(record: &TabularRecord) -> Self {
        Self {
            location: record.location.clone(),
            owner: record.id.uuid(),
            kind: match record.kind {
                TabularKind::Table => OwnerKind::Table,
                TabularKind::View => OwnerKind::View,
            },
            namespace: record.ident.namespace.clone(),
            expires_at_ms: None,
        }
    }

    /// A staged create's reservation of `location` for table `owner` in `namespace`, until
    /// `expires_at_ms`.
    pub fn staged(
        location: String,
        owner: Uuid,
        namespace: NamespaceIdent,
        expires_at_ms: i64,
    ) -> Self {
        Self {
            location,
            owner,
            kind: OwnerKind::Staged,
            namespace,
            expires_at_ms: Some(expires_at_ms),
        }
    }

    /// Whether this is a reservation that lapsed before `now_ms` (it holds nothing any more).
    pub fn lapsed(&self, now_ms: i64) -> bool {
        self.kind == OwnerKind::Staged && self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }

    /// Whether this claim, found at the very location `claim` asks for, gives way to it: a
    /// lapsed reservation, or the reservation of the staged create that `claim` commits.
    pub fn gives_way_to(&self, claim: &LocationClaim, now_ms: i64) -> bool {
        self.lapsed(now_ms)
            || self.kind == OwnerKind::Staged
                && claim.kind == OwnerKind::Table
                && self.owner == claim.owner
                && self.namespace == claim.namespace
    }

    /// The claim of a namespace with a `location` property.
    pub fn of_namespace(record: &NamespaceRecord) -> Option<Self> {
        record
            .properties
            .get(NAMESPACE_LOCATION)
            .map(|location| Self {
                location: location.clone(),
                owner: record.id,
                kind: OwnerKind::Namespace,
                namespace: record.ident.clone(),
                expires_at_ms: None,
            })
    }

    /// Whether this claim may lie strictly inside `outer`: only inside a namespace's location, and
    /// only for that namespace's own tables, views and child namespaces (at any depth).
    pub fn may_lie_inside(&self, outer: &LocationClaim) -> bool {
        outer.kind == OwnerKind::Namespace
            && (self.namespace == outer.namespace && self.kind != OwnerKind::Namespace
                || self.namespace.is_inside(&outer.namespace))
    }
}

/// The locations strictly enclosing `location` (normalized, no trailing `/`), outermost first:
/// `s3://b/w/t` gives `s3://b` and `s3://b/w`.
pub fn enclosing(location: &str) -> Vec<&str> {
    let start = location.find("://").map_or(0, |i| i + 3);
    location[start..]
        .match_indices('/')
        .map(|(i, _)| &location[..start + i])
        .filter(|prefix| !prefix.ends_with("//") && !prefix.ends_with(':'))
        .collect()
}

/// Why a claim was refused (the other owner is not named: the caller may not see it).
pub fn refusal(location: &str) -> super::StoreError {
    super::StoreError::LocationTaken(location.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enclosing_locations_stop_at_the_authority() {
        assert_eq!(enclosing("s3://b/w/t"), ["s3://b", "s3://b/w"]);
        assert_eq!(enclosing("s3://b"), Vec::<&str>::new());
        assert_eq!(
            enclosing("file:///tmp/w/t"),
            ["file:///tmp", "file:///tmp/w"]
        );
        assert_eq!(
            enclosing("abfss://c@a.dfs.core.windows.net/w/t"),
            [
                "abfss://c@a.dfs.core.windows.net",
                "abfss://c@a.dfs.core.windows.net/w"
            ]
        );
    }

    fn claim(kind: OwnerKind, ns: &[&str]) -> LocationClaim {
        LocationClaim {
            location: "s3://b/x".into(),
            owner: Uuid::nil(),
            kind,
            namespace: NamespaceIdent::new(ns.iter().map(|s| s.to_string()).collect()).unwrap(),
            expires_at_ms: None,
        }
    }

    #[test]
    fn only_a_namespaces_own_objects_may_lie_inside_its_location() {
        let ns = claim(OwnerKind::Namespace, &["a"]);
        assert!(claim(OwnerKind::Table, &["a"]).may_lie_inside(&ns));
        assert!(claim(OwnerKind::View, &["a", "b"]).may_lie_inside(&ns));
        assert!(claim(OwnerKind::Namespace, &["a", "b"]).may_lie_inside(&ns));
        assert!(!claim(OwnerKind::Namespace, &["a"]).may_lie_inside(&ns));
        assert!(!claim(OwnerKind::Table, &["c"]).may_lie_inside(&ns));
        assert!(!claim(OwnerKind::Table, &["a"]).may_lie_inside(&claim(OwnerKind::Table, &["a"])));
        assert!(
            !claim(OwnerKind::Namespace, &["a", "b"])
                .may_lie_inside(&claim(OwnerKind::Table, &["a"]))
        );
    }
}
