//! What a fresh data directory needs, made at start and kept as configured: the default tenant,
//! the root principal (its secret set from the configuration, or generated and written to
//! `root-credentials` before the principal is stored), and the declared warehouses (through
//! `admin`, with the API's checks). Each change is audited as the API's would be, by Floe itself
//! (`Caller::system`, the nil principal), and its store write announces the change the API's
//! would to other replicas.

use std::path::{Path, PathBuf};

use super::{DEFAULT_TENANT, DEMO_WAREHOUSE, GENERATED_ROOT_CLIENT_ID, StartupError, fail};
use crate::admin::Admin;
use crate::catalog::Catalog;
use crate::changes::Change;
use crate::config::{Settings, StoreKind};
use crate::domain::ResourceName;
use crate::domain::TenantId;
use crate::identity::{Caller, hash_secret};
use crate::storage::StorageProfile;
use crate::storage::s3::io::S3StaticCredentials;
use crate::store::{
    CatalogStore, PrincipalKind, PrincipalRecord, StoreError, TenantRecord, now_ms,
};

pub(super) async fn ensure_default_tenant(
    admin: &Admin,
    store: &dyn CatalogStore,
) -> Result<TenantRecord, StartupError> {
    if let Some(t) = store
        .get_tenant_by_name(DEFAULT_TENANT)
        .await
        .map_err(|e| fail("store")(&e))?
    {
        return Ok(t);
    }
    let tenant = TenantRecord {
        id: crate::domain::TenantId::now_v7(),
        name: DEFAULT_TENANT.into(),
        created_at_ms: now_ms(),
    };
    let change = Change::Tenant { tenant: tenant.id };
    match store.create_tenant(&tenant, &change).await {
        Ok(()) => {
            tracing::info!(tenant = %tenant.id, "created the default tenant");
            let what = format!("tenant {}", tenant.id);
            let system = Caller::system(tenant.id);
            admin.audit(&system, tenant.id, "create-tenant", what).await;
        }
        // Another replica starting at the same time created it first.
        Err(StoreError::AlreadyExists(_)) => {
            return store
                .get_tenant_by_name(DEFAULT_TENANT)
                .await
                .map_err(|e| fail("store")(&e))?
                .ok_or_else(|| StartupError("the default tenant vanished".into()));
        }
        Err(e) => return Err(fail("store")(&e)),
    }
    Ok(tenant)
}

