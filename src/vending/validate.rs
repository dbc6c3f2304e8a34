//! Validating a warehouse against its real storage: the server writes, reads back and deletes a
//! probe file with its own access, then signs or assumes credentials the way vending does for a
//! sample table and checks what they can and cannot do. Every step is run and reported.

use bytes::Bytes;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Vending;
use crate::catalog::Warehouse;
use crate::domain::access::DataAccess;
use crate::domain::storage::{AdlsProfile, GcsProfile, S3Vending, StorageProfile};
use crate::identity::Caller;
use crate::vending::TableAccess;
use crate::warehouse_io::{S3Io, S3StaticCredentials, WarehouseIo};

/// One step of a validation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationStep {
    pub step: String,
    pub ok: bool,
    pub detail: Option<String>,
}

/// What validating a warehouse found.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationReport {
    pub ok: bool,
    pub steps: Vec<ValidationStep>,
    /// Settings that work but weaken isolation (e.g. unscoped static keys).
    pub warnings: Vec<String>,
}

impl Vending {
    /// Runs every step for `wh` and reports each outcome, with warnings for settings that work
    /// but weaken isolation.
    pub async fn validate(
        &self,
        wh: &Warehouse,
        caller: &Caller,
        tenant: &str,
    ) -> ValidationReport {
        let probe = format!("{}/.floe-validate/{}", wh.root(), Uuid::now_v7());
        let body = Bytes::from_static(b"floe validation probe");
        let mut steps = Steps(Vec::new());
        let wrote = steps.record(
            "write probe",
            wh.io
                .write(&probe, body.clone())
                .await
                .map_err(|e| e.to_string()),
        );
        if wrote {
            let read = wh
                .io
                .read(&probe, VALIDATION_READ_BYTES)
                .await
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    if b == body {
                        Ok(())
                    } else {
                        Err("read back different bytes".into())
                    }
                });
            steps.record("read probe", read);
            steps.record(
                "delete probe",
                wh.io.delete(&probe).await.map_err(|e| e.to_string()),
            );
        }
        let mut warnings = Vec::new();
        if let StorageProfile::S3(profile) = &wh.record.storage {
            match profile.vending_mode() {
                S3Vending::Static => {
                    let w = "vending 'static' hands the warehouse's own keys to every client: UNSCOPED, they reach the whole bucket";
                    tracing::warn!(warehouse = %wh.record.name, "{w}");
                    warnings.push(w.to_owned());
                }
                S3Vending::Sts => {
                    validate_sts(self, caller, wh, tenant, &mut steps).await;
                }
                S3Vending::Off => warnings
                    .push("vending is off: clients need storage access of their own".to_owned()),
            }
        }
        if let StorageProfile::Adls(profile) = &wh.record.storage {
            if !profile.hierarchical_namespace {
                let w = "no hierarchical namespace: vended SAS tokens reach the whole container (UNSCOPED)";
                tracing::warn!(warehouse = %wh.record.name, "{w}");
                warnings.push(w.to_owned());
            }
            validate_sas(wh, profile, &mut steps).await;
        }
        if let StorageProfile::Gcs(profile) = &wh.record.storage {
            validate_gcs(wh, profile, &mut steps).await;
        }
        let ok = steps.0.iter().all(|s| s.ok);
        ValidationReport {
            ok,
            steps: steps.0,
            warnings,
        }
    }
}

/// The largest file validation reads back (it writes a few bytes).
pub const VALIDATION_READ_BYTES: u64 = 1024 * 1024;

