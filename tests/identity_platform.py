"""The Microsoft identity platform's device code flow, answered in process for the real
DeviceCodeCredential (azure-identity) and MSAL: an azure-core transport put behind
`shared.cli.backends.identity_transport`, so the `provider` commands sign in exactly as they do against
login.microsoftonline.com, without the internet.

What it answers, as "Microsoft identity platform and the OAuth 2.0 device authorization grant flow"
(learn.microsoft.com, entra/identity-platform/v2-oauth2-device-code) describes it: the tenant's OpenID
configuration; `POST /{tenant}/oauth2/v2.0/devicecode` -> a device code, the user code and the
verification URI; `POST /{tenant}/oauth2/v2.0/token` with the device code -> `authorization_pending`
until the user has entered the code, then the tokens. The test plays the user: `enter(user_code)`
(the code the command showed on stderr). The access token carries the claims given (`scp` for a
delegated token), unsigned: the sandbox reads claims, it does not check signatures.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

import requests
from azure.core.pipeline.transport import HttpTransport, RequestsTransportResponse

from tests.cli_harness import unsigned_token

TENANT = "3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c"
OPERATOR = "8a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d"
VERIFICATION_URI = "https://microsoft.com/devicelogin"


class IdentityPlatform(HttpTransport[Any, Any]):
    def __init__(self, claims: dict[str, Any]) -> None:
        self.claims = claims
        self.user_codes: dict[str, str] = {}  # device code -> user code
        self.entered: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        self.issued: list[str] = []  # access tokens given
        self.refresh_tokens: set[str] = set()
        self._lock = threading.Lock()

    def enter(self, user_code: str) -> None:
        """The user opens the verification URI and types the code."""
        with self._lock:
            self.entered.add(user_code)

    def __enter__(self) -> IdentityPlatform:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def send(self, request: Any, **_: Any) -> Any:
        url: str = request.url
        self.requests.append((request.method, url.split("?")[0]))
        base = url.split("/v2.0/")[0].split("/oauth2/")[0]
        if url.endswith("/.well-known/openid-configuration"):
            return _answer(request, 200, _openid(base))
        if "/discovery/instance" in url:
            # Instance discovery (MSAL asks it for an authority it has not validated yet).
            host = url.split("//", 1)[1].split("/", 1)[0]
            return _answer(
                request,
                200,
                {
                    "tenant_discovery_endpoint": f"https://{host}/{TENANT}/v2.0/.well-known/openid-configuration",
                    "api-version": "1.1",
                    "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
                },
            )
        form = _form(request)
        if url.endswith("/oauth2/v2.0/devicecode"):
            device_code, user_code = uuid.uuid4().hex, uuid.uuid4().hex[:8].upper()
            self.user_codes[device_code] = user_code
            return _answer(
                request,
                200,
                {
                    "device_code": device_code,
                    "user_code": user_code,
                    "verification_uri": VERIFICATION_URI,
                    "expires_in": 900,
                    "interval": 1,
                    "message": f"To sign in, open {VERIFICATION_URI} and enter {user_code}.",
                },
            )
        if url.endswith("/oauth2/v2.0/token") and form.get("grant_type") == "refresh_token":
            # MSAL's silent renewal within one command (its cache lives as long as the credential).
            if form.get("refresh_token") not in self.refresh_tokens:
                return _answer(request, 400, {"error": "invalid_grant"})
            return _answer(request, 200, self._tokens(form.get("client_id", ""), form.get("scope", "")))
        if url.endswith("/oauth2/v2.0/token"):
            pending = self.user_codes.get(form.get("device_code", ""))
            if pending is None:
                return _answer(request, 400, {"error": "expired_token"})
            with self._lock:
                if pending not in self.entered:
                    return _answer(request, 400, {"error": "authorization_pending"})
            return _answer(request, 200, self._tokens(form.get("client_id", ""), form.get("scope", "")))
        return _answer(request, 404, {"error": "not_found"})

    def _refresh_token(self) -> str:
        token = uuid.uuid4().hex
        self.refresh_tokens.add(token)
        return token

    def _tokens(self, client_id: str, asked: str) -> dict[str, Any]:
        """The tokens for the scopes asked (the OpenID ones are granted apart, as the platform does)."""
        now = int(time.time())
        access = unsigned_token(
            {"aud": "https://graph.microsoft.com", "tid": TENANT, "oid": OPERATOR, **self.claims}
        )
        self.issued.append(access)
        identity = {
            "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
            "sub": OPERATOR,
            "oid": OPERATOR,
            "tid": TENANT,
            "aud": client_id,
            "iat": now,
            "exp": now + 3600,
            "preferred_username": "knowledge.admin@contoso.example",
        }
        client_info = unsigned_token({"uid": OPERATOR, "utid": TENANT}).split(".")[1]
        return {
            "token_type": "Bearer",
            "access_token": access,
            "expires_in": 3600,
            "scope": " ".join(s for s in asked.split() if s not in ("openid", "profile", "offline_access")),
            "refresh_token": self._refresh_token(),
            "id_token": unsigned_token(identity),
            "client_info": client_info,
        }


def _openid(base: str) -> dict[str, str]:
    return {
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "issuer": f"{base}/v2.0",
    }


def _form(request: Any) -> dict[str, str]:
    raw = request.data if isinstance(request.data, (str, bytes)) else request.body or b""
    if isinstance(request.data, dict):
        return {str(k): str(v) for k, v in request.data.items()}
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return {k: v[0] for k, v in parse_qs(text).items()}


def _answer(request: Any, status: int, document: dict[str, Any]) -> Any:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(document).encode()
    response.headers["Content-Type"] = "application/json"
    response.url = request.url
    return RequestsTransportResponse(request, response)


#: The app's identity (a user-assigned managed identity's object id) in the tokens below.
APP_IDENTITY = "5c4d3e2f-1a0b-4c9d-8e7f-6a5b4c3d2e1f"


class ManagedIdentityEndpoint:
    """The managed identity endpoint that App Service and Azure Functions give an app, answered on
    loopback for the real ManagedIdentityCredential (azure-identity, and MSAL's managed identity client
    behind its sync one): the app finds it through IDENTITY_ENDPOINT and IDENTITY_HEADER, asks
    `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=...` with the header X-IDENTITY-HEADER,
    and gets `access_token`, `expires_on` (epoch seconds), `resource` and `token_type` ("How to use
    managed identities for App Service and Azure Functions", learn.microsoft.com,
    app-service/overview-managed-identity, "REST endpoint reference"). A wrong or missing header is
    refused (400), as the endpoint does. The access token is an application token: the app roles
    granted in `roles`, no `scp` (entra/identity-platform/access-token-claims-reference), unsigned: the
    sandbox reads claims, it does not check signatures."""

    def __init__(self, roles: list[str]) -> None:
        import http.server

        self.roles = roles
        self.secret = uuid.uuid4().hex
        self.asked: list[dict[str, str]] = []
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                from urllib.parse import urlsplit

                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                if self.headers.get("X-IDENTITY-HEADER") != endpoint.secret:
                    self._send(400, {"error": "invalid_request", "error_description": "X-IDENTITY-HEADER"})
                    return
                endpoint.asked.append(query)
                self._send(200, endpoint.token(query.get("resource", "")))

            def _send(self, status: int, document: dict[str, Any]) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                return None

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def token(self, resource: str) -> dict[str, Any]:
        now = int(time.time())
        access = unsigned_token(
            {
                "aud": resource.removesuffix("/.default"),
                "tid": TENANT,
                "oid": APP_IDENTITY,
                "idtyp": "app",
                "roles": self.roles,
                "iat": now,
                "exp": now + 3600,
            }
        )
        return {
            "access_token": access,
            "expires_on": str(now + 3600),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": APP_IDENTITY,
        }

    def environment(self) -> dict[str, str]:
        """What the Functions host sets for the app (IDENTITY_ENDPOINT, IDENTITY_HEADER)."""
        host, port = self._server.server_address[:2]
        return {"IDENTITY_ENDPOINT": f"http://{host!s}:{port}/msi/token", "IDENTITY_HEADER": self.secret}

    def __enter__(self) -> ManagedIdentityEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
