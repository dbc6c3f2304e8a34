//! The answers that hand a table to a caller, one call each: load-table (with its ETag and the
//! 304 it may answer), a created or registered table, a scan plan, `/credentials`, a presigned
//! URL and a remote signature.
//!
//! Owns: composing the catalog's table, the caller's data access (asked of `authz`, which also
//! audits a refusal) and the storage part (asked of `vending`) into the parts of an answer, and
//! the URLs of a table's storage routes that those parts name (`s3.signer.endpoint`, the refresh
//! endpoint). Must not touch: HTTP types (the API renders the parts) or the store.

use std::collections::BTreeMap;
use std::sync::Arc;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::authz::{Authorizer, AuthzError, on_table};
use crate::catalog::{Catalog, CatalogError, CreateTable, LoadedTable, SnapshotsMode, Warehouse};
use crate::domain::access::{DataAccess, Privilege};
use crate::domain::{NamespaceIdent, ScanPlanningMode, TableIdent};
use crate::identity::Caller;
use crate::planning::{Plan, PlanRequest, PlanStatus, Planner, ScanTasks};
use crate::storage::s3::signer::Needs;
use crate::storage::{
    PresignMethod, RemoteSign, Requester, TableAccess, TableEndpoints, VendedCredential,
    VendingError,
};
use crate::vending::table_storage::{AccessAsked, Presigned, TableStorage};
use crate::vending::{Delegation, Vending};

/// Why a table answer could not be given: the catalog's, the authorizer's or vending's reason.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Denied(#[from] AuthzError),
    #[error(transparent)]
    Vending(#[from] VendingError),
}

/// The spec's table property and `config` key that tell engines where to plan scans.
pub const SCAN_PLANNING_MODE: &str = "scan-planning-mode";

/// Where engines are told to plan scans of a table: its `scan-planning-mode` property (when it
/// is `client` or `server`), else its warehouse's setting; nothing when neither says.
pub fn planning_mode(wh: &Warehouse, loaded: &LoadedTable) -> Option<ScanPlanningMode> {
    loaded
        .table
        .metadata
        .properties()
        .get(SCAN_PLANNING_MODE)
        .and_then(|v| ScanPlanningMode::parse(v))
        .or(wh.record.scan_planning_mode)
}

/// A table answer's storage part, telling the engine where to plan when the table or its
/// warehouse says.
fn told_where_to_plan(storage: TableStorage, wh: &Warehouse, loaded: &LoadedTable) -> TableStorage {
    match planning_mode(wh, loaded) {
        Some(mode) => storage.with_setting(SCAN_PLANNING_MODE, mode.as_str()),
        None => storage,
    }
}

/// Shorthand for table answers.
pub type AnswerResult<T> = Result<T, AnswerError>;

/// Load-table's answer. Not boxed: it is moved once, and a box would cost an allocation on
/// load-table's path for every answer.
#[allow(clippy::large_enum_variant)]
pub enum LoadAnswer {
    /// The caller's copy, named by its ETag, is current.
    NotModified { tag: String },
    /// The table's metadata and the storage part for this caller, with its ETag.
    Table {
        tag: String,
        loaded: LoadedTable,
        storage: TableStorage,
    },
}

/// The storage part of a created or registered table's answer.
pub struct CommittedStorage {
    pub storage: TableStorage,
    /// Credentials were asked for but could not be vended after the table was committed (the
    /// answer must not be an error the client would retry; a load gets them later).
    pub withheld: bool,
}

/// The table answers service.
pub struct TableAnswers {
    catalog: Arc<Catalog>,
    authz: Arc<Authorizer>,
    vending: Arc<Vending>,
    planner: Arc<Planner>,
    /// URL clients reach this server at (for refresh and signer endpoints).
    public_url: String,
}

impl TableAnswers {
    pub fn new(
        catalog: Arc<Catalog>,
        authz: Arc<Authorizer>,
        vending: Arc<Vending>,
        planner: Arc<Planner>,
        public_url: String,
    ) -> Self {
        Self {
            catalog,
            authz,
            vending,
            planner,
            public_url,
        }
    }

