"""The data layer: sources, validation and quarantine, storage tables, bundled sample data."""