/// Signs a read-only SAS the way vending does for a sample table and checks what it allows: it
/// reads a file there and cannot write one.
async fn validate_sas(wh: &Warehouse, profile: &AdlsProfile, steps: &mut Steps) {
    let sample = format!("{}/.floe-validate/{}", wh.root(), Uuid::now_v7());
    let probe = format!("{sample}/probe");
    let sas = crate::vending::adls::table_sas(wh, profile, &sample, DataAccess::Read, "")
        .await
        .map(|(config, _)| config["adls.sas-token"].clone());
    let sas = match sas {
        Ok(t) => {
            steps.record("sign a read-only SAS for a sample table", Ok(()));
            t
        }
        Err(e) => {
            steps.record("sign a read-only SAS for a sample table", Err(e.message));
            return;
        }
    };
    if wh
        .io
        .write(&probe, Bytes::from_static(b"floe SAS probe"))
        .await
        .is_err()
    {
        return;
    }
    let url = |path: &str| {
        let blob = path
            .strip_prefix(&format!("abfss://{}/", profile.authority()))
            .unwrap_or(path);
        format!(
            "{}/{}/{}{sas}",
            profile.blob_endpoint(),
            profile.container,
            crate::warehouse_io::encode_blob_path(blob)
        )
    };
    let http = reqwest::Client::new();
    let read = http
        .get(url(&probe))
        .header("x-ms-version", crate::warehouse_io::azure_sas::SAS_VERSION)
        .send()
        .await;
    steps.record(
        "read a file of the sample table with the SAS",
        match read {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("HTTP {}", r.status())),
            Err(e) => Err(e.to_string()),
        },
    );
    let write = http
        .put(url(&format!("{sample}/written")))
        .header("x-ms-blob-type", "BlockBlob")
        .header("x-ms-version", crate::warehouse_io::azure_sas::SAS_VERSION)
        .body("x")
        .send()
        .await;
    steps.record(
        "the read-only SAS cannot write",
        match write {
            Ok(r) if r.status().is_success() => {
                let _ = wh.io.delete(&format!("{sample}/written")).await;
                Err("a read-only SAS wrote a file".into())
            }
            _ => Ok(()),
        },
    );
    let _ = wh.io.delete(&probe).await;
}

/// Downscopes a token for a sample table the way vending does and checks what it allows: it
/// reads a file there and cannot write beside it.
async fn validate_gcs(wh: &Warehouse, profile: &GcsProfile, steps: &mut Steps) {
    use crate::vending::gcs;
    let Some(account) = wh.gcs_account() else {
        steps.record(
            "service account",
            Err("no gcs-service-account credential".into()),
        );
        return;
    };
    let sample = format!("{}/.floe-validate/{}", wh.root(), Uuid::now_v7());
    let Some(prefix) = sample.strip_prefix(&format!("gs://{}/", profile.bucket)) else {
        return;
    };
    let http = reqwest::Client::new();
    let boundary = gcs::access_boundary(&profile.bucket, &format!("{prefix}/"), DataAccess::Read);
    let at_least = std::time::Duration::from_secs(60);
    let token = match gcs::downscope(&http, profile, account, &boundary, at_least).await {
        Ok(t) => {
            steps.record(
                "exchange a read-only downscoped token for a sample table",
                Ok(()),
            );
            t.token
        }
        Err(e) => {
            steps.record(
                "exchange a read-only downscoped token for a sample table",
                Err(e),
            );
            return;
        }
    };
    let probe = format!("{sample}/probe");
    if wh
        .io
        .write(&probe, Bytes::from_static(b"floe GCS probe"))
        .await
        .is_err()
    {
        return;
    }
    let object_url = |name: &str| {
        let encoded: String =
            percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        format!(
            "{}/storage/v1/b/{}/o/{encoded}",
            profile.storage_endpoint(),
            profile.bucket
        )
    };
    let read = http
        .get(format!(
            "{}?alt=media",
            object_url(&format!("{prefix}/probe"))
        ))
        .bearer_auth(&token)
        .send()
        .await;
    steps.record(
        "read a file of the sample table with the token",
        match read {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("HTTP {}", r.status())),
            Err(e) => Err(e.to_string()),
        },
    );
    let beside = format!("{prefix}-beside/probe");
    let write = http
        .post(format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=media&name={}",
            profile.storage_endpoint(),
            profile.bucket,
            percent_encoding::utf8_percent_encode(&beside, percent_encoding::NON_ALPHANUMERIC)
        ))
        .bearer_auth(&token)
        .header("content-type", "application/octet-stream")
        .body("x")
        .send()
        .await;
    steps.record(
        "the read-only token cannot write beside the sample table",
        match write {
            Ok(r) if r.status().is_success() => {
                let _ = wh.io.delete(&format!("gs://{}/{beside}", profile.bucket)).await;
                Err("the token wrote outside its table: this store does not enforce access boundaries".into())
            }
            _ => Ok(()),
        },
    );
    let _ = wh.io.delete(&probe).await;
}

