"""The front HTTP server: routing to moto or to the emulated operations, the
CONNECT tunnel, and main()."""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import re
import shutil
import signal
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import botocore.exceptions

import awsauth

from .admin import (
    admin_iam_expire, admin_iam_list, admin_iam_register, admin_invocations, admin_reset,
    admin_role_register, admin_seed, fault_slot, take_fault, terraform_role,
)
from .agent import corrupt_before_meta
from .backend import Moto
from .config import ApiError, DEFAULT_AGENT_CWD, DEFAULT_REGION, HOP_BY_HOP, log, now, ts
from .iam import (
    access_key_of, authorize, bucket_policy_op, check_session, forget_bucket_policy,
    iam_check_send_command, identity, s3_target, verify_signature,
)
from .post import verify_post_object
from .ssm import SSM_HANDLERS, request_region
from .signin import (
    SigninError, admin_signin_list, admin_signin_register, admin_signin_revoke, signin_create_token,
)
from .state import EMU
from .sts import sts_assume_role, sts_caller_identity
from .throttling import admin_throttle_get, admin_throttle_set, throttle_check
from .tls import S3_HOST_RE, tls_context, tls_setup


# --------------------------------------------------------------------------- the front server

S3_SUBRESOURCE_OPS = {
    ("GET", "location"): "GetBucketLocation", ("GET", "versioning"): "GetBucketVersioning",
    ("GET", "tagging"): "GetBucketTagging", ("PUT", "tagging"): "PutBucketTagging",
    ("GET", "policy"): "GetBucketPolicy", ("PUT", "policy"): "PutBucketPolicy",
    ("DELETE", "policy"): "DeleteBucketPolicy",
    ("GET", "lifecycle"): "GetBucketLifecycleConfiguration",
    ("PUT", "lifecycle"): "PutBucketLifecycleConfiguration",
    ("GET", "encryption"): "GetBucketEncryption", ("PUT", "encryption"): "PutBucketEncryption",
    ("POST", "delete"): "DeleteObjects", ("GET", "uploads"): "ListMultipartUploads",
    ("GET", "acl"): "GetBucketAcl", ("PUT", "acl"): "PutBucketAcl",
    ("PUT", "publicAccessBlock"): "PutPublicAccessBlock",
}


def s3_operation(method: str, path: str, query: dict, headers) -> str:
    parts = urllib.parse.unquote(path).lstrip("/").split("/", 1)
    bucket = parts[0]
    key = parts[1] if len(parts) > 1 else ""
    if not bucket:
        return "ListBuckets" if method == "GET" else method
    if not key:
        for (m, sub), op in S3_SUBRESOURCE_OPS.items():
            if m == method and sub in query:
                return op
        if method == "GET":
            return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
        if method == "POST" and "multipart/form-data" in headers.get("Content-Type", ""):
            return "PostObject"
        return {"PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket"}.get(
            method, "Bucket" + method)
    if method == "PUT":
        if "partNumber" in query:
            return "UploadPart"
        return "CopyObject" if headers.get("x-amz-copy-source") else "PutObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
    if method == "DELETE" and "uploadId" in query:
        return "AbortMultipartUpload"
    return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(
        method, "Object" + method)


