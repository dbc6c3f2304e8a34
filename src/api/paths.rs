//! Typed path extractors of the Iceberg routes: a handler receives a parsed namespace or object
//! name, never a `(String, String, String)` tuple, and the OpenAPI parameters of each path are
//! written once here.
//!
//! Warehouse and namespace segments are percent-decoded by actix's own path extractor (so its
//! error mapping applies); table and view paths are split by hand ([`object_segments`]) and
//! decoded the same way, so the hottest route, load-table, needs no regex ([`is_load_table`]).
//! Names are parsed into [`NamespaceIdent`] / [`TableIdent`] only after the warehouse is found:
//! an unknown warehouse is a 404 whatever the names look like, and no name check tells a caller
//! anything about a warehouse it cannot see.

use std::future::{Ready, ready};
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{Required, schema::Object};

use super::{ApiError, ApiResult, AppState, namespace_param, table_param};
use crate::authz::{Target, on_namespace, on_table, on_view};
use crate::catalog::{ErrorType, Warehouse};
use crate::domain::access::Privilege;
use crate::domain::{NamespaceIdent, TableIdent};
use crate::identity::Caller;
use crate::store::TabularKind;

fn path_parameter(name: &str, description: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(Object::with_type(utoipa::openapi::Type::String)))
        .build()
}

fn prefix_parameter() -> Parameter {
    path_parameter("prefix", "Warehouse id")
}

fn namespace_parameter() -> Parameter {
    path_parameter("namespace", "Levels separated by %1F")
}

/// Runs actix's path extractor for `T` (its decoding and error mapping), then `parse`.
fn extract<T, P>(
    req: &HttpRequest,
    payload: &mut Payload,
    parse: impl FnOnce(T) -> ApiResult<P>,
) -> Ready<Result<P, actix_web::Error>>
where
    T: serde::de::DeserializeOwned + 'static,
{
    let parsed = web::Path::<T>::from_request(req, payload)
        .into_inner()
        .and_then(|path| parse(path.into_inner()).map_err(actix_web::Error::from));
    ready(parsed)
}

/// `/v1/{prefix}`: a warehouse's routes.
pub struct WarehousePath {
    pub prefix: String,
}

impl FromRequest for WarehousePath {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        extract(req, payload, |prefix: String| Ok(Self { prefix }))
    }
}

impl IntoParams for WarehousePath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![prefix_parameter()]
    }
}

/// `/v1/{prefix}/namespaces/{namespace}`: a namespace's routes.
pub struct NamespacePath {
    pub prefix: String,
    /// The namespace segment as sent (levels separated by `%1F`), parsed by [`Self::namespace`].
    namespace: String,
}

impl NamespacePath {
    /// The namespace named by the path; 400 when a level is not a legal name.
    pub fn namespace(&self) -> ApiResult<NamespaceIdent> {
        namespace_param(&self.namespace)
    }
}

impl FromRequest for NamespacePath {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        extract(req, payload, |(prefix, namespace): (String, String)| {
            Ok(Self { prefix, namespace })
        })
    }
}

impl NamespacePath {
    /// The route's warehouse and namespace, once the caller is known to hold `privilege` on the
    /// namespace.
    pub async fn authorized(
        self,
        state: &AppState,
        caller: &Caller,
        privilege: Privilege,
    ) -> ApiResult<(Warehouse, NamespaceIdent)> {
        let wh = state.catalog.warehouse(caller, &self.prefix).await?;
        let namespace = self.namespace()?;
        state
            .authz
            .require(caller, &on_namespace(wh.record.id, &namespace), privilege)
            .await?;
        Ok((wh, namespace))
    }
}

impl IntoParams for NamespacePath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![prefix_parameter(), namespace_parameter()]
    }
}

/// What kind of object an [`ObjectPath`] names: its path segment, its grant target and the
/// privilege that lists it.
pub trait ObjectKind {
    /// The name of the last path parameter.
    const PARAMETER: &'static str;
    /// The path segment before it (`tables`, `views`).
    const COLLECTION: &'static str;
    const DESCRIPTION: &'static str;
    const KIND: TabularKind;
    /// Lists every object of this kind in a namespace.
    const LIST: Privilege;
    /// What a privilege on this object is checked against.
    fn target(warehouse: crate::domain::WarehouseId, ident: &TableIdent) -> Target;
}

