//! Every failure leaves as the spec's `IcebergErrorResponse`, including malformed or oversized bodies.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use super::types::{ErrorModel, IcebergErrorResponse};
use crate::admin::AdminError;
use crate::authz::AuthzError;
use crate::catalog::{CatalogError, Cause, ErrorType};
use crate::identity::AuthError;
use crate::storage::VendingError;
use crate::store::StoreError;

/// The spec's exception name and HTTP status of each exception type: decided here, at the edge.
trait Answered {
    fn name(self) -> &'static str;
    fn status(self) -> u16;
}

impl Answered for ErrorType {
    /// The spec's exception name.
    fn name(self) -> &'static str {
        match self {
            ErrorType::BadRequest => "BadRequestException",
            ErrorType::NotAuthorized => "NotAuthorizedException",
            ErrorType::Forbidden => "ForbiddenException",
            ErrorType::NoSuchWarehouse => "NoSuchWarehouseException",
            ErrorType::NoSuchNamespace => "NoSuchNamespaceException",
            ErrorType::NoSuchTable => "NoSuchTableException",
            ErrorType::NoSuchView => "NoSuchViewException",
            ErrorType::NoSuchPlanId => "NoSuchPlanIdException",
            ErrorType::NoSuchPlanTask => "NoSuchPlanTaskException",
            ErrorType::NotFound => "NotFoundException",
            ErrorType::AlreadyExists => "AlreadyExistsException",
            ErrorType::NamespaceNotEmpty => "NamespaceNotEmptyException",
            ErrorType::CommitFailed => "CommitFailedException",
            ErrorType::Conflict => "ConflictException",
            ErrorType::UnsupportedOperation => "UnsupportedOperationException",
            ErrorType::Unprocessable => "UnprocessableEntityException",
            ErrorType::MethodNotAllowed => "MethodNotAllowedException",
            ErrorType::PayloadTooLarge => "PayloadTooLargeException",
            ErrorType::RequestTimeout => "RequestTimeoutException",
            ErrorType::TooManyRequests => "TooManyRequestsException",
            ErrorType::ServiceUnavailable => "ServiceUnavailableException",
            ErrorType::InsufficientStorage => "InsufficientStorageException",
            ErrorType::Misconfigured => "ServiceMisconfiguredException",
            ErrorType::Internal => "InternalServerError",
        }
    }

    /// The HTTP status code.
    fn status(self) -> u16 {
        match self {
            ErrorType::BadRequest => 400,
            ErrorType::NotAuthorized => 401,
            ErrorType::Forbidden => 403,
            ErrorType::NoSuchWarehouse
            | ErrorType::NoSuchNamespace
            | ErrorType::NoSuchTable
            | ErrorType::NoSuchView
            | ErrorType::NoSuchPlanId
            | ErrorType::NoSuchPlanTask
            | ErrorType::NotFound => 404,
            ErrorType::UnsupportedOperation => 406,
            ErrorType::AlreadyExists
            | ErrorType::NamespaceNotEmpty
            | ErrorType::CommitFailed
            | ErrorType::Conflict => 409,
            ErrorType::MethodNotAllowed => 405,
            ErrorType::PayloadTooLarge => 413,
            ErrorType::RequestTimeout => 408,
            ErrorType::TooManyRequests => 429,
            ErrorType::Unprocessable => 422,
            ErrorType::Internal | ErrorType::Misconfigured => 500,
            ErrorType::ServiceUnavailable => 503,
            ErrorType::InsufficientStorage => 507,
        }
    }
}

/// A failure on its way to the client: the spec's exception type and a message fit for it. Each
/// module's own error becomes one here, and only here, so the status every failure answers
/// with is decided in one place.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorType,
    pub message: String,
    /// What `Retry-After` says, when the answer says when to retry (a 503 says 1 s without it).
    pub retry_after_secs: Option<u64>,
    /// What caused a server-side failure (a store or storage error): logged once, with its
    /// chain and the request id, when the answer is made; never sent.
    pub source: Option<Cause>,
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

/// What `Retry-After` says on a 503: the trouble upstream (a deadline passed, a store or cloud
/// call failed) is worth retrying after this many seconds.
pub const RETRY_AFTER_SECS: u64 = 1;

