"""Tests on real, committed transactions: no test mode.

In Flectra's test cases every cursor shares the test's transaction, so code
that commits in transactions of its own (the refund steps, the cron, the mail
queue) and concurrent requests cannot be tested there. A ``CommittedCase``
commits its data in transactions of its own, runs work in threads with their
own cursor and cache as server workers do, reads what was committed on fresh
transactions, and removes what the test committed once it is done.
"""

import logging
import threading

import flectra
from flectra import SUPERUSER_ID, api
from flectra.tests import BaseCase
from flectra.tests.common import get_db_name
from flectra.tools import mute_logger

_logger = logging.getLogger(__name__)

WAIT = 60  # seconds; only reached if something hangs


class CommittedCase(BaseCase):
    """Committed data, fresh transactions and worker threads.

    ``commit(work)`` and ``snapshot(work)`` run ``work(env)`` in the test's
    thread, on a cursor of their own; ``start_worker``/``run_worker`` run it
    in a thread of its own, as a server worker runs a request. What ``track``
    is given is removed after the test, in reverse order, in a worker.

    A class that also has a test transaction (a ``SavepointCase``) shares its
    thread's record cache with it: there, do the committed work in workers.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry = flectra.registry(get_db_name())

    def setUp(self):
        super().setUp()
        self._committed = []  # (model, id) committed by the test, removed in reverse
        self.addCleanup(self.run_worker, self._remove_committed)

    # --- Committed data ------------------------------------------------------
    def commit(self, work, uid=None, context=None):
        """``work(env)`` in a transaction of its own, committed (as the
        superuser unless ``uid``); records it returns come back as plain data."""
        with api.Environment.manage(), self.registry.cursor() as cr:
            result = work(self._fresh_env(cr, uid, context))
            return self._plain(result)

    def snapshot(self, work):
        """``work(env)`` on a fresh snapshot of what is committed, rolled back."""
        with api.Environment.manage(), self.registry.cursor() as cr:
            try:
                return work(self._fresh_env(cr))
            finally:
                cr.rollback()

    @staticmethod
    def _fresh_env(cr, uid=None, context=None):
        """An environment that reads what ``cr`` sees: the record cache is
        shared by every environment of this thread, whatever its cursor, and
        may hold what an older transaction read."""
        env = api.Environment(cr, uid or SUPERUSER_ID, context or {})
        env.cache.invalidate()
        return env

    @staticmethod
    def _plain(result):
        """Records cannot cross transactions: their (model, ids) do."""
        if isinstance(result, flectra.models.BaseModel):
            return result._name, tuple(result.ids)
        return result

    def track(self, records):
        """Remove ``records`` (committed by the test) once the test is done."""
        self._committed.extend((records._name, rec_id) for rec_id in records.ids)
        return records

    def tracked(self, env, model):
        """The records of ``model`` the test tracked that still exist."""
        return (
            env[model]
            .browse([rec_id for name, rec_id in self._committed if name == model])
            .exists()
        )

    def _remove_committed(self, env):
        """Remove what the test tracked, in reverse order. A class whose tested
        code makes more of them (e-mails, refunds, moves) removes that first,
        then calls ``super()``."""
        for model, rec_id in reversed(self._committed):
            record = env[model].browse(rec_id).exists()
            if record:
                self._remove_record(env, record)

    def _remove_record(self, env, record):
        """Unlink, else archive: a committed record of the test must never
        stop the next tests (a confirmed order cannot be unlinked)."""
        try:
            with mute_logger("flectra.sql_db"), env.cr.savepoint():
                record.unlink()
        except Exception:  # noqa: BLE001 (what cannot be removed is set aside)
            if "active" in record._fields:
                record.write({"active": False})
            else:
                _logger.warning("%s committed by %s could not be removed", record, self.id())

    # --- Worker threads --------------------------------------------------------
    def start_worker(self, work, uid=None, commit=True):
        """Run ``work(env)`` in a worker thread with its own cursor and cache;
        returns (thread, outcome dict: its "result" or its "error")."""
        outcome = {}

        def target():
            with api.Environment.manage():
                cr = self.registry.cursor()
                try:
                    env = api.Environment(cr, uid or SUPERUSER_ID, {})
                    outcome["result"] = self._plain(work(env))
                    if commit:
                        # A worker ends its request so: others must see it.
                        cr.commit()  # pylint: disable=invalid-commit
                except Exception as error:  # handed to the test thread
                    outcome["error"] = error
                finally:
                    cr.rollback()
                    cr.close()

        thread = threading.Thread(target=target)
        thread.start()
        return thread, outcome

    def run_worker(self, work, uid=None, commit=True):
        """``start_worker`` and wait: its result, or its error raised here."""
        thread, outcome = self.start_worker(work, uid, commit)
        thread.join(WAIT)
        if thread.is_alive():
            self.fail("a worker still runs after %s seconds" % WAIT)
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("result")
