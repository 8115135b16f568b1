"""Built-in methods: algorithms that solve one family's problem (kind ``method``)."""
