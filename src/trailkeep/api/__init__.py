"""The HTTP edge: the FastAPI app factory, thin routes and the one error mapper."""
