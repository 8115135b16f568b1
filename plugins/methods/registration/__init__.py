"""plugins.methods.registration (being built in this session)."""
