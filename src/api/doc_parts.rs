//! The parts of the OpenAPI document that the handlers' annotations and the document share: the
//! errors any catalog route answers, and tagged unions as client generators read them.

use std::collections::BTreeMap;

use utoipa::IntoResponses;
use utoipa::openapi::schema::{Discriminator, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr, Response};

/// Errors any catalog route can answer, each an `IcebergErrorResponse` (by reference, so generated
/// clients get one error type).
pub struct CommonErrors;

impl IntoResponses for CommonErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        [
            (
                "400",
                "Malformed request: bad JSON, bad names, bad parameters.",
            ),
            ("401", "Missing, expired or invalid bearer token."),
            ("403", "The caller may not do this."),
            (
                "413",
                "The request body is larger than the configured limit.",
            ),
            (
                "500",
                "`ServiceMisconfiguredException`: the warehouse's cloud refuses the server (a role STS will not let it assume); an operator must fix the warehouse, and retrying does not help.",
            ),
            (
                "503",
                "The store, the warehouse storage or its token service is unavailable or did not answer in time; retry after `Retry-After` seconds.",
            ),
        ]
        .into_iter()
        .map(|(status, description)| (status.to_owned(), error_response(description).into()))
        .collect()
    }
}

/// An error answer: `IcebergErrorResponse` as JSON.
pub(super) fn error_response(description: &str) -> Response {
    utoipa::openapi::ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("IcebergErrorResponse")))
                .build(),
        )
        .build()
}

/// A tagged union as client generators read it: a `oneOf` of references to one named component
/// per variant, with a discriminator on `tag` (generated clients get `S3Storage`, not
/// `StorageRequestType2`). `variants` pairs each tag value with its component's name.
pub(crate) fn tagged_union(
    tag: &str,
    variants: &[(&str, &str)],
    description: &str,
) -> RefOr<Schema> {
    let mut one_of = OneOfBuilder::new().description(Some(description));
    for (_, name) in variants {
        one_of = one_of.item(Ref::from_schema_name(*name));
    }
    one_of
        .discriminator(Some(Discriminator::with_mapping(
            tag,
            variants
                .iter()
                .map(|(value, name)| (*value, format!("#/components/schemas/{name}"))),
        )))
        .into()
}

/// A variant's object schema with the tag property added first and required, holding `value`.
pub(crate) fn with_tag(
    tag: &str,
    value: &str,
    object: RefOr<Schema>,
    description: &str,
) -> RefOr<Schema> {
    let RefOr::T(Schema::Object(mut object)) = object else {
        unreachable!("union variants are object schemas")
    };
    let tag_schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([value]));
    let rest = std::mem::take(&mut object.properties);
    object.properties.insert(tag.into(), tag_schema.into());
    object.properties.extend(rest);
    object.required.insert(0, tag.into());
    object.description = Some(description.into());
    RefOr::T(Schema::Object(object))
}
