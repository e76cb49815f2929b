import threading
import unittest
import uuid
from unittest.mock import patch

from flectra.tests import new_test_user

from ..models.refund_engine import own_transaction
from .committed_common import WAIT, CommittedCase
from .common import OrderHandlingCase
from .stripe_stub import StripeStub


class RefundCase(OrderHandlingCase):
    """Paid web orders and the users who refund them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bank_journal = cls.env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", cls.company.id)], limit=1
        )
        cls.acquirer_test = cls.env.ref("payment_test.payment_acquirer_test")
        if not cls.acquirer_test.journal_id:
            cls.acquirer_test.journal_id = cls.bank_journal
        cls.acquirer_transfer = cls.env.ref("payment.payment_acquirer_transfer")
        if not cls.acquirer_transfer.journal_id:
            cls.acquirer_transfer.journal_id = cls.bank_journal
        # Amounts in the company's currency, whatever the shop's default pricelist.
        cls.customer.property_product_pricelist = cls.env["product.pricelist"].create(
            {"name": "Refund Test Pricelist", "currency_id": cls.company.currency_id.id}
        )
        cls.refunder = new_test_user(
            cls.env,
            login="refund_manager",
            name="Rita Refunder",
            groups="sales_team.group_sale_manager",
        )
        cls.salesman = new_test_user(
            cls.env,
            login="refund_salesman",
            name="Sam Salesman",
            groups="sales_team.group_sale_salesman_all_leads",
        )

    def setUp(self):
        super().setUp()
        # Refunds commit their attempt and the acquirer's answer in transactions
        # of their own (registry.cursor()): in test mode those are savepoints
        # of the test's transaction, as in HttpCase.
        self.registry.enter_test_mode(self.cr)
        self.addCleanup(self.registry.leave_test_mode)

    # --- The refund engine's doors, as the buttons and the wizard call them --------

    def _engine_refund(self, source, **kwargs):
        """``sale.order.refund.engine._refund`` as ``source``'s user calls it."""
        return source.env["sale.order.refund.engine"]._refund(source, **kwargs)

    def _engine_refund_lines(self, order, line_quantities, description=None):
        """Refund ``{sale.order.line: quantity}`` the way a return request does
        (partial refunds only, no failed-refund check): the engine's reserve,
        then its provider call and follow-up. Returns the refunds."""
        engine = order.env["sale.order.refund.engine"]
        engine = engine.sudo().with_company(order.sudo().company_id)
        with own_transaction(engine.env) as env:
            refund_ids = (
                engine.with_env(env)
                ._reserve_line_refunds(
                    order.with_env(env),
                    {line.with_env(env): qty for line, qty in line_quantities.items()},
                    description,
                )
                .ids
            )
        engine._send_refunds(refund_ids)
        return self.env["payment.transaction"].sudo().browse(refund_ids)

    def _engine_reserve_payment_refund(self, payment, amount=None):
        return self.env["sale.order.refund.engine"].sudo()._reserve_payment_refund(payment, amount)

    def _engine_check_refundable(self, payment, amount, order=None):
        return self.env["sale.order.refund.engine"].sudo()._check_refundable(payment, amount, order)

    @classmethod
    def _require_stripe(cls):
        """Stripe refunds are tested where payment_stripe is installed (tools/test
        installs it); the add-on does not depend on it."""
        if "stripe" not in dict(cls.env["payment.acquirer"]._fields["provider"].selection):
            raise unittest.SkipTest("payment_stripe is not installed")

    def _stripe_with_stub(self, **stub_options):
        """A Stripe acquirer whose API is a local stub, stopped after the test."""
        self._require_stripe()
        acquirer = self.env["payment.acquirer"].create(
            {
                "name": "Stripe (stub)",
                "provider": "stripe",
                "state": "test",
                "stripe_secret_key": "sk_test_stub",
                "stripe_publishable_key": "pk_test_stub",
                "journal_id": self.bank_journal.id,
            }
        )
        stub = StripeStub(**stub_options).start()
        self.addCleanup(stub.stop)
        self.env["ir.config_parameter"].sudo().set_param(
            "website_sale_order_handling.stripe_api_url", stub.url
        )
        return acquirer, stub

    def _pay(self, order, acquirer=None, **tx_values):
        """Pay the order online the way the shop does, and post-process it."""
        tx = order._create_payment_transaction(
            dict({"acquirer_id": (acquirer or self.acquirer_test).id}, **tx_values)
        )
        tx._set_transaction_done()
        tx._post_process_after_done()
        self.assertEqual(tx.state, "done")
        return tx

    def _paid_order(self, lines=None, invoiced=False, acquirer=None, **tx_values):
        self.env["ir.config_parameter"].sudo().set_param(
            "sale.automatic_invoice", "True" if invoiced else ""
        )
        order = self._create_web_order(lines=lines)
        tx = self._pay(order, acquirer, **tx_values)
        self.assertEqual(order.state, "sale")
        return order, tx

    def _set_taxes(self, product, percent):
        tax = self.env["account.tax"].create(
            {"name": "Test VAT %s%%" % percent, "amount": percent, "type_tax_use": "sale"}
        )
        product.taxes_id = [(6, 0, tax.ids)]
        return tax


