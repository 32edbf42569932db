#!/usr/bin/env python3
"""Local HTTPS test double for strata's live verification (tests/it/verify.rs).

strata, run with STRATA_TEST_VERIFY_ENDPOINT=https://127.0.0.1:PORT, sends every verification
request here with an `x-strata-test-host: <original host>` header. This server routes by that
host and the path, and answers with the provider's documented responses.

Usage: verify_server.py CERT KEY SCENARIO LOG SA_PUBLIC_KEY
  SCENARIO  JSON file, re-read on every request: {"mode": MODE, "secrets": {needle: MODE}}.
            A needle (a secret, or an AWS key id) found in the request picks its MODE;
            otherwise "mode" applies. MODE is one of valid, invalid, revoked, ratelimit, boom,
            slow, redirect, forbidden (403), or eu (Mailgun: the US host rejects the key, the EU
            host accepts it; valid elsewhere).
  SA_PUBLIC_KEY  PEM public key of the test's Google service account: a JWT-bearer assertion
            must be signed by its private key (checked with the openssl CLI).
  LOG       every request is appended as one JSON line: method, host, path, headers, body,
            mode, provider, and `problem` when the request breaks the provider's contract.
Prints the port it listens on (127.0.0.1, chosen by the OS) on stdout, then serves.
"""

import base64
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CERT, KEY, SCENARIO, LOG, SA_PUBLIC_KEY = sys.argv[1:6]
LOG_LOCK = threading.Lock()

AWS_OK = (
    '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
    "<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/fake-deployer</Arn>"
    "<UserId>AIDAFAKEUSERID</UserId><Account>123456789012</Account></GetCallerIdentityResult>"
    "<ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId>"
    "</ResponseMetadata></GetCallerIdentityResponse>"
)
AWS_BAD = (
    '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
    "<Code>InvalidClientTokenId</Code><Message>The security token included in the request is "
    "invalid.</Message></Error><RequestId>0</RequestId></ErrorResponse>"
)


def j(status, body, headers=None):
    return status, json.dumps(body).encode(), "application/json", headers or {}


REGISTRY_CHALLENGE = j(
    401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
    {"WWW-Authenticate":
     'Bearer realm="https://registry.fake-corp.example/token",service="registry.fake-corp.example"'})

