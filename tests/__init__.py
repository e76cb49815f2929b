from . import test_delivery_email
from . import test_i18n
from . import test_order_assignment
from . import test_order_flow
from . import test_order_queues
from . import test_smoke
