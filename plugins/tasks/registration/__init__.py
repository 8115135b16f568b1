"""plugins.tasks.registration (being built in this session)."""
