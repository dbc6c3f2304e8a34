//! Catalog failures, each of one Iceberg exception type ([`ErrorType`]); the exception's name
//! and HTTP status are the API's to give (`api::error`).

use crate::storage::IoError;
use crate::store::{StoreError, TabularKind};

/// The Iceberg exception type of an error (its name and status: `api::error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    BadRequest,
    NotAuthorized,
    Forbidden,
    NoSuchWarehouse,
    NoSuchNamespace,
    NoSuchTable,
    NoSuchView,
    /// A scan plan's id that is not one (forged, expired, another's).
    NoSuchPlanId,
    /// A plan task that is not one.
    NoSuchPlanTask,
    NotFound,
    AlreadyExists,
    NamespaceNotEmpty,
    CommitFailed,
    Conflict,
    UnsupportedOperation,
    Unprocessable,
    MethodNotAllowed,
    PayloadTooLarge,
    /// The client took longer than allowed to send its request.
    RequestTimeout,
    TooManyRequests,
    ServiceUnavailable,
    /// The disk the catalog or a warehouse writes to is (nearly) full.
    InsufficientStorage,
    /// The server's own setup is wrong (a cloud refuses it): not worth retrying.
    Misconfigured,
    Internal,
}

/// A shared cause: errors are cloned (single-flight waiters share one).
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// A failure with a message fit for the caller and, when a store or storage failure caused it,
/// that failure as its source (for the log, never for the caller).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct CatalogError {
    pub kind: ErrorType,
    pub message: String,
    #[source]
    pub source: Option<Cause>,
}

impl CatalogError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// This error, caused by `source`.
    pub fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(std::sync::Arc::new(source));
        self
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorType::BadRequest, message)
    }
    pub fn commit_failed(message: impl Into<String>) -> Self {
        Self::new(ErrorType::CommitFailed, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorType::Internal, message)
    }
    /// "table x does not exist" / "view x does not exist".
    pub fn no_such(kind: TabularKind, what: impl std::fmt::Display) -> Self {
        let t = match kind {
            TabularKind::Table => ErrorType::NoSuchTable,
            TabularKind::View => ErrorType::NoSuchView,
        };
        Self::new(t, format!("{} {what} does not exist", kind.noun()))
    }
}

impl From<StoreError> for CatalogError {
    fn from(e: StoreError) -> Self {
        let message = e.to_string();
        let kind = match e {
            StoreError::NoSuchNamespace(_) => ErrorType::NoSuchNamespace,
            StoreError::NoSuchTabular(TabularKind::Table, _) => ErrorType::NoSuchTable,
            StoreError::NoSuchTabular(TabularKind::View, _) => ErrorType::NoSuchView,
            StoreError::AlreadyExists(_) => ErrorType::AlreadyExists,
            StoreError::NamespaceNotEmpty(_) => ErrorType::NamespaceNotEmpty,
            StoreError::Conflict(_) => ErrorType::CommitFailed,
            StoreError::NotFound(_) => ErrorType::NotFound,
            StoreError::NotEmpty(..) | StoreError::Purging(_) => ErrorType::Conflict,
            StoreError::LocationTaken(_) => ErrorType::BadRequest,
            StoreError::StorageTaken(_) => ErrorType::Conflict,
            // The detail is the source, logged where the request ends.
            StoreError::Full(_) => {
                return Self::new(
                    ErrorType::InsufficientStorage,
                    "the catalog's disk is nearly full: writes wait until an operator frees space \
                     (reads go on); nothing acknowledged is lost",
                )
                .caused_by(e);
            }
            StoreError::Backend(_) => {
                return Self::new(
                    ErrorType::ServiceUnavailable,
                    "the catalog store is unavailable; retry later",
                )
                .caused_by(e);
            }
        };
        Self::new(kind, message)
    }
}

/// Storage failures: what the caller may know is in the message; the detail (its URLs already
/// without query strings: they can name internal endpoints and the server's own identity) is the
/// source, logged where the request ends.
impl From<IoError> for CatalogError {
    fn from(e: IoError) -> Self {
        match e {
            IoError::BadLocation(..) | IoError::TooLarge(..) => Self::bad_request(e.to_string()),
            IoError::NotFound(_) => Self::new(ErrorType::NotFound, e.to_string()),
            IoError::Misconfigured(..) => Self::new(
                ErrorType::Misconfigured,
                format!("{e}; an operator must fix the warehouse"),
            )
            .caused_by(e),
            IoError::Full(..) => Self::new(
                ErrorType::InsufficientStorage,
                "the warehouse's storage is full: the write did not land; it can be retried \
                 once an operator frees space",
            )
            .caused_by(e),
            // A refusal is the warehouse's setup, not trouble: retrying does not help.
            IoError::Refused(..) => Self::new(
                ErrorType::Misconfigured,
                "the warehouse's storage refuses the server's credential, or its bucket or \
                 container does not exist; an operator must fix the warehouse (the server log \
                 has the details)",
            )
            .caused_by(e),
            IoError::Storage(..) => Self::new(
                ErrorType::ServiceUnavailable,
                "the warehouse's storage failed; the server log has the details",
            )
            .caused_by(e),
        }
    }
}

impl From<iceberg::Error> for CatalogError {
    fn from(e: iceberg::Error) -> Self {
        match e.kind() {
            iceberg::ErrorKind::CatalogCommitConflicts => {
                Self::commit_failed(e.message().to_owned())
            }
            iceberg::ErrorKind::FeatureUnsupported => {
                Self::new(ErrorType::UnsupportedOperation, e.message().to_owned())
            }
            _ => Self::bad_request(e.message().to_owned()),
        }
    }
}

/// Shorthand for catalog results.
pub type CatalogResult<T> = Result<T, CatalogError>;
