"""tracecause trainer stage."""
