//! What the PostgreSQL store and its group commit share: the text a tabular's kind has in its
//! `kind` column, and how a PostgreSQL error becomes the store's (its cause kept, its SQLSTATE
//! named).

use super::{StoreError, TabularKind};

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
