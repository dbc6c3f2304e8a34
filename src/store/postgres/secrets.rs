//! Storage credentials and token-signing keys in PostgreSQL ([`SecretStore`]), kept sealed as
//! given.
//!
//! Owns: the `storage_credentials` and `signing_keys` tables. Must not touch: warehouses (a
//! credential in use is refused, its users locked meanwhile).

use async_trait::async_trait;

use super::common::{backend, is_unique_violation, json, records};
use super::*;
use crate::changes::Change;
use crate::domain::TenantId;

#[async_trait]
impl SecretStore for PgStore {
    async fn put_storage_credential(
        &self,
        c: &StorageCredentialRecord,
        replace: bool,
        change: &Change,
    ) -> StoreResult<()> {
        let q = if replace {
            sqlx::query(
                "UPDATE storage_credentials SET record = $3 WHERE tenant_id = $1 AND name = $2",
            )
        } else {
            sqlx::query(
                "INSERT INTO storage_credentials (tenant_id, name, record) VALUES ($1, $2, $3)",
            )
        }
        .bind(c.tenant_id)
        .bind(&c.name)
        .bind(json(c));
        match self.changing(change, q).await {
            Ok(0) => Err(StoreError::NotFound(format!(
                "storage credential '{}'",
                c.name
            ))),
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists(format!(
                "storage credential '{}'",
                c.name
            ))),
            r => r.map(|_| ()).map_err(backend),
        }
    }

    async fn get_storage_credential(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> StoreResult<Option<StorageCredentialRecord>> {
        self.fetch_record(
            sqlx::query(
                "SELECT record FROM storage_credentials WHERE tenant_id = $1 AND name = $2",
            )
            .bind(tenant)
            .bind(name),
        )
        .await
    }

    async fn list_storage_credentials(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Vec<StorageCredentialRecord>> {
        self.fetch_records(
            "SELECT record FROM storage_credentials WHERE tenant_id = $1 ORDER BY name",
            tenant.uuid(),
        )
        .await
    }

    async fn delete_storage_credential(
        &self,
        tenant: TenantId,
        name: &str,
        change: &Change,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        // Locks the tenant's warehouses that use it, so none starts using it meanwhile unnoticed.
        let user: Option<String> = sqlx::query_scalar(
            "SELECT name FROM warehouses WHERE tenant_id = $1 AND credential = $2 ORDER BY name LIMIT 1 FOR UPDATE",
        )
        .bind(tenant)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        if let Some(wh) = user {
            return Err(StoreError::NotEmpty(
                format!("storage credential '{name}'"),
                format!("warehouse '{wh}' uses it"),
            ));
        }
        let deleted =
            sqlx::query("DELETE FROM storage_credentials WHERE tenant_id = $1 AND name = $2")
                .bind(tenant)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("storage credential '{name}'")));
        }
        notify(&mut tx, change).await.map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn put_signing_key(&self, key: &SigningKeyRecord, change: &Change) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO signing_keys (kid, created_at_ms, record) VALUES ($1, $2, $3) \
             ON CONFLICT (kid) DO UPDATE SET created_at_ms = EXCLUDED.created_at_ms, record = EXCLUDED.record",
        )
        .bind(&key.kid)
        .bind(key.created_at_ms)
        .bind(json(key));
        self.changing(change, q).await.map(|_| ()).map_err(backend)
    }

    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query("SELECT record FROM signing_keys ORDER BY created_at_ms, kid")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        records(&rows)
    }

    async fn delete_signing_key(&self, kid: &str, change: &Change) -> StoreResult<()> {
        let q = sqlx::query("DELETE FROM signing_keys WHERE kid = $1").bind(kid);
        self.changing(change, q).await.map(|_| ()).map_err(backend)
    }
}