impl ApiError {
    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after_secs: None,
            source: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorType::BadRequest, message)
    }

    /// The JSON body of this error.
    pub fn body(&self) -> IcebergErrorResponse {
        IcebergErrorResponse {
            error: ErrorModel {
                message: self.message.clone(),
                r#type: self.kind.name().to_owned(),
                code: self.kind.status(),
                stack: Vec::new(),
                request_id: super::request_id::request_id(),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        let mut error = Self::new(e.kind, e.message);
        error.source = e.source;
        error
    }
}

/// Store failures answer as the catalog maps them (a backend failure is a 503 that names
/// nothing of the backend; the detail goes to the log).
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        CatalogError::from(e).into()
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Self::new(ErrorType::NotAuthorized, e.to_string())
    }
}

impl From<crate::domain::NameError> for ApiError {
    fn from(e: crate::domain::NameError) -> Self {
        Self::bad_request(e.to_string())
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        let kind = match e {
            AdminError::TooSoon {
                message,
                retry_after,
            } => {
                let mut error = Self::new(ErrorType::TooManyRequests, message);
                error.retry_after_secs = Some(retry_after.as_secs_f64().ceil().max(1.0) as u64);
                return error;
            }
            AdminError::Storage(e) => return e.into(),
            AdminError::Store(e) => return e.into(),
            AdminError::NotFound(_) => ErrorType::NotFound,
            AdminError::Invalid(_) | AdminError::Name(_) => ErrorType::BadRequest,
            AdminError::Forbidden(_) => ErrorType::Forbidden,
            AdminError::Conflict(_) => ErrorType::Conflict,
            AdminError::Unsupported(_) => ErrorType::UnsupportedOperation,
            AdminError::NotAuthorized(_) => ErrorType::NotAuthorized,
        };
        Self::new(kind, e.to_string())
    }
}

impl From<AuthzError> for ApiError {
    fn from(e: AuthzError) -> Self {
        let kind = match e {
            AuthzError::Store(e) => return e.into(),
            AuthzError::Denied(_) => ErrorType::Forbidden,
            AuthzError::Inactive => ErrorType::NotAuthorized,
        };
        Self::new(kind, e.to_string())
    }
}

impl From<VendingError> for ApiError {
    fn from(e: VendingError) -> Self {
        let kind = match &e {
            VendingError::Refused(_) => ErrorType::Forbidden,
            VendingError::Invalid(_) => ErrorType::BadRequest,
            VendingError::Misconfigured(..) => ErrorType::Misconfigured,
            VendingError::Unavailable(..) => ErrorType::ServiceUnavailable,
        };
        let mut error = Self::new(kind, e.to_string());
        error.source = e.cause().cloned();
        error
    }
}

impl From<crate::table_answers::AnswerError> for ApiError {
    fn from(e: crate::table_answers::AnswerError) -> Self {
        use crate::table_answers::AnswerError;
        match e {
            AnswerError::Catalog(e) => e.into(),
            AnswerError::Denied(e) => e.into(),
            AnswerError::Vending(e) => e.into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(source) = &self.source {
            // The one place a request's failure is logged with its cause's whole chain.
            let cause: &(dyn std::error::Error + 'static) = source.as_ref();
            tracing::error!(
                request_id = super::request_id::request_id().unwrap_or_default(),
                answer = %self,
                error = cause,
                "request failed"
            );
        }
        let mut response = HttpResponse::build(self.status_code());
        if self.kind == ErrorType::NotAuthorized {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        let retry_after = match self.kind {
            ErrorType::ServiceUnavailable => {
                Some(self.retry_after_secs.unwrap_or(RETRY_AFTER_SECS))
            }
            _ => self.retry_after_secs,
        };
        if let Some(secs) = retry_after {
            response.insert_header((actix_web::http::header::RETRY_AFTER, secs));
        }
        response.json(self.body())
    }
}

/// Maps actix's JSON body errors (syntax, type, size) onto Iceberg errors.
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let api = match &err {
        J::OverflowKnownLength { length, limit } => ApiError::new(
            ErrorType::PayloadTooLarge,
            format!("request body of {length} bytes is larger than the limit of {limit} bytes"),
        ),
        J::Overflow { limit } => ApiError::new(
            ErrorType::PayloadTooLarge,
            format!("request body is larger than the limit of {limit} bytes"),
        ),
        J::ContentType => {
            ApiError::bad_request("request body must be JSON (Content-Type: application/json)")
        }
        J::Deserialize(e) => ApiError::bad_request(format!("malformed request body: {e}")),
        other => ApiError::bad_request(format!("cannot read request body: {other}")),
    };
    api.into()
}

/// Maps query-string errors onto Iceberg errors.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request(format!("bad query parameter: {err}")).into()
}

/// Maps path errors onto Iceberg errors.
pub fn path_error(
    err: actix_web::error::PathError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request(format!("bad path parameter: {err}")).into()
}
