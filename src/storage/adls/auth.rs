//! Signing keys for Azure SAS: the account key itself, or a user-delegation key fetched with an
//! Entra ID (OAuth2 client-credentials) token and cached until shortly before it expires.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::AdlsProfile;
use super::sas::{SAS_VERSION, SasKey, SasRequest, UserDelegationKey, sas_time, sign};
use crate::outbound::CallError;

/// Entra ID's public authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// How long a fetched user-delegation key is asked to live (Azure's maximum is 7 days).
const DELEGATION_KEY_DAYS: i64 = 7;

/// How the server proves itself to the storage account.
#[derive(Clone)]
pub enum AzureAuth {
    /// The account key (base64): service SAS.
    AccountKey(String),
    /// An Entra ID application: user-delegation SAS.
    ClientSecret {
        tenant_id: String,
        client_id: String,
        client_secret: String,
    },
}

impl std::fmt::Debug for AzureAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AccountKey(_) => f.write_str("AccountKey(***)"),
            Self::ClientSecret { client_id, .. } => write!(f, "ClientSecret({client_id}, ***)"),
        }
    }
}

/// Signs SAS tokens for one ADLS warehouse with whichever key its credential gives.
pub struct AzureSigner {
    auth: AzureAuth,
    profile: AdlsProfile,
    http: reqwest::Client,
    delegation_key: Mutex<Option<(UserDelegationKey, DateTime<Utc>)>>,
}

impl AzureSigner {
    /// A signer for the profile's account.
    pub fn new(
        profile: &AdlsProfile,
        auth: AzureAuth,
        timeouts: &crate::outbound::OutboundTimeouts,
    ) -> Self {
        Self {
            auth,
            profile: profile.clone(),
            http: timeouts.http_client(crate::outbound::Outbound::Identity),
            delegation_key: Mutex::new(None),
        }
    }

    /// Whether signing asks Entra ID (for a user-delegation key), not only the account key.
    pub fn asks_a_token_service(&self) -> bool {
        matches!(self.auth, AzureAuth::ClientSecret { .. })
    }

    /// The SAS query string for `req` and when it expires. With a user-delegation key the expiry
    /// is cut to the key's.
    pub async fn sign(&self, req: SasRequest<'_>) -> Result<(String, DateTime<Utc>), CallError> {
        match &self.auth {
            AzureAuth::AccountKey(key) => Ok((
                sign(&req, &SasKey::Account(key)).map_err(CallError::Refused)?,
                req.expiry,
            )),
            AzureAuth::ClientSecret { .. } => {
                let (key, key_expiry) = self.delegation_key(req.expiry).await?;
                let req = SasRequest {
                    expiry: req.expiry.min(key_expiry),
                    ..req
                };
                let sas = sign(&req, &SasKey::UserDelegation(&key)).map_err(CallError::Refused)?;
                Ok((sas, req.expiry))
            }
        }
    }

