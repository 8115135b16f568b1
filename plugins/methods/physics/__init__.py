"""plugins.methods.physics (being built in this session)."""
