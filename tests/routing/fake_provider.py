"""A local OpenAI-compatible server standing in for the LLM providers, with scripted answers."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeProvider:
    """Answers POST /v1/chat/completions and /v1/responses from a script: (status, body, headers, delay) per model.

    A model with no script left answers 200 with `default_usage` (`response_usage` on /v1/responses),
    streamed as server-sent events when the request says `stream`, `chunk_delay` seconds apart. A body
    scripted as bytes goes out as it is, under the Content-Type its headers name (a malformed answer).
    Every request is kept in `requests`.
    """

    def __init__(self):
        self.scripts: dict[str, list[tuple]] = {}
        self.requests: list[dict] = []
        self.default_usage = {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}
        self.response_usage = {
            "input_tokens": 900,
            "output_tokens": 100,
            "total_tokens": 1000,
            "input_tokens_details": {"cached_tokens": 200},
            "output_tokens_details": {"reasoning_tokens": 40},
        }
        self.chunk_delay = 0.0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                fake.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                script = fake.scripts.get(body.get("model"), [])
                status, payload, headers, delay = script.pop(0) if script else (200, None, {}, 0)
                if delay:
                    time.sleep(delay)
                responses = self.path.endswith("/responses")
                if payload is None and status == 200 and body.get("stream"):
                    events = fake.response_events(body) if responses else fake.chat_events(body)
                    return self.stream(events)
                if payload is None:
                    if responses:
                        payload = fake.response(body["model"], "ok", fake.response_usage)
                    else:
                        payload = fake.answer(body["model"], "ok", fake.default_usage)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in {"Content-Type": "application/json", **headers}.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def stream(self, events):
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for index, event in enumerate(events):
                        if index and fake.chunk_delay:
                            time.sleep(fake.chunk_delay)
                        self.wfile.write(event)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        # serve_forever sees a shutdown at its next poll: a short one keeps every test's teardown short.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @staticmethod
    def answer(model: str, text: str, usage: dict) -> dict:
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage,
        }

    @staticmethod
    def response(model: str, text: str, usage: dict) -> dict:
        return {
            "id": "resp_test",
            "object": "response",
            "created_at": 0,
            "status": "completed",
            "model": model,
            "output": [
                {
                    "type": "message",
                    "id": "msg_test",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ],
            "usage": usage,
        }

    def chat_events(self, body: dict) -> list[bytes]:
        """A streamed chat completion: "o", "k", the finish, then the usage chunk when asked for."""

        def chunk(delta, finish=None, usage=None, choices=True):
            data = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}
            data["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else []
            data["usage"] = usage
            return f"data: {json.dumps(data)}\n\n".encode()

        events = [chunk({"role": "assistant", "content": ""}), chunk({"content": "o"}), chunk({"content": "k"})]
        events.append(chunk({}, finish="stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(chunk(None, usage=self.default_usage, choices=False))
        return [*events, b"data: [DONE]\n\n"]

    def response_events(self, body: dict) -> list[bytes]:
        """A streamed response: created, two text deltas, then completed with its usage."""
        done = self.response(body["model"], "ok", self.response_usage)
        started = {**done, "status": "in_progress", "output": [], "usage": None}
        events = [
            {"type": "response.created", "sequence_number": 0, "response": started},
            {
                "type": "response.output_text.delta",
                "sequence_number": 1,
                "item_id": "msg_test",
                "output_index": 0,
                "content_index": 0,
                "delta": "o",
            },
            {
                "type": "response.output_text.delta",
                "sequence_number": 2,
                "item_id": "msg_test",
                "output_index": 0,
                "content_index": 0,
                "delta": "k",
            },
            {"type": "response.completed", "sequence_number": 3, "response": done},
        ]
        return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]

    def script(self, model: str, *answers: tuple) -> None:
        """Queue answers for a model: (status, body or None, headers, delay seconds)."""
        self.scripts.setdefault(model, []).extend(answers)

    def models_called(self) -> list[str]:
        return [r["body"]["model"] for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
