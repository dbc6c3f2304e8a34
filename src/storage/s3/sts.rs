//! Table-scoped STS sessions: AssumeRole with a session policy, cached until shortly before they
//! expire. Concurrent misses for one key wait for a single STS call.

use crate::domain::WarehouseId;
use crate::outbound::{Outbound, OutboundTimeouts};
use crate::reachability::{Failure, Reachability, Upstream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sts::config::{BehaviorVersion, Credentials, Region};
use moka::Expiry;

use super::io::S3StaticCredentials;
use super::policy::S3Access;
use crate::domain::now_ms;

/// Temporary keys from STS.
#[derive(Clone)]
pub struct TempCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for TempCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TempCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

/// Memory the cached STS sessions may hold (each weighed by its strings).
pub const SESSION_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// What one cached session is for. Sessions are per principal, so the STS session name (and the
/// cloud's audit trail) always names who the credentials were handed to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub warehouse: WarehouseId,
    /// [`crate::storage::fingerprint`] of the storage profile and server secret: a changed profile or a
    /// rotated credential never reuses old sessions.
    pub profile: u64,
    pub bucket: String,
    pub key_prefix: String,
    pub access: S3Access,
    pub principal: crate::domain::PrincipalId,
}

/// Everything an AssumeRole call needs.
pub struct AssumeRole<'a> {
    pub role_arn: &'a str,
    pub session_name: String,
    pub source_identity: Option<String>,
    pub policy: String,
    pub duration_secs: u32,
    pub external_id: Option<&'a str>,
}

/// Why no session could be had.
#[derive(Debug, Clone)]
pub enum SessionError {
    /// The request cannot be scoped (e.g. the policy would be too long): the caller's fault.
    Refused(String),
    /// STS refuses the server itself (an unknown role, a trust policy that does not name it,
    /// wrong keys): an operator must fix the warehouse; retrying does not help.
    Misconfigured(String),
    /// STS failed or answered something unusable.
    Unavailable(String),
}

/// Where STS is and who calls it.
pub struct StsTarget<'a> {
    pub region: &'a str,
    pub endpoint: Option<&'a str>,
    pub keys: Option<&'a S3StaticCredentials>,
}

/// Entries leave the cache `margin` before their credentials expire.
struct UntilRefresh {
    margin_ms: i64,
}

impl Expiry<SessionKey, Arc<TempCredentials>> for UntilRefresh {
    fn expire_after_create(
        &self,
        _key: &SessionKey,
        value: &Arc<TempCredentials>,
        _created_at: Instant,
    ) -> Option<Duration> {
        let left = value.expires_at_ms - now_ms() - self.margin_ms;
        Some(Duration::from_millis(left.max(0) as u64))
    }
}

/// The session cache and the STS clients behind it.
pub struct StsSessions {
    sessions: moka::future::Cache<SessionKey, Arc<TempCredentials>>,
    clients: moka::future::Cache<(crate::domain::WarehouseId, u64), aws_sdk_sts::Client>,
    margin: Duration,
    timeouts: OutboundTimeouts,
    reachability: Arc<Reachability>,
}

impl StsSessions {
    /// Sessions are refreshed when less than `margin` of their life remains.
    pub fn new(
        margin: Duration,
        timeouts: OutboundTimeouts,
        reachability: Arc<Reachability>,
    ) -> Self {
        Self {
            reachability,
            sessions: moka::future::Cache::builder()
                .max_capacity(SESSION_CACHE_BYTES)
                .weigher(|key: &SessionKey, v: &Arc<TempCredentials>| {
                    let strings = key.bucket.len()
                        + key.key_prefix.len()
                        + v.access_key_id.len()
                        + v.secret_access_key.len()
                        + v.session_token.len();
                    u32::try_from(256 + strings).unwrap_or(u32::MAX)
                })
                .expire_after(UntilRefresh {
                    margin_ms: margin.as_millis() as i64,
                })
                .build(),
            clients: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(300))
                .build(),
            margin,
            timeouts,
        }
    }

    /// A cached session for `key`, or a new one from STS with the request `make` builds (only on a
    /// miss: building the session policy is the costly part). Never returns keys with less than
    /// the refresh margin left.
    pub async fn session<'a>(
        &self,
        key: SessionKey,
        target: StsTarget<'_>,
        make: impl FnOnce() -> Result<AssumeRole<'a>, SessionError>,
    ) -> Result<Arc<TempCredentials>, SessionError> {
        let client_key = (key.warehouse, key.profile);
        let margin_ms = self.margin.as_millis() as i64;
        let session = self
            .sessions
            .try_get_with(key, async {
                let request = make()?;
                let client = self
                    .clients
                    .get_with(client_key, sts_client(&target, &self.timeouts))
                    .await;
                let creds = assume_role(&client, &request).await;
                let outcome = match &creds {
                    Ok(_) => Ok(()),
                    Err(SessionError::Misconfigured(_)) => Err(Failure::Refused),
                    Err(_) => Err(Failure::Unavailable),
                };
                self.reachability
                    .record(client_key.0, Upstream::TokenService, outcome);
                let creds = creds?;
                let left = creds.expires_at_ms - now_ms();
                if left < margin_ms {
                    return Err(SessionError::Unavailable(format!(
                        "STS returned a session that expires in {} s, less than the refresh margin of {} s",
                        left / 1000,
                        margin_ms / 1000
                    )));
                }
                Ok(Arc::new(creds))
            })
            .await
            .map_err(|e| (*e).clone())?;
        Ok(session)
    }
}

