"""An authenticating front for Apache Iceberg's REST catalog server (which checks no credentials),
as Polaris, Lakekeeper or Unity check them: every request needs `Authorization: Bearer TOKEN`,
TOKEN being the static one given or one this front issued at /v1/oauth/tokens for the client
credentials given (OAuth2 client_credentials, form-encoded). Anything else gets 401 with an
Iceberg error body. While the file STATE_DIR/revoked exists, every token is refused (403).

Usage: catalog_auth.py PORT UPSTREAM_URL STATIC_TOKEN CLIENT_ID:CLIENT_SECRET STATE_DIR

Appends one line per request to STATE_DIR/requests.log: the method, the path and whether it was
let through, never a credential.
"""
import http.client
import json
import os
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, UPSTREAM, STATIC, CLIENT, STATE = sys.argv[1:6]
CLIENT_ID, CLIENT_SECRET = CLIENT.split(":", 1)
UP = urllib.parse.urlsplit(UPSTREAM)
ISSUED = set()
LOCK = threading.Lock()


def log(line):
    with LOCK, open(os.path.join(STATE, "requests.log"), "a") as f:
        f.write(line + "\n")


class Front(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def refuse(self, status, message):
        log(f"{self.command} {self.path} refused {status}")
        self.reply(status, {"error": {"message": message, "type": "NotAuthorizedException", "code": status}})

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def handle_any(self):
        body = self.body()
        if self.path.rstrip("/").endswith("/v1/oauth/tokens"):
            form = urllib.parse.parse_qs(body.decode())
            ok = form.get("grant_type") == ["client_credentials"] and form.get("client_id") == [
                CLIENT_ID
            ] and form.get("client_secret") == [CLIENT_SECRET]
            if not ok:
                log(f"{self.command} {self.path} refused 401")
                return self.reply(401, {"error": "invalid_client", "error_description": "unknown client"})
            token = f"issued-{len(ISSUED)}"
            ISSUED.add(token)
            log(f"{self.command} {self.path} token issued")
            return self.reply(200, {"access_token": token, "token_type": "bearer", "expires_in": 3600})
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        if token is None or (token != STATIC and token not in ISSUED):
            return self.refuse(401, "Not authorized: the bearer token is not valid")
        if os.path.exists(os.path.join(STATE, "revoked")):
            return self.refuse(403, "Forbidden: the principal has no grant on this catalog")
        conn = http.client.HTTPConnection(UP.hostname, UP.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization")}
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
        except OSError as e:
            log(f"{self.command} {self.path} upstream failed")
            return self.reply(503, {"error": {"message": f"upstream: {e}", "type": "ServiceUnavailable", "code": 503}})
        log(f"{self.command} {self.path} {answer.status}")
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.getheader("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_HEAD = handle_any


ThreadingHTTPServer(("127.0.0.1", int(PORT)), Front).serve_forever()
