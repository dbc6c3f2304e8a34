//! Requests no route answers: a path the API documents, asked with a method it does not document,
//! is a 405 with `Allow`; any other request (an unknown path, or a documented one whose parameter
//! names nothing, such as an unknown principal action) is a 404. Both carry the spec's error body. The documented
//! paths and methods are read once from the OpenAPI document, so the two cannot disagree.

use std::sync::LazyLock;

use actix_web::dev::ResourceDef;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use super::ApiError;
use crate::catalog::ErrorType;

/// Every documented path pattern with its methods (upper case, comma-separated for `Allow`).
static DOCUMENTED: LazyLock<Vec<(ResourceDef, String)>> = LazyLock::new(|| {
    let doc: serde_json::Value = serde_json::from_str(&super::openapi::document_json())
        .expect("the OpenAPI document is JSON");
    let methods = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    doc["paths"]
        .as_object()
        .expect("the OpenAPI document has paths")
        .iter()
        .map(|(path, item)| {
            let allowed: Vec<String> = methods
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| m.to_ascii_uppercase())
                .collect();
            (
                ResourceDef::new(actix_pattern(path).as_str()),
                allowed.join(", "),
            )
        })
        .collect()
});

/// A documented path as an actix pattern: the spec names some parameters with a dash
/// (`{plan-id}`), which an actix parameter name cannot hold.
fn actix_pattern(path: &str) -> String {
    let mut inside = false;
    path.chars()
        .map(|c| {
            match c {
                '{' => inside = true,
                '}' => inside = false,
                _ => {}
            }
            if inside && c == '-' { '_' } else { c }
        })
        .collect()
}

/// The default service: 405 for a documented path, 404 otherwise.
pub async fn unrouted(req: HttpRequest) -> HttpResponse {
    let path = req.path();
    let method = req.method().as_str();
    if let Some((_, allowed)) = DOCUMENTED.iter().find(|(def, _)| def.is_match(path))
        && !allowed.split(", ").any(|m| m == method)
    {
        let error = ApiError::new(
            ErrorType::MethodNotAllowed,
            format!("{} is not allowed here (allowed: {allowed})", req.method()),
        );
        let mut response = error.error_response();
        if let Ok(value) = header::HeaderValue::from_str(allowed) {
            response.headers_mut().insert(header::ALLOW, value);
        }
        return response;
    }
    ApiError::new(
        ErrorType::NotFound,
        "no such route: see /openapi.json for the API",
    )
    .error_response()
}
