"""kg: build knowledge graphs from item catalogue text with LLMs.

Imports neither ``graphrec`` nor ``alignment``; it exports plain arrays and RDF.
The extraction pipeline arrives with its own issue; this package is installed
now so the import direction is fixed from the start.
"""
