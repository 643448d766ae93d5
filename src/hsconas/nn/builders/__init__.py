"""Built-in builders, one module per space family; importing registers them."""

from hsconas.nn.builders import (  # noqa: F401
    fbnet,
    hsconas_net,
    mobilenet,
    nb201,
    resnet,
)
