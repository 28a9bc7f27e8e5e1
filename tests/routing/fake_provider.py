"""A local OpenAI-compatible server standing in for the LLM providers, with scripted answers."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeProvider:
    """Answers POST /v1/chat/completions from a script: a list of (status, body, headers, delay) per model.

    A model with no script left answers 200 with `default_usage`. Every request is kept in `requests`.
    """

    def __init__(self):
        self.scripts: dict[str, list[tuple]] = {}
        self.requests: list[dict] = []
        self.default_usage = {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                fake.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                script = fake.scripts.get(body.get("model"), [])
                status, payload, headers, delay = script.pop(0) if script else (200, None, {}, 0)
                if delay:
                    time.sleep(delay)
                if payload is None:
                    payload = fake.answer(body["model"], "ok", fake.default_usage)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
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

    def script(self, model: str, *answers: tuple) -> None:
        """Queue answers for a model: (status, body or None, headers, delay seconds)."""
        self.scripts.setdefault(model, []).extend(answers)

    def models_called(self) -> list[str]:
        return [r["body"]["model"] for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