/// `.../tables/{table}`.
pub struct Table;
/// `.../views/{view}`.
pub struct View;

impl ObjectKind for Table {
    const PARAMETER: &'static str = "table";
    const COLLECTION: &'static str = "tables";
    const DESCRIPTION: &'static str = "Table name";
    const KIND: TabularKind = TabularKind::Table;
    const LIST: Privilege = Privilege::TableList;
    fn target(warehouse: crate::domain::WarehouseId, ident: &TableIdent) -> Target {
        on_table(warehouse, ident)
    }
}

impl ObjectKind for View {
    const PARAMETER: &'static str = "view";
    const COLLECTION: &'static str = "views";
    const DESCRIPTION: &'static str = "View name";
    const KIND: TabularKind = TabularKind::View;
    const LIST: Privilege = Privilege::ViewList;
    fn target(warehouse: crate::domain::WarehouseId, ident: &TableIdent) -> Target {
        on_view(warehouse, ident)
    }
}

/// `/v1/{prefix}/namespaces/{namespace}/tables/{table}` or `.../views/{view}`.
pub struct ObjectPath<K> {
    pub prefix: String,
    /// The namespace and object segments as sent, parsed by [`Self::ident`].
    namespace: String,
    name: String,
    kind: PhantomData<K>,
}

pub type TablePath = ObjectPath<Table>;
pub type ViewPath = ObjectPath<View>;

impl<K: ObjectKind> ObjectPath<K> {
    /// The object `name` in namespace segment `namespace` of warehouse `prefix` (for a path that
    /// arrives in a body, as the global signer's does).
    pub fn new(prefix: &str, namespace: &str, name: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            kind: PhantomData,
        }
    }

    /// The object named by the path; 400 when a name is not legal.
    pub fn ident(&self) -> ApiResult<TableIdent> {
        table_param(&self.namespace, &self.name)
    }

    /// The route's warehouse and object, once the caller is known to hold `privilege` on it:
    /// the prelude of every table and view route.
    pub async fn authorized(
        self,
        state: &AppState,
        caller: &Caller,
        privilege: Privilege,
    ) -> ApiResult<(Warehouse, TableIdent)> {
        let wh = state.catalog.warehouse(caller, &self.prefix).await?;
        let ident = self.ident()?;
        state
            .authz
            .require(caller, &K::target(wh.record.id, &ident), privilege)
            .await?;
        Ok((wh, ident))
    }
}

/// The segments of a table or view path, as sent (percent-encoded), split by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectSegments<'a> {
    pub prefix: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    /// What follows the object's name: empty, or `/` and a sub-resource (`/credentials`).
    pub rest: &'a str,
}

/// Splits `/v1/{prefix}/namespaces/{namespace}/{collection}/{name}[/...]` (`collection` is
/// `tables` or `views`), or `None` for any other shape. It accepts exactly what actix's pattern
/// for these routes accepts (non-empty segments without `/`), with one pass over the path and no
/// regex: load-table is routed by it ([`is_load_table`]) and every object path is read by it.
pub fn object_segments<'a>(path: &'a str, collection: &str) -> Option<ObjectSegments<'a>> {
    let (prefix, rest) = segment(path.strip_prefix("/v1/")?)?;
    let (namespace, rest) = segment(rest.strip_prefix("namespaces/")?)?;
    let rest = rest.strip_prefix(collection)?.strip_prefix('/')?;
    let (name, rest) = rest.split_at(slash(rest).unwrap_or(rest.len()));
    (!name.is_empty()).then_some(ObjectSegments {
        prefix,
        namespace,
        name,
        rest,
    })
}

/// Where the first `/` of `s` is. A plain loop: these segments are a few bytes long, too short
/// for a vectorised search to pay for its setup.
fn slash(s: &str) -> Option<usize> {
    s.bytes().position(|b| b == b'/')
}

/// A non-empty segment at the start of `s`, and what follows its `/`.
fn segment(s: &str) -> Option<(&str, &str)> {
    let end = slash(s).filter(|end| *end > 0)?;
    Some((&s[..end], &s[end + 1..]))
}

/// The route pattern of load-table (its metrics label).
pub const LOAD_TABLE_ROUTE: &str = "/v1/{prefix}/namespaces/{namespace}/tables/{table}";

