"""Translations: the committed .pot matches what the module says today."""
import io
import os

import polib

from flectra.modules.module import get_module_path
from flectra.tests import SavepointCase, tagged
from flectra.tools.translate import trans_export

MODULE = "website_sale_order_handling"


@tagged("post_install", "-at_install")
class TestTranslationTemplate(SavepointCase):
    def _msgids(self, catalog):
        """Terms of the module, leaving out demo records (their ids end in _demo):
        the .pot is exported from a database without demo data."""
        return {
            entry.msgid
            for entry in catalog
            if entry.msgid
            and not all("_demo" in ref for ref, _line in entry.occurrences)
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
