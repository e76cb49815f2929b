"""2.0.1.1.0 -> 2.0.1.2.0: the return e-mails list each product with its
reason, and the abandoned cart e-mail shows each product's picture and price.

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
# The data file of each template that this version changed.
TEMPLATES = dict(
    {
        "mail_template_return_%s" % state: os.path.join("data", "return_mail_template_data.xml")
        for state in ("requested", "approved", "received", "refunded", "rejected", "cancelled")
    },
    mail_template_abandoned_cart_reminder=os.path.join("data", "mail_template_data.xml"),
)


def _unedited_templates(cr):
    """{xml id name: template id} of those templates nobody wrote since their creation."""
    cr.execute(
        """
        SELECT d.name, t.id
          FROM ir_model_data d
          JOIN mail_template t ON t.id = d.res_id
         WHERE d.module = %s AND d.model = 'mail.template' AND d.name IN %s
           AND t.write_date = t.create_date
        """,
        (MODULE, tuple(TEMPLATES)),
    )
    return dict(cr.fetchall())


def migrate(cr, version):
    if not version:
        return
    unedited = _unedited_templates(cr)
    if not unedited:
        return
    for data_file in sorted({TEMPLATES[name] for name in unedited}):
        path = os.path.join(get_module_path(MODULE), data_file)
        root = etree.parse(path).getroot()
        for record in list(root.iter("record")):
            if record.get("id") not in unedited:
                record.getparent().remove(record)
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
    _logger.info("E-mail templates given this version's body: %s", sorted(unedited))