    /// A scan plan for a caller who may read the table's data, and, once it is completed, the
    /// storage part of the answer (credentials for the files it names, as load-table hands
    /// them).
    pub async fn plan(
        &self,
        caller: &Caller,
        wh: &Warehouse,
        ident: &TableIdent,
        request: &PlanRequest,
        delegation: Delegation,
    ) -> AnswerResult<(Plan, Option<TableStorage>)> {
        let loaded = self.catalog.load_table(wh, ident).await?;
        let plan = self
            .planner
            .plan(caller.principal_id, wh.io().clone(), &loaded, request)
            .await?;
        let storage = self
            .completed_storage(&plan.status, caller, wh, ident, &loaded, delegation)
            .await?;
        Ok((plan, storage))
    }

    /// Where the plan a plan id names is (planned again when this replica does not hold it),
    /// with the storage part of its answer once it is completed.
    pub async fn poll_plan(
        &self,
        caller: &Caller,
        wh: &Warehouse,
        ident: &TableIdent,
        plan_id: &str,
        delegation: Delegation,
    ) -> AnswerResult<(PlanStatus, Option<TableStorage>)> {
        let loaded = self.catalog.load_table(wh, ident).await?;
        let status = self
            .planner
            .poll(caller.principal_id, wh.io().clone(), &loaded, plan_id)
            .await?;
        let storage = self
            .completed_storage(&status, caller, wh, ident, &loaded, delegation)
            .await?;
        Ok((status, storage))
    }

    /// Cancels the caller's plan of this table (it stops if this replica plans it in the
    /// background; a completed plan holds nothing).
    pub async fn cancel_plan(
        &self,
        caller: &Caller,
        wh: &Warehouse,
        ident: &TableIdent,
        plan_id: &str,
    ) -> AnswerResult<()> {
        let loaded = self.catalog.load_table(wh, ident).await?;
        self.planner.cancel(caller.principal_id, &loaded, plan_id)?;
        Ok(())
    }

    /// One plan task's file scan tasks.
    pub async fn plan_task(
        &self,
        caller: &Caller,
        wh: &Warehouse,
        ident: &TableIdent,
        task: &str,
    ) -> AnswerResult<ScanTasks> {
        let loaded = self.catalog.load_table(wh, ident).await?;
        Ok(self
            .planner
            .task(caller.principal_id, wh.io().clone(), &loaded, task)
            .await?)
    }

    /// The storage part of a plan's answer, when it is completed (nothing else carries one).
    async fn completed_storage(
        &self,
        status: &PlanStatus,
        caller: &Caller,
        wh: &Warehouse,
        ident: &TableIdent,
        loaded: &LoadedTable,
        delegation: Delegation,
    ) -> AnswerResult<Option<TableStorage>> {
        if !matches!(status, PlanStatus::Completed(_)) {
            return Ok(None);
        }
        let asked = self.access_asked(caller, wh, ident, delegation).await?;
        Ok(Some(
            self.storage_for(caller, wh, ident, loaded, asked).await?,
        ))
    }

