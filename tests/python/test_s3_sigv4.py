"""Eddy's SigV4 signer (common/src/storage/s3/sigv4.cc) against botocore's S3SigV4Auth on fixed
requests: same credentials, same timestamp, same method, path, query, headers and payload must
give the same canonical request and the same Authorization header.

Eddy's side runs through `eddy_s3_tool sign` (tests/tools/s3_tool.cc), which encodes the raw
object path and query itself, so the comparison also covers S3's URI encoding rules (each path
segment encoded, '/' kept; query names and values encoded, sorted).
"""

import datetime
import json
import subprocess
from unittest import mock

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode

from s3_harness import s3_tool_binary

AMZ_DATE = "20240229T235959Z"
WHEN = datetime.datetime(2024, 2, 29, 23, 59, 59)

CASES = [
    # name, method, host, raw path, query, headers, payload, region, session token
    (
        "get object",
        "GET",
        "s3.example.test:9000",
        "/bucket/chk-1/_metadata",
        [],
        [],
        b"",
        "us-east-1",
        "",
    ),
    (
        "spaces and plus",
        "PUT",
        "127.0.0.1:9000",
        "/bucket/dir/a b+c.sst",
        [],
        [],
        b"payload",
        "us-east-1",
        "",
    ),
    (
        "unicode key",
        "PUT",
        "127.0.0.1:9000",
        "/bucket/ünïcödé/日本語/😀.bin",
        [],
        [],
        "ü".encode(),
        "eu-central-1",
        "",
    ),
    (
        "reserved characters",
        "GET",
        "127.0.0.1:9000",
        "/bucket/k!$&'()*,;=:@[]#?%~_-.x",
        [],
        [],
        b"",
        "us-east-1",
        "",
    ),
    (
        "list with prefix and token",
        "GET",
        "127.0.0.1:9000",
        "/bucket",
        [
            ("list-type", "2"),
            ("prefix", "job/chk 1/ü"),
            ("continuation-token", "1/abc+def=="),
            ("max-keys", "1000"),
        ],
        [],
        b"",
        "us-east-1",
        "",
    ),
    (
        "create multipart",
        "POST",
        "127.0.0.1:9000",
        "/bucket/out/part-0",
        [("uploads", "")],
        [],
        b"",
        "us-east-1",
        "",
    ),
    (
        "upload part",
        "PUT",
        "127.0.0.1:9000",
        "/bucket/out/part-0",
        [("partNumber", "12"), ("uploadId", "VXBsb2FkIElE/+=~x")],
        [],
        bytes(range(256)) * 64,
        "ap-southeast-2",
        "",
    ),
    (
        "delete objects with md5",
        "POST",
        "127.0.0.1:9000",
        "/bucket",
        [("delete", "")],
        [("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==")],
        b"<Delete><Quiet>true</Quiet></Delete>",
        "us-east-1",
        "",
    ),
    (
        "session token",
        "GET",
        "127.0.0.1:9000",
        "/bucket/k",
        [],
        [],
        b"",
        "us-west-2",
        "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+token=",
    ),
    (
        "virtual-hosted",
        "HEAD",
        "eddy-bucket.s3.eu-west-1.amazonaws.com",
        "/chk-7/shared/000012.sst",
        [],
        [],
        b"",
        "eu-west-1",
        "",
    ),
    (
        "header whitespace",
        "GET",
        "127.0.0.1:9000",
        "/bucket/k",
        [],
        [("X-Amz-Meta-Note", "  two   spaces\tand tab  "), ("Range", "bytes=0-9")],
        b"",
        "us-east-1",
        "",
    ),
]

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def botocore_sign(case):
    _, method, host, raw_path, query, headers, payload, region, token = case
    path = percent_encode(raw_path, safe="/~")  # what botocore's S3 serializer does with keys
    request = AWSRequest(
        method=method,
        url=f"http://{host}{path}",
        params=list(query),
        headers={"Host": host, **dict(headers)},
        data=payload,
    )
    auth = S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, token or None), "s3", region)
    with mock.patch("botocore.auth.get_current_datetime", return_value=WHEN):
        auth.add_auth(request)
    authorization = request.headers["Authorization"]
    del request.headers["Authorization"]  # what was signed did not include it
    canonical = auth.canonical_request(request)
    return path, canonical, authorization


def eddy_sign(cases):
    request = []
    for _, method, host, raw_path, query, headers, payload, region, token in cases:
        request.append(
            {
                "method": method,
                "raw_path": raw_path,
                "query": [list(q) for q in query],
                "headers": [["Host", host], *[list(h) for h in headers]],
                "payload_hex": payload.hex(),
                "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY,
                "session_token": token,
                "region": region,
                "service": "s3",
                "amz_date": AMZ_DATE,
            }
        )
    p = subprocess.run(
        [s3_tool_binary(), "sign"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_signatures_match_botocore():
    results = eddy_sign(CASES)
    assert len(results) == len(CASES)
    for case, eddy in zip(CASES, results):
        name = case[0]
        path, canonical, authorization = botocore_sign(case)
        assert eddy["encoded_path"] == path, name
        assert (
            eddy["canonical_request"] == canonical
        ), f"{name}:\n{eddy['canonical_request']}\n---\n{canonical}"
        assert eddy["authorization"] == authorization, name


def test_a_changed_input_changes_the_signature():
    """The comparison above would not notice a signer that ignores its input: it does not."""
    base = CASES[4]
    variants = [
        base,
        (*base[:4], [("list-type", "2"), ("prefix", "job/chk 2/ü")], *base[5:]),
        (*base[:7], "eu-west-1", base[8]),
        (*base[:8], "token"),
    ]
    signatures = {e["authorization"] for e in eddy_sign(variants)}
    assert len(signatures) == len(variants)
