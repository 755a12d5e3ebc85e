"""Read models in PostgreSQL: their schema, and the code that applies folded batches to them."""
