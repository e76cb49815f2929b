"""Translations: the committed .pot matches what the module says today."""

import io
import os

import polib

from flectra.modules.module import get_module_path
from flectra.tests import SavepointCase, tagged
from flectra.tools.translate import trans_export

from .common import OrderHandlingHttpCase

MODULE = "website_sale_order_handling"


@tagged("post_install", "-at_install")
class TestTranslationTemplate(SavepointCase):
    def _msgids(self, catalog):
        """Terms of the module, leaving out demo records (their ids end in _demo):
        the .pot is exported from a database without demo data."""
        return {
            entry.msgid
            for entry in catalog
            if entry.msgid and not all("_demo" in ref for ref, _line in entry.occurrences)
        }

    def test_committed_pot_is_current(self):
        buffer = io.BytesIO()
        trans_export(None, [MODULE], buffer, "po", self.env.cr)
        current = self._msgids(polib.pofile(buffer.getvalue().decode("utf-8")))
        path = os.path.join(get_module_path(MODULE), "i18n", "%s.pot" % MODULE)
        committed = self._msgids(polib.pofile(path))
        missing = sorted(current - committed)
        stale = sorted(committed - current)
        self.assertFalse(
            missing or stale,
            "i18n/%s.pot is stale: run tools/update-pot.\nMissing: %s\nNo longer used: %s"
            % (MODULE, missing[:20], stale[:20]),
        )


@tagged("post_install", "-at_install")
class TestFrenchReturnForm(OrderHandlingHttpCase):
    def test_french_customer_sees_the_return_form_in_french(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        self.env["ir.module.module"].search([("name", "=", MODULE)])._update_translations("fr_FR")
        website = self.env["website"].browse(1)
        website.write(
            {
                "language_ids": [(4, self.env.ref("base.lang_fr").id)],
                "allow_online_returns": True,
                "return_window_days": 30,
            }
        )
        customer = self._new_portal_customer("french_customer", lang="fr_FR")
        product = self.env["product.product"].create(
            {"name": "Lampe", "type": "consu", "list_price": 30.0, "is_published": True}
        )
        order = self.env["sale.order"].create(
            {
                "partner_id": customer.partner_id.id,
                "website_id": website.id,
                "order_line": [(0, 0, {"product_id": product.id, "product_uom_qty": 2})],
            }
        )
        order.action_confirm()
        for move in order.picking_ids.move_lines:
            move.quantity_done = move.product_uom_qty
        order.picking_ids._action_done()
        self.authenticate("french_customer", "french_customer")
        page = self.url_open("/fr/my/orders/%d/return" % order.id)
        self.assertEqual(page.status_code, 200)
        self.assertIn("Quantité à retourner", page.text)
        self.assertIn("Demander le retour", page.text)
        self.assertNotIn("Quantity to return", page.text)
