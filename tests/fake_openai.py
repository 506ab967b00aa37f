"""A real local HTTP server speaking the OpenAI chat-completions protocol, replaying scripted answers.

`FakeOpenAI(scripts)` serves `POST /v1/chat/completions` (and `/chat/completions`) on a
free loopback port. `scripts` maps a script name to its answers, in order: a string is
the assistant's content, `Answer` sets the reported token usage too, `Fail` is an HTTP
error with an OpenAI error body, `Hold` delays an answer until a condition holds. A request
picks its script by its model name (an agent run with model `openai/<name>`) or, when two
agents share one model, by the phrase `You are <name>` in its system message. Every request is recorded in `requests`.

A `run`'s preflight call (the harness's fixed connectivity prompt) is answered `OK` (after
`preflight_delay` seconds) without taking a scripted answer, and recorded in `preflights`, not
`requests`; like every request it gets 401 when `keys` is given and its bearer key is not one of
them, and 404 for a model in `missing`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cooperbench.agents.llm_client import PREFLIGHT_PROMPT

ERROR_KINDS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}


@dataclass
class Answer:
    content: str
    prompt_tokens: int = 100
    completion_tokens: int = 20


@dataclass
class Hold:
    """Answer `then` only once `until()` is true (or `timeout` seconds passed): a model that is slow to reply."""

    until: object
    then: object
    timeout: float = 60.0


@dataclass
class Fail:
    status: int
    message: str = "scripted failure"


class FakeOpenAI:
    def __init__(
        self,
        scripts: dict[str, list],
        *,
        keys: tuple[str, ...] | None = None,
        missing: tuple[str, ...] = (),
        preflight_delay: float = 0.0,
    ):
        self.scripts = {name: list(entries) for name, entries in scripts.items()}
        self.keys, self.missing = keys, set(missing)
        self.preflight_delay = preflight_delay
        self.requests: list[dict] = []
        self.preflights: list[dict] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def requests_for(self, script: str) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if r["script"] == script]

    def _route(self, body: dict) -> str | None:
        if body.get("model") in self.scripts:
            return body["model"]
        system = " ".join(m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "system")
        return next((name for name in self.scripts if f"You are {name}" in system), None)

    def next_entry(self, body: dict, headers: dict) -> Answer | Fail:
        texts = [m.get("content") for m in body.get("messages", [])]
        with self._lock:
            script = self._route(body)
            preflight = texts == [PREFLIGHT_PROMPT]
            (self.preflights if preflight else self.requests).append(
                {
                    "script": script,
                    "model": body.get("model"),
                    "messages": body.get("messages", []),
                    "headers": headers,
                    "time": time.time(),
                }
            )
            bearer = {k.lower(): v for k, v in headers.items()}.get("authorization", "").removeprefix("Bearer ")
            if self.keys is not None and bearer not in self.keys:
                return Fail(401, f"Incorrect API key provided: {bearer}.")
            if body.get("model") in self.missing:
                return Fail(404, f"The model `{body.get('model')}` does not exist or you do not have access to it.")
            if preflight:
                if self.preflight_delay:
                    until = time.monotonic() + self.preflight_delay
                    return Hold(lambda: time.monotonic() >= until, Answer("OK", 10, 1))
                return Answer("OK", 10, 1)
            if script is None:
                return Fail(404, f"The model `{body.get('model')}` does not exist or you do not have access to it.")
            if not self.scripts[script]:
                return Fail(400, f"script {script!r} is exhausted")
            entry = self.scripts[script].pop(0)
        return Answer(entry) if isinstance(entry, str) else entry


def _completion(model: str, answer: Answer) -> dict:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.content}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        },
    }


def _error(fail: Fail) -> dict:
    kind, code = ERROR_KINDS.get(fail.status, ("server_error", None))
    return {"error": {"message": fail.message, "type": kind, "param": None, "code": code}}


def _handler(fake: FakeOpenAI):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                return self._reply(
                    404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}}
                )
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            entry = fake.next_entry(body, dict(self.headers))
            if isinstance(entry, Hold):
                deadline = time.monotonic() + entry.timeout
                while not entry.until() and time.monotonic() < deadline:
                    time.sleep(0.05)
                entry = Answer(entry.then) if isinstance(entry.then, str) else entry.then
            if isinstance(entry, Fail):
                return self._reply(entry.status, _error(entry))
            return self._reply(200, _completion(body.get("model", "unknown"), entry))

        def _reply(self, status: int, data: dict) -> None:
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    return Handler