# provider -> (valid answer, invalid answer[, revoked answer]) from each provider's docs.
ANSWERS = {
    "aws": ((200, AWS_OK.encode(), "text/xml", {}), (403, AWS_BAD.encode(), "text/xml", {})),
    "github": (
        j(200, {"login": "octo-fake", "id": 1}, {"X-OAuth-Scopes": "repo, read:org"}),
        j(401, {"message": "Bad credentials"}),
    ),
    "gitlab": (
        j(200, {"id": 7, "name": "fake-ci-token", "revoked": False, "active": True,
                "scopes": ["api", "read_user"], "user_id": 3}),
        j(401, {"message": "401 Unauthorized"}),
        j(200, {"id": 7, "name": "fake-ci-token", "revoked": True, "active": False,
                "scopes": ["api"], "user_id": 3}),
    ),
    "slack": (
        j(200, {"ok": True, "url": "https://fake-team.slack.com/", "team": "Fake Team",
                "user": "fakebot", "team_id": "T0FAKE", "user_id": "U0FAKE"}),
        j(200, {"ok": False, "error": "invalid_auth"}),
        j(200, {"ok": False, "error": "token_revoked"}),
    ),
    "stripe": (
        j(200, {"id": "acct_FAKE", "object": "account", "email": "fake@example.com"}),
        j(401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}),
        j(401, {"error": {"type": "invalid_request_error", "code": "api_key_expired",
                          "message": "Expired API Key provided"}}),
    ),
    "npm": (j(200, {"username": "fake-npm-user"}), j(401, {"error": "Unauthorized"})),
    "docker-registry": (
        j(200, {"token": "FAKE.JWT.TOKEN", "expires_in": 300}),
        j(401, {"details": "incorrect username or password"}),
    ),
    # A token-auth registry: /v2/ always challenges (basic auth is not what it checks) ...
    "docker-registry-v2": (
        REGISTRY_CHALLENGE,
        REGISTRY_CHALLENGE,
    ),
    # ... and its token service checks the login.
    "docker-registry-token": (
        j(200, {"token": "FAKE.REGISTRY.TOKEN", "access_token": "FAKE.REGISTRY.TOKEN"}),
        j(401, {"details": "incorrect username or password"}),
    ),
    "openai": (
        j(200, {"object": "list", "data": [{"id": "gpt-fake", "object": "model"}]}),
        j(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                          "code": "invalid_api_key"}}),
    ),
    "anthropic": (
        j(200, {"data": [{"type": "model", "id": "claude-fake"}], "has_more": False}),
        j(401, {"type": "error", "error": {"type": "authentication_error",
                                           "message": "invalid x-api-key"}}),
    ),
    "huggingface": (
        j(200, {"type": "user", "name": "fake-hf-user",
                "auth": {"type": "access_token", "accessToken": {"role": "read"}}}),
        j(401, {"error": "Invalid credentials in Authorization header"}),
    ),
    "sendgrid": (
        j(200, {"scopes": ["mail.send", "user.profile.read"]}),
        j(401, {"errors": [{"field": None, "message": "authorization required"}]}),
    ),
    "twilio": (
        None,  # built from the SID in the path
        j(401, {"code": 20003, "message": "Authenticate", "status": 401}),
    ),
    "mailgun": (
        j(200, {"total_count": 1, "items": [{"name": "mg.fake.example"}]}),
        (401, b"Forbidden", "text/plain", {}),
    ),
    "digitalocean": (
        j(200, {"account": {"email": "fake@example.com", "team": {"name": "Fake Team"},
                            "status": "active"}}),
        j(401, {"id": "Unauthorized", "message": "Unable to authenticate you."}),
    ),
    "heroku": (
        j(200, {"email": "fake@example.com", "id": "01234567-89ab-cdef-0123-456789abcdef"}),
        j(401, {"id": "unauthorized", "message": "Invalid credentials provided."}),
    ),
    "datadog": (
        j(200, {"valid": True}),
        j(403, {"errors": ["Forbidden"]}),
        j(200, {"valid": False}),
    ),
    "newrelic": (
        j(200, {"data": {"actor": {"user": {"email": "fake@example.com", "name": "Fake"}}}}),
        j(200, {"data": {"actor": {"user": None}},
                "errors": [{"message": "Invalid API key"}]}),
    ),
    "google-api-key": (
        j(200, {"results": [], "status": "ZERO_RESULTS"}),
        j(200, {"error_message": "The provided API key is invalid. ", "results": [],
                "status": "REQUEST_DENIED"}),
    ),
    "telegram": (
        j(200, {"ok": True, "result": {"id": 1, "is_bot": True, "first_name": "Fake",
                                       "username": "fake_bot"}}),
        j(401, {"ok": False, "error_code": 401, "description": "Unauthorized"}),
    ),
    "discord": (
        j(200, {"id": "80351110224678912", "username": "fakebot", "bot": True}),
        j(401, {"message": "401: Unauthorized", "code": 0}),
    ),
    "sentry": (
        j(200, [{"slug": "fake-org", "name": "Fake Org"}]),
        j(401, {"detail": "Invalid token"}),
    ),
    "sentry-org": (
        j(200, [{"id": 2, "version": "fake@1.0.0", "shortVersion": "1.0.0", "projects": []}]),
        j(401, {"detail": "Invalid token"}),
    ),
    "google-service-account": (
        j(200, {"access_token": "ya29.FAKE-TEST-TOKEN", "expires_in": 3599,
                "token_type": "Bearer"}),
        j(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
        j(400, {"error": "disabled_client", "error_description": "The OAuth client was disabled."}),
    ),
    "cloudflare": (
        j(200, {"success": True, "errors": [], "messages": [],
                "result": {"id": "fake-token-id", "status": "active"}}),
        j(401, {"success": False, "errors": [{"code": 1000, "message": "Invalid API Token"}],
                "messages": [], "result": None}),
        j(200, {"success": True, "errors": [], "messages": [],
                "result": {"id": "fake-token-id", "status": "disabled"}}),
    ),
    "linear": (
        j(200, {"data": {"viewer": {"name": "Fake", "email": "fake@example.com"}}}),
        j(400, {"errors": [{"message": "Authentication required, not authenticated",
                            "extensions": {"type": "authentication error",
                                           "code": "AUTHENTICATION_ERROR"}}]}),
    ),
    "notion": (
        j(200, {"object": "user", "id": "fake-id", "name": "Fake Bot", "type": "bot",
                "bot": {"workspace_name": "Fake Workspace"}}),
        j(401, {"object": "error", "status": 401, "code": "unauthorized",
                "message": "API token is invalid."}),
    ),
    "netlify": (
        j(200, {"id": "1", "email": "fake@example.com", "full_name": "Fake Person"}),
        j(401, {"code": 401, "message": "Access Denied"}),
    ),
    "vercel": (
        j(200, {"user": {"id": "1", "username": "fake-vercel", "email": "fake@example.com"}}),
        j(403, {"error": {"code": "forbidden", "message": "Not authorized",
                          "invalidToken": True}}),
    ),
    "circleci": (
        j(200, {"id": "1", "login": "fake-circle", "name": "Fake"}),
        j(401, {"message": "You must log in first."}),
    ),
    "postman": (
        j(200, {"user": {"id": 1, "username": "fake-postman", "email": "fake@example.com"}}),
        j(401, {"error": {"name": "AuthenticationError",
                          "message": "Invalid API Key. Every request requires a valid API Key"}}),
    ),
    "airtable": (
        j(200, {"id": "usrFAKE", "email": "fake@example.com"}),
        j(401, {"error": {"type": "AUTHENTICATION_REQUIRED",
                          "message": "Authentication required"}}),
    ),
    "asana": (
        j(200, {"data": {"gid": "1", "name": "Fake Person", "email": "fake@example.com"}}),
        j(401, {"errors": [{"message": "Not Authorized"}]}),
    ),
    "buildkite": (
        j(200, {"uuid": "fake-uuid", "scopes": ["read_user"]}),
        j(401, {"message": "Authentication required. Please supply a valid API Access Token"}),
    ),
    "dropbox": (
        j(200, {"account_id": "dbid:FAKE", "email": "fake@example.com",
                "name": {"display_name": "Fake Person"}}),
        j(401, {"error_summary": "invalid_access_token/", "error": {".tag": "invalid_access_token"}}),
        j(401, {"error_summary": "expired_access_token/", "error": {".tag": "expired_access_token"}}),
    ),
    "fastly": (
        j(200, {"id": "1", "name": "fake token", "user_id": "fakeuser", "scopes": ["global"]}),
        j(401, {"msg": "Provided credentials are missing or invalid"}),
    ),
    "mailchimp": (
        j(200, {"account_id": "1", "account_name": "Fake Co", "email": "fake@example.com"}),
        j(401, {"type": "https://mailchimp.com/developer/marketing/docs/errors/",
                "title": "API Key Invalid", "status": 401}),
    ),
    "terraform": (
        j(200, {"data": {"id": "user-FAKE", "type": "users",
                         "attributes": {"username": "fake-tf", "email": "fake@example.com"}}}),
        j(401, {"errors": [{"status": "401", "title": "unauthorized"}]}),
    ),
}

