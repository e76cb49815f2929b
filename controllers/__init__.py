from . import cart_recovery
from . import portal_return
