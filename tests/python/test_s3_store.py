"""Eddy's s3:// ObjectStore against a real S3-compatible server (moto, tests/python/s3_harness.py),
through the test program tests/tools/s3_tool.cc (target eddy_s3_tool, see s3_tool_binary()).

Covers every ObjectStore operation, listing and DeleteObjects pagination, multipart PutFile,
two-phase staging, credentials (moto's IAM authentication checks Eddy's signatures, keys and
session tokens), missing buckets, garbage answers, and outages injected with FaultProxy.
"""

import hashlib
import http.server
import json
import os
import subprocess
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from s3_harness import FaultProxy, S3Server, s3_tool_binary

MiB = 1 << 20


def clean_env(extra):
    """The test process's environment without AWS_* (so that nothing leaks in), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = "/nonexistent-eddy-home"  # no ~/.aws/credentials
    env.update(extra)
    return env


def run(env, *args, expect_ok=True, timeout=300):
    """Runs eddy_s3_tool; returns its JSON answer. A crash (signal) always fails the test."""
    p = subprocess.run(
        [s3_tool_binary(), *map(str, args)],
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert (
        p.returncode in (0, 1) and p.stdout.strip()
    ), f"eddy_s3_tool {args} exited {p.returncode}: {p.stdout}{p.stderr}"
    out = json.loads(p.stdout.strip().splitlines()[-1])
    if expect_ok is not None:
        assert out["ok"] == expect_ok, f"eddy_s3_tool {args}: {out} {p.stderr}"
        assert (p.returncode == 0) == expect_ok
    return out


def start_tool(env, *args):
    return subprocess.Popen(
        [s3_tool_binary(), *map(str, args)],
        env=clean_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc, timeout=120):
    stdout, stderr = proc.communicate(timeout=timeout)
    assert (
        proc.returncode in (0, 1) and stdout.strip()
    ), f"eddy_s3_tool exited {proc.returncode}: {stdout}{stderr}"
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def s3():
    with S3Server() as server:
        yield server


@pytest.fixture(scope="module")
def s3_auth():
    """A server that authenticates every request against its IAM (keys, signatures, tokens)."""
    with S3Server(bucket="eddy-auth", auth=True) as server:
        yield server


@pytest.fixture
def root(s3):
    """A fresh prefix per test, and the tool arguments for a store rooted there."""
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    return prefix, ["--uri", s3.uri(prefix)]


@pytest.fixture
def proxy(s3):
    with FaultProxy(s3.host, s3.port) as p:
        yield p


# ---- the operations ---------------------------------------------------------------------


def test_put_get_stat_list_delete(s3, root):
    prefix, u = root
    env = s3.env()
    keys = [
        "chk-1/_metadata",
        "chk-1/shared/a b+c=d&e.sst",
        "chk-1/ü/日本/x~y!z*(1)'.bin",
        "chk-10/x",
    ]
    for i, k in enumerate(keys):
        run(env, *u, "put", k, f"value {i}")
    for i, k in enumerate(keys):
        assert run(env, *u, "get", k)["data"] == f"value {i}"
    # Keys live under the root prefix, exactly as given.
    assert sorted(s3.keys(prefix + "/")) == sorted(f"{prefix}/{k}" for k in keys)

    st = run(env, *u, "stat", keys[1])
    assert st["exists"] and st["size"] == len("value 1")
    assert run(env, *u, "stat", "chk-1/absent")["exists"] is False

    missing = run(env, *u, "get", "chk-1/absent", expect_ok=False)
    assert missing["code"] == "NotFound" and not missing["retryable"]
    assert (
        "NoSuchKey" in missing["message"]
        and f"s3://{s3.bucket}/{prefix}/chk-1/absent" in missing["message"]
    )

    listed = run(env, *u, "list", "chk-1")["objects"]
    assert [o["key"] for o in listed] == sorted(keys)  # prefix match, any depth, sorted
    assert [o["key"] for o in run(env, *u, "list", "chk-1/")["objects"]] == sorted(keys[:3])
    assert all(o["size"] == len("value 0") for o in listed)
    assert run(env, *u, "list", "nothing/")["objects"] == []

    run(env, *u, "put", keys[0], "replaced")
    assert run(env, *u, "get", keys[0])["data"] == "replaced"

    run(env, *u, "delete", keys[0])
    run(env, *u, "delete", keys[0])  # absent is fine
    assert run(env, *u, "stat", keys[0])["exists"] is False
    bad = run(env, *u, "put", "../escape", "x", expect_ok=False)
    assert bad["code"] == "InvalidArgument"


def test_stores_with_different_roots_are_isolated(s3):
    env = s3.env()
    a, b = f"iso-{uuid.uuid4().hex[:6]}/a", f"iso-{uuid.uuid4().hex[:6]}/b"
    run(env, "--uri", s3.uri(a), "put", "k", "from a")
    run(env, "--uri", s3.uri(b), "put", "k", "from b")
    assert run(env, "--uri", s3.uri(a), "get", "k")["data"] == "from a"
    assert [o["key"] for o in run(env, "--uri", s3.uri(a), "list", "")["objects"]] == ["k"]
    # A store at the bucket root sees full keys.
    whole = [o["key"] for o in run(env, "--uri", s3.uri(), "list", a.split("/")[0])["objects"]]
    assert whole == [f"{a}/k"]


def test_list_pagination_and_delete_prefix_batches(s3, root):
    prefix, u = root
    env = s3.env()
    n = 1100  # more than one ListObjectsV2 page and one DeleteObjects batch (1000 each)
    out = run(env, *u, "put-many", "many/", n, 8)  # 8 threads on one store
    assert out["errors"] == []
    expected = [f"many/{i:05d}" for i in range(n)]

    listed = run(env, *u, "list", "many/")
    assert [o["key"] for o in listed["objects"]] == expected
    assert listed["requests"] == 2  # pages of 1000

    small_pages = run(env, *u, "--page-size", 100, "list", "many/")
    assert [o["key"] for o in small_pages["objects"]] == expected
    assert small_pages["requests"] >= 11

    run(env, *u, "put", "keep/me", "x")
    deleted = run(env, *u, "delete-prefix", "many/")
    assert (
        deleted["requests"] == listed["requests"] + 2
    )  # the listing, DeleteObjects of 1000 and 100
    assert s3.keys(f"{prefix}/many/") == []
    assert s3.keys(f"{prefix}/") == [f"{prefix}/keep/me"]
    run(env, *u, "delete-prefix", "many/")  # nothing left: fine


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def test_put_file_multipart_and_get_to_file(s3, root, tmp_path):
    prefix, u = root
    env = s3.env()
    big = tmp_path / "big.sst"
    with open(big, "wb") as f:  # 16 + 16 + 8 MiB parts
        for _ in range(40):
            f.write(os.urandom(MiB))
    small = tmp_path / "small.sst"
    small.write_bytes(os.urandom(16 * MiB))  # exactly the threshold: one PutObject

    up = run(env, *u, "put-file", "shared/big.sst", big)
    assert up["requests"] == 1 + 3 + 1  # create, 3 parts, complete
    run(env, *u, "put-file", "shared/small.sst", small)

    client = s3.client()
    head = client.head_object(Bucket=s3.bucket, Key=f"{prefix}/shared/big.sst")
    assert head["ContentLength"] == 40 * MiB
    assert head["ETag"].strip('"').endswith("-3"), head["ETag"]  # a 3-part multipart upload
    assert "-" not in client.head_object(Bucket=s3.bucket, Key=f"{prefix}/shared/small.sst")["ETag"]
    # No upload left open.
    assert client.list_multipart_uploads(Bucket=s3.bucket, Prefix=prefix).get("Uploads", []) == []

    back = tmp_path / "back.sst"
    back.write_bytes(b"old content")
    run(env, *u, "get-to-file", "shared/big.sst", back)
    assert back.stat().st_size == 40 * MiB
    assert sha256_file(back) == sha256_file(big)
    assert run(env, *u, "stat", "shared/big.sst")["size"] == 40 * MiB

    missing = run(env, *u, "get-to-file", "shared/absent.sst", tmp_path / "absent", expect_ok=False)
    assert missing["code"] == "NotFound"
    assert not (tmp_path / "absent").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back.sst", "big.sst", "small.sst"]

    nofile = run(env, *u, "put-file", "x", tmp_path / "nope", expect_ok=False)
    assert nofile["code"] == "NotFound"


def test_stage_commit_abort_list_staged(s3, root):
    prefix, u = root
    env = s3.env()
    staged = run(env, *u, "stage", "out/part-0-1.jsonl", "line\n")["staged"]
    assert staged["upload_id"] and len(staged["part_etags"]) == 1 and staged["size"] == 5
    # Invisible until committed.
    assert run(env, *u, "list", "out/")["objects"] == []
    assert run(env, *u, "stat", "out/part-0-1.jsonl")["exists"] is False
    pending = run(env, *u, "list-staged", "out/part-0")["staged"]
    assert [(s["key"], s["upload_id"]) for s in pending] == [
        ("out/part-0-1.jsonl", staged["upload_id"])
    ]
    assert run(env, *u, "list-staged", "out/part-1")["staged"] == []

    run(env, *u, "commit", json.dumps(staged))
    assert run(env, *u, "get", "out/part-0-1.jsonl")["data"] == "line\n"
    run(env, *u, "commit", json.dumps(staged))  # idempotent (e.g. after a restart)
    assert run(env, *u, "list-staged", "out/")["staged"] == []

    aborted = run(env, *u, "stage", "out/part-0-2.jsonl", "x\n")["staged"]
    run(env, *u, "abort", json.dumps(aborted))
    run(env, *u, "abort", json.dumps(aborted))  # already gone: fine
    gone = run(
        env,
        *u,
        "--max-attempts",
        2,
        "--retry-base-ms",
        10,
        "commit",
        json.dumps(aborted),
        expect_ok=False,
    )
    # S3 answers NoSuchUpload (→ NotFound, see s3_store_test.cc); moto answers 500 InternalError
    # for an unknown upload id, which the store retries and reports as IOError.
    assert gone["code"] in ("NotFound", "IOError"), gone
    assert "CompleteMultipartUpload" in gone["message"] or aborted["upload_id"] in gone["message"]
    assert [o["key"] for o in run(env, *u, "list", "out/")["objects"]] == ["out/part-0-1.jsonl"]

    # An empty object can be staged too, and leftovers of a failed attempt can be listed and
    # aborted without their ETags.
    empty = run(env, *u, "stage", "out/empty", "")["staged"]
    run(env, *u, "commit", json.dumps(empty))
    st = run(env, *u, "stat", "out/empty")
    assert st["exists"] and st["size"] == 0
    left = [run(env, *u, "stage", f"out/left-{i}", "x")["staged"] for i in range(3)]
    listed = run(env, *u, "list-staged", "out/left-")["staged"]
    assert sorted(s["upload_id"] for s in listed) == sorted(s["upload_id"] for s in left)
    for s in listed:
        run(env, *u, "abort", json.dumps(s))
    assert run(env, *u, "list-staged", "out/")["staged"] == []


def test_concurrent_operations_on_one_store(s3, root):
    prefix, u = root
    out = run(s3.env(), *u, "stress", "stress/", 8, 5)
    assert out["errors"] == []
    assert s3.keys(f"{prefix}/stress/") == []


def test_virtual_hosted_and_path_style_urls(s3):
    # moto cannot be reached as <bucket>.127.0.0.1 (no wildcard DNS on loopback), so this checks
    # the addressing the store resolves; the signing of virtual-hosted requests is checked against
    # botocore in test_s3_sigv4.py.
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    vh = run(
        env,
        "--uri",
        "s3://eddy-test/p",
        "--endpoint",
        "http://s3.example.test:9000",
        "--path-style",
        "false",
        "config",
        "a b",
    )
    assert (vh["base_url"], vh["host"], vh["path"], vh["path_style"]) == (
        "http://eddy-test.s3.example.test:9000",
        "eddy-test.s3.example.test:9000",
        "/p/a%20b",
        False,
    )
    aws = run({**env, "AWS_REGION": "eu-west-1"}, "--uri", "s3://eddy-test", "config", "k")
    assert (aws["base_url"], aws["path"], aws["region"]) == (
        "https://eddy-test.s3.eu-west-1.amazonaws.com",
        "/k",
        "eu-west-1",
    )
    path = run(
        {**env, "AWS_ENDPOINT_URL_S3": s3.endpoint}, "--uri", "s3://eddy-test/p/", "config", "k"
    )
    assert (path["base_url"], path["path"], path["path_style"], path["root"]) == (
        s3.endpoint,
        "/eddy-test/p/k",
        True,
        "s3://eddy-test/p",
    )


# ---- errors ---------------------------------------------------------------------------------


def test_missing_bucket_is_not_found(s3):
    env = s3.env()
    for args in (
        ["get", "k"],
        ["put", "k", "v"],
        ["list", ""],
        ["stage", "k", "v"],
        ["delete-prefix", ""],
    ):
        out = run(env, "--uri", "s3://no-such-bucket/x", *args, expect_ok=False)
        assert out["code"] == "NotFound", out
        assert "bucket 'no-such-bucket' does not exist" in out["message"]
        assert out["requests"] == 1  # not retried


def test_no_credentials_is_a_clear_error(s3, tmp_path):
    out = run({"AWS_ENDPOINT_URL_S3": s3.endpoint}, "--uri", s3.uri(), "list", "", expect_ok=False)
    assert out["code"] == "InvalidArgument"
    assert "no AWS credentials found" in out["message"] and "AWS_ACCESS_KEY_ID" in out["message"]


def test_garbage_answers_are_retried_then_reported(tmp_path):
    """A server that answers with truncated bodies, broken XML and HTML: no crash, a retryable
    IOError after the retries, and S3's error text when there is one."""

    class Garbage(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _send(self, status, body, length=None, close=False):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            if close:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            if close:
                self.wfile.flush()
                self.close_connection = True

        def do_GET(self):
            if "list-type=2" in self.path:
                self._send(200, b"<ListBucketResult><Contents><Key>a</Key><Si")
            elif self.path.endswith("/truncated"):
                self._send(200, b"only ten b", length=1000, close=True)
            elif self.path.endswith("/html"):
                self._send(502, b"<html><body>Bad Gateway</body></html>")
            elif self.path.endswith("/binary"):
                self._send(400, bytes(range(256)))
            else:
                self._send(200, b"\x00\x01 not xml")

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self._send(200, b"<InitiateMultipartUploadResult><UploadId></UploadId>")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {
            "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{server.server_address[1]}",
            "AWS_ACCESS_KEY_ID": "k",
            "AWS_SECRET_ACCESS_KEY": "s",
        }
        u = ["--uri", "s3://garbage/p", "--max-attempts", 3, "--retry-base-ms", 1]
        for args, code in (
            (["list", ""], "IOError"),
            (["get", "truncated"], "IOError"),
            (["get-to-file", "truncated", tmp_path / "t"], "IOError"),
            (["get", "html"], "IOError"),
            (["stage", "k", "v"], "IOError"),
            (["get", "binary"], "InvalidArgument"),
        ):
            out = run(env, *u, *args, expect_ok=False)
            assert out["code"] == code, (args, out)
            if code == "IOError":
                assert out["retryable"] and out["requests"] == 3, (args, out)
                assert "failed after 3 attempts" in out["message"]
        assert not (tmp_path / "t").exists()
        assert list(tmp_path.iterdir()) == []
    finally:
        server.shutdown()


def test_signatures_and_keys_are_checked_by_the_server(s3_auth, tmp_path):
    """moto with IAM authentication recomputes every signature: the store's requests pass, wrong
    keys are refused with an actionable InvalidArgument."""
    s3 = s3_auth
    env = s3.env()
    # moto's signature check mis-handles percent-encoded query strings (botocore's own requests
    # fail it too), so this store sits at the bucket root and lists prefixes without '/'.
    u = ["--uri", s3.uri()]
    run(env, *u, "put", "chk-1/data", "signed")
    assert run(env, *u, "get", "chk-1/data")["data"] == "signed"
    assert [o["key"] for o in run(env, *u, "list", "chk")["objects"]] == ["chk-1/data"]
    staged = run(env, *u, "stage", "out/f", "staged")["staged"]
    assert len(run(env, *u, "list-staged", "out")["staged"]) == 1
    run(env, *u, "commit", json.dumps(staged))
    assert run(env, *u, "stat", "out/f")["size"] == len("staged")
    run(env, *u, "delete-prefix", "")
    assert run(env, *u, "list", "")["objects"] == []

    wrong_secret = run(
        {**env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}, *u, "get", "k", expect_ok=False
    )
    assert wrong_secret["code"] == "InvalidArgument" and not wrong_secret["retryable"]
    assert "SignatureDoesNotMatch" in wrong_secret["message"]
    assert "secret key from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY" in wrong_secret["message"]
    assert wrong_secret["requests"] == 1

    unknown = run(
        {**env, "AWS_ACCESS_KEY_ID": "AKIAUNKNOWNUNKNOWN00"}, *u, "put", "k", "v", expect_ok=False
    )
    assert unknown["code"] == "InvalidArgument"
    assert "InvalidAccessKeyId" in unknown["message"] and "is not known to" in unknown["message"]

    # The same keys from the options and from a shared credentials file.
    run(
        {"AWS_ENDPOINT_URL_S3": s3.endpoint},
        *u,
        "--access-key",
        s3.access_key,
        "--secret-key",
        s3.secret_key,
        "put",
        "k",
        "v",
    )
    creds = tmp_path / "credentials"
    creds.write_text(
        "[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n"
        f"[profile eddy]\naws_access_key_id = {s3.access_key}\n"
        f"aws_secret_access_key = {s3.secret_key}\n"
    )
    file_env = {"AWS_ENDPOINT_URL_S3": s3.endpoint, "AWS_SHARED_CREDENTIALS_FILE": str(creds)}
    run({**file_env, "AWS_PROFILE": "eddy"}, *u, "get", "k")
    default = run(file_env, *u, "get", "k", expect_ok=False)
    assert default["code"] == "InvalidArgument" and "profile 'default' of" in default["message"]
    absent = run({**file_env, "AWS_PROFILE": "nope"}, *u, "get", "k", expect_ok=False)
    assert absent["code"] == "InvalidArgument" and "'nope'" in absent["message"]


class CredentialsEndpoint:
    """A container credentials endpoint (ECS/EKS style) serving temporary credentials."""

    def __init__(self, credentials, token, expires_in):
        self.hits = 0
        self.authorizations = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.hits += 1
                outer.authorizations.append(self.headers.get("Authorization"))
                if self.headers.get("Authorization") != token:
                    body, status = b'{"message":"bad token"}', 401
                else:
                    expiration = datetime.now(timezone.utc) + expires_in
                    body = json.dumps(
                        {
                            "AccessKeyId": credentials["AccessKeyId"],
                            "SecretAccessKey": credentials["SecretAccessKey"],
                            "Token": credentials["SessionToken"],
                            "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        }
                    ).encode()
                    status = 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v2/credentials/eddy"

    def close(self):
        self.server.shutdown()


@pytest.mark.parametrize(
    "expires_in,refresh", [(timedelta(hours=1), False), (timedelta(minutes=2), True)]
)
def test_container_credentials_with_session_token(s3_auth, tmp_path, expires_in, refresh):
    """Temporary credentials (with a session token that moto checks) from a container credentials
    endpoint, authorized by a token file; fetched once, or again before every request when they
    expire within the refresh margin (5 minutes)."""
    s3 = s3_auth
    endpoint = CredentialsEndpoint(
        s3.assume_role(), token="Bearer pod-token", expires_in=expires_in
    )
    try:
        token_file = tmp_path / "token"
        token_file.write_text("Bearer pod-token\n")
        env = {
            "AWS_ENDPOINT_URL_S3": s3.endpoint,
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint.url,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
        }
        u = ["--uri", s3.uri()]
        out = run(env, *u, "put-many", f"container-{uuid.uuid4().hex[:6]}/", 3, 1)
        assert out["errors"] == []
        assert endpoint.authorizations[0] == "Bearer pod-token"
        if refresh:
            assert endpoint.hits >= 6  # 3 puts and 3 reads back, each after a refresh
        else:
            assert endpoint.hits == 1

        bad_token = run(
            {
                **env,
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN": "wrong",
            },
            *u,
            "get",
            "k",
            expect_ok=False,
        )
        assert bad_token["code"] == "InvalidArgument" and "401" in bad_token["message"]
    finally:
        endpoint.close()


def test_wrong_session_token_is_refused(s3_auth):
    s3 = s3_auth
    creds = s3.assume_role()
    env = {
        "AWS_ENDPOINT_URL_S3": s3.endpoint,
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_SESSION_TOKEN": creds["SessionToken"],
    }
    u = ["--uri", s3.uri()]
    run(env, *u, "put", "k", "v")
    out = run({**env, "AWS_SESSION_TOKEN": "forged"}, *u, "get", "k", expect_ok=False)
    assert out["code"] == "InvalidArgument" and "InvalidToken" in out["message"]


# ---- outages ------------------------------------------------------------------------------


def test_server_down_gives_a_retryable_error_after_the_retries(s3, root, proxy):
    prefix, u = root
    env = s3.env(endpoint=proxy.endpoint)
    proxy.set_mode("refuse")
    out = run(
        env,
        *u,
        "--max-attempts",
        4,
        "--retry-base-ms",
        50,
        "--retry-max-ms",
        200,
        "put",
        "k",
        "v",
        expect_ok=False,
    )
    assert out["code"] == "Unavailable" and out["retryable"]
    assert out["requests"] == 4 and out["retries"] == 3
    assert f"S3 PutObject of s3://{s3.bucket}/{prefix}/k failed after 4 attempts" in out["message"]
    assert "cannot connect" in out["message"]
    assert out["elapsed_ms"] < 5000  # backoff capped at 50+100+200 ms

    proxy.set_mode("reset")
    out = run(env, *u, "--max-attempts", 3, "--retry-base-ms", 10, "list", "", expect_ok=False)
    assert out["retryable"] and out["requests"] == 3

    proxy.set_mode("blackhole")
    started = time.monotonic()
    out = run(
        env,
        *u,
        "--max-attempts",
        2,
        "--retry-base-ms",
        10,
        "--timeout-ms",
        500,
        "get",
        "k",
        expect_ok=False,
    )
    assert out["code"] == "Timeout" and out["retryable"]
    assert "no answer within 500 ms" in out["message"]
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("mode", ["refuse", "reset"])
def test_outage_shorter_than_the_retry_budget_is_survived(s3, root, proxy, mode):
    prefix, u = root
    env = s3.env(endpoint=proxy.endpoint)
    started = time.monotonic()
    proxy.outage(1.5, mode=mode)
    proc = start_tool(
        env,
        *u,
        "--max-attempts",
        12,
        "--retry-base-ms",
        100,
        "--retry-max-ms",
        800,
        "put",
        "during",
        "y",
    )
    out = finish(proc)
    assert out["ok"], out
    assert out["retries"] >= 1  # it failed during the outage
    assert time.monotonic() - started >= 1.5  # and got through only after it
    assert s3.client().get_object(Bucket=s3.bucket, Key=f"{prefix}/during")["Body"].read() == b"y"
