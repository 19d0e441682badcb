"""One module per data source, all with the same shape (see base.Source)."""
