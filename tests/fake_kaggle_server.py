"""A small fake of Kaggle's API on 127.0.0.1, for the real kaggle client (kaggle 2.x / kagglesdk).

What the client really sends (kagglesdk/kaggle_http_client.py, competition_api_service.py): JSON POSTs
to ``/api/v1/<service>/<Method>`` with HTTP basic auth (username, key) or a bearer token:

    competitions.CompetitionApiService/DownloadDataFiles    -> 302 redirect to the zip (client GETs it)
    competitions.CompetitionApiService/StartSubmissionUpload -> {"token", "createUrl"}; client PUTs the file there
    competitions.CompetitionApiService/CreateSubmission      -> {"message", "ref"}
    competitions.CompetitionApiService/ListSubmissions       -> {"submissions": [...]}
    competitions.CompetitionApiService/GetSubmissionLimits   -> {"numToday", "numTotal", "numAllowedNow"}
    competitions.CompetitionApiService/GetLeaderboard        -> {"submissions": [...]}
    security.OAuthService/IntrospectToken                    -> {"active", "username"} (token sign-in)

Errors come back as JSON ``{"code": 403, "message": ...}``, which the client raises as HTTPError.
Tests script failures with ``fail(method, status, message, times)`` and inspect ``calls`` and ``uploads``.
"""
from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RULES_MESSAGE = "You must accept this competition's rules before you'll be able to download files."


class FakeKaggle:
    def __init__(self, username="fake-user", key="k3y-0f-fake-user-9f8e7d", token=None):
        self.username, self.key, self.token = username, key, token
        self.competitions: dict[str, dict] = {}  # slug -> {"zip": bytes, "rules_accepted": bool}
        self.calls: list[tuple[str, str]] = []  # (HTTP method, path)
        self.uploads: list[bytes] = []
        self.failures: dict[str, list[tuple[int, str, dict]]] = {}
        self.upload_status = 200
        self.create_message: str | None = None  # CreateSubmission answers this message and no ref
        self.polls_until_scored = 1  # ListSubmissions calls that still show PENDING
        self.public_score, self.private_score = "0.12345", ""
        self.score_error: str | None = None  # the submission fails to score with this description
        self.limits: dict | None = None  # GetSubmissionLimits answer; None: 404 (older server)
        self.leaderboard = [{"teamId": 1, "teamName": "first team", "score": "0.10000"},
                            {"teamId": 2, "teamName": "second team", "score": "0.11000"}]
        self.submissions: list[dict] = []
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    def start(self) -> "FakeKaggle":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_competition(self, slug: str, zip_bytes: bytes, rules_accepted: bool = True) -> None:
        self.competitions[slug] = {"zip": zip_bytes, "rules_accepted": rules_accepted}

    def fail(self, method: str, status: int, message: str = "", times: int = 1, headers: dict | None = None) -> None:
        """The next ``times`` calls of ``method`` answer ``status`` with this message."""
        self.failures.setdefault(method, []).extend([(status, message, headers or {})] * times)

    def called(self, method: str) -> int:
        return sum(1 for _, path in self.calls if path.endswith("/" + method))

    # ------------------------------------------------------------------ request handling
    def authorized(self, header: str | None) -> bool:
        if not header:
            return False
        kind, _, value = header.partition(" ")
        if kind == "Basic":
            return base64.b64decode(value).decode() == f"{self.username}:{self.key}"
        return kind == "Bearer" and self.token is not None and value == self.token

    def api(self, method: str, body: dict) -> tuple[int, dict, dict]:
        """(status, JSON answer, extra headers) for one API call."""
        with self._lock:
            scripted = self.failures.get(method)
            if scripted:
                status, message, headers = scripted.pop(0)
                return status, {"code": status, "message": message or f"scripted {status}"}, headers
            slug = body.get("competitionName")
            if method == "IntrospectToken":
                active = self.token is not None and body.get("token") == self.token
                return 200, {"active": active, "username": self.username if active else ""}, {}
            if method == "DownloadDataFiles":
                comp = self.competitions.get(slug)
                if comp is None:
                    return 404, {"code": 404, "message": "Competition not found"}, {}
                if not comp["rules_accepted"]:
                    return 403, {"code": 403, "message": RULES_MESSAGE}, {}
                return 302, {}, {"Location": f"{self.url}/files/{slug}.zip"}
            if method == "StartSubmissionUpload":
                token = f"blob-{len(self._tokens) + 1}"
                self._tokens.add(token)
                return 200, {"token": token, "createUrl": f"{self.url}/upload/{token}"}, {}
            if method == "CreateSubmission":
                if body.get("blobFileTokens") not in self._tokens:
                    return 400, {"code": 400, "message": "unknown blob token"}, {}
                if self.create_message is not None:
                    return 200, {"message": self.create_message}, {}
                ref = 1000 + len(self.submissions) + 1
                self.submissions.append({"ref": ref, "description": body.get("submissionDescription", ""),
                                         "polls": 0, "fileName": "submission.csv"})
                return 200, {"message": f"Successfully submitted to {slug}", "ref": ref}, {}
            if method == "ListSubmissions":
                out = []
                for sub in reversed(self.submissions):
                    sub["polls"] += 1
                    entry = {"ref": sub["ref"], "fileName": sub["fileName"], "description": sub["description"]}
                    if sub["polls"] <= self.polls_until_scored:
                        entry["status"] = "PENDING"
                    elif self.score_error:
                        entry.update(status="ERROR", errorDescription=self.score_error)
                    else:
                        entry.update(status="COMPLETE", publicScore=self.public_score, privateScore=self.private_score)
                    out.append(entry)
                return 200, {"submissions": out}, {}
            if method == "GetSubmissionLimits":
                if self.limits is None:
                    return 404, {"code": 404, "message": "Not found"}, {}
                return 200, self.limits, {}
            if method == "GetLeaderboard":
                return 200, {"submissions": self.leaderboard[: body.get("pageSize") or 20]}, {}
            return 404, {"code": 404, "message": f"no method {method}"}, {}


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        data = b""
        while True:
            size = int(handler.rfile.readline().strip(), 16)
            if size == 0:
                handler.rfile.readline()
                return data
            data += handler.rfile.read(size)
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def _handler(fake: FakeKaggle):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def _send(self, status: int, body: bytes = b"", content_type="application/json", headers=None):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            fake.calls.append(("POST", self.path))
            body = _read_body(self)
            if not self.path.startswith("/api/v1/"):
                return self._send(404)
            method = self.path.rsplit("/", 1)[-1]
            if not fake.authorized(self.headers.get("Authorization")) and method != "IntrospectToken":
                return self._send(401, json.dumps({"code": 401, "message": "Unauthenticated"}).encode())
            status, answer, headers = fake.api(method, json.loads(body or b"{}"))
            self._send(status, json.dumps(answer).encode(), headers=headers)

        def do_GET(self):
            fake.calls.append(("GET", self.path))
            slug = self.path.removeprefix("/files/").removesuffix(".zip")
            comp = fake.competitions.get(slug)
            if not self.path.startswith("/files/") or comp is None:
                return self._send(404)
            self._send(200, comp["zip"], content_type="application/zip")

        def do_PUT(self):
            fake.calls.append(("PUT", self.path))
            data = _read_body(self)
            if fake.upload_status in (200, 201):
                fake.uploads.append(data)
            self._send(fake.upload_status, b"{}")

    return Handler
