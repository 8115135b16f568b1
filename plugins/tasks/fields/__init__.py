"""plugins.tasks.fields (being built in this session)."""
