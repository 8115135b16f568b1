"""plugins.encodings (being built in this session)."""
