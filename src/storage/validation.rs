//! Validating a warehouse against its real storage: the server writes, reads back and deletes a
//! probe file with its own access, then signs or assumes credentials the way vending does for a
//! sample table and checks what they can and cannot do (each storage kind's own steps, in its
//! folder). Every step is run and reported.

use bytes::Bytes;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Issuer, Requester, WarehouseStorage, kind_of};

/// One step of a validation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationStep {
    pub step: String,
    pub ok: bool,
    /// False when an earlier step it needs failed (then `ok` is false and `detail` says which).
    pub ran: bool,
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

impl Issuer {
    /// Runs every step for `wh` and reports each outcome, with warnings for settings that work
    /// but weaken isolation.
    pub async fn validate(
        &self,
        wh: WarehouseStorage<'_>,
        caller: Requester<'_>,
        tenant: &str,
    ) -> ValidationReport {
        let probe = format!("{}/.floe-validate/{}", wh.root(), Uuid::now_v7());
        let body = Bytes::from_static(b"floe validation probe");
        let mut steps = Steps(Vec::new());
        let wrote = steps.record(
            "write probe",
            wh.io()
                .write(&probe, body.clone())
                .await
                .map_err(|e| e.to_string()),
        );
        if !wrote {
            let why = "the probe could not be written";
            steps.not_run(&["read probe", "delete probe"], why);
        } else {
            let read = wh
                .io()
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
                wh.io().delete(&probe).await.map_err(|e| e.to_string()),
            );
        }
        let mut warnings = Vec::new();
        let check = Validation {
            issuer: self,
            warehouse: wh,
            caller,
            tenant,
        };
        kind_of(wh.profile)
            .validate(&check, &mut steps, &mut warnings)
            .await;
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

/// What a storage kind's own validation steps work with.
pub struct Validation<'a> {
    pub issuer: &'a Issuer,
    pub warehouse: WarehouseStorage<'a>,
    pub caller: Requester<'a>,
    pub tenant: &'a str,
}

/// What a validation step reports of a vending failure: its message; the error it came from (a
/// failed cloud call's detail, never shown to the client) goes to the log here, where the
/// failure ends.
pub fn failure(e: &super::VendingError) -> String {
    if e.cause().is_some() {
        tracing::warn!(
            error = e as &dyn std::error::Error,
            "a validation step failed"
        );
    }
    e.to_string()
}

/// The steps of a validation, in order.
pub struct Steps(Vec<ValidationStep>);

impl Steps {
    /// Records a step's outcome; returns whether it succeeded.
    pub fn record(&mut self, step: &str, result: Result<(), String>) -> bool {
        let ok = result.is_ok();
        self.0.push(ValidationStep {
            step: step.into(),
            ok,
            ran: true,
            detail: result.err(),
        });
        ok
    }

    /// Reports steps that cannot run because an earlier one failed: each with its own outcome,
    /// so a report never just stops.
    pub fn not_run(&mut self, steps: &[&str], because: &str) {
        for step in steps {
            self.0.push(ValidationStep {
                step: (*step).into(),
                ok: false,
                ran: false,
                detail: Some(format!("not run: {because}")),
            });
        }
    }
}