/// Whether a request is a load-table: a GET of exactly a table's path. The hottest route is
/// matched by this instead of a regex per request (see `docs/benchmarks.md`).
pub fn is_load_table(method: &actix_web::http::Method, path: &str) -> bool {
    method == actix_web::http::Method::GET
        && object_segments(path, "tables").is_some_and(|s| s.rest.is_empty())
}

/// A path segment decoded as actix's path extractor decodes it (every escape, invalid UTF-8
/// replaced).
fn decoded(segment: &str) -> String {
    if !segment.bytes().any(|b| b == b'%') {
        return segment.to_owned();
    }
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

impl<K: ObjectKind> FromRequest for ObjectPath<K> {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    /// Read from the request's path by [`object_segments`]: every route that takes an
    /// `ObjectPath` has a pattern that begins `/v1/{prefix}/namespaces/{namespace}/{K}s/{name}`.
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let path = object_segments(req.path(), K::COLLECTION)
            .map(|s| Self {
                prefix: decoded(s.prefix),
                namespace: decoded(s.namespace),
                name: decoded(s.name),
                kind: PhantomData,
            })
            .ok_or_else(|| {
                ApiError::new(ErrorType::NotFound, format!("not a {} path", K::PARAMETER)).into()
            });
        ready(path)
    }
}

impl<K: ObjectKind> IntoParams for ObjectPath<K> {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            prefix_parameter(),
            namespace_parameter(),
            path_parameter(K::PARAMETER, K::DESCRIPTION),
        ]
    }
}

#[cfg(test)]
mod tests {
    use actix_web::dev::ResourceDef;
    use actix_web::http::Method;

    use super::*;

    /// The hand split accepts exactly what actix's patterns for the object routes accept, and
    /// finds the same segments.
    #[test]
    fn object_segments_agree_with_the_route_patterns() {
        let exact = ResourceDef::new("/v1/{prefix}/namespaces/{namespace}/tables/{table}");
        let sub = ResourceDef::new("/v1/{prefix}/namespaces/{namespace}/tables/{table}/{rest}");
        let paths = [
            "/v1/w/namespaces/ns/tables/t",
            "/v1/w/namespaces/a%1Fb/tables/t%20x",
            "/v1/w/namespaces/ns/tables/t/credentials",
            "/v1/w/namespaces/ns/tables/t/",
            "/v1/w/namespaces/ns/tables/",
            "/v1/w/namespaces//tables/t",
            "/v1//namespaces/ns/tables/t",
            "/v1/w/namespaces/ns/views/t",
            "/v1/w/namespace/ns/tables/t",
            "/v1/w/namespaces/ns/tables",
            "/v2/w/namespaces/ns/tables/t",
            "/v1/w/x/namespaces/ns/tables/t",
            "/v1/w/namespaces/ns/tables/t/a/b",
        ];
        for path in paths {
            let split = object_segments(path, "tables");
            let mut matched = actix_web::dev::Path::new(path);
            let whole = exact.capture_match_info(&mut matched);
            assert_eq!(
                split.as_ref().is_some_and(|s| s.rest.is_empty()),
                whole,
                "{path}: load-table's shape"
            );
            if whole {
                let s = split.unwrap();
                assert_eq!(
                    (Some(s.prefix), Some(s.namespace), Some(s.name)),
                    (
                        matched.get("prefix"),
                        matched.get("namespace"),
                        matched.get("table")
                    ),
                    "{path}"
                );
            }
            let mut matched = actix_web::dev::Path::new(path);
            if sub.capture_match_info(&mut matched) {
                let s = split.expect("a sub-resource path is an object path");
                assert_eq!(Some(s.name), matched.get("table"), "{path}");
                assert_eq!(s.rest, format!("/{}", matched.get("rest").unwrap()));
            }
        }
        assert!(is_load_table(&Method::GET, "/v1/w/namespaces/ns/tables/t"));
        assert!(!is_load_table(
            &Method::HEAD,
            "/v1/w/namespaces/ns/tables/t"
        ));
        assert!(!is_load_table(
            &Method::GET,
            "/v1/w/namespaces/ns/tables/t/plan"
        ));
    }

    #[test]
    fn segments_are_decoded_as_actix_decodes_them() {
        assert_eq!(decoded("a%1Fb%20c%25d%2F"), "a\u{1f}b c%d/");
        assert_eq!(decoded("t%FF"), "t\u{fffd}");
        assert_eq!(decoded("plain"), "plain");
    }
}
