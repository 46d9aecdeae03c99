"""What a caller asks for, as one backend-neutral tree: the search language, native filters
and the dialects' conditions. Storage compiles it; nothing here is SQL."""
