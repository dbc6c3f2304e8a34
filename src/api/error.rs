//! Every failure leaves as the spec's `IcebergErrorResponse`, including malformed or oversized bodies.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use super::types::{ErrorModel, IcebergErrorResponse};
use crate::catalog::{CatalogError, ErrorType};
use crate::identity::AuthError;

/// A catalog error on its way to the client.
#[derive(Debug)]
pub struct ApiError(pub CatalogError);

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self(CatalogError::bad_request(message))
    }

    /// The JSON body of this error.
    pub fn body(&self) -> IcebergErrorResponse {
        IcebergErrorResponse {
            error: ErrorModel {
                message: self.0.message.clone(),
                r#type: self.0.kind.name().to_owned(),
                code: self.0.kind.status(),
                stack: Vec::new(),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.kind.name(), self.0.message)
    }
}

impl<E: Into<CatalogError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl From<AuthError> for CatalogError {
    fn from(e: AuthError) -> Self {
        CatalogError::new(ErrorType::NotAuthorized, e.to_string())
    }
}

impl From<crate::domain::NameError> for CatalogError {
    fn from(e: crate::domain::NameError) -> Self {
        CatalogError::bad_request(e.to_string())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if self.0.kind == ErrorType::NotAuthorized {
            response.insert_header(("WWW-Authenticate", "Bearer"));
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
        J::OverflowKnownLength { length, limit } => ApiError(CatalogError::new(
            ErrorType::PayloadTooLarge,
            format!("request body of {length} bytes is larger than the limit of {limit} bytes"),
        )),
        J::Overflow { limit } => ApiError(CatalogError::new(
            ErrorType::PayloadTooLarge,
            format!("request body is larger than the limit of {limit} bytes"),
        )),
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