    /// Load-table for a caller who may read the table's metadata: 304's tag when `if_none_match`
    /// names the current answer (or `*`), else the table and the storage part `delegation` asks
    /// for, as the caller's data access allows.
    pub async fn load(
        &self,
        caller: &Caller,
        wh: &Warehouse,
        ident: &TableIdent,
        mode: SnapshotsMode,
        delegation: Delegation,
        if_none_match: Option<&str>,
    ) -> AnswerResult<LoadAnswer> {
        let loaded = self.catalog.load_table(wh, ident).await?;
        let asked = self.access_asked(caller, wh, ident, delegation).await?;
        let mut tag = asked.etag(loaded.table.etag(
            loaded.metadata_location.as_deref().unwrap_or_default(),
            mode,
        ));
        // A warehouse's planning mode is in the answer but not in the table's metadata: a change
        // of it must not be answered 304.
        if let Some(planning) = wh.record.scan_planning_mode {
            tag.insert_str(tag.len() - 1, planning.as_str());
        }
        if if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*")) {
            return Ok(LoadAnswer::NotModified { tag });
        }
        let storage = self.storage_for(caller, wh, ident, &loaded, asked).await?;
        let storage = told_where_to_plan(storage, wh, &loaded);
        Ok(LoadAnswer::Table {
            tag,
            loaded,
            storage,
        })
    }

    /// Creates a table (or stages its creation) for a caller who may create in `ns`, and the
    /// storage part of its answer.
    pub async fn create(
        &self,
        caller: &Caller,
        wh: &Warehouse,
        ns: NamespaceIdent,
        request: CreateTable,
        delegation: Delegation,
    ) -> AnswerResult<(LoadedTable, CommittedStorage)> {
        let name = request.name.clone();
        let loaded = self.catalog.create_table(wh, &ns, request).await?;
        // The location was checked to lie inside the warehouse before anything was written.
        let ident = TableIdent::new(ns, name);
        let storage = self
            .committed_storage(caller, wh, &ident, &loaded, delegation)
            .await;
        Ok((loaded, storage))
    }

    /// Registers a table from its metadata file for a caller who may create in its namespace,
    /// and the storage part of its answer.
    pub async fn register(
        &self,
        caller: &Caller,
        wh: &Warehouse,
        ident: TableIdent,
        metadata_location: &str,
        overwrite: bool,
        delegation: Delegation,
    ) -> AnswerResult<(LoadedTable, CommittedStorage)> {
        let loaded = self
            .catalog
            .register_table(wh, ident.clone(), metadata_location, overwrite)
            .await?;
        let storage = self
            .committed_storage(caller, wh, &ident, &loaded, delegation)
            .await;
        Ok((loaded, storage))
    }

    /// The `/credentials` answer: the table's one credential for the caller's data access, or
    /// none for warehouses that vend nothing (403, audited, without read access).
    pub async fn credentials(
        &self,
        caller: &Caller,
        wh: &Warehouse,
        ident: &TableIdent,
        plan_id: Option<&str>,
    ) -> AnswerResult<Option<Arc<VendedCredential>>> {
        let (loaded, data) = self.table_for_data(caller, wh, ident).await?;
        // A refresh for a plan's scan names the plan: it must be the caller's plan of this table.
        if let Some(id) = plan_id {
            self.planner
                .check_plan_id(caller.principal_id, &loaded, id)?;
        }
        let tenant = self.catalog.tenant_name(caller.tenant_id).await?;
        let t = self.table_access(caller, wh, ident, &loaded, data, &tenant);
        Ok(self.vending.refresh_credentials(&t).await?)
    }

    /// A URL for one file inside the table: `GET` needs read access, `PUT` write access (403,
    /// audited, without).
    pub async fn presign(
        &self,
        caller: &Caller,
        wh: &Warehouse,
        ident: &TableIdent,
        file: &str,
        method: PresignMethod,
    ) -> AnswerResult<Presigned> {
        let (loaded, data) = self.table_for_data(caller, wh, ident).await?;
        if method == PresignMethod::Put {
            self.require_write(caller, wh, ident, data).await?;
        }
        let tenant = self.catalog.tenant_name(caller.tenant_id).await?;
        let t = self.table_access(caller, wh, ident, &loaded, data, &tenant);
        Ok(self.vending.presign(&t, file, method).await?)
    }

    /// Signs a request for the remote signer after checking that it stays inside the table; a
    /// write needs write access (403, audited, without). The URI and headers to send.
    pub async fn sign(
        &self,
        caller: &Caller,
        wh: &Warehouse,
        ident: &TableIdent,
        sign: &RemoteSign<'_>,
    ) -> AnswerResult<(String, BTreeMap<String, Vec<String>>)> {
        let (loaded, data) = self.table_for_data(caller, wh, ident).await?;
        let tenant = self.catalog.tenant_name(caller.tenant_id).await?;
        let t = self.table_access(caller, wh, ident, &loaded, data, &tenant);
        let checked = self.vending.check_sign(&t, sign)?;
        if checked.needs == Needs::Write {
            self.require_write(caller, wh, ident, data).await?;
        }
        Ok(self.vending.sign(&t, sign, &checked).await?)
    }

    /// The delegation asked for and the caller's data access (a local warehouse hands out
    /// nothing: its answers never look at either).
    async fn access_asked(
        &self,
        caller: &Caller,
        wh: &Warehouse,
        ident: &TableIdent,
        delegation: Delegation,
    ) -> AnswerResult<AccessAsked> {
        if !AccessAsked::may_delegate(wh.storage()) || !delegation.any() {
            return Ok(AccessAsked::PLAIN);
        }
        let data = self.authz.data_access(caller, wh.record.id, ident).await?;
        Ok(AccessAsked::new(wh.storage(), delegation, data))
    }

    /// The storage part of a table answer for `asked`.
    async fn storage_for(
        &self,
        caller: &Caller,
        wh: &Warehouse,
        ident: &TableIdent,
        loaded: &LoadedTable,
        asked: AccessAsked,
    ) -> AnswerResult<TableStorage> {
        if asked == AccessAsked::PLAIN {
            return Ok(TableStorage::plain(wh.storage()));
        }
        // Boxed: vending's state stays out of the futures of the loads that need none.
        Box::pin(async {
            let tenant = self.catalog.tenant_name(caller.tenant_id).await?;
            let t = self.table_access(caller, wh, ident, loaded, asked.data(), &tenant);
            Ok(self
                .vending
                .table_storage(&t, asked, &self.endpoints(wh, ident))
                .await?)
        })
        .await
    }

    /// The storage part of a table that now exists: as asked, or plain and withheld when it
    /// could not be had (the table is committed either way).
    async fn committed_storage(
        &self,
        caller: &Caller,
        wh: &Warehouse,
        ident: &TableIdent,
        loaded: &LoadedTable,
        delegation: Delegation,
    ) -> CommittedStorage {
        let storage = async {
            let asked = self.access_asked(caller, wh, ident, delegation).await?;
            self.storage_for(caller, wh, ident, loaded, asked).await
        };
        match storage.await {
            Ok(storage) => CommittedStorage {
                storage: told_where_to_plan(storage, wh, loaded),
                withheld: false,
            },
            Err(e) => {
                tracing::warn!(table = %ident, error = &e as &dyn std::error::Error, "table committed; credentials not vended");
                CommittedStorage {
                    storage: TableStorage::plain(wh.storage()),
                    withheld: true,
                }
            }
        }
    }

    /// The table and the caller's data access, for a storage route (403, audited, without read
    /// access).
    async fn table_for_data(
        &self,
        caller: &Caller,
        wh: &Warehouse,
        ident: &TableIdent,
    ) -> AnswerResult<(LoadedTable, DataAccess)> {
        let loaded = self.catalog.load_table(wh, ident).await?;
        let data = self.authz.data_access(caller, wh.record.id, ident).await?;
        if data == DataAccess::None {
            self.authz
                .require(
                    caller,
                    &on_table(wh.record.id, ident),
                    Privilege::TableReadData,
                )
                .await?;
        }
        Ok((loaded, data))
    }

    /// Fails with 403 (audited) unless the caller may write the table.
    async fn require_write(
        &self,
        caller: &Caller,
        wh: &Warehouse,
        ident: &TableIdent,
        data: DataAccess,
    ) -> AnswerResult<()> {
        if data != DataAccess::ReadWrite {
            self.authz
                .require(
                    caller,
                    &on_table(wh.record.id, ident),
                    Privilege::TableWriteData,
                )
                .await?;
        }
        Ok(())
    }

    /// What vending needs to know of the caller and the table.
    fn table_access<'a>(
        &self,
        caller: &'a Caller,
        wh: &'a Warehouse,
        ident: &TableIdent,
        loaded: &'a LoadedTable,
        data: DataAccess,
        tenant_name: &'a str,
    ) -> TableAccess<'a> {
        TableAccess {
            warehouse: wh.storage(),
            location: &loaded.location,
            access: data,
            caller: Requester {
                principal_id: caller.principal_id,
                name: &caller.name,
            },
            tenant_name,
            refresh_endpoint: format!("{}/{}/credentials", self.public_url, table_path(wh, ident)),
        }
    }

    /// Where this server serves the table's storage routes.
    fn endpoints(&self, wh: &Warehouse, ident: &TableIdent) -> TableEndpoints {
        TableEndpoints {
            signer_uri: self.public_url.clone(),
            signer_endpoint: format!("{}/sign", table_path(wh, ident)),
            signer_scope: table_scope(wh, ident),
        }
    }
}

/// A path segment as clients send it (namespace levels joined by `%1F`).
fn segment(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// The namespace and table segments of this table's paths.
fn segments(ident: &TableIdent) -> (String, String) {
    (
        segment(&ident.namespace.parts().join("\u{1f}")),
        segment(ident.name.as_str()),
    )
}

/// `{prefix}/{namespace}/{table}` as in this table's paths: what clients of the global
/// `/v1/aws/s3/sign` pass back to name the table.
fn table_scope(wh: &Warehouse, ident: &TableIdent) -> String {
    let (ns, table) = segments(ident);
    format!("{}/{ns}/{table}", wh.record.id)
}

/// `v1/{prefix}/namespaces/{ns}/tables/{table}` (no leading slash).
fn table_path(wh: &Warehouse, ident: &TableIdent) -> String {
    let (ns, table) = segments(ident);
    format!("v1/{}/namespaces/{ns}/tables/{table}", wh.record.id)
}