async fn sts_client(target: &StsTarget<'_>, timeouts: &OutboundTimeouts) -> aws_sdk_sts::Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(target.region.to_owned()))
        .timeout_config(timeouts.aws(Outbound::TokenService));
    if let Some(keys) = target.keys {
        loader = loader.credentials_provider(Credentials::new(
            keys.access_key_id.clone(),
            keys.secret_access_key.clone(),
            None,
            None,
            "floe-warehouse",
        ));
    }
    let shared = loader.load().await;
    let mut conf = aws_sdk_sts::config::Builder::from(&shared);
    if let Some(ep) = target.endpoint {
        conf = conf.endpoint_url(ep);
    }
    aws_sdk_sts::Client::from_conf(conf.build())
}

/// STS error codes that say the server's own setup is wrong, not that STS is in trouble.
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "IDPCommunicationError",
];

/// Whether an STS failure is the server's setup (refused: 4xx other than throttling) rather
/// than trouble worth retrying (timeouts, connection failures, 5xx, throttling).
fn refuses_the_server<E>(
    e: &aws_sdk_sts::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> bool
where
    E: aws_sdk_sts::error::ProvideErrorMetadata,
{
    match e {
        aws_sdk_sts::error::SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or_default();
            (400..500).contains(&status) && status != 429 && !THROTTLING.contains(&code)
        }
        _ => false,
    }
}

async fn assume_role(
    client: &aws_sdk_sts::Client,
    r: &AssumeRole<'_>,
) -> Result<TempCredentials, SessionError> {
    assert!(
        !r.policy.is_empty(),
        "an empty session policy would grant the whole role"
    );
    metrics::counter!("floe_sts_calls_total").increment(1);
    let out = client
        .assume_role()
        .role_arn(r.role_arn)
        .role_session_name(&r.session_name)
        .policy(&r.policy)
        .duration_seconds(r.duration_secs as i32)
        .set_external_id(r.external_id.map(str::to_owned))
        .set_source_identity(r.source_identity.clone())
        .send()
        .await
        .map_err(|e| {
            metrics::counter!("floe_sts_failures_total").increment(1);
            let refused = refuses_the_server(&e);
            let message = format!(
                "AssumeRole of {} failed: {}",
                r.role_arn,
                aws_sdk_sts::error::DisplayErrorContext(e)
            );
            if refused {
                SessionError::Misconfigured(message)
            } else {
                SessionError::Unavailable(message)
            }
        })?;
    let c = out.credentials.ok_or_else(|| {
        SessionError::Unavailable(format!(
            "AssumeRole of {} returned no credentials",
            r.role_arn
        ))
    })?;
    let expires_at_ms = c
        .expiration
        .to_millis()
        .map_err(|e| SessionError::Unavailable(e.to_string()))?;
    tracing::info!(role = r.role_arn, session = %r.session_name, expires_at_ms, "assumed role for a table session");
    Ok(TempCredentials {
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key,
        session_token: c.session_token,
        expires_at_ms,
    })
}

/// An STS session name (`[\w+=,.@-]`, 2..=64 characters) naming tenant and principal.
pub fn session_name(tenant: &str, principal: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    let mut name = format!("floe-{}-{}", clean(tenant), clean(principal));
    name.truncate(64);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_valid_and_short() {
        assert_eq!(session_name("acme", "etl"), "floe-acme-etl");
        assert_eq!(session_name("a b", "x/y:z"), "floe-a-b-x-y-z");
        let long = session_name(&"t".repeat(40), &"p".repeat(40));
        assert_eq!(long.len(), 64);
    }
}
