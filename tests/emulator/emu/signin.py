"""The emulator's AWS Sign-In: CreateOAuth2Token with grant_type=refresh_token,
the call with which aws-config's login provider (a profile's `login_session`,
written by `aws login`) renews a cached console session.

What the client sends (aws-config 1.13.0, aws-sdk-signin 1.33.0):
  * POST /v1/token, a JSON body {"clientId", "grantType": "refresh_token",
    "refreshToken"} (login.rs 151-161; the shape is botocore 1.44.8
    data/signin/2023-01-01/service-2.json CreateOAuth2TokenRequestBody, the
    operation "authtype": "none", so no SigV4);
  * a `DPoP` header (RFC 9449): a JWT with header {"typ": "dpop+jwt", "alg":
    "ES256", "jwk": {EC P-256 public key}} and claims {jti, htm: "POST", htu:
    the request URI, iat: seconds}, signed with the cached `dpopKey` (the
    SEC1 PEM private key of the token file) as raw r||s (login/dpop.rs 29-129,
    227-248);
  * to the endpoint the SDK resolves for service id "Signin": the
    AWS_ENDPOINT_URL_SIGNIN or AWS_ENDPOINT_URL environment variable (or the
    profile's endpoint_url) when set, else https://<region>.signin.aws.amazon.com
    (aws-sdk-signin config.rs `From<&SdkConfig>`; aws-config provider_config.rs
    `client_config` passes the environment as the service config).

What the service answers (service-2.json): 200 with the
CreateOAuth2TokenResponseBody {"accessToken": {"accessKeyId",
"secretAccessKey", "sessionToken"}, "tokenType": "aws_sigv4", "expiresIn":
<= 900, "refreshToken"} ("Valid for 15 minutes"; no idToken on refresh); or
an error {"error": OAuth2ErrorCode, "message"}: AccessDeniedException (no
httpStatusCode in the model: rest-json's default 400) with TOKEN_EXPIRED,
which the SDK words "Your session has expired. Please reauthenticate."
(login.rs 163-179); ValidationException 400; TooManyRequestsError 429.

The checks are RFC 9449 section 4.3's for a DPoP proof (typ, alg, a public
jwk, the signature, htm, htu without query, iat within a window, a jti not
seen before) and section 5's binding: a refresh token issued to a public
client is bound to the key that proved possession when it was issued, so a
proof by any other key is refused. The refresh token rotates: the old one is
spent (a reuse is refused as TOKEN_EXPIRED), as OAuth 2.0 Security BCP (RFC
9700 section 4.14.2) recommends for public clients; the real service's
rotation is not documented, and refusing a reuse is the stricter reading.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .config import ACCOUNT_ID, ApiError, now
from .state import EMU
from .sts import random_id

# The window for a proof's `iat`. RFC 9449 section 11.1 leaves it to the
# server ("a reasonable window"); the service does not publish its own.
IAT_WINDOW_S = 300
# "Maximum value is 900 seconds (15 minutes)." (service-2.json, ExpiresIn)
EXPIRES_IN_S = 900
# "The short-term credentials expire in 15 minutes, but the CLI and SDKs will
# automatically refresh them as needed up to 12 hours. When the refresh token
# expires, you'll be prompted to log in again" (SDK reference guide, Login
# credentials provider: https://docs.aws.amazon.com/sdkref/latest/guide/feature-login-credentials.html).
SESSION_S = 12 * 3600
# ClientId's pattern in service-2.json.
CLIENT_IDS = ("arn:aws:signin:::devtools/same-device", "arn:aws:signin:::devtools/cross-device")
SEEN_JTI_MAX = 10000


class SigninError(Exception):
    def __init__(self, shape: str, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.shape, self.code, self.message, self.status = shape, code, message, status

    def body(self) -> bytes:
        return json.dumps({"error": self.code, "message": self.message}).encode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def thumbprint(jwk: dict) -> str:
    """RFC 7638: SHA-256 of the required members in lexicographic order."""
    canonical = json.dumps({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]},
                           separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def public_jwk(key: ec.EllipticCurvePrivateKey) -> dict:
    numbers = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big"))}


def new_session_keys(user: dict, expires: float) -> dict:
    """Temporary credentials of `user` (an EMU.state.iam entry) that the
    emulator's IAM and STS then accept, as for an AssumeRole session: the
    user's own policy, its token, its expiry. The MFA device stays the user's
    (STS AssumeRole: SerialNumber is "the MFA device that is associated with
    the user who is making the AssumeRole call")."""
    key = random_id("ASIA")
    secret = base64.b64encode(os.urandom(30)).decode()[:40]
    token = base64.b64encode(os.urandom(96)).decode()
    with EMU.state.lock:
        EMU.state.iam[key] = {"policy": user["policy"], "statements": user["statements"],
                              "principal": user["principal"], "secret": secret, "token": token,
                              "expires": expires, "issued": now(), "mfa": False,
                              "mfa_serial": user.get("mfa_serial"), "mfa_code": user.get("mfa_code"),
                              "user_id": user.get("user_id")}
    return {"accessKeyId": key, "secretAccessKey": secret, "sessionToken": token}


# ---- admin: what `aws login` leaves behind


def admin_signin_register(body: dict) -> dict:
    """`aws login` for a registered user key: {access_key_id, client_id?,
    expires_in? (seconds; default -60, an access token already expired, so
    that the SDK must refresh before using it), session_seconds? (how long
    the refresh token lasts; default 12 h)}. Returns what the login
    writes to its token cache: the session ARN (the profile's
    `login_session`), the access token, the refresh token, the client id and
    the DPoP private key (SEC1 PEM, as login/dpop.rs `DPoPAuthScheme::new`
    reads it), plus the refresh token's binding (jkt)."""
    user_key = body.get("access_key_id", "")
    with EMU.state.lock:
        user = EMU.state.iam.get(user_key)
    if user is None or user.get("token") is not None:
        raise ApiError("ValidationException", f"{user_key!r} is not a registered user key "
                       "(POST /_flamefire/iam first)")
    client_id = body.get("client_id") or CLIENT_IDS[0]
    if client_id not in CLIENT_IDS:
        raise ApiError("ValidationException", f"client_id must be one of {CLIENT_IDS}")
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    jkt = thumbprint(public_jwk(private))
    expires = now() + float(body.get("expires_in", -60))
    access = new_session_keys(user, expires)
    refresh = "rt-" + uuid.uuid4().hex + uuid.uuid4().hex
    session = user["principal"]
    ends = now() + float(body.get("session_seconds", SESSION_S))
    with EMU.state.lock:
        EMU.auth.signin_tokens[refresh] = {"session": session, "user_key": user_key, "jkt": jkt,
                                           "client_id": client_id, "state": "active", "ends": ends}
        EMU.auth.signin_refreshes.setdefault(session, 0)
    return {"login_session": session, "account_id": ACCOUNT_ID, "client_id": client_id,
            "dpop_key": pem, "refresh_token": refresh, "jkt": jkt,
            "access_token": {**access, "accountId": ACCOUNT_ID,
                             "expiresAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))}}


def admin_signin_revoke(body: dict) -> dict:
    """{login_session}: every refresh token of that session is revoked (a
    console sign-out, or an administrator revoking the user's sessions)."""
    session = body.get("login_session", "")
    revoked = 0
    with EMU.state.lock:
        for t in EMU.auth.signin_tokens.values():
            if t["session"] == session and t["state"] == "active":
                t["state"] = "revoked"
                revoked += 1
    return {"login_session": session, "revoked": revoked}


def admin_signin_list() -> dict:
    with EMU.state.lock:
        return {"refreshes": dict(EMU.auth.signin_refreshes),
                "tokens": [{k: v for k, v in t.items() if k != "user_key"}
                           for t in EMU.auth.signin_tokens.values()]}


# ---- the operation


def verify_dpop(proof: str, method: str, uri: str) -> dict:
    """The checks of RFC 9449 section 4.3; returns the proof's jwk."""
    def bad(why: str) -> SigninError:
        return SigninError("ValidationException", "invalid_request", f"Invalid DPoP proof: {why}")

    try:
        head_b64, claims_b64, sig_b64 = proof.split(".")
        head = json.loads(unb64url(head_b64))
        claims = json.loads(unb64url(claims_b64))
        sig = unb64url(sig_b64)
    except (ValueError, TypeError):
        raise bad("not a JWS in compact serialization")
    if not isinstance(head, dict) or not isinstance(claims, dict):
        raise bad("header and claims must be JSON objects")
    if head.get("typ") != "dpop+jwt":
        raise bad("typ must be dpop+jwt")
    if head.get("alg") != "ES256":
        raise bad("alg must be ES256")
    jwk = head.get("jwk")
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" \
            or "d" in jwk:
        raise bad("jwk must be a public EC P-256 key")
    try:
        x, y = unb64url(jwk["x"]), unb64url(jwk["y"])
        public = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"),
                                               ec.SECP256R1()).public_key()
    except (KeyError, ValueError, TypeError):
        raise bad("jwk is not a point on P-256")
    if len(sig) != 64:
        raise bad("an ES256 signature is 64 bytes (r || s)")
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        public.verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise bad("the signature does not verify with the header's jwk")
    if claims.get("htm") != method:
        raise bad(f"htm must be {method}")
    htu = str(claims.get("htu", "")).split("#", 1)[0].split("?", 1)[0]
    if htu.lower().rstrip("/") != uri.lower().rstrip("/"):
        raise bad(f"htu {htu!r} is not this request's URI {uri!r}")
    iat = claims.get("iat")
    if not isinstance(iat, (int, float)) or abs(now() - iat) > IAT_WINDOW_S:
        raise bad(f"iat must be within {IAT_WINDOW_S} s of the server's time")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise bad("jti is required")
    with EMU.state.lock:
        seen = EMU.auth.signin_jti
        if jti in seen:
            raise bad("jti was already used (replay)")
        seen[jti] = iat
        while len(seen) > SEEN_JTI_MAX:
            seen.pop(next(iter(seen)))
    return jwk


def signin_create_token(headers, body: bytes, uri: str) -> bytes:
    """CreateOAuth2Token, grant_type=refresh_token. Raises SigninError."""
    try:
        req = json.loads(body or b"{}")
        if not isinstance(req, dict):
            raise ValueError("not an object")
    except ValueError as e:
        raise SigninError("ValidationException", "invalid_request", f"the body is not JSON: {e}")
    client_id, grant = req.get("clientId"), req.get("grantType")
    if client_id not in CLIENT_IDS:
        raise SigninError("ValidationException", "invalid_request",
                          "clientId must match arn:aws:signin:::devtools/(cross-device|same-device)")
    if grant == "authorization_code":
        raise SigninError("ValidationException", "invalid_request",
                          "the flamefire emulator implements only grant_type refresh_token")
    if grant != "refresh_token":
        raise SigninError("ValidationException", "unsupported_grant_type",
                          "grantType must be authorization_code or refresh_token")
    refresh = req.get("refreshToken")
    if not isinstance(refresh, str) or not refresh:
        raise SigninError("ValidationException", "invalid_request",
                          "refreshToken is required when grantType is refresh_token")
    proof = headers.get("DPoP")
    if not proof:
        raise SigninError("ValidationException", "invalid_request", "a DPoP proof is required")
    jwk = verify_dpop(proof, "POST", uri)
    with EMU.state.lock:
        token = EMU.auth.signin_tokens.get(refresh)
        if token is None or token["state"] != "active" or now() >= token["ends"]:
            raise SigninError("AccessDeniedException", "TOKEN_EXPIRED",
                              "The refresh token has expired or been revoked.")
        if token["client_id"] != client_id:
            raise SigninError("ValidationException", "invalid_client",
                              "clientId is not the client the refresh token was issued to")
        if token["jkt"] != thumbprint(jwk):
            raise SigninError("ValidationException", "invalid_request",
                              "Invalid DPoP proof: the refresh token is bound to another key")
        user = EMU.state.iam.get(token["user_key"])
        if user is None:
            raise SigninError("AccessDeniedException", "USER_CREDENTIALS_CHANGED",
                              "The user's credentials changed; sign in again.")
        token["state"] = "spent"
        rotated = "rt-" + uuid.uuid4().hex + uuid.uuid4().hex
        # The rotated token ends with the session: refreshing does not extend it.
        EMU.auth.signin_tokens[rotated] = {**token, "state": "active"}
        EMU.auth.signin_refreshes[token["session"]] = \
            EMU.auth.signin_refreshes.get(token["session"], 0) + 1
    access = new_session_keys(user, now() + EXPIRES_IN_S)
    return json.dumps({"accessToken": access, "tokenType": "aws_sigv4",
                       "expiresIn": EXPIRES_IN_S, "refreshToken": rotated}).encode()
