"""Persistence behind one interface (``base.Store``); one module per backend, loaded on demand."""
