"""The 2.0.1.2.0 migration scripts, run on this database's tables.

tools/test-upgrade runs them for real on the previous version's data; these
cover what its demo data has not: a line that has its reason already, and a
return e-mail an administrator edited.
"""

import hashlib
import os
from unittest.mock import patch

from flectra.modules.module import get_module_path
from flectra.tests import tagged
from flectra.tools.translate import PoFileReader

from .common import load_migration
from .return_common import ReturnCase

MODULE = "website_sale_order_handling"


def _script(name):
    return load_migration("2.0.1.2.0", name)


@tagged("post_install", "-at_install")
class TestReturnMigration(ReturnCase):
    def test_pre_migrate_copies_the_requests_reason_to_its_lines_without_a_reason(self):
        wrong_item = self.env.ref("website_sale_order_handling.return_reason_wrong_item")
        request = self._submit(self._delivered_order(), {self.product: 1})
        kept = self._submit(self._delivered_order(), {self.product: 1})
        self.env["base"].flush()
        cr = self.env.cr
        # The previous version's tables: the reason on the request, none on the lines.
        cr.execute("ALTER TABLE sale_return_request ADD COLUMN reason_id INTEGER")
        cr.execute("UPDATE sale_return_request SET reason_id = %s", (wrong_item.id,))
        cr.execute("ALTER TABLE sale_return_request_line ALTER COLUMN reason_id DROP NOT NULL")
        cr.execute(
            "UPDATE sale_return_request_line SET reason_id = NULL WHERE request_id = %s",
            (request.id,),
        )
        _script("pre-migrate.py").migrate(cr, "2.0.1.1.0")
        self.env["sale.return.request.line"].invalidate_cache()
        self.assertEqual(request.line_ids.reason_id, wrong_item)
        self.assertEqual(kept.line_ids.reason_id, self.reason, "a line's own reason stays")

    def test_post_migrate_updates_the_unedited_return_emails_only(self):
        cr = self.env.cr
        templates = {
            state: self.env.ref("website_sale_order_handling.mail_template_return_%s" % state)
            for state in ("requested", "approved")
        }
        # Both as the previous version installed them (never written since)...
        cr.execute(
            "UPDATE mail_template SET body_html = '<p>Old body</p>', write_date = create_date"
            " WHERE id IN %s",
            (tuple(t.id for t in templates.values()),),
        )
        # ...then an administrator edits one.
        templates["approved"].invalidate_cache()
        templates["approved"].body_html = "<p>Our own approval e-mail</p>"
        self.env["base"].flush()
        _script("post-migrate.py").migrate(cr, "2.0.1.1.0")
        self.env["mail.template"].invalidate_cache()
        self.assertIn("line.reason_id.name", templates["requested"].body_html)
        self.assertEqual(templates["approved"].body_html, "<p>Our own approval e-mail</p>")

    def test_post_migrate_keeps_a_template_whose_translation_was_edited(self):
        """Translations have no dates: one that is not what the add-on shipped
        was edited by someone, in the translation dialog, and stays, with its
        template's body."""
        if not self.env["res.lang"]._lang_get("fr_FR"):
            self.env["res.lang"]._activate_lang("fr_FR")
        script = _script("post-migrate.py")
        cr = self.env.cr
        templates = {
            state: self.env.ref("website_sale_order_handling.mail_template_return_%s" % state)
            for state in ("received", "rejected")
        }
        cr.execute(
            "UPDATE mail_template SET body_html = '<p>Old body</p>', write_date = create_date"
            " WHERE id IN %s",
            (tuple(t.id for t in templates.values()),),
        )
        cr.execute(
            "DELETE FROM ir_translation WHERE name = 'mail.template,body_html' AND res_id IN %s",
            (tuple(t.id for t in templates.values()),),
        )
        shipped = "<p>Ancien corps, tel que livré</p>"
        edited = "<p>Notre propre traduction, modifiée après l'installation</p>"
        for template, value in ((templates["received"], shipped), (templates["rejected"], edited)):
            cr.execute(
                """
                INSERT INTO ir_translation (lang, type, name, res_id, src, value, module, state)
                VALUES ('fr_FR', 'model', 'mail.template,body_html', %s, '<p>Old body</p>', %s,
                        'website_sale_order_handling', 'translated')
                """,
                (template.id, value),
            )
        name = "mail_template_return_received"
        fingerprints = dict(script.SHIPPED_BODY_TRANSLATIONS)
        fingerprints[name] = fingerprints[name] | {hashlib.sha256(shipped.encode()).hexdigest()}
        with patch.object(script, "SHIPPED_BODY_TRANSLATIONS", fingerprints):
            script.migrate(cr, "2.0.1.1.0")
        self.env["mail.template"].invalidate_cache()
        self.assertIn("line.reason_id.name", templates["received"].body_html)
        self.assertEqual(templates["rejected"].body_html, "<p>Old body</p>")
        cr.execute(
            "SELECT res_id, value FROM ir_translation WHERE name = 'mail.template,body_html'"
            " AND lang = 'fr_FR' AND res_id IN %s",
            (tuple(t.id for t in templates.values()),),
        )
        values = dict(cr.fetchall())
        self.assertNotIn(
            templates["received"].id, values, "the shipped translation of the old body went"
        )
        self.assertEqual(values[templates["rejected"].id], edited)

    def test_shipped_fingerprints_match_what_flectra_loads_from_a_po_file(self):
        """The fingerprints are of the msgstr as Flectra stores it: the fr
        file of this version, loaded, gives translations whose hashes are
        computed the same way."""
        if not self.env["res.lang"]._lang_get("fr_FR"):
            self.env["res.lang"]._activate_lang("fr_FR")
        self.env["ir.module.module"].search([("name", "=", MODULE)])._update_translations(["fr_FR"])
        template = self.env.ref("website_sale_order_handling.mail_template_return_received")
        self.env["base"].flush()
        self.env.cr.execute(
            "SELECT value FROM ir_translation WHERE name = 'mail.template,body_html'"
            " AND lang = 'fr_FR' AND res_id = %s",
            (template.id,),
        )
        value = self.env.cr.fetchone()[0]
        po_path = os.path.join(get_module_path(MODULE), "i18n", "fr.po")
        shipped = [
            entry["value"]
            for entry in PoFileReader(po_path)
            if entry["name"] == "mail.template,body_html"
            and entry.get("imd_name") == "mail_template_return_received"
        ]
        self.assertEqual(shipped, [value], "stored as the .po's msgstr, unchanged")
