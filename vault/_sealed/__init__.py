"""The sealed-document format (docs/FORMAT.md §11): recipient stanzas, the
signed label, the encrypted metadata, reading and writing a sealed file."""