/// The steps of a validation, in order.
struct Steps(Vec<ValidationStep>);

impl Steps {
    /// Records a step's outcome; returns whether it succeeded.
    fn record(&mut self, step: &str, result: Result<(), String>) -> bool {
        let ok = result.is_ok();
        self.0.push(ValidationStep {
            step: step.into(),
            ok,
            detail: result.err(),
        });
        ok
    }
}

/// Assumes the roles the way vending does, for a sample table, and checks what the sessions can
/// and cannot do: read-write inside the sample table, nothing beside it, no writes when read-only.
async fn validate_sts(
    vending: &Vending,
    caller: &Caller,
    wh: &Warehouse,
    tenant: &str,
    steps: &mut Steps,
) {
    let StorageProfile::S3(profile) = &wh.record.storage else {
        return;
    };
    let sample = format!("{}/.floe-validate/{}", wh.root(), Uuid::now_v7());
    let body = Bytes::from_static(b"floe vended-session probe");
    for access in [DataAccess::ReadWrite, DataAccess::Read] {
        let label = if access == DataAccess::Read {
            "read-only"
        } else {
            "read-write"
        };
        let table = TableAccess {
            warehouse: wh,
            location: &sample,
            access,
            caller,
            tenant_name: tenant,
            refresh_endpoint: String::new(),
        };
        let session = vending
            .table_session(&table)
            .await
            .map_err(|e| e.message.clone())
            .and_then(|s| s.ok_or_else(|| "no session".to_owned()));
        let session = match session {
            Ok(s) => {
                steps.record(
                    &format!("assume role for a {label} session on a sample table"),
                    Ok(()),
                );
                s
            }
            Err(e) => {
                steps.record(
                    &format!("assume role for a {label} session on a sample table"),
                    Err(e),
                );
                return;
            }
        };
        let io = S3Io::new(
            &profile.bucket,
            &profile.region,
            profile.endpoint.as_deref(),
            profile.path_style,
            Some(S3StaticCredentials {
                access_key_id: session.access_key_id.clone(),
                secret_access_key: session.secret_access_key.clone(),
                session_token: Some(session.session_token.clone()),
            }),
        )
        .await;
        let inside = format!("{sample}/probe-{label}");
        let beside = format!("{sample}-beside/probe-{label}");
        if access == DataAccess::ReadWrite {
            let wrote = steps.record(
                "write a file in the sample table with the session",
                io.write(&inside, body.clone())
                    .await
                    .map_err(|e| e.to_string()),
            );
            if wrote {
                steps.record(
                    "read it back with the session",
                    io.read(&inside, VALIDATION_READ_BYTES)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                );
            }
        } else if wh.io.write(&inside, body.clone()).await.is_ok() {
            steps.record(
                "read a file of the sample table with the read-only session",
                io.read(&inside, VALIDATION_READ_BYTES)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            );
            steps.record(
                "the read-only session cannot delete it",
                match io.delete(&inside).await {
                    Ok(()) if wh.io.read(&inside, VALIDATION_READ_BYTES).await.is_err() => Err(
                        "a read-only session deleted a file: the role's policy is not narrowed"
                            .into(),
                    ),
                    _ => Ok(()),
                },
            );
        }
        steps.record(
            &format!("the {label} session cannot write beside the sample table"),
            match io.write(&beside, body.clone()).await {
                Ok(()) => {
                    let _ = wh.io.delete(&beside).await;
                    Err("the session wrote outside its table: session policies are not enforced by this store".into())
                }
                Err(_) => Ok(()),
            },
        );
        let _ = wh.io.delete(&inside).await;
    }
}
