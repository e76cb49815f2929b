"""Only the refund code writes what refunds trust: a salesman cannot forge,
free or re-open a refund, through the ORM or through RPC."""

from flectra.exceptions import AccessError, UserError
from flectra.tests import HttpCase, new_test_user, tagged

from ..models import payment_transaction
from .refund_common import RefundCase
from .return_common import ReturnMixin
from .stripe_stub import StripeStub

# How a record forged before this version could look: written around the guard.
_as_engine = getattr(payment_transaction, "as_refund_engine", lambda records: records)


class StripeStubMixin:
    def _start_stripe_stub(self):
        self.stub = StripeStub().start()
        self.addCleanup(self.stub.stop)
        self.env["ir.config_parameter"].sudo().set_param(
            "website_sale_order_handling.stripe_api_url", self.stub.url
        )

    @staticmethod
    def _create_stripe_acquirer(env, journal):
        return env["payment.acquirer"].create(
            {
                "name": "Stripe (stub)",
                "provider": "stripe",
                "state": "test",
                "stripe_secret_key": "sk_test_stub",
                "stripe_publishable_key": "pk_test_stub",
                "journal_id": journal.id,
            }
        )

    @staticmethod
    def _forged_refund_vals(payment, **values):
        return dict(
            {
                "is_refund": True,
                "source_transaction_id": payment.id,
                "acquirer_id": payment.acquirer_id.id,
                "amount": -payment.amount,
                "currency_id": payment.currency_id.id,
                "partner_id": payment.partner_id.id,
                "reference": "R-FORGED-%s" % payment.id,
                "state": "error",
                "refund_idempotency_key": "forged-key",
            },
            **values,
        )


