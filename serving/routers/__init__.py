"""Thin routers: parse (schemas), call the library or the model set, shape the answer."""