def service_of(headers, query: dict) -> str:
    auth = headers.get("Authorization", "")
    m = re.search(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/", auth)
    if m:
        return m.group(1)
    cred = (query.get("X-Amz-Credential") or [""])[0]
    if cred.count("/") >= 3:
        return cred.split("/")[3]
    target = headers.get("X-Amz-Target", "")
    if target.startswith("AmazonSSM."):
        return "ssm"
    if "multipart/form-data" in headers.get("Content-Type", ""):
        return "s3"
    return "unknown"


def is_signin_token(method: str, path: str, headers) -> bool:
    """AWS Sign-In's CreateOAuth2Token: POST /v1/token, unsigned (the
    operation's "authtype": "none"; see signin.py). No other service the
    emulator answers has that path."""
    return method == "POST" and path == "/v1/token" and not headers.get("Authorization")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "flamefire-emulator"

    def log_message(self, fmt, *args):  # we log one line per request ourselves
        pass

    def do_GET(self):
        self.dispatch_request()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = do_GET

    # ---- plumbing

    def body_chunks(self):
        """Yield the request body as it arrives (Content-Length or chunked)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining > 0:
                chunk = self.rfile.read(min(65536, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk

    def read_body(self) -> bytes:
        return b"".join(self.body_chunks())

    def reply(self, status: int, body: bytes, content_type: str = "application/json",
              extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in {**(extra or {}), **self.extra_headers}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, status: int, obj) -> None:
        self.reply(status, json.dumps(obj).encode(), "application/json")

    def reply_aws_error(self, err: ApiError, op: str) -> None:
        service = op.split(":", 1)[0]
        if service in ("s3", "ec2", "sts"):
            self.reply_error(service, awsauth.AwsError(err.code, err.message, err.status))
            return
        body = json.dumps({"__type": err.code, "message": err.message, "Message": err.message})
        self.reply(err.status, body.encode(), "application/x-amz-json-1.1",
                   {"x-amzn-ErrorType": err.code})

    def reply_error(self, service: str, err: awsauth.AwsError) -> int:
        """An authentication, authorisation or throttling error in the service's shape."""
        body, ctype, extra = awsauth.error_body(service, err)
        self.reply(err.status, body, ctype, extra)
        return err.status

    # ---- HTTPS for the hosts' uploads (see "HTTPS" above)

    secure = False  # True on connections that arrived through CONNECT + TLS
    host_override: str | None = None
    host_region: str | None = None  # the region in a virtual-hosted S3 host name
    raw_path = ""  # the request target as sent, for SigV4
    extra_headers: dict = {}  # per request: set in dispatch_request
    success_headers: dict = {}  # per request: sent only with a 2xx answer

    def do_CONNECT(self):
        host, _, port = self.path.rpartition(":")
        m = S3_HOST_RE.match(host.lower())
        if not EMU.tls.ca_cert or not m or port != "443":
            self.reply(403, b"flamefire emulator: CONNECT only to S3 endpoints on port 443\n", "text/plain")
            sys.stderr.write("%s %-40s %3d\n" % (time.strftime("%H:%M:%S"), "CONNECT " + self.path, 403))
            return
        self.send_response_only(200, "Connection Established")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        try:
            conn = tls_context(host.lower()).wrap_socket(self.connection, server_side=True)
        except OSError as e:
            log.warning("TLS handshake for %s failed: %s", host, e)
            return
        try:
            TlsHandler(conn, self.client_address, self.server)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    # ---- routing

    def dispatch_request(self):
        t0, started = time.monotonic(), now()
        op, status, key = "?", 0, ""
        self.extra_headers = {}
        self.success_headers = {}
        if not self.secure:
            self.raw_path = self.path  # as sent: what SigV4 signed (TlsHandler keeps its own)
        try:
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
            if url.path.startswith("/_flamefire/"):
                op = "admin:" + url.path[len("/_flamefire/"):]
                status = self.admin(url.path, query)
                return
            target = self.headers.get("X-Amz-Target", "")
            service = service_of(self.headers, query)
            body = None
            if is_signin_token(self.command, url.path, self.headers):
                service, op = "signin", "signin:CreateOAuth2Token"
            elif target:
                op = f"{service}:{target.split('.')[-1]}"
            elif service == "s3":
                op = "s3:" + s3_operation(self.command, url.path, query, self.headers)
            else:
                action = (query.get("Action") or [""])[0]
                ctype = self.headers.get("Content-Type", "")
                if not action and "x-www-form-urlencoded" in ctype \
                        and int(self.headers.get("Content-Length") or 0) <= 1 << 20:
                    body = self.read_body()
                    action = (urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action")
                              or [""])[0]
                op = f"{service}:{action or self.command}"
            key = access_key_of(self.headers, query)
            if op == "s3:PostObject":
                body = self.read_body()
                key = post_key_of(body, self.headers) or key
            with EMU.state.lock:
                EMU.state.stats[op] += 1
                if key:
                    EMU.state.key_stats[key][op] += 1
                fault = take_fault(op, key)
            if fault:
                if body is None:
                    self.read_body()
                status = fault["status"]
                self.reply_aws_error(ApiError(fault["error"], fault["message"], status), op)
                return
            body, status = self.strict(service, op, url, query, body, key)
            if status:
                return
            ssm_op = target[len("AmazonSSM."):] if target.startswith("AmazonSSM.") else ""
            if ssm_op in SSM_HANDLERS:
                status = self.emulate(ssm_op, op, body if body is not None else self.read_body())
            elif op in ("s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:DeleteBucketPolicy"):
                body = body if body is not None else self.read_body()
                try:
                    status, answer = bucket_policy_op(op, s3_target(url.path)[0],
                                                      request_region(self.headers), body)
                    self.reply(status, answer, "application/json")
                except awsauth.AwsError as err:
                    status = self.reply_error("s3", err)
            else:
                try:
                    status = self.forward(url, body)
                finally:
                    if op.startswith("ec2:") and not op[4:].startswith(("Describe", "Get")):
                        EMU.moto.invalidate()  # tags or states may have changed
                    if op == "s3:DeleteBucket":
                        forget_bucket_policy(s3_target(url.path)[0])
                    if op == "s3:DeleteBucket":
                        with EMU.state.lock:
                            EMU.bucket_regions.pop(s3_target(url.path)[0], None)
        except (BrokenPipeError, ConnectionResetError):
            status = 499
        except Exception:
            status = 500
            log.error("%s %s failed:\n%s", self.command, self.path, traceback.format_exc())
            try:
                self.reply_aws_error(ApiError("InternalServerError", "flamefire emulator bug; "
                                              "see its log", 500), op)
            except Exception:
                pass
        finally:
            if key and not op.startswith("admin:"):
                with EMU.state.lock:
                    EMU.state.key_timeline[key].append(
                        (round(started, 3), op, status, round((time.monotonic() - t0) * 1000, 1)))
            if status >= 400 and not op.startswith("admin:"):
                with EMU.state.lock:
                    EMU.state.errors[op] += 1
                    if key:
                        EMU.state.key_errors[key][op] += 1
            sys.stderr.write("%s %-40s %3d %6.1fms\n" % (
                time.strftime("%H:%M:%S"), op, status, (time.monotonic() - t0) * 1000))
            sys.stderr.flush()

    def strict(self, service: str, op: str, url, query: dict, body: bytes | None, key: str = ""
               ) -> tuple[bytes | None, int]:
        """Throttling, authentication and authorisation of one request, as AWS
        does them (see "IAM, credentials, STS" above); the emulator's STS.
        Returns (the body, if read; the status when already answered, else 0)."""
        region = request_region(self.headers)
        try:
            throttle_check(op, service, key)
            if service == "s3":
                if op == "s3:PostObject":
                    body = body if body is not None else self.read_body()
                self.check_bucket_region(op, url.path, body)
            if service == "ssm" and body is None:
                body = self.read_body()  # awsJson bodies are small; needed for the resource
            if op == "s3:PostObject":
                key = verify_post_object(url.path, self.headers, body or b"", self.secure,
                                         self.client_address[0])
                corrupt_before_meta(key)
            elif op == "signin:CreateOAuth2Token":
                body = body if body is not None else self.read_body()
                scheme = "https" if self.secure else "http"
                host = self.host_override or self.headers.get("Host", "")
                uri = f"{scheme}://{host}{urllib.parse.urlsplit(self.raw_path).path}"
                try:
                    answer = signin_create_token(self.headers, body, uri)
                except SigninError as err:
                    self.reply(err.status, err.body(), "application/json",
                               {"x-amzn-ErrorType": err.shape})
                    return body, err.status
                self.reply(200, answer, "application/json")
                return body, 200
            elif op in ("sts:AssumeRole", "sts:GetCallerIdentity"):
                params = {k: v[0] for k, v in urllib.parse.parse_qs(
                    (body or b"").decode("utf-8", "replace")).items()}
                params.update({k: v[0] for k, v in query.items()})
                key = access_key_of(self.headers, query)
                if op == "sts:AssumeRole":
                    caller = identity(key) if key else None
                    if caller is not None:
                        verify_signature(caller, "sts", self.command, self.raw_path, self.headers, body)
                    answer = sts_assume_role(params, key, self.headers)
                else:
                    entry = identity(key) if key else None
                    if entry is not None:
                        check_session(entry, "sts", self.headers.get("X-Amz-Security-Token"))
                        verify_signature(entry, "sts", self.command, self.raw_path, self.headers, body)
                    answer = sts_caller_identity(entry) if entry is not None else None
                if answer is not None:
                    self.reply(200, answer, "text/xml")
                    return body, 200
            else:
                authorize(service, op, region, self.headers, query, url.path, body, self.secure,
                          self.command, self.raw_path, self.client_address[0])
        except awsauth.AwsError as err:
            if body is None:
                self.read_body()  # drain it, so the connection can be reused
            return body, self.reply_error(service, err)
        return body, 0

    def check_bucket_region(self, op: str, path: str, body: bytes | None) -> None:
        """A bucket lives in one region (awsauth.wrong_region)."""
        bucket, _ = s3_target(path)
        if not bucket or op in ("s3:CreateBucket", "s3:ListBuckets"):
            return
        where = bucket_region(bucket)
        if where is None:
            return  # moto answers NoSuchBucket
        if op == "s3:HeadBucket":
            self.extra_headers["x-amz-bucket-region"] = where
        elif op in ("s3:ListObjectsV2", "s3:ListObjects"):
            # Real S3 sends it with a successful listing too (a capture of a
            # real response: versity/versitygw#1814); flamefire reads the
            # bucket's region from it, since the on-call role may list the
            # run prefix but not HeadBucket.
            self.success_headers["x-amz-bucket-region"] = where
        presigned = op == "s3:PostObject"
        if presigned:
            signing = (post_credential_of(body or b"", self.headers) + "////").split("/")[2]
        else:
            m = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/", self.headers.get("Authorization", ""))
            signing = m.group(1) if m else ""
        err = awsauth.wrong_region(bucket, where, self.host_region, signing, presigned)
        if err is not None:
            raise err

    def emulate(self, ssm_op: str, op: str, body: bytes) -> int:
        region = request_region(self.headers)
        try:
            req = json.loads(body or b"{}")
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError as e:
            err = ApiError("SerializationException", f"request body is not JSON: {e}")
            self.reply_aws_error(err, op)
            return err.status
        try:
            if ssm_op == "SendCommand":
                with EMU.state.lock:
                    entry = EMU.state.iam.get(access_key_of(self.headers, {}))
                if entry:
                    iam_check_send_command(entry, req, region)
            resp = SSM_HANDLERS[ssm_op](req, region)
        except ApiError as err:
            self.reply_aws_error(err, op)
            return err.status
        except awsauth.AwsError as err:
            return self.reply_error("ssm", err)
        self.reply(200, json.dumps(resp).encode(), "application/x-amz-json-1.1")
        return 200

    def forward(self, url, body: bytes | None) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", EMU.moto.port, timeout=600)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
            for k, v in self.headers.items():
                if k.lower() in HOP_BY_HOP:
                    continue
                if body is not None and k.lower() == "content-length":
                    continue
                if k.lower() == "host" and self.host_override:
                    v = self.host_override  # a virtual-hosted request, rewritten path-style
                conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            elif chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            if body is not None:
                conn.send(body)
            else:  # stream the body through as it arrives, in the same framing
                for chunk in self.body_chunks():
                    conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                if chunked:
                    conn.send(b"0\r\n\r\n")
            resp = conn.getresponse()
            self.send_response_only(resp.status, resp.reason)
            length = resp.getheader("Content-Length")
            no_body = self.command == "HEAD" or resp.status in (204, 304) or resp.status < 200
            for k, v in resp.getheaders():
                if k.lower() not in HOP_BY_HOP and k.lower() not in self.extra_headers \
                        and k.lower() not in self.success_headers:
                    self.send_header(k, v)
            for k, v in self.extra_headers.items():
                self.send_header(k, v)
            if 200 <= resp.status < 300:
                for k, v in self.success_headers.items():
                    self.send_header(k, v)
            if not no_body and length is None:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if not no_body:
                while True:
                    chunk = resp.read(65536)
                    if not chunk:
                        break
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if length is None else chunk)
                if length is None:
                    self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return resp.status
        finally:
            conn.close()

    def admin(self, path: str, query: dict) -> int:
        m = self.command
        try:
            if path == "/_flamefire/health" and m == "GET":
                import moto
                self.reply_json(200, {"status": "ok", "pid": os.getpid(), "port": EMU.config.port,
                                      "moto_port": EMU.moto.port, "moto_version": moto.__version__,
                                      "dir": EMU.config.dir, "uptime_s": round(now() - EMU.state.started, 3),
                                      "ca": EMU.tls.ca_cert})
            elif path == "/_flamefire/stats" and m == "GET":
                key = (query.get("access_key_id") or [""])[0]
                with EMU.state.lock:
                    stats = EMU.state.key_stats.get(key, {}) if key else EMU.state.stats
                    errors = EMU.state.key_errors.get(key, {}) if key else EMU.state.errors
                    reply = {"since": ts(EMU.state.stats_since), "total": sum(stats.values()),
                             "operations": dict(sorted(stats.items())),
                             "errors": dict(sorted(errors.items()))}
                    if key:
                        reply["access_key_id"] = key
                        if (query.get("timeline") or [""])[0] in ("1", "true"):
                            reply["timeline"] = list(EMU.state.key_timeline.get(key, ()))
                    self.reply_json(200, reply)
            elif path == "/_flamefire/stats/reset" and m == "POST":
                self.read_body()
                with EMU.state.lock:
                    EMU.state.stats.clear()
                    EMU.state.errors.clear()
                    EMU.state.key_stats.clear()
                    EMU.state.key_errors.clear()
                    EMU.state.key_timeline.clear()
                    EMU.state.stats_since = now()
                self.reply_json(200, {"reset": True})
            elif path == "/_flamefire/seed" and m == "POST":
                self.reply_json(200, admin_seed(json.loads(self.read_body() or b"{}")))
            elif path == "/_flamefire/invocations" and m == "GET":
                self.reply_json(200, admin_invocations(query))
            elif path == "/_flamefire/faults" and m == "GET":
                with EMU.state.lock:
                    self.reply_json(200, {"faults": EMU.state.faults})
            elif path == "/_flamefire/faults" and m == "POST":
                f = json.loads(self.read_body() or b"{}")
                if not f.get("operation"):
                    raise ApiError("ValidationException", "operation is required, e.g. "
                                   "ssm:ListCommandInvocations")
                scope = f.get("access_key_id") or ""
                with EMU.state.lock:
                    EMU.state.faults[fault_slot(f["operation"], scope)] = {
                        "error": f.get("error", "ThrottlingException"),
                        "message": f.get("message", "Rate exceeded"),
                        "status": int(f.get("status", 400)),
                        "count": int(f.get("count", 1))}
                self.reply_json(200, {"faults": EMU.state.faults})
            elif path == "/_flamefire/faults" and m == "DELETE":
                with EMU.state.lock:
                    EMU.state.faults.clear()
                self.reply_json(200, {"faults": {}})
            elif path == "/_flamefire/iam" and m == "POST":
                self.reply_json(200, admin_iam_register(json.loads(self.read_body() or b"{}")))
            elif path == "/_flamefire/iam" and m == "GET":
                self.reply_json(200, admin_iam_list())
            elif path == "/_flamefire/iam" and m == "DELETE":
                self.read_body()
                key = (query.get("access_key_id") or [""])[0]
                with EMU.state.lock:
                    if key:
                        EMU.state.iam.pop(key, None)
                    else:
                        EMU.state.iam.clear()
                self.reply_json(200, admin_iam_list())
            elif path == "/_flamefire/iam/expire" and m == "POST":
                self.reply_json(200, admin_iam_expire(json.loads(self.read_body() or b"{}")))
            elif path == "/_flamefire/signin" and m == "POST":
                self.reply_json(200, admin_signin_register(json.loads(self.read_body() or b"{}")))
            elif path == "/_flamefire/signin" and m == "GET":
                self.reply_json(200, admin_signin_list())
            elif path == "/_flamefire/signin/revoke" and m == "POST":
                self.reply_json(200, admin_signin_revoke(json.loads(self.read_body() or b"{}")))
            elif path == "/_flamefire/render" and m == "POST":
                self.reply_json(200, terraform_role(json.loads(self.read_body() or b"{}")))
            elif path == "/_flamefire/roles" and m == "POST":
                self.reply_json(200, admin_role_register(json.loads(self.read_body() or b"{}")))
            elif path == "/_flamefire/throttle" and m == "GET":
                self.reply_json(200, admin_throttle_get((query.get("access_key_id") or [""])[0]))
            elif path == "/_flamefire/throttle" and m == "POST":
                b = json.loads(self.read_body() or b"{}")
                self.reply_json(200, admin_throttle_set(b.get("limits"), b.get("access_key_id") or ""))
            elif path == "/_flamefire/throttle" and m == "DELETE":
                self.read_body()
                key = (query.get("access_key_id") or [""])[0]
                with EMU.state.lock:
                    EMU.auth.key_throttle.pop(key, None) if key else None
                self.reply_json(200, admin_throttle_set({}) if not key else admin_throttle_get(key))
            elif path == "/_flamefire/tls" and m == "GET":
                self.reply_json(200, {"ca": EMU.tls.ca_cert, "proxy": f"http://127.0.0.1:{EMU.config.port}"})
            elif path == "/_flamefire/reset" and m == "POST":
                self.read_body()
                self.reply_json(200, admin_reset())
            else:
                self.reply_json(404, {"error": f"no admin route {m} {path}"})
                return 404
            return 200
        except ApiError as e:
            self.reply_json(400, {"error": e.code, "message": e.message})
            return 400
        except (ValueError, botocore.exceptions.ClientError) as e:
            self.reply_json(400, {"error": type(e).__name__, "message": str(e)})
            return 400


