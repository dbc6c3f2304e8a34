//! What a caller gets to reach one table's files: the one place that decides it, for every storage
//! kind. The API layer parses the request, authorizes it, and calls one of these:
//! - [`Vending::table_storage`]: the storage part of a table answer (plain settings, vended
//!   credentials, or the remote signer's settings), from the delegation asked for and the caller's
//!   data access;
//! - [`Vending::refresh_credentials`]: the `/credentials` answer;
//! - [`Vending::presign`]: a URL for one file inside the table (S3, ADLS, GCS);
//! - [`Vending::check_sign`] then [`Vending::sign`]: the remote signer.
//!
//! Must not touch: HTTP types, the store or grants (the caller's data access comes in decided).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use super::{Delegation, Vending};
use crate::domain::access::DataAccess;
use crate::domain::now_ms;
use crate::storage::s3::signer::CheckedRequest;
use crate::storage::{
    PresignMethod, RemoteSign, TableAccess, TableEndpoints, VendedCredential, VendingResult,
    WarehouseStorage, client_config, kind_of,
};

/// The storage part of a table answer, as JSON.
pub struct TableStorage {
    /// The `config` object.
    pub config_json: Bytes,
    /// The one `storage-credentials` entry, if any.
    pub credential_json: Option<Bytes>,
    /// The `remote-signing-config` object, when the client is to sign remotely.
    pub remote_signing_json: Option<Bytes>,
}

impl TableStorage {
    /// The same, with `key` set to `value` in its `config` (a setting of the table's, such as
    /// `scan-planning-mode`, beside its storage's).
    pub fn with_setting(mut self, key: &str, value: &str) -> Self {
        let mut config: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&self.config_json).unwrap_or_default();
        config.insert(key.to_owned(), value.into());
        self.config_json = Bytes::from(serde_json::to_vec(&config).expect("maps serialize"));
        self
    }

    /// The warehouse's plain client settings: no credentials, no signer.
    pub fn plain(wh: WarehouseStorage<'_>) -> Self {
        Self {
            config_json: Bytes::from(
                serde_json::to_vec(&client_config(wh.profile)).expect("maps serialize"),
            ),
            credential_json: None,
            remote_signing_json: None,
        }
    }
}

/// What the storage part of a table answer depends on: the delegation the client asked for and
/// the caller's data access (nothing for a local warehouse, which hands out neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessAsked {
    delegation: Delegation,
    data: DataAccess,
}

impl AccessAsked {
    /// Nothing asked: plain settings.
    pub const PLAIN: AccessAsked = AccessAsked {
        delegation: Delegation {
            vended_credentials: false,
            remote_signing: false,
        },
        data: DataAccess::None,
    };

    /// What `delegation` asks of `wh` for a caller with `data` access.
    pub fn new(wh: WarehouseStorage<'_>, delegation: Delegation, data: DataAccess) -> Self {
        if !Self::may_delegate(wh) || !delegation.any() {
            return Self::PLAIN;
        }
        Self { delegation, data }
    }

    /// The caller's data access this was decided for.
    pub fn data(&self) -> DataAccess {
        self.data
    }

    /// Whether the warehouse's storage hands out anything a client could ask for (so the
    /// delegation asked for, and the caller's data access, matter).
    pub fn may_delegate(wh: WarehouseStorage<'_>) -> bool {
        kind_of(wh.profile).may_delegate()
    }

    /// `tag` (a quoted ETag) made specific to this access, so a client that asks with other
    /// delegation or holds other grants never gets a 304 for an answer it was not given.
    pub fn etag(&self, tag: &str) -> String {
        let mode = match (
            self.delegation.vended_credentials,
            self.delegation.remote_signing,
        ) {
            (false, false) => 'p',
            (true, false) => 'v',
            (false, true) => 's',
            (true, true) => 'b',
        };
        let data = match self.data {
            DataAccess::None => 'n',
            DataAccess::Read => 'r',
            DataAccess::ReadWrite => 'w',
        };
        // Pushed, not formatted: this runs on every load.
        let base = tag.trim_end_matches('"');
        let mut specific = String::with_capacity(base.len() + 4);
        specific.push_str(base);
        specific.push('-');
        specific.push(mode);
        specific.push(data);
        specific.push('"');
        specific
    }
}

/// A presigned URL for one file.
pub struct Presigned {
    pub url: String,
    /// When the URL stops working, milliseconds since the epoch.
    pub expires_at_ms: i64,
}

impl Vending {
    /// The storage part of a table answer: vended credentials when asked for and the caller has
    /// data access, else the remote signer when the warehouse offers it and delegation was asked
    /// for, else the storage's plain settings.
    pub async fn table_storage(
        &self,
        t: &TableAccess<'_>,
        asked: AccessAsked,
        endpoints: &TableEndpoints,
    ) -> VendingResult<TableStorage> {
        let wh = t.warehouse;
        let AccessAsked { delegation, data } = asked;
        if !delegation.any() || data == DataAccess::None {
            return Ok(TableStorage::plain(wh));
        }
        if delegation.vended_credentials
            && let Some(c) = self.credentials(t).await?
        {
            return Ok(TableStorage {
                config_json: c.config_json.clone(),
                credential_json: Some(c.credential_json.clone()),
                remote_signing_json: None,
            });
        }
        let storage = kind_of(wh.profile);
        let mut config = storage.client_config();
        let remote_signing_json = storage.remote_signing(&mut config, endpoints);
        Ok(TableStorage {
            config_json: Bytes::from(serde_json::to_vec(&config).expect("maps serialize")),
            credential_json: None,
            remote_signing_json,
        })
    }

    /// The `/credentials` answer: the table's one credential, or none for warehouses that vend
    /// nothing.
    pub async fn refresh_credentials(
        &self,
        t: &TableAccess<'_>,
    ) -> VendingResult<Option<Arc<VendedCredential>>> {
        self.credentials(t).await
    }

    /// A URL that lets its holder GET or PUT one file inside the table, for a short while.
    /// `PUT` needs read-write access (the caller checks it first).
    pub async fn presign(
        &self,
        t: &TableAccess<'_>,
        file: &str,
        method: PresignMethod,
    ) -> VendingResult<Presigned> {
        let now = now_ms();
        let storage = kind_of(t.warehouse.profile);
        let (url, ttl) = storage.presign(&self.issuer, t, file, method).await?;
        Ok(Presigned {
            url,
            expires_at_ms: now + ttl.as_millis() as i64,
        })
    }

    /// Checks a request the remote signer is asked to sign: the warehouse offers signing, the
    /// provider and region are its own, and every key it touches lies inside the table. Says
    /// whether it reads or writes (a write needs read-write access, which the caller checks), and
    /// what [`Vending::sign`] may then sign of it.
    pub fn check_sign(
        &self,
        t: &TableAccess<'_>,
        sign: &RemoteSign,
    ) -> VendingResult<CheckedRequest> {
        kind_of(t.warehouse.profile).check_sign(&self.issuer, t, sign)
    }

    /// Signs a request [`Vending::check_sign`] accepted, exactly as it was checked: the URI and
    /// headers to send.
    pub async fn sign(
        &self,
        t: &TableAccess<'_>,
        sign: &RemoteSign<'_>,
        checked: &CheckedRequest,
    ) -> VendingResult<(String, BTreeMap<String, Vec<String>>)> {
        kind_of(t.warehouse.profile)
            .sign(&self.issuer, t, sign, checked)
            .await
    }
}
