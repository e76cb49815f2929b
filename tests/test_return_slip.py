"""The return slip: printed once a request is approved, from the portal, the
backend or the approval e-mail; the warehouse finds the return transfer by
its number."""

from unittest.mock import patch

from lxml import etree

from flectra.exceptions import UserError
from flectra.tests import new_test_user, tagged
from flectra.tools.safe_eval import safe_eval

from .common import OrderHandlingHttpCase, load_migration
from .return_common import ReturnCase, ReturnHttpMixin

REPORT = "website_sale_order_handling.action_report_return_slip"


@tagged("post_install", "-at_install")
class TestReturnSlip(ReturnCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.warehouse.partner_id.write(
            {"street": "1 Warehouse Road", "city": "Returnville", "zip": "4242"}
        )

    def setUp(self):
        super().setUp()
        # The e-mails stay in the queue, where the test reads them.
        self.env = self.env(context=dict(self.env.context, mail_notify_force_send=False))

    def _approved(self, quantity=2):
        order = self._delivered_order(partner=self.customer)
        request = self._submit(order, {self.product: quantity})
        request.action_approve()
        return order, request

    def _slip_html(self, request):
        html = self.env.ref(REPORT)._render_qweb_html(request.ids)[0]
        return html.decode() if isinstance(html, bytes) else html

    def test_the_slip_carries_the_number_as_a_barcode_the_items_and_the_address(self):
        _order, request = self._approved(quantity=2)
        html = self._slip_html(request)
        self.assertIn(
            "/report/barcode/?type=Code128&amp;value=%s&amp;" % request.name, html, "the barcode"
        )
        self.assertIn(request.name, html)
        self.assertIn("Test Storable Lamp", html)
        self.assertIn("2.00", html)
        self.assertIn("1 Warehouse Road", html, "the warehouse's address")
        self.assertIn("Returnville", html)
        self.assertIn("Put this slip in the parcel", html)
        self.assertEqual(request._get_return_address(), self.warehouse.partner_id)

    def test_only_an_approved_request_has_a_slip(self):
        order = self._delivered_order(partner=self.customer)
        request = self._submit(order, {self.product: 1})
        self.assertIn("has no return slip", request._get_return_slip_refusal())
        with self.assertRaisesRegex(UserError, "has no return slip"):
            self._slip_html(request)
        request.action_approve()
        self.assertFalse(request._get_return_slip_refusal())
        self._receive(request)
        self.assertEqual(request.state, "received")
        with self.assertRaisesRegex(UserError, "has no return slip"):
            self._slip_html(request)

    def _approval_mail(self, request):
        mails = self.env["mail.mail"].search(
            [("model", "=", "sale.return.request"), ("res_id", "=", request.id)]
        )
        approval = mails.filtered(lambda mail: "approved" in (mail.subject or ""))
        self.assertEqual(len(approval), 1, mails.mapped("subject"))
        return approval

    def test_the_approval_email_prints_the_slip_without_an_account(self):
        _order, request = self._approved()
        body = self._approval_mail(request).body_html
        token = request.access_token
        self.assertTrue(token)
        self.assertIn("/my/returns/%s/slip?access_token=%s" % (request.id, token), body)
        self.assertIn("Print the return slip", body)
        requested = self._submit(self._delivered_order(partner=self.customer), {self.product: 1})
        mails = self.env["mail.mail"].search(
            [("model", "=", "sale.return.request"), ("res_id", "=", requested.id)]
        )
        self.assertTrue(mails)
        self.assertNotIn("/slip", "".join(mails.mapped("body_html")), "no slip before approval")

    def test_approving_renders_no_pdf(self):
        """A PDF rendered inside the approval would need wkhtmltopdf to reach
        the server, and Flectra commits its assets while rendering one: the
        approval e-mail links the slip instead, printed in a request of its own."""
        order = self._delivered_order(partner=self.customer)
        request = self._submit(order, {self.product: 1})
        Report = type(self.env["ir.actions.report"])

        def no_pdf(report, res_ids, data=None):
            raise OSError("wkhtmltopdf: network error")

        with patch.object(Report, "_render_qweb_pdf", no_pdf):
            request.action_approve()
        self.assertEqual(request.state, "approved")
        self.assertTrue(request.picking_ids)
        self.assertIn("/slip", self._approval_mail(request).body_html)

    def test_the_number_typed_in_the_inventory_search_finds_the_return_transfer(self):
        """As the warehouse types or scans it in Inventory's transfer search
        (its default field: reference or source document)."""
        _order, request = self._approved()
        other_order, other = self._approved(quantity=1)
        view = self.env.ref("stock.view_picking_internal_search")
        arch = etree.fromstring(
            self.env["stock.picking"].fields_view_get(view.id, "search")["arch"]
        )
        default_field = arch.xpath("//field")[0]
        domain = safe_eval(default_field.get("filter_domain"), {"self": request.name})
        found = self.env["stock.picking"].search(domain)
        self.assertEqual(found, request.picking_ids)
        self.assertEqual(found.picking_type_code, "incoming")
        self.assertNotIn(other.picking_ids, found)
        self.assertTrue(other_order)

    def test_upgrade_puts_the_number_on_open_return_transfers(self):
        """migrations/2.0.1.4.0/post-migrate.py, on this database's tables."""
        _order, request = self._approved()
        picking = request.picking_ids
        picking.origin = "Return of WH/OUT/00001"
        picking.flush()
        script = load_migration("2.0.1.4.0", "post-migrate.py")
        script.migrate(self.env.cr, "2.0.1.3.0")
        script.migrate(self.env.cr, "2.0.1.3.0")  # a second run changes nothing
        picking.invalidate_cache(["origin"])
        self.assertEqual(picking.origin, "%s: Return of WH/OUT/00001" % request.name)


@tagged("post_install", "-at_install")
class TestReturnSlipPortal(ReturnHttpMixin, OrderHandlingHttpCase):
    def setUp(self):
        super().setUp()
        self._setup_http_return_shop("Slip Lamp")
        self.portal_user = new_test_user(
            self.env,
            "slip_portal_sam",
            groups="base.group_portal",
            password="slip_portal_sam",
            email="slip.sam@example.com",
        )
        order = self._create_web_order(partner=self.portal_user.partner_id)
        order.action_confirm()
        self._deliver(order)
        self.request = self._submit(order, {self.product: 1})

    def test_the_customer_prints_the_slip_of_an_approved_request_only(self):
        page = "/my/returns/%s" % self.request.id
        slip = page + "/slip"
        self.authenticate("slip_portal_sam", "slip_portal_sam")
        self.assertNotIn("o_wsoh_return_slip_print", self.url_open(page).text)
        response = self.url_open(slip, allow_redirects=False)
        self.assertIn(response.status_code, (302, 303), "not approved yet: back to its page")
        self.assertIn(page, response.headers["Location"])
        self.request.action_approve()
        self.assertIn("o_wsoh_return_slip_print", self.url_open(page).text)
        response = self.url_open(slip)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.headers["Content-Type"], "application/pdf")
        self.assertIn(self.request.name, response.text)  # HTML in test mode

    def test_nobody_else_gets_the_slip_and_odd_links_never_fail(self):
        self.request.action_approve()
        slip = "/my/returns/%s/slip" % self.request.id
        new_test_user(
            self.env, "slip_portal_eve", groups="base.group_portal", password="slip_portal_eve"
        )
        self.authenticate("slip_portal_eve", "slip_portal_eve")
        response = self.url_open(slip, allow_redirects=False)
        self.assertIn(response.status_code, (302, 303))
        self.assertTrue(response.headers["Location"].endswith("/my"))
        self.authenticate(None, None)
        for path in (
            slip,
            slip + "?access_token=wrong",
            slip + "?access_token=%00",
            slip + "?access_token=a&access_token=b",
            slip + "?download=%FF",
            "/my/returns/999999999/slip",
            "/my/returns/0/slip",
        ):
            response = self.url_open(path, allow_redirects=False)
            self.assertIn(response.status_code, (302, 303, 404), path)
        token = self.request._portal_ensure_token()
        response = self.url_open(slip + "?access_token=%s&download=true" % token)
        self.assertEqual(response.status_code, 200, "the e-mailed link works without an account")
        self.assertIn("attachment", response.headers.get("Content-Disposition", ""))

    def test_printing_the_slip_in_chromium(self):
        self.request.action_approve()
        self.start_tour(
            "/my/returns/%s" % self.request.id, "wsoh_return_slip", login="slip_portal_sam"
        )
