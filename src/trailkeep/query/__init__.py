"""Turning what a caller asks for into SQL with bound values, one dialect per backend."""
