"""The customer's side of online returns, over HTTP and in Chromium."""

import json

from flectra.tests import new_test_user, tagged

from .common import OrderHandlingHttpCase
from .return_common import ReturnHttpMixin


@tagged("post_install", "-at_install")
class TestReturnPortal(ReturnHttpMixin, OrderHandlingHttpCase):
    def setUp(self):
        super().setUp()
        self._setup_http_return_shop("Portal Return Lamp")
        self.portal_user = new_test_user(
            self.env,
            "return_portal_clara",
            groups="base.group_portal",
            password="return_portal_clara",
            name="Portal Clara",
            email="portal.clara@example.com",
        )
        self.customer = self.portal_user.partner_id
        self.customer.country_id = self.env.ref("base.be")
        self.order = self._delivered_order(partner=self.customer)
        self.line = self.order.order_line
        self.url = "/my/orders/%s/return" % self.order.id

    # -- access -----------------------------------------------------------
    def test_order_page_shows_the_return_button(self):
        self.authenticate(self.portal_user.login, self.portal_user.login)
        response = self.url_open("/my/orders/%s" % self.order.id)
        self.assertIn("o_wsoh_return_products", response.text)
        self.website.allow_online_returns = False
        response = self.url_open("/my/orders/%s" % self.order.id)
        self.assertNotIn("o_wsoh_return_products", response.text)

    def test_logged_in_customer_submits_and_sees_the_confirmation(self):
        self.authenticate(self.portal_user.login, self.portal_user.login)
        response = self._post(
            {
                "qty_%s" % self.line.id: "2",
                "phone": "0470 12 34 56",
                "note_%s" % self.line.id: "Scratched",
            }
        )
        request = self._requests(self.order)
        self.assertEqual(len(request), 1)
        self.assertEqual(request.line_ids.quantity, 2)
        self.assertEqual(request.line_ids.reason_id, self.reason)
        self.assertEqual(request.line_ids.note, "Scratched")
        self.assertEqual(request.phone, "+32 470 12 34 56")
        self.assertIn("/my/returns/%s" % request.id, response.url)
        self.assertIn("o_wsoh_return_confirmation", response.text)
        listing = self.url_open("/my/returns")
        self.assertIn(request.name, listing.text)

    def test_guest_uses_the_order_access_token(self):
        url = "%s?access_token=%s" % (self.url, self.order._portal_ensure_token())
        response = self._post(url=url)
        request = self._requests(self.order)
        self.assertEqual(len(request), 1)
        self.assertIn("o_wsoh_return_confirmation", response.text)
        self.assertIn(self.order.partner_id, request.message_partner_ids)

    def test_wrong_or_missing_token_is_forbidden(self):
        self.order._portal_ensure_token()
        self.assertEqual(self.url_open(self.url).status_code, 403)
        self.assertEqual(self.url_open(self.url + "?access_token=nope").status_code, 403)
        data = {"qty_%s" % self.line.id: "1", "reason_%s" % self.line.id: str(self.reason.id)}
        self.assertIn(
            self.url_open(self.url + "?access_token=nope", data=data).status_code, (400, 403)
        )
        self.assertFalse(self._requests(self.order))

    def test_another_customers_order_is_forbidden(self):
        other = self._delivered_order(partner=self.env["res.partner"].create({"name": "Other"}))
        self.authenticate(self.portal_user.login, self.portal_user.login)
        self.assertEqual(self.url_open("/my/orders/%s/return" % other.id).status_code, 403)
        self.assertEqual(self.url_open("/my/orders/999999999/return").status_code, 404)
        self.assertFalse(self._requests(other))

    def test_post_without_csrf_token_is_refused(self):
        self.authenticate(self.portal_user.login, self.portal_user.login)
        response = self._post(csrf=False)
        self.assertEqual(response.status_code, 400)
        self.assertFalse(self._requests(self.order))

    def test_customer_sees_only_their_own_requests(self):
        other_order = self._delivered_order(
            partner=self.env["res.partner"].create({"name": "Other", "email": "o@example.com"})
        )
        other_request = self._submit(other_order, {self.product: 1})
        own_request = self._submit(self.order, {self.product: 1})
        self.authenticate(self.portal_user.login, self.portal_user.login)
        listing = self.url_open("/my/returns")
        self.assertIn(own_request.name, listing.text)
        self.assertNotIn(other_request.name, listing.text)
        response = self.url_open("/my/returns/%s" % other_request.id)
        self.assertNotIn(other_request.name, response.text)
        counters = self.url_open(
            "/my/counters",
            data=json.dumps({"params": {"counters": ["return_request_count"]}}),
            headers={"Content-Type": "application/json"},
        ).json()
        self.assertEqual(counters["result"]["return_request_count"], 1)

    # -- bad input ----------------------------------------------------------
    def test_non_numeric_quantity_is_refused(self):
        self._assert_form_error({"qty_%s" % self.line.id: "two"}, "must be numbers")

    def test_huge_quantity_is_refused(self):
        self._assert_form_error({"qty_%s" % self.line.id: "1e400"}, "reasonable numbers")

    def test_negative_quantity_is_refused(self):
        self._assert_form_error({"qty_%s" % self.line.id: "-3"}, "positive number")

    def test_quantity_above_returnable_is_refused(self):
        self._assert_form_error({"qty_%s" % self.line.id: "6"}, "at most 5")

    def test_zero_everywhere_is_refused(self):
        self._assert_form_error({"qty_%s" % self.line.id: "0"}, "at least one product")

    def test_line_of_another_order_is_refused(self):
        other = self._delivered_order(partner=self.customer)
        self._assert_form_error(
            {"qty_%s" % self.line.id: "0", "qty_%s" % other.order_line.id: "1"}, "does not belong"
        )
        self.assertFalse(self._requests(other))

    def test_quantity_for_a_note_or_section_line_is_refused(self):
        notes = self.env["sale.order.line"].create(
            [
                {
                    "order_id": self.order.id,
                    "display_type": kind,
                    "name": "Gift wrapping",
                    "product_uom_qty": 0,
                }
                for kind in ("line_note", "line_section")
            ]
        )
        for note in notes:
            self._assert_form_error({"qty_%s" % note.id: "1"}, "does not belong")

    def test_quantity_sent_as_a_file_is_refused(self):
        key = "qty_%s" % self.line.id
        self._assert_form_error({key: None}, "could not be read", files={key: ("qty.txt", b"1")})

    def test_reason_sent_as_a_file_is_refused(self):
        key = "reason_%s" % self.line.id
        self._assert_form_error(
            {key: None},
            "could not be read",
            files={key: ("reason.txt", str(self.reason.id).encode())},
        )

    def test_comment_phone_or_note_sent_as_a_file_is_refused(self):
        for field in ("comment", "phone", "form_token", "note_%s" % self.line.id):
            self._assert_form_error(
                {field: None}, "could not be read", files={field: ("x.txt", b"x")}
            )

    def test_unknown_line_id_is_refused(self):
        self._assert_form_error({"qty_abc": "1"}, "does not belong")

    def test_missing_reason_is_refused_naming_the_product(self):
        self._assert_form_error(
            {"reason_%s" % self.line.id: ""}, "Portal Return Lamp: please choose the reason"
        )

    def test_unknown_or_odd_reason_ids_are_refused_not_a_500(self):
        # "²" passed str.isdigit() and then failed int(); 30 digits overflowed PostgreSQL.
        for value in ("\u00b2", "9" * 30, "999999999", "-1", "abc", " ", "1.5"):
            self._assert_form_error(
                {"reason_%s" % self.line.id: value}, "Portal Return Lamp: please choose"
            )

    def test_reason_of_another_website_is_refused(self):
        elsewhere = self.env["sale.return.reason"].create(
            {"name": "Elsewhere", "website_id": self.env["website"].create({"name": "W2"}).id}
        )
        self._assert_form_error({"reason_%s" % self.line.id: str(elsewhere.id)}, "reasons offered")

    def test_note_over_the_limit_is_refused(self):
        self._assert_form_error({"note_%s" % self.line.id: "x" * 501}, "note is too long")

    def test_refused_form_shows_again_with_what_was_entered(self):
        self.authenticate(self.portal_user.login, self.portal_user.login)
        response = self._post(
            {
                "qty_%s" % self.line.id: "2",
                "note_%s" % self.line.id: "Dented & scratched",
                "comment": "Call me first",
                "phone": "not a phone",
            }
        )
        self.assertIn("is not valid", response.text)
        self.assertFalse(self._requests(self.order))
        self.assertRegex(response.text, r'name="qty_%s"[^>]*value="2"' % self.line.id)
        self.assertIn('value="Dented &amp; scratched"', response.text)
        self.assertRegex(response.text, r'<option value="%s" selected="[^"]+">' % self.reason.id)
        self.assertIn("Call me first</textarea>", response.text)
        self.assertIn('value="not a phone"', response.text)

    def test_comment_over_the_limit_is_refused(self):
        self._assert_form_error({"comment": "x" * 1001}, "too long")

    def test_invalid_phone_is_refused(self):
        self._assert_form_error({"phone": "not a phone"}, "is not valid")

    def test_expired_window_is_refused(self):
        self.website.return_window_days = 1
        self.order.picking_ids.move_lines.write({"date": "2000-01-01 00:00:00"})
        self._assert_form_error({}, "return period has ended")

    def test_not_returnable_product_is_refused(self):
        self.product.return_policy = "not_returnable"
        self._assert_form_error({}, "cannot be returned")

    def test_too_many_requests_are_refused_with_a_message(self):
        self.env["ir.config_parameter"].sudo().set_param(
            "website_sale_order_handling.return_max_requests_per_hour", 1
        )
        self._submit(self.order, {self.product: 1})
        self.authenticate(self.portal_user.login, self.portal_user.login)
        response = self._post()
        self.assertIn("Too many return requests", response.text)
        self.assertEqual(len(self._requests(self.order)), 1)

    def test_return_page_shows_each_products_reason_and_note(self):
        request = self._submit(
            self.order,
            {self.product: {"quantity": 1, "reason": self.reason, "note": "<i>bent</i> shade"}},
        )
        self.authenticate(self.portal_user.login, self.portal_user.login)
        response = self.url_open("/my/returns/%s" % request.id)
        self.assertIn(self.reason.name, response.text)
        self.assertIn("&lt;i&gt;bent&lt;/i&gt; shade", response.text)
        self.assertNotIn("<i>bent</i>", response.text)

    def test_html_in_the_comment_is_stored_and_shown_escaped(self):
        self.authenticate(self.portal_user.login, self.portal_user.login)
        comment = '<script>alert("returns")</script><b>bold</b>'
        response = self._post({"comment": comment})
        request = self._requests(self.order)
        self.assertEqual(request.comment, comment)
        self.assertIn("&lt;script&gt;alert(", response.text)
        self.assertNotIn('<script>alert("returns")', response.text)

    def test_double_submission_of_the_same_form_creates_one_request(self):
        self.authenticate(self.portal_user.login, self.portal_user.login)
        _response, csrf, token = self._form()
        data = {
            "csrf_token": csrf,
            "form_token": token,
            "qty_%s" % self.line.id: "1",
            "reason_%s" % self.line.id: str(self.reason.id),
        }
        first = self.url_open(self.url, data=data)
        second = self.url_open(self.url, data=data)
        self.assertEqual(len(self._requests(self.order)), 1)
        self.assertEqual(first.url, second.url)

    # -- Chromium -----------------------------------------------------------
    def test_customer_return_flow_in_chromium(self):
        service = self.env["product.product"].create(
            {
                "name": "Portal Setup Service",
                "type": "service",
                "list_price": 10.0,
                "taxes_id": [(6, 0, [])],
            }
        )
        order = self._create_web_order(
            partner=self.customer, lines=[(self.product, 3), (service, 1)]
        )
        order.action_confirm()
        self._deliver(order)
        # Services count as delivered by hand: the form lists them, disabled.
        order.order_line.filtered(lambda ln: ln.product_id == service).qty_delivered = 1
        self.start_tour(
            "/my/orders/%s" % order.id, "wsoh_return_products", login=self.portal_user.login
        )
        request = self._requests(order)
        self.assertEqual(request.line_ids.product_id, self.product)
        self.assertEqual(request.line_ids.quantity, 2)
        self.assertEqual(request.line_ids.reason_id, self.reason)
        self.assertEqual(request.line_ids.note, "The shade is broken.")
        self.assertEqual(request.comment, "Please pick them up on Monday.")
