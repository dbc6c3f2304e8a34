//! What every part of the PostgreSQL store shares: the text a tabular's kind has in its `kind`
//! column, how a PostgreSQL error becomes the store's (its cause kept, its SQLSTATE named), how a
//! row becomes a record, and how rows become a page.
//!
//! Owns: those conversions. Must not touch: connections, transactions or notifications (the
//! area files and [`super::group_commit`] run the statements).

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;

use crate::domain::{NamespaceIdent, ObjectName, TableIdent};
use crate::store::{Page, PageRequest, StoreError, StoreResult, TabularKind, TabularRecord};

/// A tabular's kind as its `kind` column holds it.
pub(super) fn kind_text(kind: TabularKind) -> &'static str {
    match kind {
        TabularKind::Table => "table",
        TabularKind::View => "view",
    }
}

/// A PostgreSQL (or decoding) failure as the store's, with the error as its cause and, for the
/// database's own refusals, their SQLSTATE.
pub(super) fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    let what = match (&e as &dyn std::any::Any).downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(db)) => match db.code() {
            Some(code) => format!("PostgreSQL refused a statement (SQLSTATE {code})"),
            None => "PostgreSQL refused a statement".to_owned(),
        },
        Some(sqlx::Error::PoolTimedOut) => "no PostgreSQL connection came free in time".to_owned(),
        Some(_) => "PostgreSQL".to_owned(),
        None => "a stored record".to_owned(),
    };
    StoreError::caused(what, e)
}

pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

pub(super) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

pub(super) fn record<T: DeserializeOwned>(row: &PgRow) -> StoreResult<T> {
    let Json(value): Json<T> = row.try_get("record").map_err(backend)?;
    Ok(value)
}

pub(super) fn records<T: DeserializeOwned>(rows: &[PgRow]) -> StoreResult<Vec<T>> {
    rows.iter().map(record).collect()
}

pub(super) fn parse_kind(text: &str) -> StoreResult<TabularKind> {
    match text {
        "table" => Ok(TabularKind::Table),
        "view" => Ok(TabularKind::View),
        other => Err(StoreError::failure(format!(
            "unknown tabular kind '{other}'"
        ))),
    }
}

pub(super) fn namespace_ident(levels: Vec<String>) -> StoreResult<NamespaceIdent> {
    NamespaceIdent::new(levels).map_err(backend)
}

pub(super) fn tabular_from_row(row: &PgRow) -> StoreResult<TabularRecord> {
    let get = |c: &str| -> StoreResult<String> { row.try_get(c).map_err(backend) };
    let levels: Vec<String> = row.try_get("levels").map_err(backend)?;
    Ok(TabularRecord {
        id: row.try_get("id").map_err(backend)?,
        kind: parse_kind(&get("kind")?)?,
        ident: TableIdent::new(
            namespace_ident(levels)?,
            ObjectName::new(get("name")?).map_err(backend)?,
        ),
        location: get("location")?,
        metadata_location: get("metadata_location")?,
        created_at_ms: row.try_get("created_at_ms").map_err(backend)?,
    })
}

/// Applies a page request to rows already ordered by name: at most `limit`, `next` when more follow.
pub(super) fn page_of<T>(mut items: Vec<(String, T)>, page: &PageRequest) -> Page<T> {
    let more = page.limit.is_some_and(|limit| items.len() > limit);
    if let Some(limit) = page.limit {
        items.truncate(limit);
    }
    let next = if more {
        items.last().map(|(name, _)| name.clone())
    } else {
        None
    };
    Page {
        items: items.into_iter().map(|(_, item)| item).collect(),
        next,
    }
}

pub(super) fn json<T: Serialize>(value: &T) -> Json<&T> {
    Json(value)
}

/// Rows to fetch for a page: one more than asked, to know whether more follow. (Pages start at
/// `name > COALESCE(after, '')`, which the `(parent, name)` indexes serve as a range, since names
/// are never empty; `after IS NULL OR name > after` made PostgreSQL read every earlier name for
/// every page: 12 ms a page at 10,000 tables. Tables and views are listed from
/// `tabulars_listing`, which holds the kind too, so a page reads no table rows.)
pub(super) fn fetch_limit(page: &PageRequest) -> i64 {
    page.limit.map_or(i64::MAX, |l| l.saturating_add(1) as i64)
}
