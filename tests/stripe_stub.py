"""A tiny stand-in for Stripe's refund API on 127.0.0.1, for tests without internet.

It records every request and answers like Stripe would, in the mode the test
chose: ``succeeded``, ``pending``, ``failed``, ``error`` (an HTTP 402 with an
error object), ``timeout`` (the refund is made, but the answer comes too
late) or ``drop`` (the refund is made, then the connection is closed without
an answer). Like Stripe, it replays its first answer to a repeated
Idempotency-Key, forgets keys when told (``expire_keys``: Stripe keeps them 24
hours) and lists the refunds of a payment intent or charge (``GET /v1/refunds``).
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class StripeStub:
    def __init__(self, timeout_delay=2.0):
        self.mode = "succeeded"
        self.timeout_delay = timeout_delay
        self.requests = []  # dicts: path, form, idempotency_key, authorization
        self.refunds = []  # refund objects made "at Stripe", oldest first
        self.keys = {}  # idempotency key -> refund object, until expire_keys()
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
                if status is None:
                    # Accepted, then the connection drops before any answer.
                    self.close_connection = True
                    return
                self._send(status, body)

            def do_GET(self):  # noqa: N802 (http.server's naming)
                url = urlsplit(self.path)
                query = {key: values[0] for key, values in parse_qs(url.query).items()}
                self._send(*stub._list(url.path, query, self.headers))

            def _send(self, status, body):
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

    def expire_keys(self):
        """Forget every idempotency key, as Stripe does after 24 hours."""
        with self._lock:
            self.keys.clear()

    def _list(self, path, query, headers):
        with self._lock:
            self.requests.append(
                {
                    "method": "GET",
                    "path": path,
                    "form": query,
                    "idempotency_key": None,
                    "authorization": headers.get("Authorization"),
                }
            )
            found = [
                refund
                for refund in reversed(self.refunds)
                if all(
                    refund.get(field) == query[field]
                    for field in ("payment_intent", "charge")
                    if field in query
                )
            ]
        return 200, {"object": "list", "data": found, "has_more": False, "url": path}

    def _answer(self, path, form, headers):
        key = headers.get("Idempotency-Key")
        with self._lock:
            mode = self.mode
            self.requests.append(
                {
                    "method": "POST",
                    "path": path,
                    "form": form,
                    "idempotency_key": key,
                    "authorization": headers.get("Authorization"),
                }
            )
            if key in self.keys:
                return 200, self.keys[key]
            if mode == "error":
                return 402, {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "charge_already_refunded",
                        "message": "Charge %s has already been refunded." % form.get("charge"),
                    }
                }
            refund = {
                "id": "re_stub_%d" % (len(self.refunds) + 1),
                "object": "refund",
                "amount": int(form.get("amount", 0)),
                "charge": form.get("charge"),
                "payment_intent": form.get("payment_intent"),
                "status": "succeeded" if mode in ("timeout", "drop") else mode,
                "failure_reason": "expired_or_canceled_card" if mode == "failed" else None,
                "metadata": {"reference": form.get("metadata[reference]")},
            }
            if mode != "failed":
                self.keys[key] = refund
                self.refunds.append(refund)
        if mode == "timeout":
            time.sleep(self.timeout_delay)
        if mode == "drop":
            return None, None
        return 200, refund
