//! What a grant gives and what it is on: privileges, the resources grants name (tables and views
//! by id), and a caller's data access to a table. Deciding who holds what is [`crate::authz`]'s.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{TabularId, WarehouseId};

use super::{NamespaceIdent, TableIdent};

/// What a grant allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Privilege {
    /// Everything in the tenant, including its management API.
    TenantAdmin,
    /// Everything in a warehouse.
    WarehouseAdmin,
    NamespaceCreate,
    NamespaceDrop,
    NamespaceList,
    NamespaceRead,
    NamespaceWrite,
    TableCreate,
    TableDrop,
    TableList,
    TableReadMetadata,
    TableReadData,
    TableWriteData,
    ViewCreate,
    ViewDrop,
    ViewList,
    ViewRead,
    ViewWrite,
}

impl Privilege {
    /// True when holding `self` also gives `wanted`.
    pub fn implies(self, wanted: Privilege) -> bool {
        use Privilege::*;
        self == wanted
            || match self {
                TenantAdmin => true,
                WarehouseAdmin => wanted != TenantAdmin,
                TableWriteData => matches!(wanted, TableReadData | TableReadMetadata),
                TableReadData => wanted == TableReadMetadata,
                NamespaceWrite => wanted == NamespaceRead,
                ViewWrite => wanted == ViewRead,
                _ => false,
            }
    }
}

/// A table's data access for vending: from the caller's grants on it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum DataAccess {
    None,
    Read,
    ReadWrite,
}

/// What a grant is on. Everything inside a resource inherits its grants. A table or view is named
/// by its id, so a rename keeps its grants and a new object under a dropped one's name gets none.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum GrantResource {
    Tenant,
    Warehouse {
        warehouse: WarehouseId,
    },
    Namespace {
        warehouse: WarehouseId,
        namespace: NamespaceIdent,
    },
    #[serde(rename = "table-id")]
    Table {
        warehouse: WarehouseId,
        table: TabularId,
    },
    #[serde(rename = "view-id")]
    View {
        warehouse: WarehouseId,
        view: TabularId,
    },
    /// A grant stored before grants named objects by id;
    /// [`crate::admin::upgrade_name_keyed_grants`] rewrites it at start, and until then it reaches
    /// nothing.
    #[serde(rename = "table")]
    TableByName {
        warehouse: WarehouseId,
        table: TableIdent,
    },
    /// Like [`GrantResource::TableByName`], for a view.
    #[serde(rename = "view")]
    ViewByName {
        warehouse: WarehouseId,
        view: TableIdent,
    },
}

impl GrantResource {
    /// The warehouse the resource is in; `None` for the tenant.
    pub fn warehouse(&self) -> Option<WarehouseId> {
        match self {
            GrantResource::Tenant => None,
            GrantResource::Warehouse { warehouse }
            | GrantResource::Namespace { warehouse, .. }
            | GrantResource::Table { warehouse, .. }
            | GrantResource::View { warehouse, .. }
            | GrantResource::TableByName { warehouse, .. }
            | GrantResource::ViewByName { warehouse, .. } => Some(*warehouse),
        }
    }
}