class TlsHandler(Handler):
    """Requests inside a CONNECT tunnel, after TLS: virtual-hosted S3
    (https://BUCKET.s3.REGION.amazonaws.com/KEY) becomes path-style for the
    rest of the front server and for moto."""

    secure = True

    def dispatch_request(self):
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        m = S3_HOST_RE.match(host)
        self.raw_path = self.path
        if m and m.group("bucket"):
            rest = self.path if self.path.startswith("/") else "/" + self.path
            self.path = "/" + m.group("bucket") + rest
        # s3.amazonaws.com (no region) is the legacy global endpoint, us-east-1.
        self.host_region = (m.group("region") or "us-east-1") if m else None
        self.host_override = f"127.0.0.1:{EMU.moto.port}"
        super().dispatch_request()




def bucket_region(bucket: str) -> str | None:
    """The region moto created the bucket in (GetBucketLocation; no
    LocationConstraint means us-east-1); None when there is no such bucket."""
    with EMU.state.lock:
        if bucket in EMU.bucket_regions:
            return EMU.bucket_regions[bucket]
    try:
        loc = EMU.moto.client("s3", DEFAULT_REGION).get_bucket_location(Bucket=bucket)
    except botocore.exceptions.ClientError:
        return None
    where = loc.get("LocationConstraint") or "us-east-1"
    with EMU.state.lock:
        EMU.bucket_regions[bucket] = where
    return where


