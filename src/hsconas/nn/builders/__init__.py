"""Built-in builders, one module per space family; importing registers them."""
