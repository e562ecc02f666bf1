"""Report assembly: generated fragments (tables, numbers, provenance) and rendering."""
