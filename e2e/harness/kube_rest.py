"""A minimal Kubernetes REST client for the e2e harness (test infrastructure only).

Standard library only (http.client + ssl): JSON requests and line-delimited watch streams,
authenticated from a kubeconfig (client certificate and/or bearer token, CA file or inline data).
It is what the node agent (node_agent.py) talks to the API server with; it knows nothing about
resource types, retries or caching — callers do that.

    api = KubeRest.from_kubeconfig("admin.kubeconfig")
    api.get("/api/v1/namespaces")                       # dict, ApiError on status >= 400
    api.patch("/api/v1/nodes/n/status", {...})          # merge patch by default
    for event in api.watch("/api/v1/pods", {"resourceVersion": rv}):
        ...                                             # {"type": ..., "object": {...}}

Thread-safe: every request opens its own connection (the load is a handful of requests per
second); `close_watches()` (from another thread) ends the open watches and any later one.
"""

import base64
import http.client
import json
import os
import socket
import ssl
import tempfile
import threading
import urllib.parse
from pathlib import Path


class ApiError(Exception):
    """The API server answered with an HTTP status >= 400."""

    def __init__(self, method, path, status, body):
        self.status = status
        self.body = body
        try:
            self.reason = json.loads(body).get("reason", "")
            msg = json.loads(body).get("message", body)
        except (ValueError, AttributeError):
            self.reason, msg = "", body
        super().__init__(f"{method} {path}: HTTP {status}: {msg}")


def _load_config(path: Path):
    text = path.read_text()
    try:
        return json.loads(text)
    except ValueError:
        import yaml  # kubeconfigs written by other tools are YAML; pyyaml is in setup.sh

        return yaml.safe_load(text)


class KubeRest:
    def __init__(self, server, ssl_context, token=None):
        u = urllib.parse.urlsplit(server)
        if u.scheme != "https":
            raise ValueError(f"only https servers are supported, got {server}")
        self.server = server
        self.host = u.hostname
        self.port = u.port or 443
        self.base_path = u.path.rstrip("/")
        self._ctx = ssl_context
        self._token = token
        self._watch_lock = threading.Lock()
        self._watch_conns = set()
        self._watches_closed = False

    @classmethod
    def from_kubeconfig(cls, kubeconfig, context=None):
        path = Path(kubeconfig)
        cfg = _load_config(path)
        ctx_name = context or cfg.get("current-context")

        def pick(kind, name):
            for item in cfg.get(kind + "s", []):
                if item["name"] == name:
                    return item[kind]
            raise ValueError(f"{path}: no {kind} named {name!r}")

        ctx = pick("context", ctx_name)
        cluster, user = pick("cluster", ctx["cluster"]), pick("user", ctx["user"])

        def rel(p):  # kubeconfig paths are relative to the file
            return str(p if os.path.isabs(p) else path.parent / p)

        tmp = None

        def data_file(b64, suffix):
            nonlocal tmp
            tmp = tmp or tempfile.mkdtemp(prefix="eddy-kubeconfig-")
            f = Path(tmp) / suffix
            f.write_bytes(base64.b64decode(b64))
            os.chmod(f, 0o600)
            return str(f)

        if cluster.get("insecure-skip-tls-verify"):
            sslctx = ssl._create_unverified_context()  # noqa: S323 - the kubeconfig asks for it
        elif "certificate-authority-data" in cluster:
            sslctx = ssl.create_default_context(
                cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        elif "certificate-authority" in cluster:
            sslctx = ssl.create_default_context(cafile=rel(cluster["certificate-authority"]))
        else:
            sslctx = ssl.create_default_context()
        cert = user.get("client-certificate") and rel(user["client-certificate"])
        key = user.get("client-key") and rel(user["client-key"])
        if "client-certificate-data" in user:
            cert = data_file(user["client-certificate-data"], "client.crt")
        if "client-key-data" in user:
            key = data_file(user["client-key-data"], "client.key")
        if cert:
            sslctx.load_cert_chain(cert, key)
        token = user.get("token")
        if not token and user.get("tokenFile"):
            token = Path(rel(user["tokenFile"])).read_text().strip()
        client = cls(cluster["server"], sslctx, token)
        client.ca_file = rel(cluster["certificate-authority"]) \
            if "certificate-authority" in cluster else None
        client.ca_data = (base64.b64decode(cluster["certificate-authority-data"])
                          if "certificate-authority-data" in cluster else None)
        return client

    def ca_pem(self):
        """The cluster CA as PEM bytes (None if the kubeconfig names none)."""
        if getattr(self, "ca_data", None):
            return self.ca_data
        if getattr(self, "ca_file", None):
            return Path(self.ca_file).read_bytes()
        return None

    # ------------------------------------------------------------------ plain requests
    def _url(self, path, query):
        q = ("?" + urllib.parse.urlencode(query)) if query else ""
        return self.base_path + path + q

    def _headers(self, ctype=None):
        h = {"Accept": "application/json", "User-Agent": "eddy-e2e-node-agent"}
        if ctype:
            h["Content-Type"] = ctype
        if self._token:
            h["Authorization"] = f"Bearer {self._token}"
        return h

    def request(self, method, path, body=None, query=None, ctype="application/json", timeout=30):
        """One request; returns the decoded JSON body ({} when empty). ApiError on >= 400."""
        data = None if body is None else json.dumps(body).encode()
        conn = http.client.HTTPSConnection(self.host, self.port, context=self._ctx,
                                           timeout=timeout)
        try:
            conn.request(method, self._url(path, query), body=data,
                         headers=self._headers(ctype if data is not None else None))
            r = conn.getresponse()
            raw = r.read()
        finally:
            conn.close()
        if r.status >= 400:
            raise ApiError(method, path, r.status, raw.decode(errors="replace"))
        return json.loads(raw) if raw else {}

    def get(self, path, query=None, **kw):
        return self.request("GET", path, query=query, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body, **kw):
        return self.request("PUT", path, body, **kw)

    def patch(self, path, body, ctype="application/merge-patch+json", **kw):
        return self.request("PATCH", path, body, ctype=ctype, **kw)

    def delete(self, path, body=None, **kw):
        return self.request("DELETE", path, body, **kw)

    # ------------------------------------------------------------------ watch
    def watch(self, path, query, timeout=None):
        """Yield the events of a watch (`watch=1` is added) until the server ends it.

        `timeout` is the socket read timeout: keep it above the server's `timeoutSeconds`."""
        q = dict(query)
        q["watch"] = "1"
        conn = http.client.HTTPSConnection(self.host, self.port, context=self._ctx,
                                           timeout=timeout)
        with self._watch_lock:
            if self._watches_closed:
                return
            self._watch_conns.add(conn)
        try:
            conn.request("GET", self._url(path, q), headers=self._headers())
            r = conn.getresponse()
            if r.status >= 400:
                raise ApiError("WATCH", path, r.status, r.read().decode(errors="replace"))
            while True:
                line = r.readline()
                if not line:
                    return
                line = line.strip()
                if line:
                    yield json.loads(line)
        finally:
            with self._watch_lock:
                self._watch_conns.discard(conn)
            conn.close()

    def close_watches(self):
        """Make every open watch of this client end, and later ones end at once (any thread)."""
        with self._watch_lock:
            self._watches_closed = True
            conns = list(self._watch_conns)
        for c in conns:
            try:
                if c.sock:
                    c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
