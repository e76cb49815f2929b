"""Upgrades give unedited e-mail templates the new version's body.

The add-on's e-mail templates are noupdate, so an upgrade does not touch
them. A version that changes one calls ``reload_unedited_templates`` from its
post-migrate script: those nobody edited (never written since they were
created) get the new body from the data file, and the translations of their
old body go, so that the add-on's translations of the new one load (right
after the script). A template an administrator edited stays as it is, and so
does one whose translation of the body an administrator edited, in any
language: translations have no dates, so a translation counts as edited
unless it is one that the add-on shipped (``shipped``: the SHA-256 of each
msgstr of the body in the fr and de files of the versions before).
"""

import hashlib
import logging
import os

from lxml import etree

from flectra import SUPERUSER_ID, api
from flectra.modules.module import get_module_path
from flectra.tools.convert import xml_import

_logger = logging.getLogger(__name__)

MODULE = "website_sale_order_handling"


def _unedited_templates(cr, templates, shipped):
    """{xml id name: template id} of ``templates`` nobody wrote since their
    creation, and whose body's translations are all in ``shipped``."""
    cr.execute(
        """
        SELECT d.name, t.id
          FROM ir_model_data d
          JOIN mail_template t ON t.id = d.res_id
         WHERE d.module = %s AND d.model = 'mail.template' AND d.name IN %s
           AND t.write_date = t.create_date
        """,
        (MODULE, tuple(templates)),
    )
    unedited = dict(cr.fetchall())
    if not unedited:
        return unedited
    cr.execute(
        """
        SELECT res_id, value
          FROM ir_translation
         WHERE type = 'model' AND name = 'mail.template,body_html' AND res_id IN %s
           AND COALESCE(value, '') != ''
        """,
        (tuple(unedited.values()),),
    )
    name_by_id = {template_id: name for name, template_id in unedited.items()}
    for template_id, value in cr.fetchall():
        name = name_by_id.get(template_id)
        digest = hashlib.sha256(value.encode()).hexdigest()
        if name in unedited and digest not in shipped.get(name, ()):
            _logger.info("E-mail template %s keeps its body: a translation of it was edited", name)
            del unedited[name]
    return unedited


def reload_unedited_templates(cr, templates, shipped):
    """Give ``templates`` ({xml id name: data file}) this version's body,
    unless edited (see the module's docstring)."""
    unedited = _unedited_templates(cr, templates, shipped)
    if not unedited:
        return
    for data_file in sorted({templates[name] for name in unedited}):
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
    # Still the add-on's own: the next version's upgrade may reload them too.
    cr.execute(
        "UPDATE mail_template SET write_date = create_date WHERE id IN %s",
        (tuple(unedited.values()),),
    )
    api.Environment(cr, SUPERUSER_ID, {})["mail.template"].invalidate_cache()
    _logger.info("E-mail templates given this version's body: %s", sorted(unedited))
