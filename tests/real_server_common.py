"""A committed database served by Flectra's own HTTP server, as a browser sees it.

In Flectra's test cases every cursor shares the test's transaction, so code
that commits in a transaction of its own (the refund steps, the cron) can
pass there and fail on a server. Here nothing is in test mode: the test
commits its data (``CommittedCase``), logs in over HTTP and presses the
buttons through the web client's own routes (``/web/dataset/call_button``,
``/web/dataset/call_kw``); each request runs in the server's own
transactions. What the test commits is removed afterwards.
"""

import uuid

import requests

from flectra.tests.common import get_db_name
from flectra.tools import config

from .committed_common import CommittedCase

TIMEOUT = 60  # seconds; only reached if the server hangs


class RealServerCase(CommittedCase):
    def setUp(self):
        super().setUp()
        self.marker = uuid.uuid4().hex[:8]
        self.session = requests.Session()
        self.addCleanup(self.session.close)

    # --- The web client's routes ------------------------------------------------
    def url(self, path):
        return "http://127.0.0.1:%s%s" % (config["http_port"], path)

    def json_rpc(self, path, params):
        """The JSON-RPC answer's result, or {'error': ...} as the web client gets it."""
        response = self.session.post(
            self.url(path),
            json={"jsonrpc": "2.0", "method": "call", "params": params},
            timeout=TIMEOUT,
        )
        self.assertEqual(response.status_code, 200, response.text[:500])
        answer = response.json()
        if "error" in answer:
            return {"error": answer["error"]}
        return answer["result"]

    def login(self, login, password):
        result = self.json_rpc(
            "/web/session/authenticate",
            {
                "db": get_db_name(),
                "login": login,
                "password": password,
            },
        )
        self.assertNotIn("error", result or {}, "cannot log in as %s" % login)
        self.assertTrue(result.get("uid"), "cannot log in as %s" % login)
        return result["uid"]

    def call_kw(self, model, method, args, kwargs=None):
        return self.json_rpc(
            "/web/dataset/call_kw/%s/%s" % (model, method),
            {
                "model": model,
                "method": method,
                "args": args,
                "kwargs": kwargs or {},
            },
        )

    def call_button(self, model, method, ids, context=None):
        return self.json_rpc(
            "/web/dataset/call_button",
            {
                "model": model,
                "method": method,
                "args": [list(ids)],
                "kwargs": {"context": context or {}},
            },
        )

    def assertRefused(self, answer, fragment=None):
        """The web client got an error (shown to the user), not a result."""
        self.assertIsInstance(answer, dict)
        self.assertIn("error", answer, answer)
        if fragment:
            message = answer["error"].get("data", {}).get("message", "")
            self.assertIn(fragment, message)
        return answer["error"]
