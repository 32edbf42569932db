//! Authentication to one registry: the challenge its `/v2/` ping or a 401
//! answer names (basic or bearer), credentials looked up once and only when
//! asked for, and the bearer token flow of the distribution spec (a token
//! per scope, renewed before it expires).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use ureq::http::Response;
use ureq::{Agent, Body};

use super::Error;
use super::auth::{self, Challenge, Credentials, Secret};
use super::transport::{self, Ask, MAX_ERROR_BODY, header, read_limited, status_error};

/// A token is renewed this long before the registry says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);

/// Lifetime assumed when a token endpoint does not say (the spec's default).
const DEFAULT_TOKEN_LIFETIME: u64 = 60;

/// A bearer token for one scope.
#[derive(Debug, Clone)]
struct Token {
    value: String,
    renew_at: Instant,
}

/// How requests to one registry authenticate, shared by every request of a
/// run to it (so the token flow runs once per scope).
pub(super) struct Auth {
    /// The registry as references name it.
    registry: String,
    /// Plain HTTP token services are allowed (loopback or `--insecure`).
    relaxed: bool,
    credentials: OnceLock<Result<Option<Credentials>, String>>,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, Token>>,
}

impl Auth {
    /// No challenge known yet, no credentials looked up.
    pub(super) fn new(registry: &str, relaxed: bool) -> Self {
        Auth {
            registry: registry.to_owned(),
            relaxed,
            credentials: OnceLock::new(),
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Uses `credentials` instead of looking them up; only before the first
    /// request that needs them.
    pub(super) fn set_credentials(&self, credentials: Credentials) {
        let _ = self.credentials.set(Ok(Some(credentials)));
    }

    /// The challenge of the registry's `/v2/` ping.
    pub(super) fn set_challenge(&self, challenge: Option<Challenge>) {
        *self.challenge.lock().unwrap_or_else(|e| e.into_inner()) = challenge;
    }

    /// Answers the 401 `resp` to a request sent with (or without)
    /// `authorization`: learns the challenge, fetching a token or looking up
    /// credentials, so that sending the request again may pass.
    ///
    /// # Errors
    /// When it cannot pass: credentials rejected or missing, no challenge,
    /// or the token flow failed.
    pub(super) fn answer(
        &self,
        agent: &Agent,
        ask: &Ask<'_>,
        resp: Response<Body>,
        authorization: Option<&str>,
    ) -> Result<(), Error> {
        let challenge = header(&resp, "www-authenticate").and_then(|h| auth::parse_challenge(&h));
        match challenge {
            Some(Challenge::Basic) if authorization.is_some() => {
                Err(status_error(&self.registry, ask, resp, self.credential_source()))
            }
            Some(Challenge::Basic) => {
                if self.credentials(ask.ctx)?.is_none() {
                    return Err(status_error(&self.registry, ask, resp, None));
                }
                self.set_challenge(Some(Challenge::Basic));
                Ok(())
            }
            Some(Challenge::Bearer { realm, service, scope }) => {
                let wanted = scope.or(ask.scope.map(str::to_owned));
                let token = self.fetch_token(
                    agent,
                    ask.ctx,
                    &realm,
                    service.as_deref(),
                    wanted.as_deref(),
                )?;
                self.tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(ask.scope.unwrap_or_default().to_owned(), token);
                self.set_challenge(Some(Challenge::Bearer { realm, service, scope: None }));
                Ok(())
            }
            None => Err(status_error(&self.registry, ask, resp, None)),
        }
    }

    /// The `Authorization` header for a request, fetching a bearer token for
    /// its scope first when the registry is known to want one.
    pub(super) fn authorization(
        &self,
        agent: &Agent,
        ask: &Ask<'_>,
    ) -> Result<Option<String>, Error> {
        let challenge = self.challenge.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => {
                Ok(self.credentials(ask.ctx)?.and_then(Credentials::basic_header))
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
                let key = ask.scope.unwrap_or_default();
                let cached =
                    self.tokens.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned();
                let token = match cached.filter(|t| t.renew_at > Instant::now()) {
                    Some(t) => t,
                    None => {
                        let t = self.fetch_token(
                            agent,
                            ask.ctx,
                            &realm,
                            service.as_deref(),
                            ask.scope,
                        )?;
                        self.tokens
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(key.to_owned(), t.clone());
                        t
                    }
                };
                Ok(Some(format!("Bearer {}", token.value)))
            }
        }
    }

    /// Credentials for this registry, looked up once per run and only when
    /// a registry asks.
    fn credentials(&self, ctx: &str) -> Result<Option<&Credentials>, Error> {
        match self.credentials.get_or_init(|| auth::lookup(&self.registry)) {
            Ok(c) => Ok(c.as_ref()),
            Err(reason) => Err(Error::Credentials {
                reference: ctx.to_owned(),
                registry: self.registry.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// Where the credentials in use came from, once looked up.
    pub(super) fn credential_source(&self) -> Option<String> {
        match self.credentials.get() {
            Some(Ok(Some(c))) => Some(c.source.clone()),
            _ => None,
        }
    }

    /// The token flow of the distribution spec: GET the realm with service
    /// and scope (basic auth when we have credentials), or POST a refresh
    /// token for identity tokens.
    fn fetch_token(
        &self,
        agent: &Agent,
        ctx: &str,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<Token, Error> {
        let realm_host = realm
            .strip_prefix("https://")
            .or_else(|| realm.strip_prefix("http://"))
            .map(|r| r.split(['/', '?']).next().unwrap_or(r));
        let plain_ok = self.relaxed || realm_host.is_some_and(transport::is_loopback);
        if !(realm.starts_with("https://") || (realm.starts_with("http://") && plain_ok)) {
            return Err(Error::Invalid {
                reference: ctx.to_owned(),
                what: "authentication".into(),
                reason: format!(
                    "the token service {realm} is not https (use --insecure to allow it)"
                ),
            });
        }
        let creds = self.credentials(ctx)?.cloned();
        let what = format!("a token from {realm}");
        let ask = Ask { ctx, what: &what, scope: None, accept: Some("application/json") };
        let resp = transport::send(ctx, realm, &|| match creds.as_ref().map(|c| &c.secret) {
            Some(Secret::IdentityToken(t)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", t.as_str()),
                    ("client_id", "strata"),
                ];
                form.extend(service.map(|s| ("service", s)));
                form.extend(scope.map(|s| ("scope", s)));
                agent.post(realm).send_form(form)
            }
            _ => {
                let mut req = agent.get(realm);
                if let Some(s) = service {
                    req = req.query("service", s);
                }
                if let Some(s) = scope {
                    req = req.query("scope", s);
                }
                if let Some(b) = creds.as_ref().and_then(Credentials::basic_header) {
                    req = req.header("Authorization", b);
                }
                req.call()
            }
        })?;
        if !(200..300).contains(&resp.status().as_u16()) {
            let sent = creds.map(|c| c.source);
            return Err(status_error(&self.registry, &ask, resp, sent));
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let invalid = |reason: String| Error::Invalid {
            reference: ctx.to_owned(),
            what: what.clone(),
            reason,
        };
        let bytes = read_limited(resp, MAX_ERROR_BODY).map_err(|e| invalid(e.to_string()))?;
        // The sanitised message: serde's own would quote the token it could not parse.
        let parsed: TokenResponse = crate::redact::parse_json(&bytes)
            .map_err(|e| invalid(format!("not a token response: {e}")))?;
        let value = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid("the response holds no token".into()))?;
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME));
        let renew_at = Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN);
        Ok(Token { value, renew_at })
    }
}