@tagged("post_install", "-at_install")
class TestRefundForgery(StripeStubMixin, ReturnMixin, RefundCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._require_stripe()
        cls._setup_return_policy()
        cls.acquirer_stripe = cls._create_stripe_acquirer(cls.env, cls.bank_journal)

    def setUp(self):
        super().setUp()
        self._start_stripe_stub()

    def _stripe_order(self, lines=None):
        return self._paid_order(
            lines=lines or [(self.product, 1)],
            acquirer=self.acquirer_stripe,
            acquirer_reference="ch_victim_1",
        )

    def test_a_salesman_cannot_forge_a_failed_refund_for_a_manager_to_retry(self):
        order, tx = self._stripe_order()
        Transaction = self.env["payment.transaction"].with_user(self.salesman)
        with self.assertRaises(AccessError):
            Transaction.create(self._forged_refund_vals(tx))
        # Nor by hiding the refund fields behind a plain transaction, then writing them.
        plain = Transaction.create(
            {
                "acquirer_id": self.acquirer_stripe.id,
                "amount": 10.0,
                "currency_id": tx.currency_id.id,
                "partner_id": tx.partner_id.id,
                "reference": "PLAIN-1",
            }
        )
        with self.assertRaises(AccessError):
            plain.write({"is_refund": True, "source_transaction_id": tx.id})
        # Nor with the refund code's context key, which RPC could send.
        with self.assertRaises(AccessError):
            Transaction.with_context(website_sale_order_handling_refund_engine=True).create(
                self._forged_refund_vals(tx, reference="R-FORGED-CTX")
            )
        self.assertFalse(tx.refund_transaction_ids)
        self.assertFalse(order.has_failed_refund)
        self.assertFalse(self.stub.requests, "nothing reached Stripe")

        # The manager's Refund makes a refund of its own, once.
        order.with_user(self.refunder).action_refund()
        refund = tx.refund_transaction_ids
        self.assertEqual(refund.state, "done")
        self.assertNotEqual(refund.refund_idempotency_key, "forged-key")
        self.assertEqual(
            [(r["form"]["amount"], r["idempotency_key"]) for r in self.stub.requests],
            [("5000", refund.refund_idempotency_key)],
        )

    def test_a_salesman_cannot_cancel_or_shrink_a_done_refund_to_free_its_money(self):
        order, tx = self._stripe_order()
        order.with_user(self.refunder).action_refund()
        refund = tx.refund_transaction_ids
        self.assertEqual(refund.state, "done")
        as_salesman = refund.with_user(self.salesman)
        for vals in (
            {"state": "cancel"},
            {"amount": -0.01},
            {"source_transaction_id": False},
            {"is_refund": False},
            {"refund_idempotency_key": "other"},
        ):
            with self.assertRaises(AccessError, msg=vals):
                as_salesman.write(vals)
        # Not even an administrator through the ORM: only the refund code.
        with self.assertRaises(AccessError):
            refund.sudo().write({"state": "cancel"})
        self.assertEqual(refund.state, "done")
        self.assertEqual(tx.refundable_amount, 0.0)
        with self.assertRaisesRegex(UserError, "already fully refunded"):
            order.with_user(self.refunder).action_refund()
        self.assertEqual(len(self.stub.requests), 1)

    def test_a_salesman_cannot_reopen_a_refunded_return(self):
        order, _tx = self._stripe_order(lines=[(self.product, 2)])
        self._deliver(order)
        request = self._submit(order, {self.product: 1})
        request.action_approve()
        self._receive(request)
        request.with_user(self.refunder).action_refund()
        self.assertEqual(request.state, "refunded")
        as_salesman = request.with_user(self.salesman)
        with self.assertRaises(AccessError):
            as_salesman.write({"state": "received"})
        with self.assertRaises(AccessError):
            as_salesman.write({"refund_transaction_ids": [(5, 0, 0)]})
        self.assertEqual(request.state, "refunded")
        with self.assertRaises(UserError):
            request.with_user(self.refunder).action_refund()
        self.assertEqual(len(self.stub.requests), 1, "refunded once")

    def test_a_retry_checks_again_what_is_left_to_refund(self):
        _order, tx = self._stripe_order()
        # Records forged before this version: a failed refund of the whole
        # payment, and a done refund of part of it that someone wrote by hand.
        Engine = _as_engine(self.env["payment.transaction"])
        failed = Engine.create(self._forged_refund_vals(tx, refund_idempotency_key="k1"))
        Engine.create(
            self._forged_refund_vals(
                tx,
                amount=-30.0,
                state="done",
                reference="R-FORGED-DONE",
                refund_idempotency_key="k2",
            )
        )
        with self.assertRaisesRegex(UserError, "only 20.00? of"):
            failed.with_user(self.refunder).action_retry_refund()
        self.assertEqual(failed.state, "error")
        self.assertFalse(self.stub.requests, "nothing reached Stripe")


@tagged("post_install", "-at_install")
class TestRefundForgeryRpc(StripeStubMixin, HttpCase):
    """The same attacks as JSON-RPC calls of a salesman's browser session."""

    def setUp(self):
        super().setUp()
        if "stripe" not in dict(self.env["payment.acquirer"]._fields["provider"].selection):
            self.skipTest("payment_stripe is not installed")
        self._start_stripe_stub()
        new_test_user(
            self.env,
            login="rpc_salesman",
            password="rpc_salesman",
            groups="sales_team.group_sale_salesman_all_leads",
        )
        journal = self.env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", self.env.company.id)], limit=1
        )
        acquirer = self._create_stripe_acquirer(self.env, journal)
        partner = self.env["res.partner"].create(
            {"name": "RPC Victim", "email": "rpc.victim@example.com"}
        )
        # Of an order: the refund buttons refund the payments of orders only.
        service = self.env["product.product"].create(
            {"name": "RPC Service", "type": "service", "taxes_id": [(6, 0, [])]}
        )
        order = self.env["sale.order"].create(
            {
                "partner_id": partner.id,
                "order_line": [
                    (0, 0, {"product_id": service.id, "product_uom_qty": 1, "price_unit": 80.0})
                ],
            }
        )
        self.payment = self.env["payment.transaction"].create(
            {
                "acquirer_id": acquirer.id,
                "amount": 80.0,
                "partner_id": partner.id,
                "currency_id": self.env.company.currency_id.id,
                "reference": "RPC-PAY-1",
                "acquirer_reference": "ch_rpc_1",
                "sale_order_ids": [(6, 0, order.ids)],
            }
        )
        self.payment._set_transaction_done()
        self.authenticate("rpc_salesman", "rpc_salesman")

    def _call_kw(self, model, method, args, kwargs=None):
        response = self._json_call(
            "/web/dataset/call_kw/%s/%s" % (model, method),
            model=model,
            method=method,
            args=args,
            kwargs=kwargs or {},
        )
        self.env.cache.invalidate()
        return response

    def _json_call(self, url, **params):
        response = self.opener.post(
            "http://127.0.0.1:%s%s" % (self._http_port(), url),
            json={"jsonrpc": "2.0", "method": "call", "params": params},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    @staticmethod
    def _http_port():
        from flectra.tools import config

        return config["http_port"]

    def _assert_refused(self, response):
        self.assertIn("error", response, response)
        self.assertEqual(
            response["error"]["data"]["name"], "flectra.exceptions.AccessError", response
        )

    def test_rpc_cannot_forge_or_free_a_refund(self):
        vals = self._forged_refund_vals(self.payment)
        self._assert_refused(self._call_kw("payment.transaction", "create", [vals]))
        self._assert_refused(
            self._call_kw(
                "payment.transaction",
                "create",
                [vals],
                {"context": {"website_sale_order_handling_refund_engine": True}},
            )
        )
        self.assertFalse(self.payment.refund_transaction_ids)

        # A real refund, then the salesman tries to cancel it to free its money.
        admin = self.env.ref("base.user_admin")
        refund = self.payment.with_user(admin).action_refund(80.0)
        self.assertEqual(refund.state, "done")
        self._assert_refused(
            self._call_kw("payment.transaction", "write", [refund.ids, {"state": "cancel"}])
        )
        self._assert_refused(
            self._call_kw("payment.transaction", "write", [refund.ids, {"amount": -1.0}])
        )
        self.assertEqual(refund.state, "done")
        self.assertEqual(self.payment.refundable_amount, 0.0)
        # And calling the refund buttons needs the refund right.
        response = self._call_kw("payment.transaction", "action_refund", [self.payment.ids])
        self.assertEqual(response["error"]["data"]["name"], "flectra.exceptions.AccessError")
        self.assertEqual(len(self.stub.requests), 1, "only the real refund reached Stripe")
