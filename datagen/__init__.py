"""tracecause datagen stage."""