# (host pattern, method, path pattern, provider)
ROUTES = [
    (r"sts\.amazonaws\.com", "POST", r"/", "aws"),
    (r"api\.github\.com", "GET", r"/user", "github"),
    (r"gitlab\.com", "GET", r"/api/v4/personal_access_tokens/self", "gitlab"),
    (r"slack\.com", "POST", r"/api/auth\.test", "slack"),
    (r"api\.stripe\.com", "GET", r"/v1/account", "stripe"),
    (r"registry\.npmjs\.org", "GET", r"/-/whoami", "npm"),
    (r"auth\.docker\.io", "GET", r"/token\?service=registry\.docker\.io", "docker-registry"),
    (r"registry\.fake-corp\.example", "GET", r"/v2/", "docker-registry-v2"),
    (r"registry\.fake-corp\.example", "GET", r"/token\?service=registry\.fake-corp\.example",
     "docker-registry-token"),
    (r"api\.openai\.com", "GET", r"/v1/models", "openai"),
    (r"api\.anthropic\.com", "GET", r"/v1/models", "anthropic"),
    (r"huggingface\.co", "GET", r"/api/whoami-v2", "huggingface"),
    (r"api\.sendgrid\.com", "GET", r"/v3/scopes", "sendgrid"),
    (r"api\.twilio\.com", "GET", r"/2010-04-01/Accounts/AC[0-9a-fA-F]{32}\.json", "twilio"),
    (r"api\.(eu\.)?mailgun\.net", "GET", r"/v3/domains", "mailgun"),
    (r"api\.digitalocean\.com", "GET", r"/v2/account", "digitalocean"),
    (r"api\.heroku\.com", "GET", r"/account", "heroku"),
    (r"api\.datadoghq\.com", "GET", r"/api/v1/validate", "datadog"),
    (r"api\.newrelic\.com", "POST", r"/graphql", "newrelic"),
    (r"maps\.googleapis\.com", "GET", r"/maps/api/geocode/json\?latlng=0,0&key=AIza[\w-]+",
     "google-api-key"),
    (r"api\.telegram\.org", "GET", r"/bot\d+:[\w-]+/getMe", "telegram"),
    (r"discord\.com", "GET", r"/api/v10/users/@me", "discord"),
    (r"sentry\.io", "GET", r"/api/0/organizations/", "sentry"),
    (r"(us\.|de\.)?sentry\.io", "GET", r"/api/0/organizations/[a-z0-9_-]+/releases/", "sentry-org"),
    (r"oauth2\.googleapis\.com|oauth2\.fake-corp\.example", "POST", r"/token",
     "google-service-account"),
    (r"api\.cloudflare\.com", "GET", r"/client/v4/user/tokens/verify", "cloudflare"),
    (r"api\.linear\.app", "POST", r"/graphql", "linear"),
    (r"api\.notion\.com", "GET", r"/v1/users/me", "notion"),
    (r"api\.netlify\.com", "GET", r"/api/v1/user", "netlify"),
    (r"api\.vercel\.com", "GET", r"/v2/user", "vercel"),
    (r"circleci\.com", "GET", r"/api/v2/me", "circleci"),
    (r"api\.getpostman\.com", "GET", r"/me", "postman"),
    (r"api\.airtable\.com", "GET", r"/v0/meta/whoami", "airtable"),
    (r"app\.asana\.com", "GET", r"/api/1\.0/users/me", "asana"),
    (r"api\.buildkite\.com", "GET", r"/v2/access-token", "buildkite"),
    (r"api\.dropboxapi\.com", "POST", r"/2/users/get_current_account", "dropbox"),
    (r"api\.fastly\.com", "GET", r"/tokens/self", "fastly"),
    (r"[a-z]+\d+\.api\.mailchimp\.com", "GET", r"/3\.0/", "mailchimp"),
    (r"app\.terraform\.io", "GET", r"/api/v2/account/details", "terraform"),
]

