"""2.0.1.1.0 -> 2.0.1.2.0: the return e-mails list each product with its reason.

Their templates are noupdate, so an upgrade does not touch them. Those nobody
edited (never written since they were created) get this version's body from
the data file; the translations of their old body go, so that the add-on's
translations of the new one load (right after this script). A template an
administrator edited stays as it is.
"""
import logging
import os

from lxml import etree

from flectra import SUPERUSER_ID, api
from flectra.modules.module import get_module_path
from flectra.tools.convert import xml_import

_logger = logging.getLogger(__name__)

MODULE = "website_sale_order_handling"
DATA_FILE = os.path.join("data", "return_mail_template_data.xml")
TEMPLATES = tuple(
    "mail_template_return_%s" % state
    for state in ("requested", "approved", "received", "refunded", "rejected", "cancelled")
)


def _unedited_templates(cr):
    """{xml id name: template id} of our return templates nobody wrote since their creation."""
    cr.execute(
        """
        SELECT d.name, t.id
          FROM ir_model_data d
          JOIN mail_template t ON t.id = d.res_id
         WHERE d.module = %s AND d.model = 'mail.template' AND d.name IN %s
           AND t.write_date = t.create_date
        """,
        (MODULE, TEMPLATES),
    )
    return dict(cr.fetchall())


def migrate(cr, version):
    if not version:
        return
    unedited = _unedited_templates(cr)
    if not unedited:
        return
    path = os.path.join(get_module_path(MODULE), DATA_FILE)
    root = etree.parse(path).getroot()
    for record in root.findall("record"):
        if record.get("id") not in unedited:
            root.remove(record)
    # Mode "init" loads these records even though the file is noupdate.
    xml_import(cr, MODULE, {}, "init", noupdate=True, xml_filename=path).parse(root)
    cr.execute(
        """
        DELETE FROM ir_translation
         WHERE type = 'model' AND name = 'mail.template,body_html' AND res_id IN %s
        """,
        (tuple(unedited.values()),),
    )
    api.Environment(cr, SUPERUSER_ID, {})["mail.template"].invalidate_cache()
    _logger.info("Return e-mail templates given their per-product body: %s", sorted(unedited))
