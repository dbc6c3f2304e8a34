//! Deadlines of outbound calls: the one place every client Floe calls out with (cloud storage,
//! token services, identity providers, secret stores) gets its connect and total timeouts.
//!
//! Owns: the per-kind limits (`[timeouts]` in the configuration), the clients built with them,
//! and what a failed call means for its caller ([`CallError`]: worth retrying, or an operator's
//! to fix). Must not touch: what is called (each caller builds its own requests).

use std::time::Duration;

use serde::Deserialize;

/// What an outbound call talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound {
    /// AWS STS and Google's STS: the calls vending waits on.
    TokenService,
    /// Object storage: S3, Azure Blob, GCS (metadata files, validation probes).
    Storage,
    /// Identity providers: OIDC JWKS, Entra ID tokens, Google OAuth.
    Identity,
    /// Secret stores: AWS Secrets Manager and SSM Parameter Store.
    Secrets,
}

/// Connect and total timeouts of outbound calls, in milliseconds (`[timeouts]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundTimeouts {
    /// Longest wait for a TCP (and TLS) connection to anything.
    pub connect_ms: u64,
    /// Longest an STS call (AssumeRole, Google's token exchange) may take in all.
    pub token_service_ms: u64,
    /// Longest one storage request may take in all (a metadata file is at most 64 MiB).
    pub storage_ms: u64,
    /// Longest a call to an identity provider may take in all.
    pub identity_ms: u64,
    /// Longest a call to a secret store may take in all.
    pub secrets_ms: u64,
}

impl Default for OutboundTimeouts {
    fn default() -> Self {
        Self {
            connect_ms: 3_000,
            token_service_ms: 10_000,
            storage_ms: 30_000,
            identity_ms: 10_000,
            secrets_ms: 10_000,
        }
    }
}

impl OutboundTimeouts {
    /// The connect timeout.
    pub fn connect(&self) -> Duration {
        Duration::from_millis(self.connect_ms)
    }

    /// The total timeout of one call to `kind`.
    pub fn total(&self, kind: Outbound) -> Duration {
        Duration::from_millis(match kind {
            Outbound::TokenService => self.token_service_ms,
            Outbound::Storage => self.storage_ms,
            Outbound::Identity => self.identity_ms,
            Outbound::Secrets => self.secrets_ms,
        })
    }

    /// Checks every limit: 1 ms to 10 minutes, and connecting no longer than a whole call.
    pub fn check(&self) -> Result<(), String> {
        let limits = [
            ("connect_ms", self.connect_ms),
            ("token_service_ms", self.token_service_ms),
            ("storage_ms", self.storage_ms),
            ("identity_ms", self.identity_ms),
            ("secrets_ms", self.secrets_ms),
        ];
        for (name, ms) in limits {
            if !(1..=600_000).contains(&ms) {
                return Err(format!("timeouts.{name}: must be 1 to 600000, not {ms}"));
            }
        }
        Ok(())
    }

    /// An HTTP client for calls to `kind`.
    pub fn http_client(&self, kind: Outbound) -> reqwest::Client {
        reqwest::Client::builder()
            .connect_timeout(self.connect())
            .timeout(self.total(kind))
            .build()
            .expect("an HTTP client with timeouts builds")
    }

    /// The AWS SDK's timeouts for calls to `kind`: connect, each attempt, and the whole operation
    /// with its retries.
    pub fn aws(&self, kind: Outbound) -> aws_config::timeout::TimeoutConfig {
        aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(self.connect())
            .operation_attempt_timeout(self.total(kind))
            .operation_timeout(self.total(kind))
            .build()
    }
}

/// Why an outbound call failed, as the request that needed it should answer. The text is for the
/// server's log only: it may name the upstream's address or the identity Floe runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// A timeout, a lost connection, throttling or an upstream 5xx: worth retrying.
    Transient(String),
    /// The upstream refused Floe itself (a rejected key or secret, a missing role or grant, no
    /// such bucket or account): retrying does not help until an operator fixes it.
    Refused(String),
}

impl CallError {
    /// The failure an HTTP answer with `status` (not a success) means: 408, 429 and 5xx are
    /// trouble; any other 4xx refuses Floe's own request.
    pub fn from_status(status: u16, detail: String) -> Self {
        match status {
            408 | 429 | 500.. => Self::Transient(detail),
            _ => Self::Refused(detail),
        }
    }

    /// The call did not get an answer (connect, timeout, a broken or unreadable answer).
    pub fn transient(detail: impl Into<String>) -> Self {
        Self::Transient(detail.into())
    }

    /// What the log says.
    pub fn detail(&self) -> &str {
        match self {
            Self::Transient(d) | Self::Refused(d) => d,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.detail())
    }
}

impl std::error::Error for CallError {}

#[cfg(test)]
mod tests {
    use super::CallError;

    #[test]
    fn throttling_and_server_errors_are_transient_other_refusals_are_not() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(
                    CallError::from_status(status, String::new()),
                    CallError::Transient(_)
                ),
                "{status}"
            );
        }
        for status in [400, 401, 403, 404, 409] {
            assert!(
                matches!(
                    CallError::from_status(status, String::new()),
                    CallError::Refused(_)
                ),
                "{status}"
            );
        }
    }
}