class CommittedRefundCase(CommittedCase, OrderHandlingCase):
    """Refunds on committed data, each user in a thread with its own cursor
    and cache, like server workers: no test mode, real transactions. What the
    test commits is removed afterwards. It keeps OrderHandlingCase's test
    transaction beside (``self.env``, as ``_hold_in`` uses it): the committed
    work runs in workers (``run_worker``), whose cache is their own."""

    def _commit_record(self, env, model, vals):
        return self.track(env[model].create(vals))

    def _remove_committed(self, env):
        # The refunds of the test's payments, and their payments, go first.
        tx_ids = tuple(self.tracked(env, "payment.transaction").ids)
        if tx_ids:
            env.cr.execute(
                "SELECT payment_id FROM payment_transaction WHERE source_transaction_id IN %s "
                "AND payment_id IS NOT NULL",
                [tx_ids],
            )
            payments = env["account.payment"].browse([row[0] for row in env.cr.fetchall()])
            env.cr.execute(
                "DELETE FROM payment_transaction WHERE source_transaction_id IN %s", [tx_ids]
            )
            payments.action_draft()
            payments.unlink()
        return super()._remove_committed(env)

    def _remove_record(self, env, record):
        if record._name != "payment.transaction":
            return super()._remove_record(env, record)
        env.cr.execute("DELETE FROM payment_transaction WHERE id = %s", [record.id])
        return None

    def _admin(self, env):
        admin = env.ref("base.user_admin")
        self.assertTrue(admin.has_group("website_sale_order_handling.group_order_refund"))
        return admin

    def _commit_payment(self, env, acquirer, amount, orders=None, **values):
        """A captured payment of ``amount``, of ``orders`` (else of an order of
        its own: users refund the payments of orders they may see)."""
        admin = self._admin(env)
        if not orders:
            customer = self._commit_record(
                env,
                "res.partner",
                {"name": "Committed Customer", "email": "committed.customer@example.com"},
            )
            service = self._commit_record(
                env,
                "product.product",
                {"name": "Committed Service", "type": "service", "taxes_id": [(6, 0, [])]},
            )
            # The payment asks what its order costs: else refunds never trust it.
            orders = self._commit_record(
                env,
                "sale.order",
                {
                    "partner_id": customer.id,
                    "order_line": [
                        (
                            0,
                            0,
                            {"product_id": service.id, "product_uom_qty": 1, "price_unit": amount},
                        )
                    ],
                },
            )
        partner = orders[:1].partner_id
        tx = self._commit_record(
            env,
            "payment.transaction",
            dict(
                {
                    "acquirer_id": acquirer.id,
                    "amount": amount,
                    "currency_id": admin.company_id.currency_id.id,
                    "reference": "CONC-%s" % uuid.uuid4().hex[:12],
                    "partner_id": partner.id,
                    "sale_order_ids": [(6, 0, orders.ids)],
                },
                **values,
            ),
        )
        tx._set_transaction_done()
        return tx

    def _committed_state(self, refund):
        """``refund``'s state as committed. The refund steps commit in
        transactions of their own, younger than the caller's: once the caller
        has read anything (the refund buttons check the user's access to the
        order first), its snapshot cannot see them."""
        with self.registry.cursor() as cr:
            cr.execute("SELECT state FROM payment_transaction WHERE id = %s", [refund.id])
            return cr.fetchone()[0]

    def _hold_in(self, method_name, model="payment.transaction"):
        """Patch ``<model>.<method_name>`` so that the first thread calling it
        waits there until released; returns (reached, release)."""
        reached, release = threading.Event(), threading.Event()
        Transaction = type(self.env[model])
        original = getattr(Transaction, method_name)
        held = []

        def holding(records, *args, **kwargs):
            if not held:
                held.append(threading.current_thread())
            if held[0] is threading.current_thread():
                reached.set()
                release.wait(WAIT)
            return original(records, *args, **kwargs)

        patcher = patch.object(Transaction, method_name, holding)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.addCleanup(release.set)
        return reached, release