    /// A cached user-delegation key valid until at least `until`, or a new one.
    async fn delegation_key(
        &self,
        until: DateTime<Utc>,
    ) -> Result<(UserDelegationKey, DateTime<Utc>), CallError> {
        let mut cached = self.delegation_key.lock().await;
        if let Some((key, expiry)) = cached.as_ref()
            && *expiry > until.min(Utc::now() + Duration::days(DELEGATION_KEY_DAYS - 1))
        {
            return Ok((key.clone(), *expiry));
        }
        let fresh = self.fetch_delegation_key().await?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    async fn fetch_delegation_key(&self) -> Result<(UserDelegationKey, DateTime<Utc>), CallError> {
        let AzureAuth::ClientSecret {
            tenant_id,
            client_id,
            client_secret,
        } = &self.auth
        else {
            return Err(CallError::Refused("no client credentials".into()));
        };
        #[derive(Deserialize)]
        struct Token {
            access_token: String,
        }
        let authority = self
            .profile
            .authority_host
            .as_deref()
            .unwrap_or(DEFAULT_AUTHORITY)
            .trim_end_matches('/');
        let token_url = format!("{authority}/{tenant_id}/oauth2/v2.0/token");
        let r = self
            .http
            .post(&token_url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", client_secret),
                ("scope", "https://storage.azure.com/.default"),
            ])
            .send()
            .await
            .map_err(|e| {
                CallError::transient(format!("Entra ID token request to {token_url} failed: {e}"))
            })?;
        if !r.status().is_success() {
            return Err(CallError::from_status(
                r.status().as_u16(),
                format!("Entra ID refused client {client_id}: HTTP {}", r.status()),
            ));
        }
        let token: Token = r
            .json()
            .await
            .map_err(|e| CallError::transient(format!("Entra ID token answer unreadable: {e}")))?;
        let now = Utc::now();
        let expiry = now + Duration::days(DELEGATION_KEY_DAYS) - Duration::minutes(5);
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><KeyInfo><Start>{}</Start><Expiry>{}</Expiry></KeyInfo>",
            sas_time(now - Duration::minutes(5)),
            sas_time(expiry)
        );
        let url = format!(
            "{}/?restype=service&comp=userdelegationkey",
            self.profile.blob_endpoint()
        );
        metrics::counter!("floe_azure_delegation_key_requests_total").increment(1);
        let r = self
            .http
            .post(&url)
            .bearer_auth(&token.access_token)
            .header("x-ms-version", SAS_VERSION)
            .header("content-type", "application/xml")
            .body(body)
            .send()
            .await
            .map_err(|e| CallError::transient(format!("Get User Delegation Key failed: {e}")))?;
        if !r.status().is_success() {
            return Err(CallError::from_status(
                r.status().as_u16(),
                format!("Get User Delegation Key answered HTTP {}", r.status()),
            ));
        }
        let xml = r
            .text()
            .await
            .map_err(|e| CallError::transient(e.to_string()))?;
        let key = parse_delegation_key(&xml).map_err(CallError::transient)?;
        let key_expiry = DateTime::parse_from_rfc3339(&key.signed_expiry)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(expiry);
        tracing::info!(account = %self.profile.account, client = %client_id, "fetched a user-delegation key");
        Ok((key, key_expiry))
    }
}

/// The fields of a `Get User Delegation Key` answer.
fn parse_delegation_key(xml: &str) -> Result<UserDelegationKey, String> {
    use aws_smithy_xml::decode::{Document, try_data};
    let mut doc = Document::new(xml);
    let mut root = doc.root_element().map_err(|e| e.to_string())?;
    let mut key = UserDelegationKey {
        signed_oid: String::new(),
        signed_tid: String::new(),
        signed_start: String::new(),
        signed_expiry: String::new(),
        signed_service: String::new(),
        signed_version: String::new(),
        value: String::new(),
    };
    while let Some(mut el) = root.next_tag() {
        let name = el.start_el().local().to_owned();
        let value = try_data(&mut el).map_err(|e| e.to_string())?.into_owned();
        match name.as_str() {
            "SignedOid" => key.signed_oid = value,
            "SignedTid" => key.signed_tid = value,
            "SignedStart" => key.signed_start = value,
            "SignedExpiry" => key.signed_expiry = value,
            "SignedService" => key.signed_service = value,
            "SignedVersion" => key.signed_version = value,
            "Value" => key.value = value,
            _ => {}
        }
    }
    if key.value.is_empty() || key.signed_oid.is_empty() {
        return Err("the user-delegation key answer lacks Value or SignedOid".into());
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegation_keys_parse() {
        let xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?><UserDelegationKey><SignedOid>o</SignedOid><SignedTid>t</SignedTid><SignedStart>2026-11-23T00:00:00Z</SignedStart><SignedExpiry>2026-11-30T00:00:00Z</SignedExpiry><SignedService>b</SignedService><SignedVersion>2025-01-05</SignedVersion><Value>a2V5</Value></UserDelegationKey>";
        let k = parse_delegation_key(xml).unwrap();
        assert_eq!((k.signed_oid.as_str(), k.value.as_str()), ("o", "a2V5"));
        assert_eq!(k.signed_version, "2025-01-05");
        assert!(parse_delegation_key("<UserDelegationKey/>").is_err());
    }
}
