//! Tenants and warehouses in sled ([`TenancyStore`]): records by id with a unique name index, and
//! each warehouse's storage root claimed across all tenants in the same transaction.
//!
//! Owns: the `tenants`, `tenant_names`, `warehouses` and `warehouse_names` trees. Must not touch:
//! principals and roles but through [`AccessStore`] (a tenant's go with it), or namespaces.

use crate::domain::TenantId;
use ::sled::Transactional;
use ::sled::transaction::abort;
use async_trait::async_trait;

use super::claims::{claim_root, release_root};
use super::keys::warehouse_name_key;
use super::*;

#[async_trait]
impl TenancyStore for SledStore {
    async fn create_tenant(&self, tenant: &TenantRecord, _change: &Change) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let what = format!("tenant '{}'", tenant.name);
        self.insert_named(
            (&self.tenants, &self.tenant_names),
            tenant.id.uuid(),
            tenant.name.as_bytes(),
            what,
            tenant,
        )
        .await
    }

    async fn get_tenant(&self, id: TenantId) -> StoreResult<Option<TenantRecord>> {
        Self::get_json(&self.tenants, id.as_bytes())
    }

    async fn get_tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRecord>> {
        Self::get_by_name(&self.tenants, &self.tenant_names, name.as_bytes())
    }

    async fn list_tenants(&self) -> StoreResult<Vec<TenantRecord>> {
        let mut out: Vec<TenantRecord> = Vec::new();
        for entry in self.tenants.iter() {
            out.push(decode(&entry.map_err(backend)?.1)?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn rename_tenant(&self, id: TenantId, name: &str, _change: &Change) -> StoreResult<()> {
        let _writing = self.writing().await?;
        unwrap_tx(
            (&self.tenants, &self.tenant_names).transaction(|(ids, names)| {
                let Some(bytes) = ids.get(id.as_bytes())? else {
                    return abort(StoreError::NotFound(format!("tenant {id}")));
                };
                let mut tenant: TenantRecord = tx_decode(&bytes)?;
                if tenant.name == name {
                    return Ok(());
                }
                if names.get(name.as_bytes())?.is_some() {
                    return abort(StoreError::AlreadyExists(format!("tenant '{name}'")));
                }
                names.remove(tenant.name.as_bytes())?;
                names.insert(name.as_bytes(), id.as_bytes().as_slice())?;
                tenant.name = name.to_owned();
                ids.insert(id.as_bytes().as_slice(), tx_encode(&tenant)?)?;
                Ok(())
            }),
        )?;
        self.durable().await
    }

    async fn delete_tenant(&self, id: TenantId, _change: &Change) -> StoreResult<()> {
        let writing = self.writing().await?;
        let Some(tenant) = self.get_tenant(id).await? else {
            return Err(StoreError::NotFound(format!("tenant {id}")));
        };
        if self
            .warehouse_names
            .scan_prefix(id.as_bytes())
            .next()
            .is_some()
        {
            return Err(StoreError::NotEmpty(
                format!("tenant '{}'", tenant.name),
                "delete its warehouses first".into(),
            ));
        }
        for p in self.list_principals(id).await? {
            self.remove_principal(&writing, p.id).await?;
        }
        for r in self.list_roles(id).await? {
            self.remove_role(&writing, r.id).await?;
        }
        unwrap_tx(
            (&self.tenants, &self.tenant_names).transaction(|(ids, names)| {
                ids.remove(id.as_bytes().as_slice())?;
                names.remove(tenant.name.as_bytes())?;
                Ok(())
            }),
        )?;
        self.durable().await
    }

    async fn create_warehouse(&self, wh: &WarehouseRecord, _change: &Change) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let name = warehouse_name_key(wh.tenant_id, &wh.name);
        let value = encode(wh)?;
        let root = wh.storage.root_location();
        unwrap_tx(
            (
                &self.warehouses,
                &self.warehouse_names,
                &self.warehouse_roots,
                &self.warehouse_roots_below,
            )
                .transaction(|(ids, names, roots, below)| {
                    if names.get(&name)?.is_some() || ids.get(wh.id.as_bytes())?.is_some() {
                        return abort(StoreError::AlreadyExists(format!(
                            "warehouse '{}'",
                            wh.name
                        )));
                    }
                    claim_root(roots, below, &root, wh.id)?;
                    names.insert(name.as_slice(), wh.id.as_bytes().as_slice())?;
                    ids.insert(wh.id.as_bytes().as_slice(), value.as_slice())?;
                    Ok(())
                }),
        )?;
        self.durable().await
    }

    async fn update_warehouse(&self, wh: &WarehouseRecord, _change: &Change) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let value = encode(wh)?;
        let new_name = warehouse_name_key(wh.tenant_id, &wh.name);
        let new_root = wh.storage.root_location();
        let holds_namespaces = self
            .namespaces
            .scan_prefix(wh.id.as_bytes())
            .next()
            .is_some()
            || self.dropped.scan_prefix(wh.id.as_bytes()).next().is_some();
        unwrap_tx(
            (
                &self.warehouses,
                &self.warehouse_names,
                &self.warehouse_roots,
                &self.warehouse_roots_below,
            )
                .transaction(|(ids, names, roots, below)| {
                    let Some(old) = ids.get(wh.id.as_bytes())? else {
                        return abort(StoreError::failure(format!(
                            "warehouse {} does not exist",
                            wh.id
                        )));
                    };
                    let old: WarehouseRecord = tx_decode(&old)?;
                    if old.name != wh.name {
                        if names.get(&new_name)?.is_some() {
                            return abort(StoreError::AlreadyExists(format!(
                                "warehouse '{}'",
                                wh.name
                            )));
                        }
                        names.remove(warehouse_name_key(old.tenant_id, &old.name))?;
                        names.insert(new_name.as_slice(), wh.id.as_bytes().as_slice())?;
                    }
                    let old_root = old.storage.root_location();
                    if old_root != new_root {
                        if holds_namespaces {
                            return abort(storage_in_use(&old.name));
                        }
                        release_root(roots, below, &old_root, wh.id)?;
                        claim_root(roots, below, &new_root, wh.id)?;
                    }
                    ids.insert(wh.id.as_bytes().as_slice(), value.as_slice())?;
                    Ok(())
                }),
        )?;
        self.durable().await
    }

    async fn get_warehouse(&self, id: WarehouseId) -> StoreResult<Option<WarehouseRecord>> {
        Self::get_json(&self.warehouses, id.as_bytes())
    }

    async fn get_warehouse_by_name(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> StoreResult<Option<WarehouseRecord>> {
        Self::get_by_name(
            &self.warehouses,
            &self.warehouse_names,
            &warehouse_name_key(tenant, name),
        )
    }

    async fn list_warehouses(&self, tenant: TenantId) -> StoreResult<Vec<WarehouseRecord>> {
        let mut out = Vec::new();
        for entry in self.warehouse_names.scan_prefix(tenant.as_bytes()) {
            let (_, id) = entry.map_err(backend)?;
            if let Some(wh) = Self::get_json(&self.warehouses, &id)? {
                out.push(wh);
            }
        }
        Ok(out)
    }

    async fn delete_warehouse(&self, id: WarehouseId, _change: &Change) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let Some(wh) = self.get_warehouse(id).await? else {
            return Err(StoreError::NotFound(format!("warehouse {id}")));
        };
        if self.namespaces.scan_prefix(id.as_bytes()).next().is_some() {
            return Err(StoreError::NotEmpty(
                format!("warehouse '{}'", wh.name),
                "drop its namespaces first".into(),
            ));
        }
        if self.dropped.scan_prefix(id.as_bytes()).next().is_some() {
            return Err(StoreError::NotEmpty(
                format!("warehouse '{}'", wh.name),
                "its recycle bin holds dropped tables or views: purge them first".into(),
            ));
        }
        let root = wh.storage.root_location();
        unwrap_tx(
            (
                &self.warehouses,
                &self.warehouse_names,
                &self.warehouse_roots,
                &self.warehouse_roots_below,
            )
                .transaction(|(ids, names, roots, below)| {
                    ids.remove(id.as_bytes().as_slice())?;
                    names.remove(warehouse_name_key(wh.tenant_id, &wh.name))?;
                    release_root(roots, below, &root, id)?;
                    Ok(())
                }),
        )?;
        self.durable().await
    }
}
