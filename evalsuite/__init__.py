"""tracecause evalsuite stage."""
