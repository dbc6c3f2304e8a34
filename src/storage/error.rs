//! Why vending handed out nothing: the request reached outside its table or warehouse, asked for
//! something the storage does not offer, or the cloud's token service or the warehouse's secret
//! failed. The API decides the status each answers with.

/// A vending failure, with a message fit for the caller (never a secret, a signed URL or an
/// upstream body: those go to the log where they are caught).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    Misconfigured(String),
    /// The cloud's token service, the signing keys or the warehouse's secret failed.
    #[error("{0}")]
    Unavailable(String),
}

impl VendingError {
    pub fn refused(message: impl Into<String>) -> Self {
        Self::Refused(message.into())
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable(message.into())
    }
}

impl VendingError {
    /// What a failed call to `upstream` (a phrase: "the token service (STS)", "Entra ID") for
    /// warehouse `warehouse` answers: the detail goes to the log, the client hears whether to
    /// retry or that an operator must fix the warehouse.
    pub fn from_call(warehouse: &str, upstream: &str, e: crate::outbound::CallError) -> Self {
        use crate::outbound::CallError;
        match e {
            CallError::Refused(detail) => {
                tracing::error!(warehouse, upstream, error = %detail, "the cloud refuses the server's credential");
                Self::Misconfigured(format!(
                    "warehouse '{warehouse}': {upstream} refuses the server's credential; an operator must fix the warehouse's credential or its permissions (the server log has the details)"
                ))
            }
            CallError::Transient(detail) => {
                tracing::error!(warehouse, upstream, error = %detail, "a cloud call failed");
                Self::Unavailable(format!(
                    "warehouse '{warehouse}': {upstream} failed or did not answer in time; the server log has the details"
                ))
            }
        }
    }
}

/// Shorthand for vending results.
pub type VendingResult<T> = Result<T, VendingError>;
