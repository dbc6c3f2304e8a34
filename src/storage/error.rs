//! Why vending handed out nothing: the request reached outside its table or warehouse, asked for
//! something the storage does not offer, or the cloud's token service or the warehouse's secret
//! failed. The API decides the status each answers with; a failed cloud call is kept as the
//! error's source, logged once with the request's failure where it ends.

use std::sync::Arc;

/// The error a vending failure came from (a failed cloud call), kept for the log.
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// A vending failure, with a message fit for the caller (never a secret, a signed URL or an
/// upstream body: those go to the log where they are caught).
#[derive(Debug, Clone, thiserror::Error)]
pub enum VendingError {
    /// Outside the table or the warehouse, or not offered by it.
    #[error("{0}")]
    Refused(String),
    /// A request or a storage profile vending cannot serve.
    #[error("{0}")]
    Invalid(String),
    /// The cloud refuses the server itself (a role STS will not let it assume): an operator must
    /// fix the warehouse, and retrying does not help.
    #[error("{0}")]
    Misconfigured(String, #[source] Option<Cause>),
    /// The cloud's token service, the signing keys or the warehouse's secret failed.
    #[error("{0}")]
    Unavailable(String, #[source] Option<Cause>),
}

impl VendingError {
    pub fn refused(message: impl Into<String>) -> Self {
        Self::Refused(message.into())
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable(message.into(), None)
    }

    /// The server's own access is refused: an operator must fix the warehouse.
    pub fn misconfigured(message: impl Into<String>) -> Self {
        Self::Misconfigured(message.into(), None)
    }
}

impl VendingError {
    /// What a failed call to `upstream` (a phrase: "the token service (STS)", "Entra ID") for
    /// warehouse `warehouse` answers: the client hears whether to retry or that an operator must
    /// fix the warehouse; the call's error is the source, for the log.
    pub fn from_call(warehouse: &str, upstream: &str, e: crate::outbound::CallError) -> Self {
        use crate::outbound::CallError;
        match e {
            CallError::Refused(_) => Self::Misconfigured(
                format!(
                    "warehouse '{warehouse}': {upstream} refuses the server's credential; an operator must fix the warehouse's credential or its permissions (the server log has the details)"
                ),
                Some(Arc::new(e)),
            ),
            CallError::Transient(_) => Self::Unavailable(
                format!(
                    "warehouse '{warehouse}': {upstream} failed or did not answer in time; the server log has the details"
                ),
                Some(Arc::new(e)),
            ),
        }
    }

    /// The error it came from, if one was kept.
    pub fn cause(&self) -> Option<&Cause> {
        match self {
            Self::Misconfigured(_, cause) | Self::Unavailable(_, cause) => cause.as_ref(),
            _ => None,
        }
    }
}

/// Shorthand for vending results.
pub type VendingResult<T> = Result<T, VendingError>;
