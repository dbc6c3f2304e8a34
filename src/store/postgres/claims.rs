//! Location and storage-root claims in PostgreSQL: the advisory locks that serialize them and
//! the queries that find an overlapping claim.
//!
//! Owns: the rules of [`crate::store::locations`] as PostgreSQL applies them. A claim takes a
//! per-warehouse advisory lock first (before any row lock, so claims cannot deadlock with each
//! other) and then reads the overlapping ones. Must not touch: the rows of the owners (each area's
//! file writes its own, in the transaction that holds the lock).

use sqlx::Row;
use sqlx::postgres::PgConnection;
use uuid::Uuid;

use super::common::backend;
use super::*;
use crate::domain::NamespaceIdent;
use crate::domain::WarehouseId;
use crate::store::locations::{LocationClaim, OwnerKind, enclosing, refusal};

/// The first key of the advisory locks that serialize location claims (ASCII "Floe").
const LOCATION_LOCK_CLASS: i32 = 0x466c_6f65;

/// Serializes location claims in one warehouse until the transaction ends. Taken before any row
/// lock by everything that claims a location.
pub(super) async fn lock_locations(
    conn: &mut PgConnection,
    warehouse: WarehouseId,
) -> StoreResult<()> {
    let bytes = warehouse.as_bytes();
    let key = i32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(LOCATION_LOCK_CLASS)
        .bind(key)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// The second key of the advisory lock that serializes warehouse storage-root claims across all
/// tenants. A warehouse whose location lock has the same key only waits longer; it never deadlocks,
/// since no transaction takes both.
const ROOTS_LOCK_KEY: i32 = 0;

/// Serializes warehouse storage-root claims until the transaction ends.
pub(super) async fn lock_roots(conn: &mut PgConnection) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(LOCATION_LOCK_CLASS)
        .bind(ROOTS_LOCK_KEY)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Refuses `root` when another warehouse's root equals it, lies inside it or encloses it. Call
/// with the roots lock held.
pub(super) async fn check_root(
    conn: &mut PgConnection,
    warehouse: WarehouseId,
    root: &str,
) -> StoreResult<()> {
    let mut candidates: Vec<&str> = enclosing(root);
    candidates.push(root);
    let taken: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM warehouses WHERE id <> $1 AND (root = ANY($2) \
         OR (root >= $3 AND root < $4)))",
    )
    .bind(warehouse)
    .bind(&candidates)
    .bind(format!("{root}/"))
    .bind(format!("{root}0"))
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    if taken {
        return Err(StoreError::StorageTaken(root.to_owned()));
    }
    Ok(())
}

/// Refuses `claim` when another owner's location equals it, lies inside it, or encloses it
/// without being its namespace: live tables and views, namespaces, recycle-bin entries (but the
/// claimant's own) and reservations that have not lapsed (but the one the claimant commits).
/// Call with the warehouse's location lock held.
pub(super) async fn check_claim(
    conn: &mut PgConnection,
    warehouse: WarehouseId,
    claim: &LocationClaim,
) -> StoreResult<()> {
    let mut candidates: Vec<&str> = enclosing(&claim.location);
    candidates.push(&claim.location);
    let (inside_from, inside_to) = (
        format!("{}/", claim.location),
        format!("{}0", claim.location),
    );
    let rows = sqlx::query(
        "SELECT t.id AS owner, t.kind AS kind, t.location AS location, n.levels AS levels \
           FROM tabulars t JOIN namespaces n ON n.id = t.namespace_id \
          WHERE n.warehouse_id = $1 AND ((t.location COLLATE \"C\") = ANY($2) \
                OR ((t.location COLLATE \"C\") >= $3 AND (t.location COLLATE \"C\") < $4)) \
         UNION ALL \
         SELECT d.id, d.tabular ->> 'kind', d.location, d.levels FROM dropped_tabulars d \
          WHERE d.warehouse_id = $1 AND d.id <> $5 \
            AND (d.location = ANY($2) OR (d.location >= $3 AND d.location < $4)) \
         UNION ALL \
         SELECT s.owner, 'staged', s.location, s.levels FROM staged_locations s \
          WHERE s.warehouse_id = $1 AND s.expires_at_ms > $6 \
            AND NOT (s.owner = $5 AND $7 AND s.levels = $8) \
            AND (s.location = ANY($2) OR (s.location >= $3 AND s.location < $4)) \
         UNION ALL \
         SELECT n.id, 'namespace', n.properties ->> 'location', n.levels FROM namespaces n \
          WHERE n.warehouse_id = $1 AND n.properties ? 'location' \
            AND (((n.properties ->> 'location') COLLATE \"C\") = ANY($2) \
                 OR (((n.properties ->> 'location') COLLATE \"C\") >= $3 \
                     AND ((n.properties ->> 'location') COLLATE \"C\") < $4))",
    )
    .bind(warehouse)
    .bind(&candidates)
    .bind(&inside_from)
    .bind(&inside_to)
    .bind(claim.owner)
    .bind(now_ms())
    .bind(claim.kind == OwnerKind::Table)
    .bind(claim.namespace.parts())
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    for row in rows {
        let owner: Uuid = row.try_get("owner").map_err(backend)?;
        let kind: String = row.try_get("kind").map_err(backend)?;
        // A namespace moving its location still has its old one in its row. Tables are never
        // skipped: a registered copy of a table's metadata carries that table's id.
        if kind == "namespace" && claim.kind == OwnerKind::Namespace && owner == claim.owner {
            continue;
        }
        let location: String = row.try_get("location").map_err(backend)?;
        let levels: Vec<String> = row.try_get("levels").map_err(backend)?;
        let other = LocationClaim {
            kind: match kind.as_str() {
                "namespace" => OwnerKind::Namespace,
                "view" => OwnerKind::View,
                "staged" => OwnerKind::Staged,
                _ => OwnerKind::Table,
            },
            owner,
            namespace: NamespaceIdent::new(levels).map_err(backend)?,
            location,
            expires_at_ms: None,
        };
        let encloses = other.location.len() < claim.location.len();
        if !encloses || !claim.may_lie_inside(&other) {
            return Err(refusal(&claim.location));
        }
    }
    Ok(())
}
