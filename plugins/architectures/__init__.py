"""plugins.architectures (being built in this session)."""
