//! Storage credentials and token-signing keys in sled ([`SecretStore`]), kept sealed as given.
//!
//! Owns: the `storage_credentials` and `signing_keys` trees. Must not touch: warehouses (a
//! credential in use is refused, read through [`TenancyStore`]).

use crate::domain::TenantId;
use ::sled::transaction::abort;
use async_trait::async_trait;

use super::keys::warehouse_name_key;
use super::*;

#[async_trait]
impl SecretStore for SledStore {
    async fn put_storage_credential(
        &self,
        c: &StorageCredentialRecord,
        replace: bool,
        _change: &Change,
    ) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let key = warehouse_name_key(c.tenant_id, &c.name);
        let value = encode(c)?;
        unwrap_tx(self.storage_credentials.transaction(|tree| {
            let exists = tree.get(&key)?.is_some();
            if exists && !replace {
                return abort(StoreError::AlreadyExists(format!(
                    "storage credential '{}'",
                    c.name
                )));
            }
            if !exists && replace {
                return abort(StoreError::NotFound(format!(
                    "storage credential '{}'",
                    c.name
                )));
            }
            tree.insert(key.as_slice(), value.as_slice())?;
            Ok(())
        }))?;
        self.durable().await
    }

    async fn get_storage_credential(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> StoreResult<Option<StorageCredentialRecord>> {
        Self::get_json(&self.storage_credentials, &warehouse_name_key(tenant, name))
    }

    async fn list_storage_credentials(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Vec<StorageCredentialRecord>> {
        let mut out = Vec::new();
        for entry in self.storage_credentials.scan_prefix(tenant.as_bytes()) {
            out.push(decode(&entry.map_err(backend)?.1)?);
        }
        Ok(out)
    }

    async fn delete_storage_credential(
        &self,
        tenant: TenantId,
        name: &str,
        _change: &Change,
    ) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let in_use = self
            .list_warehouses(tenant)
            .await?
            .into_iter()
            .find(|w| w.credential.as_deref() == Some(name));
        if let Some(wh) = in_use {
            return Err(StoreError::NotEmpty(
                format!("storage credential '{name}'"),
                format!("warehouse '{}' uses it", wh.name),
            ));
        }
        if self
            .storage_credentials
            .remove(warehouse_name_key(tenant, name))
            .map_err(backend)?
            .is_none()
        {
            return Err(StoreError::NotFound(format!("storage credential '{name}'")));
        }
        self.durable().await
    }

    async fn put_signing_key(&self, key: &SigningKeyRecord, _change: &Change) -> StoreResult<()> {
        let _writing = self.writing().await?;
        self.signing_keys
            .insert(key.kid.as_bytes(), encode(key)?)
            .map_err(backend)?;
        self.durable().await
    }

    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let mut keys: Vec<SigningKeyRecord> = Vec::new();
        for entry in self.signing_keys.iter() {
            keys.push(decode(&entry.map_err(backend)?.1)?);
        }
        keys.sort_by_key(|k| k.created_at_ms);
        Ok(keys)
    }

    async fn delete_signing_key(&self, kid: &str, _change: &Change) -> StoreResult<()> {
        let _writing = self.writing().await?;
        self.signing_keys.remove(kid.as_bytes()).map_err(backend)?;
        self.durable().await
    }
}