# Headers each provider's documentation requires.
REQUIRED = {
    "anthropic": ["x-api-key", "anthropic-version"],
    "notion": ["authorization", "notion-version"],
    "datadog": ["dd-api-key"],
    "circleci": ["circle-token"],
    "postman": ["x-api-key"],
    "fastly": ["fastly-key"],
    "gitlab": ["private-token"],
    "newrelic": ["api-key"],
}


def basic_pair(headers):
    auth = headers.get("authorization", "")
    if not auth.startswith("Basic "):
        return None
    try:
        return base64.b64decode(auth[6:]).decode()
    except Exception:  # noqa: BLE001 - a bad header is just not basic auth
        return None


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_problem(host, body):
    """What is wrong with a JWT-bearer grant request, or None (RFC 7523, Google's OAuth 2.0
    for server-to-server applications)."""
    form = dict(p.split("=", 1) for p in body.split("&") if "=" in p)
    if form.get("grant_type") != "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer":
        return "gcp: not a jwt-bearer grant"
    parts = form.get("assertion", "").split(".")
    if len(parts) != 3:
        return "gcp: the assertion is not a JWS"
    try:
        header, claims = json.loads(b64url(parts[0])), json.loads(b64url(parts[1]))
        signature = b64url(parts[2])
    except Exception:  # noqa: BLE001 - any decoding failure is a broken assertion
        return "gcp: the assertion does not decode"
    if header.get("alg") != "RS256" or not header.get("kid"):
        return f"gcp: header {header}"
    now = time.time()
    if claims.get("aud") != f"https://{host}/token" or not claims.get("scope") \
            or "@" not in claims.get("iss", "") \
            or not (now - 300 <= claims.get("iat", 0) <= now + 300) \
            or not (0 < claims.get("exp", 0) - claims["iat"] <= 3600):
        return f"gcp: claims {claims}"
    with tempfile.TemporaryDirectory() as tmp:
        data, sig = os.path.join(tmp, "input"), os.path.join(tmp, "sig")
        with open(data, "w") as f:
            f.write(parts[0] + "." + parts[1])
        with open(sig, "wb") as f:
            f.write(signature)
        ok = subprocess.run(["openssl", "dgst", "-sha256", "-verify", SA_PUBLIC_KEY,
                             "-signature", sig, data], capture_output=True).returncode == 0
    return None if ok else "gcp: the signature does not verify with the account's public key"


