//! Typed path extractors of the Iceberg routes: a handler receives a parsed namespace or object
//! name, never a `(String, String, String)` tuple, and the OpenAPI parameters of each path are
//! written once here.
//!
//! Segments are percent-decoded by actix's own path extractor (so its error mapping applies).
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

use super::{ApiResult, AppState, namespace_param, table_param};
use crate::authz::{Target, on_namespace, on_table, on_view};
use crate::catalog::Warehouse;
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
    const DESCRIPTION: &'static str = "Table name";
    const KIND: TabularKind = TabularKind::Table;
    const LIST: Privilege = Privilege::TableList;
    fn target(warehouse: crate::domain::WarehouseId, ident: &TableIdent) -> Target {
        on_table(warehouse, ident)
    }
}

impl ObjectKind for View {
    const PARAMETER: &'static str = "view";
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

impl<K: ObjectKind> FromRequest for ObjectPath<K> {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        extract(
            req,
            payload,
            |(prefix, namespace, name): (String, String, String)| {
                Ok(Self {
                    prefix,
                    namespace,
                    name,
                    kind: PhantomData,
                })
            },
        )
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
