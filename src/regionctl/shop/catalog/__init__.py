"""catalog: the watches, their tags, and queries over them (the reference's Go service)."""
