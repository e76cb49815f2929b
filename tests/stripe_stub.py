"""A tiny stand-in for Stripe's refund API on 127.0.0.1, for tests without internet.

It records every request and answers like Stripe would, in the mode the test
chose: ``succeeded``, ``pending``, ``failed``, ``error`` (an HTTP 402 with an
error object) or ``timeout`` (the refund is made, but the answer comes too
late). Like Stripe, it replays its first answer to a repeated Idempotency-Key.
"""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class StripeStub:
    def __init__(self, timeout_delay=2.0):
        self.mode = "succeeded"
        self.timeout_delay = timeout_delay
        self.requests = []  # dicts: path, form, idempotency_key, authorization
        self.refunds = {}  # idempotency key -> refund object made "at Stripe"
        self.late_answers = 0
        self._lock = threading.Lock()
        self._server = None
        self._thread = None

    @property
    def url(self):
        return "http://127.0.0.1:%d/v1/" % self._server.server_address[1]

    def start(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                form = {
                    key: values[0]
                    for key, values in parse_qs(self.rfile.read(length).decode()).items()
                }
                status, body = stub._answer(self.path, form, self.headers)
                payload = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up waiting (timeout mode): that is the point.
                    stub.late_answers += 1

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _answer(self, path, form, headers):
        key = headers.get("Idempotency-Key")
        with self._lock:
            mode = self.mode
            self.requests.append({
                "path": path, "form": form, "idempotency_key": key,
                "authorization": headers.get("Authorization"),
            })
            if key in self.refunds:
                return 200, self.refunds[key]
            if mode == "error":
                return 402, {"error": {
                    "type": "invalid_request_error", "code": "charge_already_refunded",
                    "message": "Charge %s has already been refunded." % form.get("charge"),
                }}
            refund = {
                "id": "re_stub_%d" % (len(self.refunds) + 1),
                "object": "refund",
                "amount": int(form.get("amount", 0)),
                "charge": form.get("charge"),
                "payment_intent": form.get("payment_intent"),
                "status": "succeeded" if mode == "timeout" else mode,
                "failure_reason": "expired_or_canceled_card" if mode == "failed" else None,
            }
            if mode != "failed":
                self.refunds[key] = refund
        if mode == "timeout":
            time.sleep(self.timeout_delay)
        return 200, refund
