"""One module of routes per resource of the native API."""
