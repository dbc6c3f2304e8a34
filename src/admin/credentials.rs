//! Named storage credentials of a tenant. Values are write-only: sealed under the master key (or
//! kept as a reference the operator allowed) and never returned.

use uuid::Uuid;

use super::Admin;
use super::{AdminError, AdminResult};
use crate::changes::Change;
use crate::domain::TenantId;
use crate::domain::{CredentialKind, ResourceName};
use crate::identity::Caller;
use crate::storage::normalize_fields;
use crate::store::{CredentialValue, StorageCredentialRecord, now_ms};

/// A credential's new value, as given.
pub enum NewCredentialValue {
    /// Its fields, to be sealed.
    Fields(serde_json::Value),
    /// A reference resolved at each use (`env:`, `file:`, `aws-secretsmanager:`, `aws-ssm:`).
    Reference(String),
}

impl Admin {
    /// A new named credential of `tenant`.
    pub async fn create_credential(
        &self,
        caller: &Caller,
        tenant: TenantId,
        name: ResourceName,
        kind: CredentialKind,
        value: NewCredentialValue,
    ) -> AdminResult<StorageCredentialRecord> {
        let record = self.credential_record(tenant, name.into_string(), kind, value)?;
        let change = credential_change(&record);
        self.store
            .put_storage_credential(&record, false, &change)
            .await?;
        self.credential_changed(caller, &record, change, "create-storage-credential")
            .await;
        Ok(record)
    }

    /// The tenant's credentials (sealed: the handler shows names and kinds only).
    pub async fn credentials(&self, tenant: TenantId) -> AdminResult<Vec<StorageCredentialRecord>> {
        Ok(self.store.list_storage_credentials(tenant).await?)
    }

    /// Replaces a credential's value; every warehouse using it reaches its storage with the new
    /// value from its next request on (on every replica).
    pub async fn rotate_credential(
        &self,
        caller: &Caller,
        tenant: TenantId,
        name: String,
        kind: CredentialKind,
        value: NewCredentialValue,
    ) -> AdminResult<StorageCredentialRecord> {
        let record = self.credential_record(tenant, name, kind, value)?;
        let change = credential_change(&record);
        self.store
            .put_storage_credential(&record, true, &change)
            .await?;
        self.credential_changed(caller, &record, change, "rotate-storage-credential")
            .await;
        Ok(record)
    }

    /// Deletes a credential no warehouse uses (409 otherwise).
    pub async fn delete_credential(
        &self,
        caller: &Caller,
        tenant: TenantId,
        name: &str,
    ) -> AdminResult<()> {
        let change = Change::StorageCredential {
            tenant,
            name: name.to_owned(),
        };
        self.store
            .delete_storage_credential(tenant, name, &change)
            .await?;
        self.changed(change).await;
        let what = format!("storage credential {name}");
        self.audit(caller, tenant, "delete-storage-credential", what)
            .await;
        Ok(())
    }

    fn credential_record(
        &self,
        tenant: TenantId,
        name: String,
        kind: CredentialKind,
        value: NewCredentialValue,
    ) -> AdminResult<StorageCredentialRecord> {
        let value = match value {
            NewCredentialValue::Fields(fields) => {
                let fields = normalize_fields(kind, &fields).map_err(AdminError::invalid)?;
                self.credentials.seal(tenant, &name, &fields)
            }
            NewCredentialValue::Reference(reference) => {
                self.credentials
                    .check_reference(&reference)
                    .map_err(AdminError::invalid)?;
                CredentialValue::Reference { reference }
            }
        };
        Ok(StorageCredentialRecord {
            id: Uuid::now_v7(),
            tenant_id: tenant,
            name,
            kind,
            value,
            created_at_ms: now_ms(),
        })
    }

    /// Publishes `change` (the credential was created or rotated), then records `action`.
    async fn credential_changed(
        &self,
        caller: &Caller,
        record: &StorageCredentialRecord,
        change: Change,
        action: &str,
    ) {
        self.changed(change).await;
        let what = format!("storage credential {}", record.name);
        self.audit(caller, record.tenant_id, action, what).await;
    }
}

/// The change a credential's creation or rotation makes.
fn credential_change(record: &StorageCredentialRecord) -> Change {
    Change::StorageCredential {
        tenant: record.tenant_id,
        name: record.name.clone(),
    }
}
