"""A reason per returned product: required, offered on the order's website,
with an optional note; shown in the e-mails."""

import psycopg2

from flectra.exceptions import UserError, ValidationError
from flectra.tests import tagged
from flectra.tools import mute_logger

from .return_common import ReturnCase


@tagged("post_install", "-at_install")
class TestReturnLineReasons(ReturnCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.chair = cls.env["product.product"].create(
            {
                "name": "Returned Chair",
                "type": "consu",
                "list_price": 30.0,
                "taxes_id": [(6, 0, [])],
            }
        )
        cls.wrong_item = cls.env.ref("website_sale_order_handling.return_reason_wrong_item")

    def _two_product_order(self):
        return self._delivered_order(lines=[(self.product, 3), (self.chair, 2)])

    def _assert_refused(self, order, quantities, message):
        with self.assertRaisesRegex(UserError, message):
            self._submit(order, quantities)
        self.assertFalse(order.return_request_ids)

    def test_each_product_keeps_its_own_reason_and_note(self):
        order = self._two_product_order()
        request = self._submit(
            order,
            {
                self.product: {"quantity": 2, "reason": self.reason, "note": "  Cracked base  "},
                self.chair: {"quantity": 1, "reason": self.wrong_item},
            },
            comment="Both in one parcel",
        )
        lamp_line = request.line_ids.filtered(lambda ln: ln.product_id == self.product)
        chair_line = request.line_ids - lamp_line
        self.assertEqual((lamp_line.reason_id, lamp_line.note), (self.reason, "Cracked base"))
        self.assertEqual((chair_line.reason_id, chair_line.note), (self.wrong_item, False))
        self.assertEqual(request.comment, "Both in one parcel")
        self.assertEqual(request.reason_ids, self.reason | self.wrong_item)
        damaged_only = self._submit(order, {self.product: 1})
        self.assertEqual(damaged_only.reason_ids, self.reason)
        self.assertEqual(
            self.Request.search(
                [("order_id", "=", order.id), ("reason_ids", "=", self.wrong_item.id)]
            ),
            request,
        )

    def test_missing_reason_on_a_returned_product_is_refused_naming_it(self):
        order = self._two_product_order()
        self._assert_refused(
            order,
            {
                self.product: {"quantity": 1, "reason": self.reason},
                self.chair: {"quantity": 1},
            },
            "Returned Chair: please choose the reason",
        )
        self._assert_refused(
            order, {self.chair: {"quantity": 1, "reason": False}}, "Returned Chair"
        )
        self._assert_refused(
            order,
            {self.chair: {"quantity": 1, "reason": self.env["sale.return.reason"]}},
            "Returned Chair: please choose the reason",
        )

    def test_product_not_returned_needs_no_reason(self):
        order = self._two_product_order()
        request = self._submit(
            order,
            {
                self.product: {"quantity": 1, "reason": self.reason},
                self.chair: {"quantity": 0, "note": "ignored"},
            },
        )
        self.assertEqual(request.line_ids.product_id, self.product)

    def test_reason_of_another_website_is_refused(self):
        elsewhere = self.env["sale.return.reason"].create(
            {"name": "Elsewhere", "website_id": self.env["website"].create({"name": "W2"}).id}
        )
        self._assert_refused(
            self._two_product_order(),
            {self.chair: {"quantity": 1, "reason": elsewhere}},
            "Returned Chair: please choose one of the reasons offered",
        )

    def test_reason_of_this_website_is_accepted(self):
        own = self.env["sale.return.reason"].create(
            {"name": "Only here", "website_id": self.website.id}
        )
        request = self._submit(self._delivered_order(), {self.product: 1}, reason=own)
        self.assertEqual(request.line_ids.reason_id, own)

    def test_archived_reason_is_refused(self):
        archived = self.env["sale.return.reason"].create({"name": "Old reason", "active": False})
        self._assert_refused(
            self._delivered_order(),
            {self.product: {"quantity": 1, "reason": archived}},
            "reasons offered",
        )

    def test_a_record_of_another_model_or_several_reasons_are_no_reason(self):
        order = self._delivered_order()
        self._assert_refused(
            order, {self.product: {"quantity": 1, "reason": self.product}}, "choose the reason"
        )
        self._assert_refused(
            order,
            {self.product: {"quantity": 1, "reason": self.reason | self.wrong_item}},
            "reasons offered",
        )
        self._assert_refused(
            order, {self.product: {"quantity": 1, "reason": self.reason.id}}, "choose the reason"
        )

    def test_note_over_the_limit_is_refused(self):
        limit = self.Request._NOTE_MAX_LENGTH
        self._assert_refused(
            self._delivered_order(),
            {self.product: {"quantity": 1, "reason": self.reason, "note": "x" * (limit + 1)}},
            "note is too long",
        )
        request = self._submit(
            self._delivered_order(),
            {self.product: {"quantity": 1, "reason": self.reason, "note": "x" * limit}},
        )
        self.assertEqual(len(request.line_ids.note), limit)

    def test_malformed_lines_are_refused_with_a_message(self):
        order = self._delivered_order()
        line_id = order.order_line.id
        for lines in (
            {line_id: 1},  # a bare quantity: not the form's shape
            {line_id: {"quantity": True, "reason": self.reason}},
            {line_id: {"quantity": "1", "reason": self.reason}},
            {line_id: {"quantity": 1, "reason": self.reason, "note": b"bytes"}},
            [(line_id, 1)],
        ):
            with self.assertRaises(ValidationError, msg=lines):
                self.Request.sudo()._create_from_portal(order, lines)
        self.assertFalse(order.return_request_ids)

    def test_a_line_cannot_be_saved_without_a_reason(self):
        request = self._submit(self._delivered_order(), {self.product: 1})
        with (
            self.assertRaises(psycopg2.IntegrityError),
            mute_logger("flectra.sql_db"),
            self.cr.savepoint(),
        ):
            request.line_ids.sudo().write({"reason_id": False})
            request.line_ids.flush()

    def test_emails_list_each_product_with_its_reason_and_escaped_note(self):
        order = self._two_product_order()
        request = self._submit(
            order,
            {
                self.product: {"quantity": 2, "reason": self.reason, "note": "<b>cracked</b>"},
                self.chair: {"quantity": 1, "reason": self.wrong_item},
            },
        )
        for state in ("requested", "approved", "received", "refunded", "rejected", "cancelled"):
            template = self.env.ref("website_sale_order_handling.mail_template_return_%s" % state)
            body = template._render_field("body_html", request.ids)[request.id]
            for text in (
                "Returned Chair",
                self.wrong_item.name,
                self.reason.name,
                "&lt;b&gt;cracked",
            ):
                self.assertIn(text, body, state)
            self.assertNotIn("<b>cracked", body, state)
