"""tracecause launch stage."""