/// Makes sure a root principal exists: the configured one (its secret updated to the configured
/// value), or a generated one whose credentials go to a file only the owner can read.
pub(super) async fn ensure_root_principal(
    admin: &Admin,
    store: &dyn CatalogStore,
    secrets: &crate::identity::ClientSecrets,
    settings: &Settings,
    data_dir: &Path,
    tenant: TenantId,
) -> Result<Option<PathBuf>, StartupError> {
    let err = fail("root principal");
    let (client_id, secret, generated) =
        match (&settings.root_client_id, &settings.root_client_secret) {
            (Some(id), Some(secret)) => (id.clone(), secret.expose().to_owned(), false),
            _ => (GENERATED_ROOT_CLIENT_ID.to_owned(), String::new(), true),
        };
    let existing = store
        .get_principal_by_client_id(&client_id)
        .await
        .map_err(|e| err(&e))?;
    let file = data_dir.join("root-credentials");
    match existing {
        Some(_) if generated => return Ok(file.exists().then_some(file)),
        Some(p) if secrets.verify(&secret, &p.secret_hash) && p.root => return Ok(None),
        Some(p) => {
            let updated = PrincipalRecord {
                secret_hash: hash_secret(&secret),
                root: true,
                disabled: false,
                // Sessions begun with the old secret are not renewed any more.
                sessions_valid_from_ms: now_ms(),
                ..p
            };
            let change = Change::Principal {
                principal: updated.id,
            };
            store
                .update_principal(&updated, &change)
                .await
                .map_err(|e| err(&e))?;
            tracing::info!(client_id = %client_id, "root principal's secret set from configuration");
            let what = format!("principal {}", updated.id);
            let system = Caller::system(updated.tenant_id);
            admin
                .audit(&system, updated.tenant_id, "rotate-secret", what)
                .await;
            return Ok(None);
        }
        None => {}
    }
    // A generated secret cannot be guessed and gets a keyed hash; a chosen one gets argon2.
    let (secret, secret_hash) = if generated {
        secrets.generate()
    } else {
        let hash = hash_secret(&secret);
        (secret, hash)
    };
    let principal = PrincipalRecord {
        id: crate::domain::PrincipalId::now_v7(),
        tenant_id: tenant,
        name: "root".into(),
        kind: PrincipalKind::Service,
        client_id: client_id.clone(),
        secret_hash,
        root: true,
        disabled: false,
        created_at_ms: now_ms(),
        sessions_valid_from_ms: 0,
    };
    if generated {
        use std::io::Write;
        let _ = std::fs::remove_file(&file);
        let mut f = crate::identity::owner_only_file(&file).map_err(|e| err(&e))?;
        writeln!(f, "client_id={client_id}\nclient_secret={secret}").map_err(|e| err(&e))?;
    }
    let change = Change::Principal {
        principal: principal.id,
    };
    match store.create_principal(&principal, &change).await {
        Ok(()) => {
            tracing::info!(client_id = %client_id, "created the root principal");
            let what = format!("principal {}", principal.id);
            let system = Caller::system(tenant);
            admin.audit(&system, tenant, "create-principal", what).await;
        }
        // Another replica starting at the same time created it first.
        Err(StoreError::AlreadyExists(_)) => {
            if generated {
                let _ = std::fs::remove_file(&file);
            }
            return Ok(None);
        }
        Err(e) => return Err(err(&e)),
    }
    Ok(generated.then_some(file))
}

pub(super) async fn ensure_warehouses(
    admin: &Admin,
    catalog: &Catalog,
    settings: &Settings,
    data_dir: &Path,
    tenant: TenantId,
) -> Result<(), StartupError> {
    let err = fail("warehouses");
    let mut wanted: Vec<(String, StorageProfile)> = settings
        .warehouses
        .iter()
        .map(|w| (w.name.clone(), w.storage.clone()))
        .collect();
    // The demo warehouse is a directory on this machine: fine for one process, wrong for replicas.
    if settings.store == StoreKind::Sled && !wanted.iter().any(|(n, _)| n == DEMO_WAREHOUSE) {
        let root = format!("file://{}", data_dir.join("warehouse").display());
        if catalog
            .store()
            .get_warehouse_by_name(tenant, DEMO_WAREHOUSE)
            .await
            .map_err(|e| err(&e))?
            .is_none()
        {
            wanted.push((DEMO_WAREHOUSE.into(), StorageProfile::Local { root }));
        }
    }
    let system = Caller::system(tenant);
    for (name, storage) in wanted {
        let declared = settings.warehouses.iter().find(|w| w.name == name);
        let keys = declared.and_then(|w| {
            w.s3_access_key_id
                .as_ref()
                .zip(w.s3_secret_access_key.as_ref())
        });
        let checked = ResourceName::new("warehouse name", name.clone())
            .map_err(|e| StartupError(format!("warehouse '{name}': {e}")))?;
        let record = admin
            .declare_warehouse(&system, tenant, checked, storage, keys.is_some())
            .await
            .map_err(|e| StartupError(format!("warehouse '{name}': {e}")))?;
        if let Some((id, secret)) = keys {
            catalog.set_s3_credentials(
                record.id,
                S3StaticCredentials {
                    access_key_id: id.clone(),
                    secret_access_key: secret.expose().to_owned(),
                    session_token: None,
                },
            );
        }
    }
    Ok(())
}
