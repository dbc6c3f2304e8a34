//! Why a management change was not made. The store's and vending's own errors are kept as they
//! came (the API maps each to its status); the rest say what the caller must change.

use crate::domain::NameError;
use crate::storage::VendingError;
use crate::store::StoreError;

/// A failed management use-case.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The thing does not exist, or is another tenant's (which the caller must not learn).
    #[error("{0} does not exist")]
    NotFound(String),
    /// A request that can never succeed as sent.
    #[error("{0}")]
    Invalid(String),
    /// Allowed to no one of the caller's kind (a local root for a non-root principal).
    #[error("{0}")]
    Forbidden(String),
    /// Refused for the state it would leave (the root principal's own tenant, its own principal).
    #[error("{0}")]
    Conflict(String),
    /// The caller's own principal is disabled or gone.
    #[error("{0}")]
    NotAuthorized(String),
    /// Not something this server's setup does (a snapshot of a PostgreSQL catalog).
    #[error("{0}")]
    Unsupported(String),
    /// Done too often: the next attempt may come after this long.
    #[error("{message}")]
    TooSoon {
        message: String,
        retry_after: std::time::Duration,
    },
    #[error(transparent)]
    Name(#[from] NameError),
    /// The storage profile or its credential does not fit (the storage's own rules).
    #[error(transparent)]
    Storage(#[from] VendingError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AdminError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }
}

/// Shorthand for management results.
pub type AdminResult<T> = Result<T, AdminError>;