def post_credential_of(body: bytes, headers) -> str:
    try:
        fields, _, _ = awsauth.parse_multipart(body, headers.get("Content-Type", ""))
    except awsauth.AwsError:
        return ""
    for name, value in fields:
        if name.lower() == "x-amz-credential":
            return value.decode("utf-8", "replace")
    return ""


def post_key_of(body: bytes, headers) -> str:
    """The access key id in a POST form's x-amz-credential (for per-key stats)."""
    return post_credential_of(body, headers).split("/")[0]


class FrontServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


def shutdown_children(*_):
    with EMU.state.lock:
        for c in EMU.state.commands.values():
            for i in c.invocations.values():
                i.cancel.set()
    sys.exit(0)


def warm_up() -> None:
    """moto builds a region's SSM and EC2 backends on first use (seconds for SSM's
    AWS-owned documents); do it for the default region before tests need it."""
    try:
        EMU.moto.client("ssm", DEFAULT_REGION).list_documents(MaxResults=1)
        EMU.moto.instances(DEFAULT_REGION)
    except Exception as e:
        log.warning("warm-up failed: %s", e)


def main(argv=None) -> None:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/emulator
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=sys.modules[__package__].__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=int(os.environ.get("FLAMEFIRE_EMULATOR_PORT", "5055")))
    ap.add_argument("--dir", default=os.environ.get("FLAMEFIRE_EMULATOR_DIR")
                    or os.path.join(repo, "target", "emulator"))
    ap.add_argument("--max-procs", type=int,
                    default=int(os.environ.get("FLAMEFIRE_EMULATOR_MAX_PROCS", "64")))
    ap.add_argument("--agent-cwd", default=os.environ.get("FLAMEFIRE_EMULATOR_AGENT_CWD")
                    or DEFAULT_AGENT_CWD,
                    help="the emulated agent's own working directory, which scripts run in "
                         "(default /usr/bin, as under the agent's systemd unit)")
    ap.add_argument("--consistency-delay", type=float,
                    default=float(os.environ.get("FLAMEFIRE_EMULATOR_CONSISTENCY_DELAY", "0.5")))
    args = ap.parse_args(argv)
    # Never reach out to a real metadata endpoint or real credentials.
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", DEFAULT_REGION)
    for var in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(var, None)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    EMU.config.port, EMU.config.dir = args.port, os.path.abspath(args.dir)
    EMU.config.max_procs, EMU.config.consistency_delay = args.max_procs, args.consistency_delay
    EMU.config.agent_cwd = os.path.abspath(args.agent_cwd)
    if not os.path.isdir(EMU.config.agent_cwd):
        ap.error(f"--agent-cwd {EMU.config.agent_cwd} is not a directory")
    os.makedirs(os.path.join(EMU.config.dir, "orchestration"), exist_ok=True)
    EMU.proc_slots = threading.BoundedSemaphore(EMU.config.max_procs)
    for tool in ("sh", "curl", "unshare"):
        if not shutil.which(tool):
            log.warning("%s not found on PATH; some behaviours will fail", tool)
    EMU.moto = Moto()
    tls_setup(EMU.config.dir)
    admin_throttle_set(os.environ.get("FLAMEFIRE_EMULATOR_THROTTLE", ""))
    server = FrontServer(("127.0.0.1", EMU.config.port), Handler)
    signal.signal(signal.SIGTERM, shutdown_children)
    threading.Thread(target=warm_up, daemon=True, name="warm-up").start()
    log.info("flamefire emulator on http://127.0.0.1:%d (moto on %d), dir %s",
             EMU.config.port, EMU.moto.port, EMU.config.dir)
    try:
        server.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        with EMU.state.lock:
            running = [i for c in EMU.state.commands.values() for i in c.invocations.values()
                       if i.pid and not i.terminal]
        for inv in running:
            try:
                os.killpg(inv.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
