"""A committed database served by Flectra's own HTTP server, as a browser sees it.

In Flectra's test cases every cursor shares the test's transaction, so code
that commits in a transaction of its own (the refund steps, the cron) can
pass there and fail on a server. Here nothing is in test mode: the test
commits its data, logs in over HTTP and presses the buttons through the web
client's own routes (``/web/dataset/call_button``, ``/web/dataset/call_kw``);
each request runs in the server's own transactions. What the test commits is
removed afterwards.
"""
import uuid

import requests

import flectra
from flectra import SUPERUSER_ID, api
from flectra.tests import BaseCase
from flectra.tests.common import get_db_name
from flectra.tools import config, mute_logger

TIMEOUT = 60  # seconds; only reached if the server hangs


class RealServerCase(BaseCase):
    def setUp(self):
        super().setUp()
        self.registry = flectra.registry(get_db_name())
        self.marker = uuid.uuid4().hex[:8]
        self.created = []  # (model, id) committed by the test, removed in reverse
        self.addCleanup(self._remove_committed)
        self.session = requests.Session()
        self.addCleanup(self.session.close)

    # --- Committed data ------------------------------------------------------
    def commit(self, work):
        """``work(env)`` as the superuser in a transaction of its own, committed."""
        with api.Environment.manage(), self.registry.cursor() as cr:
            result = work(self._fresh_env(cr))
            return self._plain(result)

    @staticmethod
    def _fresh_env(cr):
        """An environment that reads what ``cr`` sees: the record cache is
        shared by every environment of this thread, whatever its cursor, and
        may hold what an older transaction read."""
        env = api.Environment(cr, SUPERUSER_ID, {})
        env.cache.invalidate()
        return env

    @staticmethod
    def _plain(result):
        """Records cannot cross transactions: their (model, ids) do."""
        if isinstance(result, flectra.models.BaseModel):
            return result._name, tuple(result.ids)
        return result

    def snapshot(self, work):
        """``work(env)`` on a fresh snapshot of what the server committed."""
        with api.Environment.manage(), self.registry.cursor() as cr:
            try:
                return work(self._fresh_env(cr))
            finally:
                cr.rollback()

    def track(self, records):
        """Remove ``records`` (committed by the test) once the test is done."""
        self.created.extend((records._name, rec_id) for rec_id in records.ids)
        return records

    def _remove_committed(self):
        def remove(env):
            for model, rec_id in reversed(self.created):
                record = env[model].browse(rec_id).exists()
                if record:
                    self._remove_record(env, record)
        self.commit(remove)

    def _remove_record(self, env, record):
        """Unlink, else archive: a committed record of the test must never
        stop the next tests (a confirmed order cannot be unlinked)."""
        try:
            with mute_logger("flectra.sql_db"), env.cr.savepoint():
                record.unlink()
        except Exception:  # noqa: BLE001 (what cannot be removed is set aside)
            if "active" in record._fields:
                record.write({"active": False})

    # --- The web client's routes ------------------------------------------------
    def url(self, path):
        return "http://127.0.0.1:%s%s" % (config["http_port"], path)

    def json_rpc(self, path, params):
        """The JSON-RPC answer's result, or {'error': ...} as the web client gets it."""
        response = self.session.post(
            self.url(path), json={"jsonrpc": "2.0", "method": "call", "params": params},
            timeout=TIMEOUT,
        )
        self.assertEqual(response.status_code, 200, response.text[:500])
        answer = response.json()
        if "error" in answer:
            return {"error": answer["error"]}
        return answer["result"]

    def login(self, login, password):
        result = self.json_rpc("/web/session/authenticate", {
            "db": get_db_name(), "login": login, "password": password,
        })
        self.assertNotIn("error", result or {}, "cannot log in as %s" % login)
        self.assertTrue(result.get("uid"), "cannot log in as %s" % login)
        return result["uid"]

    def call_kw(self, model, method, args, kwargs=None):
        return self.json_rpc("/web/dataset/call_kw/%s/%s" % (model, method), {
            "model": model, "method": method, "args": args, "kwargs": kwargs or {},
        })

    def call_button(self, model, method, ids, context=None):
        return self.json_rpc("/web/dataset/call_button", {
            "model": model, "method": method, "args": [list(ids)],
            "kwargs": {"context": context or {}},
        })

    def assertRefused(self, answer, fragment=None):
        """The web client got an error (shown to the user), not a result."""
        self.assertIsInstance(answer, dict)
        self.assertIn("error", answer, answer)
        if fragment:
            message = answer["error"].get("data", {}).get("message", "")
            self.assertIn(fragment, message)
        return answer["error"]
