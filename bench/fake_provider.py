"""A local OpenAI-compatible provider for the benchmarks: every chat completion answers at once (streamed
when asked).

.venv/bin/python bench/fake_provider.py     (prints its port, then serves until killed)
"""

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 0,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500},
}


def stream(model: str) -> bytes:
    """A streamed answer as server-sent events: the text, then the usage in a last chunk, then [DONE]."""
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": model}
    events = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**base, "choices": [], "usage": ANSWER["usage"]},
    ]
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps the SDK's connection open, as a real provider does. Headers and body leave in two
    # writes: without TCP_NODELAY the second waits for the client's delayed ACK, some 40 ms.
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        if body.get("stream"):
            data, kind = stream(body.get("model", "")), "text/event-stream"
        else:
            data, kind = json.dumps({**ANSWER, "model": body.get("model", "")}).encode(), "application/json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a load generator closing its connections mid-answer is not news


@contextlib.contextmanager
def running() -> Iterator[str]:
    """This provider in a process of its own, for the block: its base URL (http://127.0.0.1:<port>/v1)."""
    process = subprocess.Popen([sys.executable, __file__], stdout=subprocess.PIPE, text=True)
    try:
        yield f"http://127.0.0.1:{process.stdout.readline().strip()}/v1"
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