def sentry_org_problem(host, path, headers):
    token = headers.get("authorization", "").removeprefix("Bearer ")
    try:
        payload = json.loads(base64.b64decode(token.removeprefix("sntrys_").rsplit("_", 1)[0]))
    except Exception:  # noqa: BLE001 - not an org token at all
        return "sentry-org: the bearer is not an org token"
    if path.split("/")[4] != payload.get("org"):
        return "sentry-org: the path's organization is not the token's"
    if "https://" + host != payload.get("region_url"):
        return "sentry-org: not the token's region host"
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        host = headers.get("x-strata-test-host", "")
        with open(SCENARIO) as f:
            scenario = json.load(f)
        hay = " ".join([self.path, body.decode("latin-1"), *headers.values(),
                        basic_pair(headers) or ""])
        mode = scenario.get("mode", "valid")
        for needle, m in scenario.get("secrets", {}).items():
            if needle in hay:
                mode = m
        provider, problem = None, None
        for hpat, method, ppat, name in ROUTES:
            if re.fullmatch(hpat, host) and re.fullmatch(ppat, self.path):
                if method != self.command:
                    problem = f"{name} wants {method}, got {self.command}"
                provider = name
                break
        if provider is None:
            problem = f"no route for {self.command} {host}{self.path}"
        for h in REQUIRED.get(provider, []):
            if h not in headers:
                problem = f"{provider}: missing header {h}"
        if provider == "aws":
            m = re.match(r"AWS4-HMAC-SHA256 Credential=(\w+)/\d{8}/us-east-1/sts/aws4_request, "
                         r"SignedHeaders=[\w;-]+, Signature=[0-9a-f]{64}$",
                         headers.get("authorization", ""))
            if not m or "x-amz-date" not in headers:
                problem = "aws: no SigV4 authorization"
            elif body != b"Action=GetCallerIdentity&Version=2011-06-15":
                problem = "aws: not GetCallerIdentity"
        if provider == "twilio":
            sid = self.path.split("/")[3][:-5]
            pair = basic_pair(headers) or ""
            if not pair.startswith(sid + ":"):
                problem = "twilio: basic user is not the account SID of the path"
        if provider and provider.startswith("docker-registry") and not basic_pair(headers):
            problem = f"{provider}: no basic auth"
        if provider == "sentry-org":
            problem = sentry_org_problem(host, self.path, headers)
        if provider == "google-service-account":
            if headers.get("content-type") != "application/x-www-form-urlencoded":
                problem = "gcp: not a form"
            else:
                problem = jwt_problem(host, body.decode("latin-1"))
        if mode == "eu":
            mode = "invalid" if host == "api.mailgun.net" else "valid"
        record = {"method": self.command, "host": host, "path": self.path, "headers": headers,
                  "body": body.decode("latin-1"), "mode": mode, "provider": provider,
                  "problem": problem}
        with LOG_LOCK, open(LOG, "a") as f:
            f.write(json.dumps(record) + "\n")
        if problem:
            return self.answer(400, json.dumps({"problem": problem}).encode(), "application/json")
        answers = ANSWERS[provider]
        if mode == "slow":
            time.sleep(3)
            mode = "valid"
        if mode == "ratelimit":
            return self.answer(429, b'{"message":"slow down"}', "application/json",
                               {"Retry-After": "30"})
        if mode == "forbidden":
            return self.answer(403, b'{"message":"forbidden"}', "application/json")
        if mode == "boom":
            return self.answer(500, b'{"message":"internal error"}', "application/json")
        if mode == "redirect":
            return self.answer(302, b"", "text/plain",
                               {"Location": "https://elsewhere.example/steal"})
        if provider == "twilio" and mode == "valid":
            sid = self.path.split("/")[3][:-5]
            status, data, ctype, extra = j(200, {"sid": sid, "friendly_name": "Fake Account",
                                                 "status": "active"})
        else:
            pick = {"valid": 0, "invalid": 1, "revoked": 2}[mode]
            status, data, ctype, extra = answers[min(pick, len(answers) - 1)]
        self.answer(status, data, ctype, extra)

    def answer(self, status, data, ctype, extra=None):
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    do_GET = handle_any
    do_POST = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # strata hangs up on a slow answer by design; that is not worth a traceback.
        pass


def main():
    server = Server(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
